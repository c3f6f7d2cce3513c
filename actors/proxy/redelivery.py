"""The redelivery side of ``PopGroup`` (a mixin): ``_due`` hands out again the deliveries of a
topic whose invisible duration passed (the next attempt), those out of attempts go to be
dead-lettered; in a FIFO group a message group's batch comes again together, in order, once
none of it is still invisible (as RocketMQ blocks a FIFO queue)."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import Any

from actors.proxy.delivery import Delivery, message_group

RECHECK_S = 1.0
"""A waiting receive looks at its topic's due deliveries at least this often."""


class Redelivery:
    """Mixin of ``PopGroup``, which supplies what is declared here."""

    fifo: bool
    consumer: Any
    clock: Callable[[], float]
    max_attempts: int
    in_flight: dict[str, Delivery]
    _deadlines: dict[str, list[tuple[float, int, str]]]
    _bury: deque[Delivery]

    def _renewed(self, delivery: Delivery, now: float) -> bool:
        raise NotImplementedError

    def _release(self, delivery: Delivery) -> None:
        raise NotImplementedError

    def _hand_out(
        self,
        msg: Any,
        topic: str,
        attempt: int,
        invisible_ms: int,
        holder: str | None = None,
    ) -> Delivery:
        raise NotImplementedError

    def _schedule(self, delivery: Delivery) -> None:
        raise NotImplementedError

    def _due(
        self,
        topic: str,
        limit: int,
        invisible_ms: int,
        out: list[Delivery],
        holder: str | None = None,
    ) -> None:
        """Deliveries of ``topic`` whose invisible duration passed: handed out again into
        ``out`` (up to ``limit``; in a FIFO group see ``_due_fifo``); those past
        ``max_attempts`` go to ``_bury`` (the sweep dead-letters them: a receive never waits
        on those sends). Under the lock."""
        if self.fifo:
            self._due_fifo(topic, limit, invisible_ms, out, holder)
            return
        added = 0
        now = self.clock()
        heap = self._deadlines.get(topic) or []
        while heap and heap[0][0] <= now and added < limit:
            delivery = self._pop_due(heap, now)
            if delivery is not None and self._again(delivery, invisible_ms, out, holder):
                added += 1

    def _due_fifo(
        self,
        topic: str,
        limit: int,
        invisible_ms: int,
        out: list[Delivery],
        holder: str | None,
    ) -> None:
        """FIFO: a message group's due deliveries go out together, in their queue's order (a
        batch is never split over two receives, whatever ``limit``), and only once none of
        the group's other deliveries is still invisible (RocketMQ blocks a FIFO queue until
        every unacked message of the batch is visible again: one given a shorter invisible
        duration than one before it must not overtake it); held back, they are looked at
        again within ``RECHECK_S``. Messages without a message group go one by one."""
        now = self.clock()
        heap = self._deadlines.get(topic) or []
        groups: dict[Any, list[Delivery]] = {}
        while heap and heap[0][0] <= now:
            delivery = self._pop_due(heap, now)
            if delivery is not None:
                key = message_group(delivery.msg, topic) or delivery.handle
                groups.setdefault(key, []).append(delivery)
        if not groups:
            return
        # (after the pops: a push consumer's delivery renewed by them is still out)
        blockers = self._invisible_groups(topic, now)
        added = 0
        for key, due in groups.items():
            if key in blockers:
                for delivery in due:
                    delivery.deadline = min(blockers[key], now + RECHECK_S)
                    self._schedule(delivery)
            elif added >= limit:
                for delivery in due:
                    self._schedule(delivery)  # still due: the next receive's
            else:
                due.sort(key=lambda d: (d.msg.queue_id, d.msg.queue_offset))
                for delivery in due:
                    added += self._again(delivery, invisible_ms, out, holder)

    def _pop_due(self, heap: list[tuple[float, int, str]], now: float) -> Delivery | None:
        """The heap's first entry, as a delivery due now (None: stale, or renewed)."""
        entry = heapq.heappop(heap)
        delivery = self.in_flight.get(entry[2])
        if delivery is None or delivery.deadline != entry[0]:
            return None  # acked, or its duration changed since
        if self._renewed(delivery, now):
            return None
        return delivery

    def _again(
        self, delivery: Delivery, invisible_ms: int, out: list[Delivery], holder: str | None
    ) -> bool:
        """The due ``delivery`` handed out again into ``out`` (True), or let go: its queue is
        another proxy's now, or it is out of attempts (to be dead-lettered)."""
        del self.in_flight[delivery.handle]
        if not self.consumer.still_owned(delivery.msg):
            self._release(delivery)  # rebalanced away: its new owner hands it out
            return False
        if delivery.attempt >= self.max_attempts:
            self._bury.append(delivery)
            return False
        attempt = delivery.attempt + 1
        out.append(self._hand_out(delivery.msg, delivery.topic, attempt, invisible_ms, holder))
        return True

    def _invisible_groups(self, topic: str, now: float) -> dict[tuple[str, str], float]:
        """FIFO: message group -> the latest deadline of its deliveries of ``topic`` out and
        not due (the topic's deadline heap: its own deliveries only). Under the lock."""
        blockers: dict[tuple[str, str], float] = {}
        for deadline, _, handle in self._deadlines.get(topic) or ():
            delivery = self.in_flight.get(handle)
            if delivery is None or delivery.deadline != deadline or deadline <= now:
                continue
            key = message_group(delivery.msg, topic)
            if key is not None and deadline > blockers.get(key, now):
                blockers[key] = deadline
        return blockers
