"""Per-topic and per-group message counts over the last minute, hour and day (RocketMQ's
StatsItem snapshots), for VIEW_BROKER_STATS_DATA's TOPIC_PUT_NUMS / GROUP_GET_NUMS items.

``KeyedWindows.sample(now, tables)`` takes, every sampling tick, the running totals of each
stats name (``{name: {key: total}}``) and keeps per (name, key) a few snapshots per window: 7
ten-second ones for the minute, 7 ten-minute ones for the hour, 25 hourly ones for the day
(about 40 tuples per key, as RocketMQ keeps). ``windows(name, key, now, current)`` answers
(count, seconds covered) for the minute, hour and day, counting from the newest snapshot at
least a window old (else the oldest). A key seen for the first time is taken to have been 0 at
the previous tick, so its first messages count.
"""

from __future__ import annotations

import collections

LEVELS = ((60.0, 10.0, 7), (3600.0, 600.0, 7), (86400.0, 3600.0, 25))
"""(window, spacing of its snapshots, how many are kept)."""
SLACK_S = 0.5
"""A tick a little early still counts as a new snapshot (timers drift)."""

Snapshots = collections.deque[tuple[float, int]]


class KeyedWindows:
    """See the module docstring. Not thread-safe; one actor owns it."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], list[Snapshots]] = {}
        self._last_tick: float | None = None

    def sample(self, now: float, tables: dict[str, dict[str, int]]) -> None:
        for name, table in tables.items():
            for key, total in table.items():
                levels = self._series.get((name, key))
                if levels is None:
                    levels = self._series[(name, key)] = [
                        collections.deque(maxlen=kept) for _window, _spacing, kept in LEVELS
                    ]
                    if self._last_tick is not None:
                        for snapshots in levels:
                            snapshots.append((self._last_tick, 0))
                for (_window, spacing, _kept), snapshots in zip(LEVELS, levels, strict=True):
                    if not snapshots or now - snapshots[-1][0] >= spacing - SLACK_S:
                        snapshots.append((now, total))
        self._last_tick = now

    def windows(
        self, name: str, key: str, now: float, current: int
    ) -> list[tuple[int, float]] | None:
        """(count, seconds covered) for the minute, hour and day (``current``: the live total);
        None before the first tick."""
        levels = self._series.get((name, key))
        if levels is None:
            if self._last_tick is None:
                return None
            # new since the last tick, when it was 0
            return [(current, max(now - self._last_tick, 0.0))] * len(LEVELS)
        out = []
        for (window, _spacing, _kept), snapshots in zip(LEVELS, levels, strict=True):
            base = snapshots[0]
            for snapshot in reversed(snapshots):
                if now - snapshot[0] >= window:
                    base = snapshot
                    break
            out.append((current - base[1], max(now - base[0], 0.0)))
        return out
