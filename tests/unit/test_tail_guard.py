"""TailLossGuard: the highest offset a guarded group may pull from and commit after a term began
on a log that may have lost its tail."""

from __future__ import annotations

from runtime.store.tail_guard import TailLossGuard


def raised() -> TailLossGuard:
    guard = TailLossGuard()
    # a term begins with T/0 ending at 4, T/1 at 7; g and h had offsets of T, k of U
    guard.raise_at({("T", 0): 4, ("T", 1): 7}, ["T@g", "T@h", "U@k"])
    return guard


def test_a_lowered_guard_bounds_nothing() -> None:
    guard = TailLossGuard()
    assert guard.bound("g", "T", 0) is None
    assert guard.commit_value("g", "T", 0, 99) == 99
    guard.vouch("g", "T", 0, 50)  # (nothing is kept while lowered)
    guard.raise_at({("T", 0): 4}, ["T@g"])
    assert guard.bound("g", "T", 0) == 4


def test_a_guarded_group_is_bounded_by_the_queue_end_at_the_term_start() -> None:
    guard = raised()
    assert guard.bound("g", "T", 0) == 4
    assert guard.bound("h", "T", 1) == 7
    # a queue the store held nothing of ends at 0
    assert guard.bound("g", "T", 2) == 0
    assert guard.bound("k", "U", 0) == 0


def test_groups_without_offsets_when_raised_are_not_guarded() -> None:
    guard = raised()
    assert guard.bound("new", "T", 0) is None
    assert guard.bound("k", "T", 0) is None  # (k had offsets of U only)
    assert guard.commit_value("new", "T", 0, 99) == 99


def test_what_the_master_hands_a_group_raises_its_bound() -> None:
    guard = raised()
    guard.vouch("g", "T", 0, 12)
    assert guard.bound("g", "T", 0) == 12
    guard.vouch("g", "T", 0, 9)  # (never lowered)
    assert guard.bound("g", "T", 0) == 12
    # per group and queue
    assert guard.bound("h", "T", 0) == 4
    assert guard.bound("g", "T", 1) == 7


def test_commits_past_the_bound_are_stored_as_the_bound() -> None:
    guard = raised()
    assert guard.commit_value("g", "T", 0, 3) == 3
    assert guard.commit_value("g", "T", 0, 4) == 4
    assert guard.commit_value("g", "T", 0, 10) == 4
    assert guard.commit_value("g", "T", 0, 10) == 4  # (logged once)
    guard.vouch("g", "T", 0, 14)
    assert guard.commit_value("g", "T", 0, 10) == 10


def test_raising_again_starts_over_and_lowering_forgets() -> None:
    guard = raised()
    guard.vouch("g", "T", 0, 12)
    guard.raise_at({("T", 0): 6}, ["T@g"])
    assert guard.bound("g", "T", 0) == 6
    assert guard.bound("h", "T", 0) is None
    guard.lower()
    assert not guard.raised and guard.bound("g", "T", 0) is None
