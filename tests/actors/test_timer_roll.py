"""A timer record still pending two days after it was stored is stored again in the timer topic
(rolled, RocketMQ's timerRollWindowSlot), its TIMER_ROLL_TIMES one more, and the first copy
counts as done. A 3-day timer (the maximum) was read back from its first record when due, but
retention (fileReservedTime, 72 h by default, often less) may have deleted that record's
segment by then: "record of offset ... is gone; skipped", a message lost."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gevent
import pytest

from actors.broker.delay import TIMER_OUT_MS, TIMER_TOPIC
from actors.broker.store_results import PutStatus
from actors.broker.timer_scheduler import ROLL_WINDOW_MS, TIMER_ROLL_TIMES, TimerScheduler
from runtime.remoting.properties import REAL_TOPIC, UNIQ_KEY, decode_properties
from runtime.store.record import PutRecord, encode_record
from tests.actors.test_timer_recall_reload import TimerTopic, done, timer

pytestmark = pytest.mark.timeout(20)


class AgedTimerTopic(TimerTopic):
    """Its records were stored ``age_ms`` ago; it keeps the records put."""

    def __init__(self, records: list[PutRecord], age_ms: int) -> None:
        super().__init__(records)
        stored_at = int(time.time() * 1000) - age_ms
        self.raw = [
            encode_record(r, queue_offset=i, physical_offset=i * 1000, store_timestamp=stored_at)
            for i, r in enumerate(records)
        ]
        self.puts: list[PutRecord] = []

    def put(self, records: list[PutRecord]) -> Any:
        self.puts.extend(records)
        return done(SimpleNamespace(status=PutStatus.PUT_OK, reason=""))


def test_a_timer_pending_past_the_roll_window_is_stored_again(tmp_path: Any) -> None:
    # Given a timer record stored two days and a second ago, due in an hour
    due = int(time.time() * 1000) + 3_600_000
    topic = AgedTimerTopic([timer(b"later", due, **{UNIQ_KEY: "u1"})], ROLL_WINDOW_MS + 1000)
    # When the TimerScheduler reads it
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        deadline = time.monotonic() + 10
        while not topic.puts and time.monotonic() < deadline:
            gevent.sleep(0.01)
        # Then it is stored again in the timer topic now, for the same due time, counted once
        assert len(topic.puts) == 1
        copy = topic.puts[0]
        props = decode_properties(copy.properties)
        assert (copy.topic, copy.queue_id, copy.body) == (TIMER_TOPIC, 0, b"later")
        assert props[TIMER_OUT_MS] == str(due) and props[REAL_TOPIC] == "T"
        assert props[UNIQ_KEY] == "u1" and props[TIMER_ROLL_TIMES] == "1"
        # And its first record is done with (nothing pending from it)
        deadline = time.monotonic() + 5
        while ref.proxy().pending_count().get(timeout=5) and time.monotonic() < deadline:
            gevent.sleep(0.01)
        assert ref.proxy().pending_count().get(timeout=5) == 0
    finally:
        ref.stop()


def test_a_due_timer_past_the_roll_window_is_delivered_not_rolled(tmp_path: Any) -> None:
    # Given a timer record stored three days ago, due a second ago (the broker was down)
    due = int(time.time() * 1000) - 1000
    topic = AgedTimerTopic([timer(b"now", due, **{UNIQ_KEY: "u1"})], 3 * 24 * 3_600_000)
    # When the TimerScheduler reads it
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        deadline = time.monotonic() + 10
        while not topic.puts and time.monotonic() < deadline:
            gevent.sleep(0.01)
        # Then it is put back into its topic
        assert [(r.topic, r.body) for r in topic.puts] == [("T", b"now")]
    finally:
        ref.stop()
