"""Send latency fault tolerance: RocketMQ's ``sendLatencyFaultEnable`` (``MQFaultStrategy``).

Off by default, as in RocketMQ. When a producer turns it on, every send attempt's outcome is
noted per broker: a slow answer makes its broker unavailable for a while, a failure (timeout,
lost connection, a refusal) for longer, and the default selector then skips the queues of
unavailable brokers while any other broker has one. RocketMQ 5's tables (a latency of at least
``LATENCY_MAX_MS[i]`` makes the broker unavailable for ``NOT_AVAILABLE_MS[i]``; a failure counts
as ``ISOLATION_MS``):

=================  ====  ====  =====  =====  =====  ======  ======
latency (ms) ≥       50   100    550  1,800  3,000   5,000  15,000
unavailable (ms)      0     0  2,000  5,000  6,000  10,000  30,000
=================  ====  ====  =====  =====  =====  ======  ======

So a failed attempt keeps its broker out of the rotation for 10 s (RocketMQ 4's tables kept it
out for 10 minutes). Hub only: no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

LATENCY_MAX_MS = (50, 100, 550, 1800, 3000, 5000, 15000)
NOT_AVAILABLE_MS = (0, 0, 2000, 5000, 6000, 10000, 30000)
ISOLATION_MS = 10000
"""The latency a failed attempt counts as (RocketMQ 5: 10 s, so 10 s unavailable)."""


def not_available_ms(latency_ms: float) -> int:
    """How long a broker that answered in ``latency_ms`` stays out of the rotation."""
    for bound, duration in zip(reversed(LATENCY_MAX_MS), reversed(NOT_AVAILABLE_MS), strict=True):
        if latency_ms >= bound:
            return duration
    return 0


class LatencyFault:
    """Per broker: the latency of its last attempt and when it is available again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[float, float]] = {}
        """broker name -> (last latency in ms, monotonic time it is available from)."""

    def update(self, broker: str, latency_ms: float, *, isolation: bool = False) -> None:
        """Note an attempt on ``broker``: answered in ``latency_ms``, or failed (``isolation``)."""
        duration = not_available_ms(ISOLATION_MS if isolation else latency_ms)
        if duration == 0 and broker not in self._items:
            return  # the common case: a fast answer from a broker never at fault
        self._items[broker] = (latency_ms, self._clock() + duration / 1000)

    def available(self, broker: str) -> bool:
        item = self._items.get(broker)
        return item is None or self._clock() >= item[1]

    def unavailable(self) -> dict[str, float]:
        """Brokers now out of the rotation -> seconds until they are back (for logs, tests)."""
        now = self._clock()
        return {b: until - now for b, (_l, until) in self._items.items() if until > now}
