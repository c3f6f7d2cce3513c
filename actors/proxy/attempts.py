"""Attempts: the receipt handles each receive handed out, by the receive's ``attempt_id``, so
that a client retrying a receive whose answer it never got (the same attempt id) is handed
the same messages again (``PopGroup.retry``), as RocketMQ's broker re-pops a FIFO queue's
batch for the attempt id that popped it.

RocketMQ 5's push consumers (Java, Python) give each receive an attempt id and send it again
when they retry that receive after an error (a deadline passed, the connection dropped); the
next receive has a new one. Without this the batch the lost answer carried stayed invisible
(auto-renewed for a live push consumer: up to ``MAX_RENEW_S``), and in a FIFO group its
message group waited behind it all that time.

Bounded: at most ``MAX_HANDLES_KEPT`` handles per group (~4 MB), each attempt kept
``ATTEMPT_TTL_S`` (a client retries within its long-polling time and request timeout, a second
after the error); the oldest go first. Not thread-safe: ``PopGroup`` calls it under its lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

ATTEMPT_TTL_S = 120.0
"""How long a receive's attempt id is remembered."""
MAX_HANDLES_KEPT = 65536
"""Handles one group remembers at most, over its attempts (a receive's batch each)."""


class Attempts:
    def __init__(
        self,
        clock: Callable[[], float],
        ttl_s: float = ATTEMPT_TTL_S,
        limit: int = MAX_HANDLES_KEPT,
    ) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self.limit = limit
        self._kept: OrderedDict[Hashable, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._handles = 0
        """Handles in ``_kept``."""

    def __len__(self) -> int:
        return len(self._kept)

    def remember(self, key: Hashable, handles: Sequence[str]) -> None:
        """The handles a receive (``key``: its client, topic and attempt id) handed out."""
        now = self.clock()
        self.forget(key)
        kept = tuple(handles)
        self._kept[key] = (now, kept)
        self._handles += len(kept)
        self._expire(now)
        while self._handles > self.limit and len(self._kept) > 1:
            self._drop_oldest()

    def handles(self, key: Hashable) -> tuple[str, ...]:
        """The handles the receive of ``key`` handed out (none: unknown or expired)."""
        self._expire(self.clock())
        kept = self._kept.get(key)
        return kept[1] if kept is not None else ()

    def forget(self, key: Hashable) -> None:
        kept = self._kept.pop(key, None)
        if kept is not None:
            self._handles -= len(kept[1])

    def _expire(self, now: float) -> None:
        while self._kept:
            at, _ = next(iter(self._kept.values()))
            if now - at <= self.ttl_s:
                return
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, (_, handles) = self._kept.popitem(last=False)
        self._handles -= len(handles)
