"""PermissiveFront: plain and TLS gRPC clients on one port (``tls.server.mode=permissive``).

RocketMQ's proxy serves both on its gRPC port, and RocketMQ 5's Java and Go clients use TLS
unless told not to (trusting any certificate) while the Python and Node.js ones do not: one
port must take both. grpcio cannot: a listener is plain or TLS. So the front owns the public
port and grpcio listens on two loopback ports, one plain and one TLS; each connection's first
byte (0x16, a TLS handshake record, or the HTTP/2 preface's ``P``) picks the one it is
relayed to, bytes both ways, unchanged (TLS ends in grpcio: the front never sees plaintext).

The relay costs CPU (about 0.1 - 0.2 ms a call; docs/benchmarks.md "Session 23"):
``tls.server.mode=disabled`` or ``enforcing`` let grpcio own the public port itself.

``origin(peer)``: the client's own address for a gRPC peer string of a relayed connection
(what grpcio sees is the front's loopback connection): the ACL's address whitelists use it.

Threads: one accepting, two per connection, native threads with the socket module's own
blocking sockets even in a monkey-patched process (``cluster --proxy``: relayed as greenlets on
the brokers' hub, a call cost twice as much more). A connection whose first byte does not come
within ``FIRST_BYTE_S`` is closed. When grpcio closes its side (a client gone quiet fails its
keepalive pings) the client's connection is closed too.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

import gevent.monkey
from loguru import logger

FIRST_BYTE_S = 10.0
TLS_HANDSHAKE = 0x16
CHUNK = 256 * 1024

# the unpatched socket class, thread start and lock (gevent's monkey-patching replaces them)
_Socket: Any = gevent.monkey.get_original("socket", "socket")
_start: Callable[..., Any] = gevent.monkey.get_original("_thread", "start_new_thread")
_new_lock: Callable[[], Any] = gevent.monkey.get_original("_thread", "allocate_lock")

_ORIGINS: dict[int, str] = {}
"""The front's loopback port of each relayed connection -> the client's gRPC peer string."""


def origin(peer: str) -> str:
    """``peer`` (``ipv4:127.0.0.1:PORT``) as the client's own peer string when it is a relayed
    connection; else ``peer`` itself."""
    if peer.startswith("ipv4:127.0.0.1:"):
        port = peer.rpartition(":")[2]
        if port.isdigit():
            return _ORIGINS.get(int(port), peer)
    return peer


def _peer_string(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


class PermissiveFront:
    """``start()`` binds ``host:port`` (0: a free port) and returns the port; connections go
    to ``plain_port`` or ``tls_port`` on 127.0.0.1 by their first byte."""

    def __init__(self, host: str, port: int, plain_port: int, tls_port: int) -> None:
        self.host = host
        self.port = port
        self.plain_port = plain_port
        self.tls_port = tls_port
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = _new_lock()
        self._stopped = False

    def start(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = _Socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(512)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        _start(self._accept, ())
        return self.port

    def stop(self) -> None:
        self._stopped = True
        if self._listener is not None:
            _close(self._listener)  # (shutdown first: a close alone leaves accept() waiting)
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopped:
            try:
                # (``accept()`` would wrap the connection in the module's socket class: gevent's,
                # in a monkey-patched process, of no use in a native thread)
                fd, address = listener._accept()  # type: ignore[attr-defined]
                client = _Socket(listener.family, socket.SOCK_STREAM, fileno=fd)
            except OSError:
                if self._stopped:
                    return
                logger.warning("proxy: front: accept failed; going on")
                continue
            _start(self._serve, (client, address))

    def _serve(self, client: socket.socket, address: tuple[str, int]) -> None:
        upstream: socket.socket | None = None
        self._track(client)
        try:
            client.settimeout(FIRST_BYTE_S)
            first = client.recv(1, socket.MSG_PEEK)
            if not first:
                return
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            port = self.tls_port if first[0] == TLS_HANDSHAKE else self.plain_port
            upstream = _Socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.settimeout(FIRST_BYTE_S)
            upstream.connect(("127.0.0.1", port))
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(upstream)
            local_port = upstream.getsockname()[1]
            _ORIGINS[local_port] = _peer_string(address)
            try:
                back = _new_lock()
                back.acquire()
                _start(self._relay_back, (upstream, client, back))
                _copy(client, upstream)
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)  # the client is done sending
                back.acquire()  # the relay back ended
            finally:
                _ORIGINS.pop(local_port, None)
        except OSError as exc:  # includes a first byte that never came (TimeoutError)
            logger.debug("proxy: front: connection from {} ended: {}", address, exc)
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._untrack(sock)
                    _close(sock)

    def _relay_back(self, upstream: socket.socket, client: socket.socket, done: Any) -> None:
        """grpcio's bytes to the client; when grpcio ends the connection, so does the client's
        (its reading half is then of no use, and a client gone quiet never ends it). Releases
        ``done`` at the end."""
        try:
            _copy(upstream, client)
        except OSError:
            pass
        finally:
            _close(client)
            done.release()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)
        if self._stopped:
            _close(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)


def _copy(source: socket.socket, target: socket.socket) -> None:
    """Bytes from ``source`` to ``target`` until ``source`` ends (OSError: either broke)."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while True:
        n = source.recv_into(buffer)
        if not n:
            return
        target.sendall(view[:n])


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
