"""RebalanceLockManager: which client holds which queue, for ordered consumption.

Messages (proxy methods; none blocks):
- ``lock_batch(group, client_id, queues)`` -> the queues now locked by that client
- ``unlock_batch(group, client_id, queues)`` -> None
- ``holder(group, queue)`` -> the client id holding a live lock, or None

A lock lives ``lock_ttl_s`` (60 s, RocketMQ's rebalance lock max live time) from its last
renewal; a client renews by locking again (every 20 s). An expired lock may be taken by another
client, and is forgotten at the next sweep (at most one a ``lock_ttl_s``, made by a lock
request): a client that locked queues and went away, or locked queues of no topic, leaves
nothing behind for long (RocketMQ keeps such entries until they are unlocked). State owned
(memory only; clients relock after a broker restart): group -> queue -> (client id, last
renewal). Durability point: none.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from loguru import logger

from runtime.actor import GeventActor
from runtime.remoting.bodies import MessageQueue

LOCK_TTL_S = 60.0


class RebalanceLockManager(GeventActor):
    """Queue locks per consumer group."""

    def __init__(self, *, lock_ttl_s: float = LOCK_TTL_S, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.lock_ttl_s = lock_ttl_s
        self._clock = clock
        self._locks: dict[str, dict[MessageQueue, tuple[str, float]]] = {}
        self._swept = clock()

    def _live_holder(self, group: str, queue: MessageQueue) -> str | None:
        entry = self._locks.get(group, {}).get(queue)
        if entry is None or self._clock() - entry[1] > self.lock_ttl_s:
            return None
        return entry[0]

    def lock_batch(
        self, group: str, client_id: str, queues: Iterable[MessageQueue]
    ) -> list[MessageQueue]:
        now = self._clock()
        if now - self._swept > self.lock_ttl_s:
            self._sweep(now)
        table = self._locks.setdefault(group, {})
        locked = []
        for queue in queues:
            holder = self._live_holder(group, queue)
            if holder is None or holder == client_id:
                if holder is None and queue in table:
                    logger.info(
                        "broker: lock of {} in {} expired; given to {}", queue, group, client_id
                    )
                table[queue] = (client_id, now)
                locked.append(queue)
        return locked

    def _sweep(self, now: float) -> None:
        """Forget every expired lock (and groups left without one)."""
        self._swept = now
        for group in list(self._locks):
            table = self._locks[group]
            for queue in [
                q for q, (_, renewed) in table.items() if now - renewed > self.lock_ttl_s
            ]:
                del table[queue]
            if not table:
                del self._locks[group]

    def lock_count(self) -> int:
        """How many locks are kept, expired ones not yet swept included."""
        return sum(len(table) for table in self._locks.values())

    def unlock_batch(self, group: str, client_id: str, queues: Iterable[MessageQueue]) -> None:
        table = self._locks.get(group)
        if table is None:
            return
        for queue in queues:
            entry = table.get(queue)
            if entry is not None and entry[0] == client_id:
                del table[queue]
        if not table:
            del self._locks[group]

    def holder(self, group: str, queue: MessageQueue) -> str | None:
        return self._live_holder(group, queue)
