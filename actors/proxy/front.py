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

Threads: two a front, whatever the connections: one accepting, and one (``_Relay``: a poll
loop over non-blocking sockets, the unpatched epoll) that opens and then relays every
connection (before, one per connection while it opened, and two per relayed connection,
blocking copies: 8,192 at the limit). Both are native threads with the socket module's own
sockets and locks even in a monkey-patched process, since relaying as greenlets on the
brokers' hub (``cluster --proxy``) cost a call twice as much more; they touch nothing of
gevent's, loguru included (refusals are counted in ``conn_limits.Refusals``, logged by the
proxy's side), and hand nothing to the hub.
A connection opens when its whole first message is in: the HTTP/2 preface (24 bytes; anything
else is closed) or the first TLS record (the client's hello), with ``proxy_protocol`` after
the header, all within ``FIRST_BYTE_S`` of its accept, else it is closed (``_Openings``: the
relay's thread reads it as its bytes come, ``opening.FirstBytes`` says what they are; the
deadlines are the poll's timeout; bytes that can begin nothing the port takes, a kind it
refuses included, close it at once). Only then is grpcio's port connected to (without
blocking, within ``FIRST_BYTE_S`` more: else ``GRPCIO_SLOW``) and the connection relayed:
a flood of connections that send a byte and wait costs no thread, only their sockets and
places (``conn_limits``) for at most ``FIRST_BYTE_S`` (grpcio's own handshake deadline, its
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
import errno
import heapq
import itertools
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
from actors.proxy.opening import PREFACE as PREFACE  # (re-exported: tests, bench)
from actors.proxy.opening import FirstBytes
from runtime.errors import AddressError, ProtocolError
from runtime.hostport import format_address, parse_address

FIRST_BYTE_S = 10.0
"""A connection's first message (the HTTP/2 preface, or a TLS hello) is in within this."""
ACCEPT_BACKOFF_S = 0.05
CHUNK = 256 * 1024
"""The relay's one read buffer, and the most it holds for one direction of one connection."""

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
    _POLL_UNIT = 1.0
    """What one second is in the poller's timeout (epoll: seconds; poll: milliseconds)."""
except AttributeError:  # (not Linux)
    _new_poller = gevent.monkey.get_original("select", "poll")
    _POLL_UNIT = 1000.0
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

    Only the relay's thread closes the sockets of a connection handed over to it (the
    accepting thread closes one it could not hand over); other threads shut them down (a
    socket closed under another thread's poll could have its descriptor reused meanwhile)."""

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
        """Connections closed at once: past a limit."""
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
                self._admit(client, address)
        finally:
            _close(listener)

    def _admit(self, client: socket.socket, address: tuple[str, int]) -> None:
        """A connection accepted: its place taken (else closed at once), then the relay's
        thread reads its opening (``_Openings``)."""
        host = address[0]
        refused = self.limits.take(host)
        if refused is not None:
            self.refusals.note(refused)
            _close(client)
            return
        self._track(client)
        opening = _Opening(client, address, FirstBytes(self.proxy_protocol), FIRST_BYTE_S)
        if not self._relay.take(opening):  # (the relay has ended: the front is stopping)
            self._end(client, None, host)

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


class _Opening:
    """One connection while it opens: its socket, the address it counts as (the PROXY
    header's, once read), what it began with, and grpcio's socket while that connects."""

    __slots__ = (
        "address",
        "client",
        "deadline",
        "first",
        "host",
        "local_port",
        "registered",
        "upstream",
    )

    def __init__(
        self,
        client: socket.socket,
        address: tuple[str, int],
        first: FirstBytes,
        within: float,
    ) -> None:
        self.client = client
        self.address = address
        self.host = address[0]
        """The host its place was taken for (``conn_limits``; the accepted peer's)."""
        self.first = first
        self.deadline = _monotonic() + within
        """When it is closed if it has not opened (``_monotonic()``; -1: it has ended)."""
        self.upstream: socket.socket | None = None
        self.local_port = 0
        """The upstream socket's port (``_ORIGINS``), once bound."""
        self.registered = -1
        """The descriptor the poller watches for it (the client's, then grpcio's), or -1."""


class _Openings:
    """The connections opening, in the relay's thread (``_Relay._run``): each client's
    non-blocking socket is read as bytes come (``opening.FirstBytes``) until its first message
    is whole, then grpcio's port is connected to without blocking and the connection handed to
    the relay as a ``_Pipe`` (its first message the first bytes grpcio is sent). Each has a
    deadline (``FIRST_BYTE_S`` from its accept for its first message, as much again for the
    connect): past it, it is closed (``SLOW_START``; ``GRPCIO_SLOW`` for the connect). Owns
    the descriptors -> openings map and the deadlines' heap; only the relay's thread calls
    it."""

    def __init__(self, relay: _Relay, poller: Any, sides: dict[int, _Side]) -> None:
        self.relay = relay
        self.front = relay.front
        self.poller = poller
        self.sides = sides
        self.by_fd: dict[int, _Opening] = {}
        self._deadlines: list[tuple[float, int, _Opening]] = []
        self._order = itertools.count()
        self._ready: list[_Opening] = []
        """Openings whose first message is whole, to connect to grpcio once the poller's batch
        is done (a socket made amid it could reuse the descriptor of one closed earlier in it,
        whose events would then be taken for its own)."""

    def begin(self, opening: _Opening) -> None:
        """Watch a connection handed over by the accepting thread."""
        try:
            opening.client.setblocking(False)
            self._watch(opening, opening.client, _READ)
        except (OSError, ValueError):
            self._end(opening)

    def wait(self) -> float | None:
        """The poller's timeout: until the next deadline (None: no opening)."""
        if not self._deadlines:
            return None
        left = self._deadlines[0][0] - _monotonic()
        return max(left, 0.001) * _POLL_UNIT

    def expire(self) -> None:
        """Close the openings past their deadline (and forget those that ended or connect
        since, when they are most of the heap: a flood of short connections)."""
        now = _monotonic()
        deadlines = self._deadlines
        if len(deadlines) > 4 * (len(self.by_fd) + len(self._ready)) + 256:
            deadlines[:] = [entry for entry in deadlines if entry[2].deadline == entry[0]]
            heapq.heapify(deadlines)
        while deadlines and deadlines[0][0] <= now:
            deadline, _, opening = heapq.heappop(deadlines)
            if opening.deadline == deadline:  # (else it has ended, or connects since)
                # (its client was slow, or, once connecting, grpcio's port: not the client)
                slow = (
                    conn_limits.SLOW_START if opening.upstream is None else conn_limits.GRPCIO_SLOW
                )
                self._end(opening, slow)

    def step(self, opening: _Opening, events: int) -> None:
        """What the poller reported of an opening's socket: its bytes read, or its connect
        to grpcio done."""
        if events & select.POLLNVAL:
            self._end(opening)
        elif opening.upstream is None:
            self._guarded(self._read, opening)
        else:
            self._guarded(self._connected, opening)

    def connect_ready(self) -> None:
        """Connect to grpcio the openings decided in the poller's last batch."""
        ready, self._ready = self._ready, []
        for opening in ready:
            if opening.deadline >= 0:
                self._guarded(self._connect, opening)

    def _guarded(self, work: Callable[[_Opening], None], opening: _Opening) -> None:
        """``work`` done; an error ends only that connection, quietly (this thread logs
        nothing), or counted where the front counts it (``conn_limits``)."""
        try:
            work(opening)
        except ProtocolError:  # a malformed PROXY header (or one the front's stop cut short)
            self._end(opening, None if self.front._stopped else conn_limits.TURNED_AWAY)
        except Exception:  # (a connection ending, or whatever it was: not the loop)
            self._end(opening)

    def end_all(self) -> None:
        """Every opening closed: those watched, and those decided but not yet connecting (the
        loop ending between its batch and ``connect_ready``: an error escaping it)."""
        ready, self._ready = self._ready, []
        for opening in [*self.by_fd.values(), *ready]:
            self._end(opening)
        self._deadlines.clear()

    def _read(self, opening: _Opening) -> None:
        """Read what the client sent, no more than its opening wants; once it is whole,
        decide where the connection goes."""
        first, front = opening.first, self.front
        while True:
            try:
                chunk = opening.client.recv(first.want())
            except BlockingIOError:
                return  # (the rest later)
            if first.feed(chunk):
                break
            tls = first.begins_tls()
            if tls is not None and (front.tls_port if tls else front.plain_port) is None:
                # (a kind this port refuses: at its first byte, not once its message is in)
                self._end(opening, conn_limits.TURNED_AWAY)
                return
        if first.source is not None:
            opening.address = first.source
        self._decide(opening)

    def _decide(self, opening: _Opening) -> None:
        """Its first message whole (or the stream ended): grpcio's plain port for the HTTP/2
        preface, the TLS one for a TLS record, else closed."""
        first, front = opening.first, self.front
        if not first.message or front._stopped:
            self._end(opening)  # (ended before a byte: a health check)
            return
        _tune(opening.client, keepalive=True)
        tls = first.is_tls()
        port = front.tls_port if tls else front.plain_port
        if port is None or not (tls or first.is_preface()):
            self._end(opening, conn_limits.TURNED_AWAY)
            return
        self._unwatch(opening)
        self._ready.append(opening)

    def _connect(self, opening: _Opening) -> None:
        """A connection to grpcio's port for it, bound to a port of its own (``_ORIGINS``),
        begun without blocking."""
        port = self.front.tls_port if opening.first.is_tls() else self.front.plain_port
        assert port is not None
        upstream = _Socket(socket.AF_INET, socket.SOCK_STREAM)
        opening.upstream = upstream
        self.front._track(upstream)
        # bound first: a port of its own (connect() alone may share a local port with a
        # connection to the other loopback port, and origin() goes by the port)
        upstream.bind(("127.0.0.1", 0))
        opening.local_port = upstream.getsockname()[1]
        _ORIGINS[opening.local_port] = _peer_string(opening.address)
        upstream.setblocking(False)
        failed = upstream.connect_ex(("127.0.0.1", port))
        if failed == 0:
            self._relay_it(opening)
        elif failed in (errno.EINPROGRESS, errno.EAGAIN):
            self._watch(opening, upstream, _WRITE, _monotonic() + FIRST_BYTE_S)
        else:
            raise OSError(failed, os.strerror(failed))

    def _connected(self, opening: _Opening) -> None:
        upstream = opening.upstream
        assert upstream is not None
        failed = upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if failed:
            raise OSError(failed, os.strerror(failed))
        self._unwatch(opening)
        self._relay_it(opening)

    def _relay_it(self, opening: _Opening) -> None:
        """Connected to grpcio: its first message sent (what does not fit now, later), and
        the connection relayed from now on."""
        upstream = opening.upstream
        assert upstream is not None
        if self.front._stopped:
            self._end(opening)
            return
        _tune(upstream, keepalive=False)
        pipe = _Pipe(opening.client, upstream, opening.host, opening.local_port)
        message = opening.first.message
        try:
            sent = upstream.send(message)
        except BlockingIOError:
            sent = 0
        if sent < len(message):
            pipe.to_up.pending = memoryview(message)[sent:]
        opening.deadline = -1.0  # (its entries in the deadlines' heap are stale from now on:
        opening.first.message = b""  # they keep it, not its bytes, until they go: ``expire``)
        self.relay._add(pipe, self.poller, self.sides)

    def _watch(
        self, opening: _Opening, sock: socket.socket, mask: int, deadline: float | None = None
    ) -> None:
        fd = sock.fileno()
        self.poller.register(fd, mask)
        opening.registered = fd
        self.by_fd[fd] = opening
        if deadline is not None:
            opening.deadline = deadline
        heapq.heappush(self._deadlines, (opening.deadline, next(self._order), opening))

    def _unwatch(self, opening: _Opening) -> None:
        fd, opening.registered = opening.registered, -1
        if fd < 0:
            return
        self.by_fd.pop(fd, None)
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.poller.unregister(fd)

    def _end(self, opening: _Opening, reason: str | None = None) -> None:
        """The connection closed (``reason``: counted as refused for it)."""
        if opening.deadline < 0:
            return  # (ended already)
        opening.deadline = -1.0
        opening.first.message = b""  # (stale entries in the heap keep it a while)
        opening.first.data = bytearray()
        if reason is not None:
            self.front.refusals.note(reason)
        self._unwatch(opening)
        if opening.local_port:
            _ORIGINS.pop(opening.local_port, None)
        self.front._end(opening.client, opening.upstream, opening.host)


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
    have ended. Connections come from the accepting thread (``take``) and open in this loop
    first (``_Openings``)."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self._incoming: deque[_Opening] = deque()
        self._wake_r = self._wake_w = -1
        self._lock = _new_lock()
        self._done = False
        """The loop ended (or never started): ``take`` refuses, ``wake`` writes nothing."""
        self._started = False

    def start(self) -> None:
        """The loop's thread started (its poller made here: one that cannot be, EMFILE say,
        fails the front's start, not its thread, which would then take connections and never
        open nor close them)."""
        self._wake_r, self._wake_w = os.pipe()
        poller = None
        try:
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            poller = _new_poller()
            poller.register(self._wake_r, _READ)
            _start(self._run, (poller,))
        except BaseException:
            if poller is not None:
                with contextlib.suppress(OSError):
                    poller.close()
            self._close_wake()
            raise
        self._started = True

    def take(self, opening: _Opening) -> bool:
        """Open, then relay, ``opening`` from now on (False: the loop has ended; the caller
        closes it)."""
        with self._lock:
            if self._done or not self._started:
                return False
            self._incoming.append(opening)
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

    def _run(self, poller: Any) -> None:
        wake_r = self._wake_r
        sides: dict[int, _Side] = {}
        """A socket's descriptor -> its connection, 0 for the client's side (1: grpcio's), its
        ``recv_into``, the other side's ``send``, the direction read from it."""
        openings = _Openings(self, poller, sides)
        opening_fds = openings.by_fd
        try:
            view = memoryview(bytearray(CHUNK))
            while True:
                for fd, events in poller.poll(openings.wait()):
                    if fd == wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 4096)
                        continue
                    side = sides.get(fd)
                    if side is None:
                        opening = opening_fds.get(fd)
                        if opening is not None:
                            openings.step(opening, events)
                        continue  # (else ended earlier in this batch)
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
                openings.connect_ready()
                openings.expire()
                while self._incoming:
                    openings.begin(self._incoming.popleft())
                if self.front._stopped and not sides and self.front.limits.held <= 0:
                    with self._lock:  # (none relayed, nor opening: none will be handed over)
                        if not self._incoming:
                            self._done = True
                            return
        finally:
            for pipe in {id(side[0]): side[0] for side in sides.values()}.values():
                self._end(pipe, poller, sides)
            openings.end_all()
            with self._lock:
                self._done = True
                left = list(self._incoming)
                self._incoming.clear()
            for opening in left:
                self.front._end(opening.client, None, opening.host)
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


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Wake whatever waits on ``sock`` (from any thread; it stays open)."""
    with contextlib.suppress(OSError):
        sock.shutdown(how)


def _close(sock: socket.socket) -> None:
    _shutdown(sock)
    with contextlib.suppress(OSError):
        sock.close()
