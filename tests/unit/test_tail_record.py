"""The tail-loss guard's record (``runtime.store.tail_record``): what a restart raises again."""

from __future__ import annotations

import pathlib

import pytest

from runtime.errors import ProtocolError
from runtime.store import tail_record
from runtime.store.tail_guard import TailLossGuard

pytestmark = pytest.mark.timeout(30)

RAISED_MS = 1_000_000


def saved(config: pathlib.Path) -> TailLossGuard:
    """A guard raised at RAISED_MS on T/0 ending at 4, T/1 at 7, that forgot topic Gone and
    group g-removed; its record written to ``config``."""
    guard = TailLossGuard()
    guard.raise_at({("T", 0): 4, ("T", 1): 7, ("Gone", 0): 3}, raised_ms=RAISED_MS)
    guard.forget(topic="Gone")
    guard.forget(group="g-removed")
    tail_record.save(str(config), tail_record.snapshot(guard))
    return guard


def test_a_restart_raises_the_guard_again_and_vouches_the_committed_offsets(
    tmp_path: pathlib.Path,
) -> None:
    saved(tmp_path)
    # When a new process's guard is restored with g's commit of T/0 at 9
    guard = TailLossGuard()
    assert tail_record.restore(str(tmp_path), guard, [("g", "T", 0, 9)], RAISED_MS + 60_000)
    # Then the ends hold for every group, g's commit is its own, the forgotten stay forgotten
    assert guard.bound("h", "T", 0, "c1") == 4
    assert guard.bound("h", "T", 1, "c1") == 7
    assert guard.bound("g", "T", 0, "c2") == 9
    assert guard.bound("h", "Gone", 0) is None
    assert guard.bound("g-removed", "T", 0) is None
    assert guard.raised_ms == RAISED_MS


def test_a_record_older_than_a_day_is_dropped(tmp_path: pathlib.Path) -> None:
    saved(tmp_path)
    guard = TailLossGuard()
    assert not tail_record.restore(str(tmp_path), guard, [], RAISED_MS + tail_record.KEPT_MS)
    assert guard.bound("h", "T", 0) is None
    assert not (tmp_path / tail_record.FILE_NAME).exists()


def test_a_guard_raised_already_is_kept_with_what_it_vouched(tmp_path: pathlib.Path) -> None:
    # Given a guard in this process that vouched c1's position 6 (its store opened again for
    # a role change)
    guard = saved(tmp_path)
    guard.vouch("h", "T", 0, 6, "c1")
    # When it is restored
    assert tail_record.restore(str(tmp_path), guard, [], RAISED_MS + 1)
    # Then c1 keeps its position
    assert guard.bound("h", "T", 0, "c1") == 6


def test_a_lowered_guard_removes_the_record(tmp_path: pathlib.Path) -> None:
    guard = saved(tmp_path)
    guard.lower()
    tail_record.save(str(tmp_path), tail_record.snapshot(guard))
    assert not (tmp_path / tail_record.FILE_NAME).exists()
    assert not tail_record.restore(str(tmp_path), TailLossGuard(), [], RAISED_MS)


def test_an_unreadable_record_is_dropped_and_guards_nothing(tmp_path: pathlib.Path) -> None:
    (tmp_path / tail_record.FILE_NAME).write_bytes(b"{not json")
    guard = TailLossGuard()
    assert not tail_record.restore(str(tmp_path), guard, [], RAISED_MS)
    assert not guard.raised
    assert not (tmp_path / tail_record.FILE_NAME).exists()


def test_a_new_loss_within_the_day_raises_the_guard_at_the_lower_ends(
    tmp_path: pathlib.Path,
) -> None:
    # Given the record of a guard raised at T/0 4, T/1 7 (and Gone/0 3)
    saved(tmp_path)
    # When another loss leaves T/0 at 6, T/1 at 5 and a new topic N/0 at 2, g committed T/0 5
    guard = TailLossGuard()
    ends = {("T", 0): 6, ("T", 1): 5, ("N", 0): 2}
    tail_record.raise_new(str(tmp_path), guard, ends, [("g", "T", 0, 5)], RAISED_MS + 1000)
    # Then each queue is guarded from the lower end (a queue the record lacks: from 0), g's
    # stored commit is its own, and the guard is raised now
    assert guard.bound("h", "T", 0) == 4
    assert guard.bound("h", "T", 1) == 5
    assert guard.bound("h", "N", 0) == 0
    assert guard.bound("h", "Gone", 0) == 0
    assert guard.bound("g", "T", 0) == 5
    assert guard.raised_ms == RAISED_MS + 1000


def test_a_new_loss_with_no_record_raises_the_guard_at_its_ends(tmp_path: pathlib.Path) -> None:
    guard = TailLossGuard()
    tail_record.raise_new(str(tmp_path), guard, {("T", 0): 6}, [], RAISED_MS)
    assert guard.bound("h", "T", 0) == 6


def test_a_slave_copies_its_masters_record_or_its_absence(tmp_path: pathlib.Path) -> None:
    master, slave = tmp_path / "m", tmp_path / "s"
    master.mkdir()
    slave.mkdir()
    saved(master)
    tail_record.copy(str(slave), tail_record.file_bytes(str(master)))
    assert tail_record.restore(str(slave), TailLossGuard(), [], RAISED_MS + 1)
    tail_record.copy(str(slave), b"")
    assert not (slave / tail_record.FILE_NAME).exists()
    with pytest.raises(ProtocolError):
        tail_record.copy(str(slave), b'{"ends": 1}')
