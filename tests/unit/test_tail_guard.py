"""TailLossGuard: the highest offset a group may pull from and commit after a term began on a
log that may have lost its tail."""

from __future__ import annotations

from types import SimpleNamespace

import gevent
import gevent.event

from config import BrokerConfig
from runtime.remoting.codes import ResponseCode
from runtime.store.tail_guard import TailLossGuard
from tests.unit.pull_support import FakeStore, pull_at


def raised() -> TailLossGuard:
    guard = TailLossGuard()
    # a term begins with T/0 ending at 4, T/1 at 7 (the store holds nothing of U)
    guard.raise_at({("T", 0): 4, ("T", 1): 7})
    return guard


def test_a_lowered_guard_bounds_nothing() -> None:
    guard = TailLossGuard()
    assert guard.bound("g", "T", 0) is None
    assert guard.commit_value("g", "T", 0, 99) == 99
    guard.vouch("g", "T", 0, 50)  # (nothing is kept while lowered)
    guard.raise_at({("T", 0): 4})
    assert guard.bound("g", "T", 0) == 4


def test_a_guarded_group_is_bounded_by_the_queue_end_at_the_term_start() -> None:
    guard = raised()
    assert guard.bound("g", "T", 0) == 4
    assert guard.bound("h", "T", 1) == 7
    # a queue the store held nothing of ends at 0
    assert guard.bound("g", "T", 2) == 0
    assert guard.bound("k", "U", 0) == 0


def test_every_group_is_guarded_also_one_without_offsets() -> None:
    # (its first commits may have been lost with the tail)
    guard = raised()
    assert guard.bound("new", "T", 0) == 4
    assert guard.commit_value("new", "T", 0, 99) == 4


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


def test_a_topic_or_group_forgotten_is_no_longer_guarded_the_others_are() -> None:
    guard = raised()
    guard.vouch("g", "T", 0, 12)
    guard.forget(group="k")
    assert guard.bound("k", "U", 0) is None and guard.bound("g", "T", 0) == 12
    guard.forget(topic="T")
    assert guard.bound("g", "T", 0) is None and guard.bound("h", "T", 1) is None
    assert guard.commit_value("g", "T", 0, 99) == 99


def test_raising_again_starts_over_and_lowering_forgets() -> None:
    guard = raised()
    guard.vouch("g", "T", 0, 12)
    guard.forget(group="h")
    guard.raise_at({("T", 0): 6})
    assert guard.bound("g", "T", 0) == 6
    assert guard.bound("h", "T", 0) == 6  # (what was forgotten is guarded again)
    guard.lower()
    assert not guard.raised and guard.bound("g", "T", 0) is None


def test_what_a_master_hands_out_while_its_lease_lapsed_is_vouched_for() -> None:
    # Given a controller-mode master guarding g from T/0's end 4 (its term's start), g at 4
    guard = TailLossGuard()
    guard.raise_at({("T", 0): 4})
    ha = SimpleNamespace(writable=True, reconciling=False, master_link_up=False)
    ha.accepting_writes = lambda: ha.writable
    ha.serves_reads = lambda: True  # (it held a lease since it started)
    ctx = SimpleNamespace(
        cfg=BrokerConfig(),
        store=FakeStore(guard),
        ha=ha,
        got_messages=0,
        got_by={},
        got_bytes_by={},
    )
    assert pull_at(ctx, 4).code == ResponseCode.SUCCESS
    # When its lease lapses for a while (it serves reads, moves no consumer), g reads on to 12
    ha.writable = False
    assert int(pull_at(ctx, 8).ext_fields["nextBeginOffset"]) == 12
    # Then once it holds its lease again, g's pull from 12 (this log's own answer) is served
    ha.writable = True
    answer = pull_at(ctx, 12)
    assert answer.code == ResponseCode.PULL_NOT_FOUND, (answer.code, answer.remark)
    # (while a position this master never handed g is still moved back)
    moved = pull_at(ctx, 13)
    assert moved.code == ResponseCode.PULL_OFFSET_MOVED
    assert int(moved.ext_fields["nextBeginOffset"]) == 12


def test_a_pull_held_across_the_end_of_a_reconciliation_meets_the_guard_it_raised() -> None:
    # Given a classic master reconciling after a power loss (it moves no consumer yet; the
    # guard is not raised): T/0 ends at 12, and a consumer's long poll from 14 (its position
    # before the loss) is held, past the end it kept
    guard = TailLossGuard()
    store = FakeStore(guard)
    arrival = gevent.event.Event()
    store.wait_arrival = lambda topic, queue_id, offset, timeout: arrival.wait(timeout)
    ha = SimpleNamespace(reconciling=True, master_link_up=False, serves_reads=lambda: True)
    ha.accepting_writes = lambda: not ha.reconciling
    ctx = SimpleNamespace(
        cfg=BrokerConfig(), store=store, ha=ha, got_messages=0, got_by={}, got_bytes_by={}
    )
    pulling = gevent.spawn(pull_at, ctx, 14, suspend_ms=5000)
    gevent.sleep(0)  # (the pull runs until it parks)
    assert not pulling.ready()
    # When the reconciliation ends (the guard raised at the end it kept) and new messages
    # take offsets 12 .. 19
    ha.reconciling = False
    guard.raise_at({("T", 0): 12})
    store.end = 20
    arrival.set()
    # Then the held pull is moved back to 12, not served from 14 (skipping 12 and 13)
    answer = pulling.get(timeout=5)
    assert answer.code == ResponseCode.PULL_OFFSET_MOVED, (answer.code, answer.remark)
    assert int(answer.ext_fields["nextBeginOffset"]) == 12


def test_what_one_instance_of_a_group_was_handed_does_not_let_another_through() -> None:
    # Given g's instance A (one connection) given T/0 after a loss (the end 4) and read on to 12
    guard = raised()
    guard.vouch("g", "T", 0, 12, client="A")
    # Then instance B, which held the queue before the loss at 10 (a rebalance moved it to A
    # a moment ago), is still bounded by the end: its 10 is a position of the old log
    assert guard.bound("g", "T", 0, client="A") == 12
    assert guard.bound("g", "T", 0, client="B") == 4
    assert guard.commit_value("g", "T", 0, 10, client="B") == 4
    # And an offset handed to every instance (an operator's reset) lets each through
    guard.vouch("g", "T", 0, 11)
    assert guard.bound("g", "T", 0, client="B") == 11


def test_what_a_group_commits_within_its_bound_lets_each_instance_resume_there() -> None:
    # Given g's instance A handed T/0 up to 12 after a loss (the end 4), having consumed to 10
    guard = raised()
    guard.vouch("g", "T", 0, 12, client="A")
    assert guard.commit_value("g", "T", 0, 10, client="A") == 10
    # When A reconnects (a new connection, its position 12 kept) or B is given the queue
    # Then each may go on from the group's commit, not from 4 (re-reading the whole term)
    assert guard.bound("g", "T", 0, client="A2") == 10
    assert guard.bound("g", "T", 0, client="B") == 10
    # And a commit past the bound (a position of the old log) is lowered and vouches nothing
    assert guard.commit_value("g", "T", 0, 30, client="C") == 10
    assert guard.bound("g", "T", 0, client="B") == 10
    # And other groups are not moved by g's commits
    assert guard.bound("h", "T", 0, client="A") == 4
