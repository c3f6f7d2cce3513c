"""A TCP load balancer for tests: each connection relayed to one target, a PROXY protocol
header (v1 or v2, naming a client address the test picks) written to the target first, as
HAProxy, AWS NLB or nginx's stream module with the PROXY protocol on do."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading

from runtime.proxy_protocol import V2_SIGNATURE


def v1_header(host: str, port: int, dest: tuple[str, int] = ("192.0.2.1", 8081)) -> bytes:
    family = "TCP6" if ":" in host else "TCP4"
    return f"PROXY {family} {host} {dest[0]} {port} {dest[1]}\r\n".encode()


def v2_header(
    host: str | None,
    port: int = 0,
    dest: tuple[str, int] = ("192.0.2.1", 8081),
    tlvs: bytes = b"",
) -> bytes:
    """A v2 PROXY header (TCP over IPv4 or IPv6); ``host`` None: the LOCAL command."""
    if host is None:
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack(">H", len(tlvs)) + tlvs
    source, target = ipaddress.ip_address(host), ipaddress.ip_address(dest[0])
    family = 0x11 if source.version == 4 else 0x21
    body = source.packed + target.packed + struct.pack(">HH", port, dest[1]) + tlvs
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack(">H", len(body)) + body


class Balancer:
    """Listens on 127.0.0.1 (``port``); every connection is relayed to ``target`` after
    ``header``. Native threads, two per connection; ``close()`` ends everything."""

    def __init__(self, target: tuple[str, int], header: bytes) -> None:
        self.target = target
        self.header = header
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
            upstream.sendall(self.header)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Balancer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
