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
        ``out`` (up to ``limit``, but in a FIFO group a message group's batch due together is
        not split over two receives); those past ``max_attempts`` go to ``_bury`` (the sweep
        dead-letters them: a receive never waits on those sends). Under the lock."""
        added = 0
        start = len(out)
        now = self.clock()
        heap = self._deadlines.get(topic) or []
        last: tuple[str, str] | None = None
        blockers: dict[tuple[str, str], float] | None = None
        while heap and heap[0][0] <= now:
            if added >= limit:
                following = self.in_flight.get(heap[0][2])
                if last is None or following is None:
                    break
                if message_group(following.msg, following.topic) != last:
                    break
            entry = heapq.heappop(heap)
            delivery = self.in_flight.get(entry[2])
            if delivery is None or delivery.deadline != entry[0]:
                continue  # acked, or its duration changed since
            if self._renewed(delivery, now):
                continue
            if self.fifo:
                if blockers is None:
                    blockers = self._invisible_groups(topic, now)
                key = message_group(delivery.msg, topic)
                if key in blockers:  # another of its batch is still out: they come together
                    delivery.deadline = min(blockers[key], now + RECHECK_S)
                    self._schedule(delivery)
                    continue
            del self.in_flight[delivery.handle]
            if not self.consumer.still_owned(delivery.msg):
                self._release(delivery)  # rebalanced away: its new owner hands it out
                continue
            if delivery.attempt >= self.max_attempts:
                self._bury.append(delivery)
                continue
            again = self._hand_out(delivery.msg, topic, delivery.attempt + 1, invisible_ms, holder)
            out.append(again)
            added += 1
            if self.fifo:
                last = message_group(delivery.msg, topic)
        if self.fifo and added > 1:  # each message group's in its queue's order
            first_seen: dict[tuple[str, str] | None, int] = {}
            for d in out[start:]:
                first_seen.setdefault(message_group(d.msg, topic), len(first_seen))
            out[start:] = sorted(
                out[start:],
                key=lambda d: (
                    first_seen[message_group(d.msg, topic)],
                    d.msg.queue_id,
                    d.msg.queue_offset,
                ),
            )

    def _invisible_groups(self, topic: str, now: float) -> dict[tuple[str, str], float]:
        """FIFO: message group -> the latest deadline of its deliveries of ``topic`` out and
        not due yet. A due one of such a group waits for them (RocketMQ blocks a FIFO queue
        until every unacked message of the batch is visible again: a message given a shorter
        invisible duration than one before it must not overtake it). Under the lock."""
        blockers: dict[tuple[str, str], float] = {}
        for d in self.in_flight.values():
            if d.topic == topic and d.deadline > now:
                key = message_group(d.msg, topic)
                if key is not None and d.deadline > blockers.get(key, now):
                    blockers[key] = d.deadline
        return blockers
