"""A re-put the store refuses for good (MESSAGE_ILLEGAL, PROPERTIES_SIZE_EXCEEDED: the record
breaks a limit lowered since it was parked) is dropped with a WARNING, as RocketMQ 5's timer
answers it PUT_NO_RETRY; a refusal that holds for one timer message only does not hold back
the timers due after it. Before, such a record was retried every second for ever: its delay
level (for the timer: every timer due after it) delivered nothing more."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gevent
import pytest

import actors.broker.scheduler as scheduler_module
import actors.broker.timer_scheduler as timer_module
from actors.broker.scheduler import Scheduler
from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.timer_scheduler import TimerScheduler
from runtime.remoting.properties import UNIQ_KEY
from runtime.store.record import PutRecord
from tests.actors.test_scheduler_refusals import RefusingStore, done
from tests.actors.test_timer_recall_reload import TimerTopic, timer

pytestmark = pytest.mark.timeout(20)


class RefusingTimerTopic(TimerTopic):
    """Refuses every re-put of the bodies in ``refuse`` with ``status``."""

    def __init__(self, records: list[PutRecord], refuse: set[bytes], status: PutStatus) -> None:
        super().__init__(records)
        self.refuse = refuse
        self.status = status
        self.refusals = 0

    def put(self, records: list[PutRecord]) -> Any:
        if records[0].body in self.refuse:
            self.refusals += 1
            return done(SimpleNamespace(status=self.status, reason="too big"))
        return super().put(records)


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.01)
    return True


def test_a_timer_refused_for_good_is_dropped_and_the_next_is_delivered(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    monkeypatch.setattr(timer_module, "RETRY_S", 0.01)
    # Given two timer messages due now, the store refusing the first as MESSAGE_ILLEGAL
    due = int(time.time() * 1000) - 1000
    records = [timer(b"big", due, **{UNIQ_KEY: "u1"}), timer(b"next", due, **{UNIQ_KEY: "u2"})]
    topic = RefusingTimerTopic(records, {b"big"}, PutStatus.MESSAGE_ILLEGAL)
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        # When the scheduler delivers them, Then the second is put back
        assert wait_for(lambda: topic.put_back == [b"next"]), topic.put_back
        # and the first was tried once, dropped with a WARNING, and counted delivered
        assert wait_for(lambda: ref.proxy().pending_count().get(timeout=5) == 0)
        assert topic.refusals == 1
        assert any("dropped" in line and "MESSAGE_ILLEGAL" in line for line in warnings)
    finally:
        ref.stop()


def test_a_timer_refused_for_now_does_not_hold_back_the_next(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "RETRY_S", 0.01)
    # Given two timer messages due now, the store refusing the first for a while
    due = int(time.time() * 1000) - 1000
    records = [timer(b"held", due, **{UNIQ_KEY: "u1"}), timer(b"next", due, **{UNIQ_KEY: "u2"})]
    topic = RefusingTimerTopic(records, {b"held"}, PutStatus.IN_SYNC_REPLICAS_NOT_ENOUGH)
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        # When the scheduler delivers them, Then the second is put back meanwhile
        assert wait_for(lambda: topic.put_back == [b"next"]), topic.put_back
        # and the first is kept and retried; once the store takes it, it is put back too
        assert topic.refusals >= 1
        topic.refuse.clear()
        assert wait_for(lambda: sorted(topic.put_back) == [b"held", b"next"]), topic.put_back
    finally:
        ref.stop()


class IllegalFirstStore(RefusingStore):
    """Level 1 holds two parked records; the first one's re-put is refused MESSAGE_ILLEGAL."""

    def __init__(self) -> None:
        super().__init__()
        self.illegal = 0

    def get_messages(self, _g: str, _t: str, queue_id: int, offset: int, *a: Any) -> Any:
        if queue_id != 0 or offset > 1:
            return super().get_messages(_g, _t, queue_id, 1, *a)  # (nothing)
        first = super().get_messages(_g, _t, 0, 0, *a).get(timeout=1)
        raw = first.messages[0]
        return done(
            SimpleNamespace(
                status=first.status,
                messages=[raw, raw][offset:],
                queue_offsets=[0, 1][offset:],
            )
        )

    def put(self, records: list[PutRecord]) -> Any:
        if not self.illegal:
            self.illegal += 1
            return done(SimpleNamespace(status=PutStatus.MESSAGE_ILLEGAL, reason="too big"))
        self.stored.append(records[0].body.decode())
        return done(SimpleNamespace(status=PutStatus.PUT_OK, reason=""))


