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

Threads: one accepting, one per connection while it opens, and one relaying every relayed
connection (``_Relay``: a poll loop over non-blocking sockets, the unpatched epoll; before, two
per connection, blocking copies: 8,192 at the limit). All are native threads with the socket
module's own sockets and locks even in a monkey-patched process, since relaying as greenlets on
the brokers' hub (``cluster --proxy``) cost a call twice as much more; they touch nothing of
gevent's, loguru included (refusals are counted in ``conn_limits.Refusals``, logged by the
proxy's side).
A connection opens when its whole first message is in: the HTTP/2 preface (24 bytes; anything
else is closed) or the first TLS record (the client's hello), with ``proxy_protocol`` after
the header, all within ``FIRST_BYTE_S`` of its accept, else it is closed. Only then is grpcio
reached and the connection handed to the relay: a flood of connections that send a byte and
wait costs one thread each for at most ``FIRST_BYTE_S`` (grpcio's own handshake deadline, its
``grpc.server_handshake_timeout_ms``, then bounds the wait for the client's SETTINGS frame).
At most ``conn_limits.MAX_CONNECTIONS`` connections at once, ``MAX_PER_HOST`` from one host
(not behind a balancer): more are closed at once. The relay reads into one ``CHUNK`` buffer
of its own and keeps only what the other side did not take at once (at most ``CHUNK`` a
direction; that side is not read again until it is taken): an idle connection holds no
buffer (when each copy had a 256 KiB one, 4,096 idle connections held 2 GB). 500 idle
relayed connections: 10 threads in all, +10 MB (two threads each before: 1,009, +38 MB;
docs/benchmarks.md "Session 27").
A side's end of sending is the other's (``SHUT_WR``); when grpcio closes its side the client's
connection is closed too; a client gone without a word is noticed by TCP keepalive (about
90 s) or, with data unacknowledged, ``TCP_USER_TIMEOUT`` (60 s).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import urllib.parse
from collections import deque
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
"""The relay's one read buffer, and the most it holds for one direction of one connection."""
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TLS_RECORD_MAX = 16 * 1024 + 2048

# the unpatched socket class, thread start and lock (gevent's monkey-patching replaces them)
_Socket: Any = gevent.monkey.get_original("socket", "socket")
_start: Callable[..., Any] = gevent.monkey.get_original("_thread", "start_new_thread")
_new_lock: Callable[[], Any] = gevent.monkey.get_original("_thread", "allocate_lock")
_sleep: Callable[[float], None] = gevent.monkey.get_original("time", "sleep")
_monotonic: Callable[[], float] = gevent.monkey.get_original("time", "monotonic")
# the unpatched poller: gevent's ``select`` has no epoll, and its ``poll`` (and ``selectors``'
# DefaultSelector) wait on the hub, of no use in a native thread
try:
    _new_poller: Callable[[], Any] = gevent.monkey.get_original("select", "epoll")
except AttributeError:  # (not Linux)
    _new_poller = gevent.monkey.get_original("select", "poll")
_READ, _WRITE = select.POLLIN, select.POLLOUT
_BROKEN = select.POLLERR | select.POLLHUP

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

    Only the thread owning a connection (its opening one, then the relay's) closes its
    sockets (the others shut them down: a socket closed under another thread's ``recv`` or
    poll could have its descriptor reused meanwhile)."""

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
        self._relay = _Relay(self)

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
        try:
            self._relay.start()
            _start(self._accept, ())
        except BaseException:
            self._stopped = True
            self._relay.wake()
            listener.close()
            raise
        return self.port

    def stop_accepting(self) -> None:
        self._stopped = True
        if self._listener is not None:
            _shutdown(self._listener)  # the accept thread sees it, and closes the port
        self._relay.wake()  # (it ends once its connections have)

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
        handed = False
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
                handed = self._relay.take(_Pipe(client, upstream, host, local_port))
            finally:
                if not handed:
                    _ORIGINS.pop(local_port, None)
        except ProtocolError:  # a malformed PROXY header
            self.refusals.note(conn_limits.TURNED_AWAY)
        except TimeoutError:  # (the PROXY header's bytes did not come in time)
            self.refusals.note(conn_limits.SLOW_START)
        except OSError:
            pass  # (a connection ending: not logged from this thread)
        finally:
            if not handed:  # (else the relay's thread ends it: ``_Relay._end``)
                self._end(client, upstream, host)

    def _end(self, client: socket.socket, upstream: socket.socket | None, host: str) -> None:
        for sock in (client, upstream):
            if sock is not None:
                self._untrack(sock)
                _close(sock)
        self.limits.give(host)
        if self._stopped:
            self._relay.wake()  # (its last connection may have ended)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)
        if self._stopped:
            _shutdown(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)


class _Pipe:
    """One relayed connection in the relay's loop: the client's socket and grpcio's, and
    what each direction holds of the other's bytes (at most ``CHUNK``)."""

    __slots__ = ("client", "host", "local_port", "masks", "to_client", "to_up", "upstream")

    def __init__(
        self, client: socket.socket, upstream: socket.socket, host: str, local_port: int
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.host = host
        self.local_port = local_port
        self.to_up = _Direction()
        """The client's bytes to grpcio."""
        self.to_client = _Direction()
        """grpcio's bytes to the client."""
        self.masks = [0, 0]
        """The poller's interest in the client's socket, grpcio's (0: not registered)."""


class _Direction:
    __slots__ = ("ended", "pending")

    def __init__(self) -> None:
        self.pending: memoryview | None = None
        """Bytes read and not yet taken by the other side (its reading waits meanwhile)."""
        self.ended = False
        """Its source ended (what is pending is still written)."""


_Side = tuple[_Pipe, int, Callable[[memoryview], int], Callable[[memoryview], int], _Direction]


class _Relay:
    """Every relayed connection of a front, both directions, in one native thread: a poll
    loop over non-blocking sockets (the unpatched epoll). A side is read only while what it
    sent last has been taken by the other (back-pressure: at most ``CHUNK`` held for one
    direction); an idle connection holds no buffer (reads go to the loop's one buffer, and only
    what a side did not take at once is kept). A side's end is the other's end of writing
    (``SHUT_WR``); grpcio's end, or an error either way, ends the connection (both closed).
    The loop's thread alone closes a relayed connection's sockets (others shut them down:
    ``Front.close_all``), and ends once the front has stopped accepting and its connections
    have ended. Hand-over from the opening threads: ``take``."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self._incoming: deque[_Pipe] = deque()
        self._wake_r = self._wake_w = -1
        self._lock = _new_lock()
        self._done = False
        """The loop ended (or never started): ``take`` refuses, ``wake`` writes nothing."""
        self._started = False

    def start(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        try:
            _start(self._run, ())
        except BaseException:
            self._close_wake()
            raise
        self._started = True

    def take(self, pipe: _Pipe) -> bool:
        """Relay ``pipe`` from now on (False: the loop has ended; the caller closes it)."""
        with self._lock:
            if self._done or not self._started:
                return False
            self._incoming.append(pipe)
            self._wake_locked()
        return True

    def wake(self) -> None:
        with self._lock:
            self._wake_locked()

    def _wake_locked(self) -> None:
        if self._done or self._wake_w < 0:
            return
        with contextlib.suppress(BlockingIOError):  # (full: woken already)
            os.write(self._wake_w, b"w")

    def _close_wake(self) -> None:
        with self._lock:
            self._done = True
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._wake_r = self._wake_w = -1

    def _run(self) -> None:
        poller = _new_poller()
        wake_r = self._wake_r
        poller.register(wake_r, _READ)
        sides: dict[int, _Side] = {}
        """A socket's descriptor -> its connection, 0 for the client's side (1: grpcio's), its
        ``recv_into``, the other side's ``send``, the direction read from it."""
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        try:
            while True:
                for fd, events in poller.poll():
                    if fd == wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 4096)
                        continue
                    side = sides.get(fd)
                    if side is None:
                        continue  # (ended earlier in this batch)
                    pipe, i, recv_into, send, inbound = side
                    try:
                        if events == _READ and pipe.masks[i] == _READ:
                            # (the usual case, quickly: bytes in, all taken by the other side)
                            n = recv_into(view)
                            if n:
                                try:
                                    sent = send(view[:n])
                                except BlockingIOError:
                                    sent = 0
                                if sent == n:
                                    continue
                                inbound.pending = memoryview(bytes(view[sent:n]))
                            else:
                                inbound.ended = True
                                self._ended(pipe, not i)
                        else:
                            self._step(pipe, not i, events, view)
                        self._interest(pipe, poller)
                    except BlockingIOError:
                        continue  # (woken for nothing)
                    except Exception:  # (whatever it was: that connection ends, not the loop)
                        self._end(pipe, poller, sides)
                while self._incoming:
                    self._add(self._incoming.popleft(), poller, sides)
                if self.front._stopped and not sides and self.front.limits.held <= 0:
                    with self._lock:  # (none relayed, nor opening: none will be handed over)
                        if not self._incoming:
                            self._done = True
                            return
        finally:
            for pipe in {id(side[0]): side[0] for side in sides.values()}.values():
                self._end(pipe, poller, sides)
            with self._lock:
                self._done = True
                left = list(self._incoming)
                self._incoming.clear()
            for pipe in left:
                self._end(pipe, None, sides)
            with contextlib.suppress(OSError):
                poller.close()
            self._close_wake()

    def _add(self, pipe: _Pipe, poller: Any, sides: dict[int, _Side]) -> None:
        try:
            pipe.client.setblocking(False)
            pipe.upstream.setblocking(False)
            client, upstream = pipe.client, pipe.upstream
            sides[client.fileno()] = (pipe, 0, client.recv_into, upstream.send, pipe.to_up)
            sides[upstream.fileno()] = (pipe, 1, upstream.recv_into, client.send, pipe.to_client)
            self._interest(pipe, poller)
        except (OSError, ValueError):
            self._end(pipe, poller, sides)

    def _step(self, pipe: _Pipe, is_client: bool, events: int, view: memoryview) -> None:
        """What the poller reported of one side: write what waits for it, read what it sent."""
        mask = pipe.masks[0 if is_client else 1]
        sock, other = (pipe.client, pipe.upstream) if is_client else (pipe.upstream, pipe.client)
        inbound = pipe.to_up if is_client else pipe.to_client  # (read from this side)
        outbound = pipe.to_client if is_client else pipe.to_up  # (written to this side)
        if events & select.POLLNVAL:
            raise ConnectionError("the socket broke")
        if mask & _WRITE and events & (_WRITE | _BROKEN) and _flush(outbound, sock):
            self._ended(pipe, not is_client)
        if mask & _READ and events & (_READ | _BROKEN) and inbound.pending is None:
            try:
                n = sock.recv_into(view)
            except BlockingIOError:
                return
            if not n:
                inbound.ended = True
                self._ended(pipe, is_client)
                return
            try:
                sent = other.send(view[:n])
            except BlockingIOError:
                sent = 0
            if sent < n:
                inbound.pending = memoryview(bytes(view[sent:n]))

    def _ended(self, pipe: _Pipe, from_client: bool) -> None:
        """A direction's source ended: once its bytes are written, the client's end is grpcio's
        end of reading; grpcio's ends the connection."""
        direction = pipe.to_up if from_client else pipe.to_client
        if not direction.ended or direction.pending is not None:
            return
        if from_client:
            _shutdown(pipe.upstream, socket.SHUT_WR)  # the client is done sending
        else:
            raise EOFError("grpcio ended the connection")  # (so does the client's)

    def _interest(self, pipe: _Pipe, poller: Any) -> None:
        """Read a side while the other has taken all it sent; write to a side what waits for
        it. A side of neither is not registered (else its peer's end, POLLHUP, would be
        reported again and again while the other side drains): its error is seen at its
        next read or write, as a blocking copy's would be."""
        up, down = pipe.to_up, pipe.to_client
        client = (_READ if not up.ended and up.pending is None else 0) | (
            _WRITE if down.pending is not None else 0
        )
        upstream = (_READ if not down.ended and down.pending is None else 0) | (
            _WRITE if up.pending is not None else 0
        )
        for i, sock, want in ((0, pipe.client, client), (1, pipe.upstream, upstream)):
            have = pipe.masks[i]
            if want == have:
                continue
            if not want:
                poller.unregister(sock.fileno())
            elif not have:
                poller.register(sock.fileno(), want)
            else:
                poller.modify(sock.fileno(), want)
            pipe.masks[i] = want

    def _end(self, pipe: _Pipe, poller: Any, sides: dict[int, _Side]) -> None:
        """Both sockets closed (unregistered first: a closed descriptor may be reused)."""
        for i, sock in enumerate((pipe.client, pipe.upstream)):
            fd = sock.fileno()
            if fd < 0:
                continue
            sides.pop(fd, None)
            if pipe.masks[i] and poller is not None:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    poller.unregister(fd)
            pipe.masks[i] = 0
        _ORIGINS.pop(pipe.local_port, None)
        self.front._end(pipe.client, pipe.upstream, pipe.host)


def _flush(direction: _Direction, target: socket.socket) -> bool:
    """Write what ``direction`` holds to ``target``; True once all of it is written and its
    source has ended (OSError: ``target`` broke)."""
    pending = direction.pending
    if pending is not None:
        try:
            sent = target.send(pending)
        except BlockingIOError:
            return False
        direction.pending = pending[sent:] if sent < len(pending) else None
        if direction.pending is not None:
            return False
    return direction.ended


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


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Wake whatever waits on ``sock`` (from any thread; it stays open)."""
    with contextlib.suppress(OSError):
        sock.shutdown(how)


def _close(sock: socket.socket) -> None:
    _shutdown(sock)
    with contextlib.suppress(OSError):
        sock.close()
