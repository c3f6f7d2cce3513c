"""R12's read check: a record appended while the replication link is cut must not be read
before a slave holds it (finding 1; docs/chaos.md, finding 12).

A SYNC_MASTER shows consumers only what an in-sync slave holds, and a slave can only hold a
record appended during a partition after it links again: the master logs ``in-sync slaves now
[1]`` when it does. So a read, during a partition, of a value whose send was invoked during a
partition is an early read unless a slave joined the master's in-sync set between the send's
invoke and the read. A value invoked in one partition, replicated in the quiet time before the
next and read as that next one starts, is not early.

Pure functions over history entries and the join times read from the master's log (wall
clock), so they are tested on hand-made histories.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.chaos import membership_logs as L


@dataclass(frozen=True)
class PartitionReads:
    early: list[str]  # values read before any slave could hold them
    after_rejoin: list[str]  # read in a later partition, after a slave joined in between


def fault_windows(entries: Sequence[Any]) -> list[tuple[float, float]]:
    """(fault, heal) pairs of the nemesis, by CLOCK_MONOTONIC."""
    out = []
    start: float | None = None
    for e in entries:
        if e.type == "event" and e.f == "fault":
            start = e.mono
        elif e.type == "event" and e.f == "heal" and start is not None:
            out.append((start, e.mono))
            start = None
    return out


def join_walls(lines: Sequence[L.Line]) -> list[float]:
    """Wall times at which the master announced a non-empty in-sync set, sorted."""
    out = []
    for line in lines:
        members = L.current_in_sync([line.text])
        if members:
            out.append(line.wall)
    return sorted(out)


def partition_reads(
    entries: Sequence[Any],
    windows: Sequence[tuple[float, float]],
    joins: Sequence[float],
    group: str,
) -> PartitionReads:
    """Reads by ``group`` during a window of values whose send was invoked during a window,
    split into early ones (no join in between) and ones excused by a join."""

    def inside(mono: float) -> bool:
        return any(a <= mono <= b for a, b in windows)

    invoked = {
        e.value: e.wall
        for e in entries
        if e.f == "send" and e.type == "invoke" and e.value is not None and inside(e.mono)
    }
    early: list[str] = []
    after_rejoin: list[str] = []
    for e in entries:
        if e.type != "ok" or not e.reads or e.group != group or not inside(e.mono):
            continue
        for r in e.reads:
            sent = invoked.get(r.value)
            if sent is None:
                continue
            first_join = bisect.bisect_right(joins, sent)
            joined = first_join < len(joins) and joins[first_join] <= e.wall
            (after_rejoin if joined else early).append(r.value)
    return PartitionReads(early, after_rejoin)
