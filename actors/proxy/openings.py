"""Openings: the relay's handling of connections still opening (``actors.proxy.relay``).

A connection opens when its whole first message is in: the HTTP/2 preface (24 bytes; anything
else is closed) or the first TLS record (the client's hello), with ``proxy_protocol`` after
the header, all within ``FIRST_BYTE_S`` of its accept, else it is closed (the relay's thread
reads it as its bytes come, ``opening.FirstBytes`` says what they are; the deadlines are the
poll's timeout; bytes that can begin nothing the port takes, a kind it refuses included,
close it at once). Only then is grpcio's port connected to (without blocking, within
``FIRST_BYTE_S`` more: else ``GRPCIO_SLOW``) and the connection relayed: a flood of
connections that send a byte and wait costs no thread, only their sockets and places
(``conn_limits``) for at most ``FIRST_BYTE_S`` (grpcio's own handshake deadline, its
``grpc.server_handshake_timeout_ms``, then bounds the wait for the client's SETTINGS frame).

Owns no thread: ``Openings`` runs in the relay's thread, and owns the descriptors -> openings
map, the deadlines' heap, each opening's client socket until it is relayed or closed, and
grpcio's socket while it connects (bound to a port of its own, noted in ``origins.ORIGINS``).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import os
import select
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.proxy import conn_limits
from actors.proxy.native import POLL_UNIT, READ, WRITE, Socket, monotonic, tune
from actors.proxy.opening import FirstBytes
from actors.proxy.origins import ORIGINS, peer_string
from actors.proxy.pipe import Pipe, Side
from runtime.errors import ProtocolError

if TYPE_CHECKING:
    from actors.proxy.relay import Relay

FIRST_BYTE_S = 10.0
"""A connection's first message (the HTTP/2 preface, or a TLS hello) is in within this."""


class Opening:
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
        self.deadline = monotonic() + within
        """When it is closed if it has not opened (``monotonic()``; -1: it has ended)."""
        self.upstream: socket.socket | None = None
        self.local_port = 0
        """The upstream socket's port (``ORIGINS``), once bound."""
        self.registered = -1
        """The descriptor the poller watches for it (the client's, then grpcio's), or -1."""


class Openings:
    """The connections opening, in the relay's thread (``Relay._run``): each client's
    non-blocking socket is read as bytes come (``opening.FirstBytes``) until its first message
    is whole, then grpcio's port is connected to without blocking and the connection handed to
    the relay as a ``Pipe`` (its first message the first bytes grpcio is sent). Each has a
    deadline (``FIRST_BYTE_S`` from its accept for its first message, as much again for the
    connect): past it, it is closed (``SLOW_START``; ``GRPCIO_SLOW`` for the connect). Owns
    the descriptors -> openings map and the deadlines' heap; only the relay's thread calls
    it."""

    def __init__(self, relay: Relay, poller: Any, sides: dict[int, Side]) -> None:
        self.relay = relay
        self.front = relay.front
        self.poller = poller
        self.sides = sides
        self.by_fd: dict[int, Opening] = {}
        self._deadlines: list[tuple[float, int, Opening]] = []
        self._order = itertools.count()
        self._ready: list[Opening] = []
        """Openings whose first message is whole, to connect to grpcio once the poller's batch
        is done (a socket made amid it could reuse the descriptor of one closed earlier in it,
        whose events would then be taken for its own)."""

    def begin(self, opening: Opening) -> None:
        """Watch a connection handed over by the accepting thread."""
        try:
            opening.client.setblocking(False)
            self._watch(opening, opening.client, READ)
        except (OSError, ValueError):
            self._end(opening)

    def wait(self) -> float | None:
        """The poller's timeout: until the next deadline (None: no opening)."""
        if not self._deadlines:
            return None
        left = self._deadlines[0][0] - monotonic()
        return max(left, 0.001) * POLL_UNIT

    def expire(self) -> None:
        """Close the openings past their deadline (and forget those that ended or connect
        since, when they are most of the heap: a flood of short connections)."""
        now = monotonic()
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

    def step(self, opening: Opening, events: int) -> None:
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

    def _guarded(self, work: Callable[[Opening], None], opening: Opening) -> None:
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

    def _read(self, opening: Opening) -> None:
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

    def _decide(self, opening: Opening) -> None:
        """Its first message whole (or the stream ended): grpcio's plain port for the HTTP/2
        preface, the TLS one for a TLS record, else closed."""
        first, front = opening.first, self.front
        if not first.message or front._stopped:
            self._end(opening)  # (ended before a byte: a health check)
            return
        tune(opening.client, keepalive=True)
        tls = first.is_tls()
        port = front.tls_port if tls else front.plain_port
        if port is None or not (tls or first.is_preface()):
            self._end(opening, conn_limits.TURNED_AWAY)
            return
        self._unwatch(opening)
        self._ready.append(opening)

    def _connect(self, opening: Opening) -> None:
        """A connection to grpcio's port for it, bound to a port of its own (``ORIGINS``),
        begun without blocking."""
        port = self.front.tls_port if opening.first.is_tls() else self.front.plain_port
        assert port is not None
        upstream = Socket(socket.AF_INET, socket.SOCK_STREAM)
        opening.upstream = upstream
        self.front._track(upstream)
        # bound first: a port of its own (connect() alone may share a local port with a
        # connection to the other loopback port, and origin() goes by the port)
        upstream.bind(("127.0.0.1", 0))
        opening.local_port = upstream.getsockname()[1]
        ORIGINS[opening.local_port] = peer_string(opening.address)
        upstream.setblocking(False)
        failed = upstream.connect_ex(("127.0.0.1", port))
        if failed == 0:
            self._relay_it(opening)
        elif failed in (errno.EINPROGRESS, errno.EAGAIN):
            self._watch(opening, upstream, WRITE, monotonic() + FIRST_BYTE_S)
        else:
            raise OSError(failed, os.strerror(failed))

    def _connected(self, opening: Opening) -> None:
        upstream = opening.upstream
        assert upstream is not None
        failed = upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if failed:
            raise OSError(failed, os.strerror(failed))
        self._unwatch(opening)
        self._relay_it(opening)

    def _relay_it(self, opening: Opening) -> None:
        """Connected to grpcio: its first message sent (what does not fit now, later), and
        the connection relayed from now on."""
        upstream = opening.upstream
        assert upstream is not None
        if self.front._stopped:
            self._end(opening)
            return
        tune(upstream, keepalive=False)
        pipe = Pipe(opening.client, upstream, opening.host, opening.local_port)
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
        self, opening: Opening, sock: socket.socket, mask: int, deadline: float | None = None
    ) -> None:
        fd = sock.fileno()
        self.poller.register(fd, mask)
        opening.registered = fd
        self.by_fd[fd] = opening
        if deadline is not None:
            opening.deadline = deadline
        heapq.heappush(self._deadlines, (opening.deadline, next(self._order), opening))

    def _unwatch(self, opening: Opening) -> None:
        fd, opening.registered = opening.registered, -1
        if fd < 0:
            return
        self.by_fd.pop(fd, None)
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.poller.unregister(fd)

    def _end(self, opening: Opening, reason: str | None = None) -> None:
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
            ORIGINS.pop(opening.local_port, None)
        self.front._end(opening.client, opening.upstream, opening.host)
