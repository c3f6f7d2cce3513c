"""Relay: every connection of a front (``actors.proxy.front``), opening then relayed, in one
native thread (``Relay``): a poll loop over non-blocking sockets, the unpatched epoll
(``native``), that touches nothing of gevent's, loguru included (refusals are counted in
``conn_limits.Refusals``, logged by the proxy's side), and hands nothing to the hub. Before,
one thread per connection while it opened, and two per relayed connection, blocking copies:
8,192 at the limit. Connections come from the front's accepting thread (``Relay.take``) and
open in this loop first (``openings``).

The relay reads into one ``CHUNK`` buffer of its own and keeps only what the other side did
not take at once (at most ``CHUNK`` a direction; that side is not read again until it is
taken): an idle connection holds no buffer (when each copy had a 256 KiB one, 4,096 idle
connections held 2 GB). 500 idle relayed connections: 10 threads in all, +10 MB (two threads
each before: 1,009, +38 MB; docs/benchmarks.md "Session 27").
A side's end of sending is the other's (``SHUT_WR``); when grpcio closes its side the client's
connection is closed too; a client gone without a word is noticed by TCP keepalive (about
90 s) or, with data unacknowledged, ``TCP_USER_TIMEOUT`` (60 s) (``native.tune``).

Owns its thread, its poller and wake pipe, the connections handed over and not yet watched,
and the relayed connections' sockets (``pipe.Pipe``): it alone closes them.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from actors.proxy.native import BROKEN, READ, WRITE, new_lock, new_poller, shutdown, start_thread
from actors.proxy.openings import Opening, Openings
from actors.proxy.origins import ORIGINS
from actors.proxy.pipe import Pipe, Side, flush

if TYPE_CHECKING:
    from actors.proxy.front import Front

CHUNK = 256 * 1024
"""The relay's one read buffer, and the most it holds for one direction of one connection."""


class Relay:
    """Every relayed connection of a front, both directions, in one native thread: a poll
    loop over non-blocking sockets (the unpatched epoll). A side is read only while what it
    sent last has been taken by the other (back-pressure: at most ``CHUNK`` held for one
    direction); an idle connection holds no buffer (reads go to the loop's one buffer, and only
    what a side did not take at once is kept). A side's end is the other's end of writing
    (``SHUT_WR``); grpcio's end, or an error either way, ends the connection (both closed).
    The loop's thread alone closes a relayed connection's sockets (others shut them down:
    ``Front.close_all``), and ends once the front has stopped accepting and its connections
    have ended. Connections come from the accepting thread (``take``) and open in this loop
    first (``Openings``)."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self._incoming: deque[Opening] = deque()
        self._wake_r = self._wake_w = -1
        self._lock = new_lock()
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
            poller = new_poller()
            poller.register(self._wake_r, READ)
            start_thread(self._run, (poller,))
        except BaseException:
            if poller is not None:
                with contextlib.suppress(OSError):
                    poller.close()
            self._close_wake()
            raise
        self._started = True

    def take(self, opening: Opening) -> bool:
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
        sides: dict[int, Side] = {}
        """A socket's descriptor -> its connection, 0 for the client's side (1: grpcio's), its
        ``recv_into``, the other side's ``send``, the direction read from it."""
        openings = Openings(self, poller, sides)
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
                        if events == READ and pipe.masks[i] == READ:
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

    def _add(self, pipe: Pipe, poller: Any, sides: dict[int, Side]) -> None:
        try:
            pipe.client.setblocking(False)
            pipe.upstream.setblocking(False)
            client, upstream = pipe.client, pipe.upstream
            sides[client.fileno()] = (pipe, 0, client.recv_into, upstream.send, pipe.to_up)
            sides[upstream.fileno()] = (pipe, 1, upstream.recv_into, client.send, pipe.to_client)
            self._interest(pipe, poller)
        except (OSError, ValueError):
            self._end(pipe, poller, sides)

    def _step(self, pipe: Pipe, is_client: bool, events: int, view: memoryview) -> None:
        """What the poller reported of one side: write what waits for it, read what it sent."""
        mask = pipe.masks[0 if is_client else 1]
        sock, other = (pipe.client, pipe.upstream) if is_client else (pipe.upstream, pipe.client)
        inbound = pipe.to_up if is_client else pipe.to_client  # (read from this side)
        outbound = pipe.to_client if is_client else pipe.to_up  # (written to this side)
        if events & select.POLLNVAL:
            raise ConnectionError("the socket broke")
        if mask & WRITE and events & (WRITE | BROKEN) and flush(outbound, sock):
            self._ended(pipe, not is_client)
        if mask & READ and events & (READ | BROKEN) and inbound.pending is None:
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

    def _ended(self, pipe: Pipe, from_client: bool) -> None:
        """A direction's source ended: once its bytes are written, the client's end is grpcio's
        end of reading; grpcio's ends the connection."""
        direction = pipe.to_up if from_client else pipe.to_client
        if not direction.ended or direction.pending is not None:
            return
        if from_client:
            shutdown(pipe.upstream, socket.SHUT_WR)  # the client is done sending
        else:
            raise EOFError("grpcio ended the connection")  # (so does the client's)

    def _interest(self, pipe: Pipe, poller: Any) -> None:
        """Read a side while the other has taken all it sent; write to a side what waits for
        it. A side of neither is not registered (else its peer's end, POLLHUP, would be
        reported again and again while the other side drains): its error is seen at its
        next read or write, as a blocking copy's would be."""
        up, down = pipe.to_up, pipe.to_client
        client = (READ if not up.ended and up.pending is None else 0) | (
            WRITE if down.pending is not None else 0
        )
        upstream = (READ if not down.ended and down.pending is None else 0) | (
            WRITE if up.pending is not None else 0
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

    def _end(self, pipe: Pipe, poller: Any, sides: dict[int, Side]) -> None:
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
        ORIGINS.pop(pipe.local_port, None)
        self.front._end(pipe.client, pipe.upstream, pipe.host)
