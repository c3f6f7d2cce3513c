"""What a request handler knows of the request it serves, from any function it calls: when the
request was read off its socket (``request_waited_s``) and its turn among its connection's
ordered requests (``wait_turn`` / ``end_turn``).

``runtime.session`` sets both in the greenlet that serves the request (``begin`` /
``finish``); outside a request they read as "no wait, no turn".
"""

from __future__ import annotations

import time

import gevent.event
import gevent.local

_request = gevent.local.local()


class Turn:
    """One ordered request's place in its connection's line (see ``wait_turn``).

    A turn is done when its request ended it and every earlier turn is done: a request that
    gave up waiting (and so took no step) ends its turn only once the one before it ends.

    A turn that ends wakes, in order, every turn right behind it that waits (not only the
    next one): woken together, they take their steps one after another in the same pass of the
    hub, and what they queue (their records for the CommitLog) forms one group. Woken one at a
    time, each would run alone and a connection's deep pipeline of sends (a client with
    hundreds in flight) would store one record per write for as long as it stayed deep. A
    woken turn whose predecessor is still not done (it yielded before ending) waits again."""

    __slots__ = ("after", "done", "event", "next", "prev", "waiting")

    def __init__(self, prev: Turn | None) -> None:
        if prev is not None and prev.done:
            prev = None
        self.prev = prev
        self.next: Turn | None = None
        """The turn created right after this one (the line's order, for waking)."""
        if prev is not None:
            prev.next = self
        self.done = False
        self.waiting = False
        self.event: gevent.event.Event | None = None
        """Set to wake this turn while it waits."""
        self.after: Turn | None = None
        """The next turn, when it ended before this one did (it ends with this one)."""

    def wait(self, timeout: float) -> bool:
        """Wait until the previous turn is done; False if it is not within ``timeout``."""
        deadline = None
        while True:
            prev = self.prev
            if prev is None or prev.done:
                self.prev = None
                return True
            if deadline is None:
                deadline = time.monotonic() + timeout
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            event = self.event
            if event is None:
                event = self.event = gevent.event.Event()
            else:
                event.clear()
            self.waiting = True
            try:
                event.wait(remaining)
            finally:
                self.waiting = False

    def end(self) -> None:
        """End this turn: now if the previous one is done, else when it is."""
        if self.done:
            return
        prev = self.prev
        if prev is not None and not prev.done:
            prev.after = self
            return
        turn: Turn | None = self
        last = self
        while turn is not None:  # a loop, not recursion: thousands may have given up
            turn.done = True
            turn.prev = None  # no chain of finished turns kept alive
            last = turn
            following = turn.after
            turn.after = None
            turn = following
        waiting = last.next
        last.next = None
        while waiting is not None and waiting.waiting:  # wake the waiting line behind, in order
            waiting.waiting = False
            assert waiting.event is not None
            waiting.event.set()
            waiting = waiting.next


def wait_turn(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until every earlier ordered request of this connection
    has ended its turn; False if it has not by then (the caller must then not take the step).

    The processor names its ordered request codes (``ordered_codes``, the broker's sends): each
    such request's turn follows the previous one's of the same connection. A handler calls this
    right before the step whose order must follow arrival (a send: queueing its records for the
    CommitLog) and ``end_turn`` right after it; a request that returns earlier ends its turn
    when it is answered. Everything before runs concurrently as before. True at once outside
    an ordered request."""
    turn = getattr(_request, "turn", None)
    return turn is None or turn.wait(timeout)


def end_turn() -> None:
    """Let the next ordered request of this connection take its turn (no-op outside one)."""
    turn = getattr(_request, "turn", None)
    if turn is not None:
        turn.end()


def request_waited_s() -> float:
    """Seconds since the request this greenlet serves was read off its socket (0 outside a
    request): how long it waited behind others before its handler got this far (RocketMQ's
    time in the send queue)."""
    arrived = getattr(_request, "arrived", None)
    return 0.0 if arrived is None else time.monotonic() - arrived


def begin(arrived: float, turn: Turn | None) -> None:
    """This greenlet now serves a request read at ``arrived`` (``time.monotonic()``) holding
    ``turn`` (None for an unordered one). Called by the session; pair with ``finish``."""
    _request.arrived = arrived
    _request.turn = turn
    _request.held = False


def mark_held() -> None:
    """The request is held for long polling (a pull waiting for messages): its time says
    nothing of the server's speed (the session keeps it out of ``rocketmq_rpc_latency``)."""
    _request.held = True


def was_held() -> bool:
    return bool(getattr(_request, "held", False))


def finish() -> None:
    """The request this greenlet served is done: its turn (if any) ends."""
    turn = getattr(_request, "turn", None)
    _request.arrived = None
    _request.turn = None
    if turn is not None:
        turn.end()
