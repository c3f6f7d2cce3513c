"""RebalanceLockManager: which client holds which queue, for ordered consumption.

Messages (proxy methods; none blocks):
- ``lock_batch(group, client_id, queues)`` -> ``Locked``: the queues now locked by that client,
  and how many it was refused because the lock table is full
- ``unlock_batch(group, client_id, queues)`` -> None
- ``holder(group, queue)`` -> the client id holding a live lock, or None

A lock lives ``lock_ttl_s`` (60 s, RocketMQ's rebalance lock max live time) from its last
renewal; a client renews by locking again (every 20 s). An expired lock may be taken by another
client, and is forgotten by the next lock request: a client that locked queues and went away,
or locked queues of no topic, leaves nothing behind for long (RocketMQ keeps such entries until
they are unlocked).

The table holds at most ``max_locks`` locks (``MAX_LOCKS``), all groups together: a lock
request renews the locks its client holds whatever the count, but a queue it does not hold yet
is refused (not in ``Locked.queues``; ``Locked.refused`` counts them) while the table is full of
live locks. So many requests (distinct groups, queues, client ids) cannot grow it without
bound, and a consumer that keeps renewing keeps its queues. Free room comes back as locks
expire or are unlocked.

State owned (memory only; clients relock after a broker restart): (group, queue) -> (client id,
last renewal), oldest renewal first (the expired ones are at the front, so forgetting them
costs nothing while none is). Durability point: none.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, NamedTuple

from loguru import logger

from runtime.actor import GeventActor
from runtime.remoting.bodies import MessageQueue

LOCK_TTL_S = 60.0
MAX_LOCKS = 131_072
"""Most locks the table holds, all groups together (~350 bytes each: ~45 MiB at most): twice
the most one request may name (``order_handler.MAX_LOCK_BATCH``), e.g. 32 ordered groups of
4,096 queues each on this broker."""
EXPIRY_LINES = 8
"""Most INFO lines one expiry writes (one per group and client); beyond, a single summary."""


class Locked(NamedTuple):
    """``lock_batch``'s answer."""

    queues: list[MessageQueue]
    """The queues the client holds now (newly locked or renewed)."""
    refused: int = 0
    """Queues not locked because the table is full (``max_locks`` live locks)."""


class RebalanceLockManager(GeventActor):
    """Queue locks per consumer group."""

    def __init__(
        self,
        *,
        lock_ttl_s: float = LOCK_TTL_S,
        max_locks: int = MAX_LOCKS,
        clock: Any = time.monotonic,
    ) -> None:
        super().__init__()
        self.lock_ttl_s = lock_ttl_s
        self.max_locks = max_locks
        self._clock = clock
        self._locks: OrderedDict[tuple[str, MessageQueue], tuple[str, float]] = OrderedDict()
        self._full = False  # refusing for want of room (logged once, until there is room)

    def _live_holder(self, group: str, queue: MessageQueue) -> str | None:
        entry = self._locks.get((group, queue))
        if entry is None or self._clock() - entry[1] > self.lock_ttl_s:
            return None
        return entry[0]

    def lock_batch(self, group: str, client_id: str, queues: Iterable[MessageQueue]) -> Locked:
        now = self._clock()
        self._expire(now)  # (every lock left is live)
        table = self._locks
        locked = []
        refused = 0
        for queue in queues:
            key = (group, queue)
            entry = table.get(key)
            if entry is not None and entry[0] != client_id:
                continue  # another client's live lock
            if entry is None and len(table) >= self.max_locks:
                refused += 1
                continue
            table[key] = (client_id, now)
            table.move_to_end(key)  # (newest renewal last)
            locked.append(queue)
        self._note_full(refused, group, client_id)
        return Locked(locked, refused)

    def _note_full(self, refused: int, group: str, client_id: str) -> None:
        if refused and not self._full:
            logger.warning(
                "broker: the rebalance lock table is full ({} live locks); {} queue(s) of {} "
                "in {} not locked, nor new ones of anybody until locks expire or are unlocked",
                len(self._locks),
                refused,
                client_id,
                group,
            )
        self._full = len(self._locks) >= self.max_locks

    def _expire(self, now: float) -> None:
        """Forget the expired locks (all at the front: the table is in renewal order)."""
        table = self._locks
        expired: dict[tuple[str, str], int] = {}  # (group, client id) -> locks
        while table:
            (group, _queue), (client_id, renewed) = next(iter(table.items()))
            if now - renewed <= self.lock_ttl_s:
                break
            table.popitem(last=False)
            expired[group, client_id] = expired.get((group, client_id), 0) + 1
        if len(expired) > EXPIRY_LINES:  # (one line, not one per client of a flood)
            logger.info(
                "broker: {} locks of {} clients expired (not renewed for {:g} s)",
                sum(expired.values()),
                len(expired),
                self.lock_ttl_s,
            )
            return
        for (group, client_id), n in expired.items():
            logger.info(
                "broker: {} lock(s) of {} in {} expired (not renewed for {:g} s)",
                n,
                client_id,
                group,
                self.lock_ttl_s,
            )

    def lock_count(self) -> int:
        """How many locks are kept, expired ones not yet forgotten included."""
        return len(self._locks)

    def unlock_batch(self, group: str, client_id: str, queues: Iterable[MessageQueue]) -> None:
        table = self._locks
        for queue in queues:
            entry = table.get((group, queue))
            if entry is not None and entry[0] == client_id:
                del table[group, queue]

    def holder(self, group: str, queue: MessageQueue) -> str | None:
        return self._live_holder(group, queue)
