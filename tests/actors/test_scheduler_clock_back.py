"""The delay Scheduler when a parked record's store timestamp is further ahead than its level's
delay (the clock was set back after it was stored): it is due at once, as RocketMQ's
ScheduleMessageService.correctDeliverTimestamp has it. It waited for the clock to catch up: a
message stored before a one-hour step back was held an hour longer, and with it every later
message of its level."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gevent
import pytest

from actors.broker.delay import to_schedule
from actors.broker.scheduler import Scheduler
from actors.broker.store_results import GetStatus, PutStatus
from runtime.actor import new_future
from runtime.store.record import PutRecord, encode_record

pytestmark = pytest.mark.timeout(20)

HOUR_MS = 3_600_000


def done(value: Any) -> Any:
    fut = new_future()
    fut.set(value)
    return fut


class LevelOneQueue:
    """Level 1's schedule queue holding one record stored "an hour from now"."""

    def __init__(self) -> None:
        self.put_back: list[bytes] = []
        store_ts = int(time.time() * 1000) + HOUR_MS
        record = to_schedule(PutRecord("T", 0, b"m", ""), 1, 18)
        self.raw = encode_record(
            record, queue_offset=0, physical_offset=0, store_timestamp=store_ts
        )

    def get_messages(self, _g: str, _t: str, queue_id: int, offset: int, *_a: Any) -> Any:
        if queue_id != 0 or offset > 0:
            return done(SimpleNamespace(status=GetStatus.NO_MATCHED_MESSAGE, messages=[]))
        return done(SimpleNamespace(status=GetStatus.FOUND, messages=[self.raw], queue_offsets=[0]))

    def wait_arrival(self, *_a: Any) -> Any:
        fut = new_future()
        gevent.spawn_later(0.05, fut.set, None)
        return fut

    def put(self, records: list[PutRecord]) -> Any:
        self.put_back.append(records[0].body)
        return done(SimpleNamespace(status=PutStatus.PUT_OK, reason=""))


def test_a_record_stored_before_the_clock_was_set_back_is_due_at_once(tmp_path: Any) -> None:
    # Given a level-1 (100 ms) record whose store timestamp is an hour ahead of the clock
    store = LevelOneQueue()
    # When the Scheduler runs
    ref = Scheduler.start(store, str(tmp_path), (100, 200))
    try:
        deadline = time.monotonic() + 5
        while not store.put_back and time.monotonic() < deadline:
            gevent.sleep(0.01)
        # Then it is put back now, not an hour later
        assert store.put_back == [b"m"]
        assert ref.proxy().progress().get(timeout=5)[1] == 1
    finally:
        ref.stop()
