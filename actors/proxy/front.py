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

Threads: one accepting, then one per connection while it opens, two once relayed (one per
direction, blocking copies: native threads with the socket module's own blocking sockets and
locks even in a monkey-patched process, since relaying as greenlets on the brokers' hub
(``cluster --proxy``) cost a call twice as much more); they touch nothing of gevent's, loguru
included (refusals are counted in ``conn_limits.Refusals``, logged by the proxy's side).
A connection opens when its whole first message is in: the HTTP/2 preface (24 bytes; anything
else is closed) or the first TLS record (the client's hello), with ``proxy_protocol`` after
the header, all within ``FIRST_BYTE_S`` of its accept, else it is closed. Only then is grpcio
reached and the second thread started: a flood of connections that send a byte and wait costs
one thread each for at most ``FIRST_BYTE_S`` (grpcio's own handshake deadline, its
``grpc.server_handshake_timeout_ms``, then bounds the wait for the client's SETTINGS frame).
At most ``conn_limits.MAX_CONNECTIONS`` connections at once, ``MAX_PER_HOST`` from one host
(not behind a balancer): more are closed at once. A copy's buffer starts at ``FIRST_CHUNK``
and grows to ``CHUNK`` only for a connection that fills it (an idle one costs ~2 x 16 KiB, not
2 x 256 KiB: 4,096 idle connections held 2 GB). When grpcio closes its side the client's
connection is closed too; a client gone without a word is noticed by TCP keepalive (about
90 s) or, with data unacknowledged, ``TCP_USER_TIMEOUT`` (60 s).
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

import gevent.monkey

from actors.proxy import conn_limits
from actors.proxy.conn_limits import ConnectionLimits, Refusals, per_host_limit
from runtime import proxy_protocol
from runtime.errors import AddressError, ProtocolError
from runtime.hostport import format_address, parse_address
from runtime.tls import TLS_RECORD_HANDSHAKE

FIRST_BYTE_S = 10.0
"""A connection's first message (the HTTP/2 preface, or a TLS hello) is in within this."""
ACCEPT_BACKOFF_S = 0.05
CHUNK = 256 * 1024
FIRST_CHUNK = 16 * 1024
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TLS_RECORD_MAX = 16 * 1024 + 2048

# the unpatched socket class, thread start and lock (gevent's monkey-patching replaces them)
_Socket: Any = gevent.monkey.get_original("socket", "socket")
_start: Callable[..., Any] = gevent.monkey.get_original("_thread", "start_new_thread")
_new_lock: Callable[[], Any] = gevent.monkey.get_original("_thread", "allocate_lock")
_sleep: Callable[[float], None] = gevent.monkey.get_original("time", "sleep")
_monotonic: Callable[[], float] = gevent.monkey.get_original("time", "monotonic")

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
        self.limits = ConnectionLimits(per_host=None if proxy_protocol else per_host_limit())
        self.refusals = Refusals()
        """Connections closed by the front, by reason (``conn_limits``)."""
        self.accept_errors = 0

    @property
    def refused(self) -> int:
        """Connections closed at once: past a limit, or no thread to serve them."""
        return self.refusals.count(conn_limits.FULL) + self.refusals.count(conn_limits.HOST_FULL)

    @property
    def turned_away(self) -> int:
        """Connections closed for what they began with: not gRPC, a malformed PROXY header, or
        TLS (plain) where the port takes only plain (TLS) clients."""
        return self.refusals.count(conn_limits.TURNED_AWAY)

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
                host = address[0]
                refused = self.limits.take(host)
                if refused is not None:
                    self.refusals.note(refused)
                    _close(client)
                    continue
                try:
                    _start(self._serve, (client, address))
                except RuntimeError:  # no thread can be started
                    self.limits.give(host)
                    self.refusals.note(conn_limits.FULL)
                    _close(client)
        finally:
            _close(listener)

    def _serve(self, client: socket.socket, address: tuple[str, int]) -> None:
        upstream: socket.socket | None = None
        host = address[0]
        self._track(client)
        try:
            deadline = _monotonic() + FIRST_BYTE_S
            prefix = b""
            if self.proxy_protocol:
                found = proxy_protocol.read_header(client, FIRST_BYTE_S)
                if isinstance(found, proxy_protocol.Absent):
                    prefix = found.prefix  # (the HTTP/2 preface's first bytes)
                elif found is not None:
                    address = found
            try:
                prefix = first_message(client, prefix, deadline)
            except TimeoutError:
                self.refusals.note(conn_limits.SLOW_START)
                return
            if not prefix:
                return  # (ended before a byte: a health check)
            client.settimeout(None)
            _tune(client, keepalive=True)
            tls = prefix[0] == TLS_RECORD_HANDSHAKE
            port = self.tls_port if tls else self.plain_port
            if port is None or not (tls or prefix == PREFACE):
                self.refusals.note(conn_limits.TURNED_AWAY)
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
                upstream.sendall(prefix)
                self._relay(client, upstream)
            finally:
                _ORIGINS.pop(local_port, None)
        except ProtocolError:  # a malformed PROXY header
            self.refusals.note(conn_limits.TURNED_AWAY)
        except TimeoutError:  # (the PROXY header's bytes did not come in time)
            self.refusals.note(conn_limits.SLOW_START)
        except OSError:
            pass  # (a connection ending: not logged from this thread)
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._untrack(sock)
                    _close(sock)
            self.limits.give(host)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Both directions until both ended; the client's in this thread."""
        back = _new_lock()
        back.acquire()
        try:
            _start(self._relay_back, (upstream, client, back))
        except RuntimeError:
            self.refusals.note(conn_limits.FULL)
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


def first_message(client: socket.socket, prefix: bytes, deadline: float) -> bytes:
    """The connection's first message, read whole by ``deadline`` (``_monotonic()``; else
    TimeoutError) after ``prefix`` (bytes read already): the first TLS record (at most
    ``TLS_RECORD_MAX`` of it) or as many bytes as the HTTP/2 preface has (the caller checks
    them); b"" for a connection that ended before a byte, what came for one ending early."""
    data = bytearray(prefix)
    if not _fill(client, data, 1, deadline):
        return bytes(data)
    if data[0] == TLS_RECORD_HANDSHAKE:
        if _fill(client, data, 5, deadline):
            length = int.from_bytes(data[3:5], "big")
            _fill(client, data, 5 + min(length, TLS_RECORD_MAX), deadline)
    else:
        _fill(client, data, len(PREFACE), deadline)
    return bytes(data)


def _fill(client: socket.socket, data: bytearray, size: int, deadline: float) -> bool:
    """Read into ``data`` until it holds ``size`` bytes (False: the stream ended first)."""
    while len(data) < size:
        left = deadline - _monotonic()
        if left <= 0:
            raise TimeoutError("the first message did not come in time")
        client.settimeout(left)
        chunk = client.recv(size - len(data))
        if not chunk:
            return False
        data += chunk
    return True


def _copy(source: socket.socket, target: socket.socket) -> None:
    """Bytes from ``source`` to ``target`` until ``source`` ends (OSError: either broke). The
    buffer starts at ``FIRST_CHUNK`` and grows to ``CHUNK`` once a read fills it."""
    buffer = bytearray(FIRST_CHUNK)
    view = memoryview(buffer)
    while True:
        n = source.recv_into(buffer)
        if not n:
            return
        target.sendall(view[:n])
        if n == len(buffer) < CHUNK:
            buffer = bytearray(CHUNK)
            view = memoryview(buffer)


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Wake whatever waits on ``sock`` (from any thread; it stays open)."""
    with contextlib.suppress(OSError):
        sock.shutdown(how)


def _close(sock: socket.socket) -> None:
    _shutdown(sock)
    with contextlib.suppress(OSError):
        sock.close()
