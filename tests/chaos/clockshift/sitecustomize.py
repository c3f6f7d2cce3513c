"""Chaos harness only (R20 clock jumps): shift this process's wall clock.

Imported by Python at start-up when this directory is on ``PYTHONPATH`` (``tests.chaos.clock``
puts it there for the nodes it shifts). When ``ACTORMQ_CHAOS_CLOCK_FILE`` names a file,
``time.time()`` and ``time.time_ns()`` return the real wall clock plus the offset in seconds the
file holds (re-read at most every 20 ms; missing or unreadable: unchanged), as when an operator
or NTP steps the machine's clock. ``time.monotonic()`` (timeouts, leases, the event loop) is
left alone, as a real clock step leaves it; so is ``datetime.now()``, so log timestamps stay
true.
"""

from __future__ import annotations

import os
import time


def _install(path: str) -> None:
    real_time, real_time_ns, monotonic = time.time, time.time_ns, time.monotonic
    state = {"offset": 0.0, "next_read": 0.0}

    def offset() -> float:
        now = monotonic()
        if now >= state["next_read"]:
            state["next_read"] = now + 0.02
            try:
                with open(path) as f:
                    state["offset"] = float(f.read().strip() or 0)
            except (OSError, ValueError):
                pass
        return state["offset"]

    def shifted_time() -> float:
        return real_time() + offset()

    def shifted_time_ns() -> int:
        return real_time_ns() + int(offset() * 1e9)

    time.time = shifted_time
    time.time_ns = shifted_time_ns


_path = os.environ.get("ACTORMQ_CHAOS_CLOCK_FILE")
if _path:
    _install(_path)
