"""BackgroundWriter: coalesced JSON rewrites off the actor's path; past a burst, one per
interval."""

from __future__ import annotations

import json
import pathlib

import gevent
import gevent.event
import pytest

from runtime.store.background import BURST, BackgroundWriter

pytestmark = pytest.mark.timeout(20)


def _write_now(writer: BackgroundWriter, obj: object) -> None:
    """One change, and its write awaited (fewer than BURST so far: no interval to jump)."""
    done = gevent.event.AsyncResult()
    writer.request(obj, done)
    assert done.get(timeout=5) is True


def test_changes_are_written_at_once_until_a_burst_then_one_per_interval(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "topics.json"
    writer = BackgroundWriter(str(path), min_interval=60.0)
    # Given BURST changes, each written at once (an occasional change waits for nothing)
    for i in range(BURST):
        _write_now(writer, {"n": i})
    assert json.loads(path.read_bytes()) == {"n": BURST - 1}
    # When more come within the second, Then they wait for the interval (a minute here),
    # coalesced into one write of the newest
    for i in range(100):
        writer.request({"n": BURST + i})
        gevent.idle()
    assert writer.busy and writer.writes == BURST
    # And close() writes the newest at once
    with gevent.Timeout(5):
        writer.close()
    assert json.loads(path.read_bytes()) == {"n": BURST + 99}
    assert writer.writes == BURST + 1


def test_a_change_waiting_for_its_write_is_not_kept_waiting_for_the_interval(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "t.json"
    writer = BackgroundWriter(str(path), min_interval=60.0)
    for i in range(BURST):
        _write_now(writer, {"v": i})
    # Given changes since that wait for the interval
    writer.request({"v": "pending"})
    gevent.idle()
    assert writer.busy and writer.writes == BURST
    # When a change comes whose caller waits for it to be on disk (a topic deleted)
    deleted = gevent.event.AsyncResult()
    writer.request({"v": "deleted"}, deleted)
    # Then it is written now, not in a minute
    assert deleted.get(timeout=5) is True
    assert json.loads(path.read_bytes()) == {"v": "deleted"}
    writer.close()


def test_a_snapshot_taker_is_called_once_per_write_not_once_per_change(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "topics.json"
    writer = BackgroundWriter(str(path), min_interval=60.0)
    table: dict[str, int] = {}
    taken: list[int] = []

    def snapshot() -> dict[str, int]:
        taken.append(len(table))
        return dict(table)

    for i in range(BURST):
        table[f"t{i}"] = i
        _write_now(writer, snapshot)
    assert len(taken) == BURST
    # Given a burst of changes, each asking for a write of the table
    for i in range(1000):
        table[f"u{i}"] = i
        writer.request(snapshot)
    gevent.idle()
    # When they are written (close: the pending write at once)
    with gevent.Timeout(5):
        writer.close()
    # Then the table was copied once for them all, as it stood at the write
    assert taken[BURST:] == [BURST + 1000]
    assert len(json.loads(path.read_bytes())) == BURST + 1000
