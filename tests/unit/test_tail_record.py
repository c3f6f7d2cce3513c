"""The tail-loss guard's record (``runtime.store.tail_record``): what a restart raises again."""

from __future__ import annotations

import pathlib

import pytest

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
