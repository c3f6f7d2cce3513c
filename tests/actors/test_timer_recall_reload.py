"""The TimerScheduler after a restart: a message and its recall marker further on in the timer
topic, both due while the broker was down. Delivery waits until the re-read of the topic has
caught up, so the marker is known before its message is due: the message was put back (to its
consumers) as soon as the loader's first batch held it, before a later batch brought the
marker — the recall, which docs/broker.md promises a restart honours, was lost."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gevent
import gevent.event
import pytest

import actors.broker.timer_scheduler as timer_module
from actors.broker.delay import to_timer
from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.timer_scheduler import TimerScheduler
from runtime.actor import new_future
from runtime.remoting.properties import TIMER_DEL_UNIQKEY, UNIQ_KEY, encode_properties
from runtime.store.record import PutRecord, encode_record

pytestmark = pytest.mark.timeout(20)

SLOW_READ_S = 0.3
"""How long the fake store takes to answer a read past the first batch."""


def done(value: Any) -> Any:
    fut = new_future()
    fut.set(value)
    return fut


class TimerTopic:
    """The timer topic's queue 0 as the store serves it; reads past the first batch are slow."""

    def __init__(self, records: list[PutRecord]) -> None:
        now = int(time.time() * 1000)
        self.raw = [
            encode_record(r, queue_offset=i, physical_offset=i * 1000, store_timestamp=now)
            for i, r in enumerate(records)
        ]
        self.put_back: list[bytes] = []
        self.all_read = gevent.event.Event()

    def get_messages(self, _g: str, _t: str, _q: int, offset: int, count: int, *_a: Any) -> Any:
        batch = self.raw[offset : offset + count]
        if not batch:
            self.all_read.set()
            return done(SimpleNamespace(status=GetStatus.OFFSET_OVERFLOW_ONE, messages=[]))
        result = SimpleNamespace(
            status=GetStatus.FOUND,
            messages=batch,
            queue_offsets=list(range(offset, offset + len(batch))),
        )
        if offset == 0:
            return done(result)
        fut = new_future()
        gevent.spawn_later(SLOW_READ_S, fut.set, result)
        return fut

    def wait_arrival(self, *_a: Any) -> Any:
        fut = new_future()
        gevent.spawn_later(0.05, fut.set, None)
        return fut

    def read_message_bytes(self, physical: int) -> bytes:
        return self.raw[physical // 1000]

    def put(self, records: list[PutRecord]) -> Any:
        self.put_back.append(records[0].body)
        return done(SimpleNamespace(status=PutStatus.PUT_OK, reason=""))


def timer(body: bytes, due_ms: int, **props: str) -> PutRecord:
    return to_timer(PutRecord("T", 0, body, encode_properties(props)), due_ms)


def test_a_recall_read_in_a_later_batch_still_holds_after_a_restart(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "BATCH", 2)
    # Given a timer topic holding a message, another one, then the first one's recall marker,
    # all due while the broker was down (the marker in the loader's second batch)
    due = int(time.time() * 1000) - 1000
    topic = TimerTopic(
        [
            timer(b"drop", due, **{UNIQ_KEY: "u-drop"}),
            timer(b"keep", due, **{UNIQ_KEY: "u-keep"}),
            timer(b"", due, **{UNIQ_KEY: "u-marker", TIMER_DEL_UNIQKEY: "u-drop"}),
        ]
    )
    # When the TimerScheduler starts from a fresh progress and re-reads the topic
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        assert topic.all_read.wait(10)
        deadline = time.monotonic() + 10
        while ref.proxy().pending_count().get(timeout=5) and time.monotonic() < deadline:
            gevent.sleep(0.01)
        # Then only the message not recalled is put back (and not the marker)
        assert topic.put_back == [b"keep"]
    finally:
        ref.stop()


def test_a_marker_naming_rocketmqs_delete_key_recalls_its_message(tmp_path: Any) -> None:
    # Given a message and its recall marker written as RocketMQ's brokers write one: the
    # value is TimerMessageStore.buildDeleteKey(topic, uniqKey), "<topic>+<UNIQ_KEY>"
    due = int(time.time() * 1000) - 1000
    topic = TimerTopic(
        [
            timer(b"drop", due, **{UNIQ_KEY: "u-drop"}),
            timer(b"keep", due, **{UNIQ_KEY: "u-keep"}),
            timer(b"", due, **{UNIQ_KEY: "u-marker", TIMER_DEL_UNIQKEY: "T+u-drop"}),
        ]
    )
    # When the TimerScheduler delivers them
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        assert topic.all_read.wait(10)
        deadline = time.monotonic() + 10
        while ref.proxy().pending_count().get(timeout=5) and time.monotonic() < deadline:
            gevent.sleep(0.01)
        # Then the recalled message is not put back (nor the marker); the other one is
        assert topic.put_back == [b"keep"]
    finally:
        ref.stop()
