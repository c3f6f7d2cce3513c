"""R12's early-read check on hand-made histories (tests/chaos/partition_reads.py)."""

from __future__ import annotations

import pytest

from tests.chaos import membership_logs as L
from tests.chaos.history import Entry, Read
from tests.chaos.partition_reads import fault_windows, join_walls, partition_reads

pytestmark = pytest.mark.timeout(30)

Q = "T/broker-a/0"
WALL = 1000.0  # wall = mono + WALL in these histories


def _event(i: int, f: str, at: float) -> Entry:
    return Entry(i, "event", f, "nemesis", at, at + WALL)


def _invoke(i: int, value: str, at: float) -> Entry:
    return Entry(i, "invoke", "send", value.partition("-")[0], at, at + WALL, op=i, value=value)


def _read(i: int, value: str, at: float, group: str = "chaos") -> Entry:
    return Entry(
        i, "ok", "read", "c0", at, at + WALL, group=group, reads=[Read(Q, i, value)], mode="push"
    )


def _history(read_at: float) -> list[Entry]:
    # partitions [1, 5] and [6, 10]; p0-1 is invoked during the first one
    return [
        _event(0, "fault", 1.0),
        _invoke(1, "p0-1", 2.0),
        _event(2, "heal", 5.0),
        _event(3, "fault", 6.0),
        _read(4, "p0-1", read_at),
        _event(5, "heal", 10.0),
    ]


def test_a_read_in_the_partition_of_its_send_is_early() -> None:
    entries = _history(read_at=6.5)
    entries[4] = _read(4, "p0-1", 3.0)
    result = partition_reads(entries, fault_windows(entries), [], "chaos")
    assert result.early == ["p0-1"]


def test_a_read_in_the_next_partition_after_the_slave_rejoined_is_not_early() -> None:
    # R12 seed 18 (session 13 soak): replicated in the quiet time, read as the next cut began
    entries = _history(read_at=6.0005)
    joins = [5.8 + WALL]
    result = partition_reads(entries, fault_windows(entries), joins, "chaos")
    assert result.early == []
    assert result.after_rejoin == ["p0-1"]


def test_a_read_in_a_later_partition_with_no_rejoin_between_is_early() -> None:
    entries = _history(read_at=6.5)
    joins = [0.5 + WALL, 7.0 + WALL]  # before the send, and after the read
    result = partition_reads(entries, fault_windows(entries), joins, "chaos")
    assert result.early == ["p0-1"]


def test_reads_outside_partitions_and_of_other_groups_are_ignored() -> None:
    entries = _history(read_at=5.5)
    entries.append(_read(6, "p0-1", 7.0, group="chaos-verify"))
    result = partition_reads(entries, fault_windows(entries), [], "chaos")
    assert result == type(result)([], [])


def test_join_walls_are_the_non_empty_in_sync_announcements() -> None:
    lines = L.parse(
        [
            "2026-11-23 03:41:45.583 INFO    actors.broker.ha_service broker-a/0/ha-service: "
            "in-sync slaves now [1]",
            "2026-11-23 03:41:46.976 INFO    actors.broker.ha_service broker-a/0/ha-service: "
            "in-sync slaves now []",
            "2026-11-23 03:41:51.382 INFO    actors.broker.ha_service broker-a/0/ha-service: "
            "slave 1 linked from offset 77213",
            "2026-11-23 03:41:51.382 INFO    actors.broker.ha_service broker-a/0/ha-service: "
            "in-sync slaves now [1]",
        ]
    )
    walls = join_walls(lines)
    assert len(walls) == 2
    assert walls[1] - walls[0] == pytest.approx(5.799, abs=1e-6)
