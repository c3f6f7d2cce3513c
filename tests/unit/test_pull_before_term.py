"""A controller-mode node that has held no lease, and whose log no master accepted, since it
started reads out nothing of its log (recovery made all of it visible, also a tail the group
never confirmed): a pull waits for that (long polling), else PULL_NOT_FOUND keeping the
consumer's offset; the wait ends when the pull's connection closes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gevent
import pytest

from actors.broker import pull_gates, pull_handler
from config import BrokerConfig
from runtime.ha.state import HAState, Role
from runtime.remoting.codes import ResponseCode
from runtime.store.tail_guard import TailLossGuard
from tests.unit.pull_support import FakeStore, Session, pull_at

pytestmark = pytest.mark.timeout(30)


def context(state: HAState) -> Any:
    return SimpleNamespace(
        cfg=BrokerConfig(),
        store=FakeStore(TailLossGuard()),
        ha=state,
        got_messages=0,
        got_by={},
        got_bytes_by={},
    )


def test_a_master_without_a_term_yet_reads_out_nothing() -> None:
    # Given a controller-mode master just started (its log holds offsets 0 .. 11)
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    # When a consumer pulls without suspending
    answer = pull_at(context(state), 4)
    # Then nothing is read and its offset is kept
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert int(answer.ext_fields["nextBeginOffset"]) == 4


def test_a_held_pull_is_answered_from_the_log_once_the_master_holds_its_first_lease() -> None:
    # Given the same master and a consumer's long poll (suspended) parked on it
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    pulling = gevent.spawn(pull_at, context(state), 4, suspend_ms=5000)
    gevent.sleep(0)  # (the pull runs until it parks)
    assert not pulling.ready()
    # When the controller grants it a lease
    state.leased = True
    state.notify()
    # Then the pull reads the log
    answer = pulling.get(timeout=5)
    assert answer.code == ResponseCode.SUCCESS, answer.remark
    # And a classic node is not held; a controller-mode slave is, until a master accepts its
    # log (its HA client's ACCEPT sets ``leased``): a stale consumer read past offsets a new
    # term reused from a restarted slave while every node was down (chaos R14-all)
    for role in (Role.SLAVE, Role.MASTER):
        assert HAState(node_id=1, role=role, sync=True).serves_reads()
    slave = HAState(node_id=1, role=Role.SLAVE, sync=True, controller_mode=True)
    assert not slave.serves_reads()
    slave.leased = True
    assert slave.serves_reads()


class Clock:
    """The pull handler's clock (``time.monotonic``), moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_the_wait_for_the_first_lease_is_part_of_the_pulls_hold_not_one_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a controller-mode master without a term, and a long poll (5 s) at T/0's end (12)
    clock = Clock()
    monkeypatch.setattr(pull_handler, "time", clock)
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    ctx = context(state)
    held: list[float] = []

    def wait_arrival(topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        held.append(timeout)
        clock.now += timeout  # (nothing arrives)
        return False

    ctx.store.wait_arrival = wait_arrival
    pulling = gevent.spawn(pull_at, ctx, 12, suspend_ms=5000)
    gevent.sleep(0)
    # When its first lease comes 4.9 s into the hold
    clock.now += 4.9
    state.leased = True
    state.notify()
    answer = pulling.get(timeout=5)
    # Then the pull is held for what is left of its 5 s, not 5 s more (the consumer's call
    # times out a suspend timeout and a margin after it sent the pull)
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert sum(held) <= 0.1 + 1e-6, held


def test_without_long_polling_the_wait_for_a_term_is_a_short_poll() -> None:
    # Given a master without a term, longPollingEnable off (short polls of 1 s)
    waited: list[float] = []
    ha = SimpleNamespace(serves_reads=lambda: False)
    ha.wait_until = lambda predicate, timeout: waited.append(timeout) or False
    ctx = context(HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True))
    ctx.ha = ha
    ctx.cfg = BrokerConfig(long_polling_enable=False, short_polling_time_mills=1000)
    # When a consumer's long poll (15 s) comes
    answer = pull_at(ctx, 4, suspend_ms=15_000)
    # Then it waits a short poll for the term, as for messages
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert waited == [1.0]


def test_a_commit_riding_on_a_pull_is_stored_also_before_the_node_settles() -> None:
    # Given a controller-mode master just started (no lease yet)
    ctx = context(HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True))
    # When a consumer's pull carries its commit of offset 9
    answer = pull_at(ctx, 9, commit=9)
    # Then nothing is read, but the commit is stored, as RocketMQ stores it whatever the answer
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert ctx.store.committed == [("g", "T", 0, 9)]


def test_the_wait_for_a_term_ends_when_the_pulls_connection_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a controller-mode master that gets no term, and a long poll with a suspend timeout
    # of years (a client's choice: the broker takes it as given)
    clock = Clock()
    monkeypatch.setattr(pull_gates, "time", clock)
    session = Session()
    waited: list[float] = []

    def wait_until(predicate: Any, timeout: float) -> bool:
        waited.append(timeout)
        assert len(waited) < 100, "the wait goes on after its connection closed"
        if len(waited) == 2:
            session.alive = False  # (the client closes its connection meanwhile)
        clock.now += timeout  # (no term comes)
        return False

    ctx = context(HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True))
    ctx.ha = SimpleNamespace(serves_reads=lambda: False, wait_until=wait_until)
    # When its connection closes while it waits for the term
    answer = pull_at(ctx, 4, suspend_ms=10**12, session=session)
    # Then the wait ends at its next recheck (it went on for the whole suspend timeout: a
    # client closing connections with such pulls piled up greenlets while the node settled)
    assert waited == [pull_gates.TERM_RECHECK_S] * 2
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert int(answer.ext_fields["nextBeginOffset"]) == 4
