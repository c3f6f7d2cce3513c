"""Lanes: the order of one producer's sends that must wait for a route or a connection.

A send that finds no route for its topic, or no session to the broker it picked, opens a lane
(``Sender.waiting``, keyed by the topic or the broker address) and one greenlet waits for the
route or the connection on behalf of the whole lane. Until that lane is drained, every later
send of this producer to that topic (or broker) joins it instead of taking the fast path; the
greenlet then sends them all in the order they came. So one thread's sends are written in
invoke order even while the producer starts, and a later send never overtakes an earlier one
that waits. The fast path pays two empty-dict checks for this (``Sender.waiting``, before and
after picking the queue). A wait that fails before the first send's time is up fails every send
of the lane, each then retried (or not) on its own, without an order; one that times out fails
the sends out of time, and waits on for the others.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import gevent

if TYPE_CHECKING:
    from actors.client.send import SendOp
    from actors.client.sender import Sender

ROUTE = "route"
SESSION = "session"
LaneKey = tuple[str, str]
"""(ROUTE, topic) or (SESSION, broker address)."""
TIMER_SLACK = 0.05
"""Seconds a wait's timeout may fire before its deadline (the loop's clock is cached)."""


def open_lane(sender: Sender, key: LaneKey, first: SendOp) -> None:
    """``first`` waits for ``key``'s route or connection, and later sends queue behind it."""
    lane = deque((first,))
    sender.waiting[key] = lane
    gevent.spawn(_drain, sender, key, lane)


def _drain(sender: Sender, key: LaneKey, lane: deque[SendOp]) -> None:
    """Wait for the lane's route or connection, then send its sends in order. The key stays in
    ``waiting`` until the lane is empty, so later sends queue behind."""
    kind, name = key
    while lane:
        head = lane[0]
        try:
            if kind == ROUTE:
                got: Any = sender.instance.route(name, allow_default=True, timeout=head.remaining())
            else:
                got = sender.instance.remoting.session(name, head.remaining())
        except Exception as exc:
            if head.remaining() > TIMER_SLACK:  # not the head's time out: all fail
                del sender.waiting[key]  # first: a retry opens a lane of its own
                for op in lane:
                    op.fail(exc)
                return
            # the head's time ran out: those out of time fail, the others wait on
            for op in [op for op in lane if op.remaining() <= TIMER_SLACK]:
                lane.remove(op)
                op.fail(exc)
            continue
        while lane:
            op = lane.popleft()
            if kind == ROUTE:
                op.proceed(got)
            else:
                op.write(got, name)
    del sender.waiting[key]
