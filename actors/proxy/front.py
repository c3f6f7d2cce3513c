"""Front: plain and TLS gRPC clients on one port (``tls.server.mode=permissive``), and the
PROXY protocol (``--proxy-protocol``).

RocketMQ's proxy serves both on its gRPC port, and RocketMQ 5's Java and Go clients use TLS
unless told not to (trusting any certificate) while the Python and Node.js ones do not: one
port must take both. grpcio cannot: a listener is plain or TLS. So the front owns the public
port and grpcio listens on two loopback ports, one plain and one TLS; each connection's first
byte (0x16, a TLS handshake record, or the HTTP/2 preface's ``P``) picks the one it is
relayed to, bytes both ways, unchanged (TLS ends in grpcio: the front never sees plaintext).
With one of the ports only (``tls.server.mode`` enforcing: TLS, disabled: plain), a connection
wanting the other is closed.

With ``proxy_protocol`` a connection may begin with a load balancer's PROXY protocol header
(``runtime.proxy_protocol``; read before the first byte is looked at, as RocketMQ does): the
connection is taken as coming from the client the header names, and the rest of its bytes are
relayed (the header's are not: grpcio would not read them). grpcio cannot read one,
so the proxy runs the front for every mode then.

The relay costs CPU (about 0.1 - 0.2 ms a call; docs/benchmarks.md "Session 23"):
``tls.server.mode=disabled`` or ``enforcing`` without the PROXY protocol let grpcio own the
public port itself.

``origin(peer)``: the client's own address for a gRPC peer string of a relayed connection
(what grpcio sees is the front's loopback connection): the ACL's address whitelists use it.

Threads: one accepting, two per connection (at most ``MAX_CONNECTIONS``), native threads with
the socket module's own blocking sockets and locks even in a monkey-patched process (``cluster
--proxy``: relayed as greenlets on the brokers' hub, a call cost twice as much more); they
touch nothing of gevent's, loguru included (failures are counted, not logged). A connection
whose first byte (with ``proxy_protocol``, whole header) does not come within ``FIRST_BYTE_S``
is closed. When grpcio closes its side the client's connection is closed too; a client gone
without a word is noticed by TCP keepalive (about 90 s) or, with data unacknowledged,
``TCP_USER_TIMEOUT`` (60 s).
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

import gevent.monkey

from runtime import proxy_protocol
from runtime.errors import AddressError, ProtocolError
from runtime.hostport import format_address, parse_address
from runtime.tls import TLS_RECORD_HANDSHAKE

FIRST_BYTE_S = 10.0
MAX_CONNECTIONS = 4096
"""Relayed connections at once (two threads each); more are closed at once."""
ACCEPT_BACKOFF_S = 0.05
CHUNK = 256 * 1024

# the unpatched socket class, thread start and lock (gevent's monkey-patching replaces them)
_Socket: Any = gevent.monkey.get_original("socket", "socket")
_start: Callable[..., Any] = gevent.monkey.get_original("_thread", "start_new_thread")
_new_lock: Callable[[], Any] = gevent.monkey.get_original("_thread", "allocate_lock")
_sleep: Callable[[float], None] = gevent.monkey.get_original("time", "sleep")

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


def caller_address(context: Any) -> str:
    """The address a gRPC call came from, RocketMQ's way (``host:port``; the client's own
    through the relay, or the one a PROXY header named); "" when its peer names none."""
    try:
        host, port = parse_address(peer_address(origin(context.peer() or "")))
    except AddressError:
        return ""
    return format_address(host, port)


def peer_address(peer: str) -> str:
    """``host:port`` of a gRPC peer string (``ipv4:1.2.3.4:5``; grpcio writes an IPv6 one
    URL-encoded, ``ipv6:%5B::1%5D:5``: decoded)."""
    return urllib.parse.unquote(peer.partition(":")[2])


def _peer_string(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


class Front:
    """``start()`` binds ``host:port`` (0: a free port) and returns the port; connections go
    to ``plain_port`` or ``tls_port`` on 127.0.0.1 by their first byte (None: that kind is
    closed). ``stop_accepting()`` closes the port (calls under way go on); ``close_all()`` ends
    the relayed connections.

    Only a connection's own thread closes its sockets (the others shut them down: a socket
    closed under another thread's ``recv`` could have its descriptor reused meanwhile)."""

    def __init__(
        self,
        host: str,
        port: int,
        plain_port: int | None,
        tls_port: int | None,
        *,
        proxy_protocol: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.plain_port = plain_port
        self.tls_port = tls_port
        self.proxy_protocol = proxy_protocol
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = _new_lock()
        self._stopped = False
        self.refused = 0
        """Connections closed at once: past ``MAX_CONNECTIONS``, or no thread to serve them."""
        self.accept_errors = 0
        self.turned_away = 0
        """Connections closed for what they began with: a malformed PROXY header, or TLS
        (plain) where the port takes only plain (TLS) clients."""

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

    def stop_accepting(self) -> None:
        self._stopped = True
        if self._listener is not None:
            _shutdown(self._listener)  # the accept thread sees it, and closes the port

    def close_all(self) -> None:
        self.stop_accepting()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            _shutdown(sock)

    def stop(self) -> None:
        self.close_all()

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None
        try:
            while not self._stopped:
                try:
                    # (``accept()`` would wrap the connection in the module's socket class:
                    # gevent's, in a monkey-patched process, of no use in a native thread)
                    fd, address = listener._accept()  # type: ignore[attr-defined]
                    client = _Socket(listener.family, socket.SOCK_STREAM, fileno=fd)
                except OSError:
                    if self._stopped:
                        return
                    self.accept_errors += 1  # (EMFILE, ...: not logged from this thread)
                    _sleep(ACCEPT_BACKOFF_S)
                    continue
                with self._lock:
                    full = len(self._open) >= 2 * MAX_CONNECTIONS
                try:
                    if full:
                        raise RuntimeError("too many connections")
                    _start(self._serve, (client, address))
                except RuntimeError:  # (also: no thread can be started)
                    self.refused += 1
                    _close(client)
        finally:
            _close(listener)

    def _serve(self, client: socket.socket, address: tuple[str, int]) -> None:
        upstream: socket.socket | None = None
        self._track(client)
        try:
            prefix = b""
            if self.proxy_protocol:
                found = proxy_protocol.read_header(client, FIRST_BYTE_S)
                if isinstance(found, proxy_protocol.Absent):
                    prefix = found.prefix  # (the HTTP/2 preface's first bytes)
                elif found is not None:
                    address = found
            client.settimeout(FIRST_BYTE_S)
            first = prefix[:1] or client.recv(1, socket.MSG_PEEK)
            if not first:
                return
            client.settimeout(None)
            _tune(client, keepalive=True)
            port = self.tls_port if first[0] == TLS_RECORD_HANDSHAKE else self.plain_port
            if port is None:
                self.turned_away += 1
                return
            upstream = _Socket(socket.AF_INET, socket.SOCK_STREAM)
            self._track(upstream)
            # bound first: a port of its own (connect() alone may share a local port with a
            # connection to the other loopback port, and origin() goes by the port)
            upstream.bind(("127.0.0.1", 0))
            local_port = upstream.getsockname()[1]
            _ORIGINS[local_port] = _peer_string(address)
            try:
                upstream.settimeout(FIRST_BYTE_S)
                upstream.connect(("127.0.0.1", port))
                upstream.settimeout(None)
                _tune(upstream, keepalive=False)
                if prefix:
                    upstream.sendall(prefix)
                self._relay(client, upstream)
            finally:
                _ORIGINS.pop(local_port, None)
        except ProtocolError:  # a malformed PROXY header
            self.turned_away += 1
        except OSError:  # includes a first byte that never came (TimeoutError)
            pass  # (a connection ending: not logged from this thread)
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._untrack(sock)
                    _close(sock)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Both directions until both ended; the client's in this thread."""
        back = _new_lock()
        back.acquire()
        try:
            _start(self._relay_back, (upstream, client, back))
        except RuntimeError:
            self.refused += 1
            return
        try:
            _copy(client, upstream)
            _shutdown(upstream, socket.SHUT_WR)  # the client is done sending
        except OSError:
            _shutdown(upstream)  # broken: the relay back ends too
        back.acquire()  # the relay back ended

    def _relay_back(self, upstream: socket.socket, client: socket.socket, done: Any) -> None:
        """grpcio's bytes to the client; when grpcio ends the connection, so does the client's
        (its reading half is then of no use, and a client gone quiet never ends it). Releases
        ``done`` at the end."""
        try:
            _copy(upstream, client)
        except OSError:
            pass
        finally:
            _shutdown(client)
            done.release()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)
        if self._stopped:
            _shutdown(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)


def _tune(sock: socket.socket, keepalive: bool) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not keepalive:
        return
    # a client gone without a word is noticed within minutes (grpcio's pings reach only the
    # relay), and data it never acknowledges fails the sends after TCP_USER_TIMEOUT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", 60),
        ("TCP_KEEPINTVL", 10),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 60_000),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _copy(source: socket.socket, target: socket.socket) -> None:
    """Bytes from ``source`` to ``target`` until ``source`` ends (OSError: either broke)."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while True:
        n = source.recv_into(buffer)
        if not n:
            return
        target.sendall(view[:n])


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Wake whatever waits on ``sock`` (from any thread; it stays open)."""
    with contextlib.suppress(OSError):
        sock.shutdown(how)


def _close(sock: socket.socket) -> None:
    _shutdown(sock)
    with contextlib.suppress(OSError):
        sock.close()
