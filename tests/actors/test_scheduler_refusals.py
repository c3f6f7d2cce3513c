"""The delay Scheduler and the TimerScheduler while the store refuses their re-puts (say,
minInSyncReplicas while no slave is in sync, for as long as a slave is down): they keep the
record and retry, and log a bounded number of WARNINGs, not one per level and retry."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gevent
import pytest
from loguru import logger

import actors.broker.scheduler as scheduler_module
from actors.broker.delay import to_schedule
from actors.broker.scheduler import Scheduler
from actors.broker.store_results import GetStatus, PutStatus
from runtime.actor import new_future
from runtime.store.record import PutRecord, encode_record

LEVELS = 4
REFUSALS = 6


def done(value: Any) -> Any:
    fut = new_future()
    fut.set(value)
    return fut


class RefusingStore:
    """One parked record per delay level; every re-put refused ``REFUSALS`` times first."""

    def __init__(self) -> None:
        self.refused = 0
        self.stored: list[str] = []

    def get_messages(self, _g: str, _t: str, queue_id: int, offset: int, *_a: Any) -> Any:
        if offset > 0:
            return done(SimpleNamespace(status=GetStatus.NO_MATCHED_MESSAGE, messages=[]))
        record = to_schedule(PutRecord("T", 0, f"level-{queue_id}".encode(), ""), queue_id + 1, 18)
        raw = encode_record(record, queue_offset=0, physical_offset=0, store_timestamp=0)
        return done(SimpleNamespace(status=GetStatus.FOUND, messages=[raw], queue_offsets=[0]))

    def wait_arrival(self, *_a: Any) -> Any:
        fut = new_future()
        gevent.spawn_later(0.05, fut.set, None)
        return fut

    def put(self, records: list[PutRecord]) -> Any:
        if self.refused < REFUSALS * LEVELS:
            self.refused += 1
            return done(
                SimpleNamespace(
                    status=PutStatus.IN_SYNC_REPLICAS_NOT_ENOUGH,
                    reason="in-sync replicas not enough (minInSyncReplicas)",
                )
            )
        self.stored.append(records[0].body.decode())
        return done(SimpleNamespace(status=PutStatus.PUT_OK, reason=""))


def test_refused_re_puts_are_retried_and_logged_a_few_times(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "RETRY_S", 0.01)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    store = RefusingStore()
    ref = Scheduler.start(store, str(tmp_path), tuple(0 for _ in range(LEVELS)))
    try:
        deadline = time.monotonic() + 10
        while len(store.stored) < LEVELS and time.monotonic() < deadline:
            gevent.sleep(0.01)
        # Then every parked record is put back once the store takes it (none lost) ...
        assert sorted(store.stored) == [f"level-{i}" for i in range(LEVELS)]
        # ... and the refusals were logged once, not once per level and retry
        refusals = [line for line in lines if "re-put" in line]
        assert len(refusals) == 1, refusals
    finally:
        ref.stop()
        logger.remove(sink)
