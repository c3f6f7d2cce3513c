"""ProcessQueue: the messages of one queue that were pulled but not yet consumed.

Owned by that queue's ``QueuePuller`` (never shared). It answers the two questions the puller
asks: how much is cached (flow control), and which offset is safe to commit — the lowest
offset still in flight, or, when nothing is, the next offset the broker said to pull from.
Committing that never skips a message that was not consumed (RELIABILITY.md R16).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from actors.client.message import MessageExt


class ProcessQueue:
    __slots__ = ("_order", "bytes", "msgs", "pulled_upto")

    def __init__(self, next_offset: int) -> None:
        self.msgs: dict[int, MessageExt] = {}
        self._order: deque[int] = deque()
        self.bytes = 0
        self.pulled_upto = next_offset
        """The offset after the last pulled (or skipped) message."""

    @property
    def count(self) -> int:
        return len(self.msgs)

    def add(self, msgs: Iterable[MessageExt], next_offset: int) -> list[MessageExt]:
        """Cache newly pulled messages; returns those not already cached."""
        cached = self.msgs
        order = self._order
        fresh = []
        size = 0
        for m in msgs:
            offset = m.queue_offset
            if offset in cached:
                continue
            cached[offset] = m
            order.append(offset)
            size += len(m.body)
            fresh.append(m)
        self.bytes += size
        if next_offset > self.pulled_upto:
            self.pulled_upto = next_offset
        return fresh

    def advance(self, next_offset: int) -> None:
        """Nothing to cache, but the broker moved us on (no new / no matching message)."""
        if next_offset > self.pulled_upto:
            self.pulled_upto = next_offset

    def remove(self, offsets: Iterable[int]) -> None:
        pop = self.msgs.pop
        size = 0
        for offset in offsets:
            m = pop(offset, None)
            if m is not None:
                size += len(m.body)
        self.bytes -= size

    def _low(self) -> int:
        order = self._order
        msgs = self.msgs
        while order and order[0] not in msgs:
            order.popleft()
        return order[0] if order else self.pulled_upto

    def span(self) -> int:
        """Highest minus lowest cached offset (0 when at most one is cached): RocketMQ's
        ``ProcessQueue.getMaxSpan``, what ``consumeConcurrentlyMaxSpan`` bounds."""
        order = self._order
        msgs = self.msgs
        while order and order[-1] not in msgs:
            order.pop()
        return order[-1] - self._low() if order else 0

    def committable(self) -> int:
        """The offset to commit: the lowest in flight, else where the next pull starts."""
        return self._low()

    def clear(self, next_offset: int) -> None:
        self.msgs.clear()
        self._order.clear()
        self.bytes = 0
        self.pulled_upto = next_offset