def test_a_delay_level_moves_past_a_record_refused_for_good(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    monkeypatch.setattr(scheduler_module, "RETRY_S", 0.01)
    # Given delay level 1 holding two parked records, the store refusing the first for good
    store = IllegalFirstStore()
    ref = Scheduler.start(store, str(tmp_path), (0,))
    try:
        # When the scheduler delivers them, Then the second is put back, the level's progress
        # passes both, and the first was dropped with a WARNING
        assert wait_for(lambda: store.stored == ["level-0"]), store.stored
        assert wait_for(lambda: ref.proxy().progress().get(timeout=5).get(1) == 2)
        assert store.illegal == 1
        assert any("dropped" in line and "MESSAGE_ILLEGAL" in line for line in warnings)
    finally:
        ref.stop()


class DamagedFirstStore(RefusingStore):
    """Level 1's queue: a damaged record at offset 0 (the queue skips it: MESSAGE_WAS_REMOVING,
    next offset 1), a good one at 1."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = REFUSED_NEVER
        self.reads_at_0 = 0

    def get_messages(self, _g: str, _t: str, queue_id: int, offset: int, *a: Any) -> Any:
        if queue_id == 0 and offset == 0:
            self.reads_at_0 += 1
            removing = GetStatus.MESSAGE_WAS_REMOVING
            return done(SimpleNamespace(status=removing, messages=[], next_begin_offset=1))
        if queue_id == 0 and offset == 1:
            good = super().get_messages(_g, _t, 0, 0, *a).get(timeout=1)
            return done(
                SimpleNamespace(status=good.status, messages=good.messages, queue_offsets=[1])
            )
        return super().get_messages(_g, _t, queue_id, 1, *a)


REFUSED_NEVER = 10**9


def test_a_delay_level_moves_past_a_damaged_record(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "RETRY_S", 0.01)
    # Given delay level 1 whose first parked record is damaged (the queue skips it)
    store = DamagedFirstStore()
    ref = Scheduler.start(store, str(tmp_path), (0,))
    try:
        # When the scheduler reads the level, Then it moves past it and delivers the next
        assert wait_for(lambda: store.stored == ["level-0"]), store.stored
        assert ref.proxy().progress().get(timeout=5).get(1) == 2
        assert store.reads_at_0 == 1
    finally:
        ref.stop()


class DamagedFirstTimerTopic(TimerTopic):
    """The timer topic's offset 0 is damaged (skipped by the queue), offset 1 is good."""

    def __init__(self, records: list[PutRecord]) -> None:
        super().__init__(records)
        self.reads_at_0 = 0

    def get_messages(self, _g: str, _t: str, _q: int, offset: int, count: int, *a: Any) -> Any:
        if offset == 0:
            self.reads_at_0 += 1
            removing = GetStatus.MESSAGE_WAS_REMOVING
            return done(SimpleNamespace(status=removing, messages=[], next_begin_offset=1))
        return super().get_messages(_g, _t, _q, offset, count, *a)


def test_the_timer_moves_past_a_damaged_record(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "RETRY_S", 0.01)
    # Given a timer topic whose first record is damaged, its second due now
    due = int(time.time() * 1000) - 1000
    records = [timer(b"damaged", due, **{UNIQ_KEY: "u1"}), timer(b"good", due, **{UNIQ_KEY: "u2"})]
    topic = DamagedFirstTimerTopic(records)
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        # When the scheduler loads the topic, Then it moves past the damaged one (read once)
        # and delivers the good one
        assert wait_for(lambda: topic.put_back == [b"good"]), topic.put_back
        assert topic.reads_at_0 == 1
    finally:
        ref.stop()
