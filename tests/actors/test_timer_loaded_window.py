"""The TimerScheduler holds at most ``max_loaded`` pending timers in memory (``timerMaxLoaded``).
It held every one in its heap: a producer parking millions of timers (up to 3 days ahead) grew
the broker's memory until it died. Now the records past its horizon stay in the timer topic
only, and the scheduler reads them again (a rescan from the lowest one left) when the loaded
ones run low: still delivered, never early, in due order, across a restart, and a recall
marker left unloaded still recalls its loaded message."""

from __future__ import annotations

import json
import os
import random
import time
from types import SimpleNamespace
from typing import Any

import gevent
import pytest

import actors.broker.timer_scheduler as timer_module
from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.timer_scheduler import TimerScheduler
from runtime.actor import new_future
from runtime.remoting.properties import TIMER_DEL_UNIQKEY, UNIQ_KEY
from runtime.store.record import PutRecord, encode_record
from tests.actors.test_timer_recall_reload import done, timer

pytestmark = pytest.mark.timeout(30)


class Topic:
    """The timer topic's queue 0 as the store serves it, records appended at any time; it
    notes each put back (body, when) in order."""

    def __init__(self, records: list[PutRecord], read_s: float = 0.0) -> None:
        self.read_s = read_s
        """How long a read takes (0: answered at once)."""
        self.raw: list[bytes] = []
        self.put_back: list[tuple[bytes, int]] = []
        self.watching = False
        """While True, ``read`` notes the offsets read (``get_messages``)."""
        self.read: list[int] = []
        self.read_before: dict[bytes, list[int]] = {}
        """Body -> the reads noted (each batch's last offset) before it was put back."""
        for record in records:
            self.add(record)

    def add(self, record: PutRecord) -> None:
        i = len(self.raw)
        now = int(time.time() * 1000)
        self.raw.append(
            encode_record(record, queue_offset=i, physical_offset=i * 1000, store_timestamp=now)
        )

    def get_messages(self, _g: str, _t: str, _q: int, offset: int, count: int, *_a: Any) -> Any:
        batch = self.raw[offset : offset + count]
        if self.watching and batch:
            self.read.append(offset + len(batch) - 1)
        if not batch:
            return done(SimpleNamespace(status=GetStatus.OFFSET_OVERFLOW_ONE, messages=[]))
        offsets = list(range(offset, offset + len(batch)))
        result = SimpleNamespace(status=GetStatus.FOUND, messages=batch, queue_offsets=offsets)
        if not self.read_s:
            return done(result)
        fut = new_future()
        gevent.spawn_later(self.read_s, fut.set, result)
        return fut

    def wait_arrival(self, *_a: Any) -> Any:
        fut = new_future()
        gevent.spawn_later(0.02, fut.set, None)
        return fut

    def read_message_bytes(self, physical: int) -> bytes:
        return self.raw[physical // 1000]

    def put(self, records: list[PutRecord]) -> Any:
        self.put_back.append((records[0].body, int(time.time() * 1000)))
        self.read_before[records[0].body] = list(self.read)
        return done(SimpleNamespace(status=PutStatus.PUT_OK, reason=""))

    def bodies(self) -> list[bytes]:
        return [body for body, _at in self.put_back]


def wait_for(check: Any, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        gevent.sleep(0.01)
    return bool(check())


def timers(dues: dict[bytes, int]) -> list[PutRecord]:
    return [timer(body, due, **{UNIQ_KEY: body.decode()}) for body, due in dues.items()]


def assert_due_order_never_early(topic: Topic, dues: dict[bytes, int]) -> None:
    assert topic.bodies() == sorted(topic.bodies(), key=lambda body: dues[body])
    assert all(at >= dues[body] for body, at in topic.put_back)


def test_at_most_max_loaded_in_memory_and_all_delivered_in_due_order(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "BATCH", 5)
    # Given 40 timers in the timer topic, due 40 ms apart, stored in random order
    base = int(time.time() * 1000) + 1000
    order = list(range(40))
    random.Random(3).shuffle(order)
    dues = {b"t%02d" % i: base + 40 * i for i in order}
    topic = Topic(timers(dues))
    # When a TimerScheduler that loads at most 8 runs, and 5 timers due before all of them
    # arrive once it has loaded some
    ref = TimerScheduler.start(topic, str(tmp_path), max_loaded=8)
    try:
        assert wait_for(lambda: ref.proxy().pending_count().get(timeout=5) >= 6)
        sooner = {b"s%d" % j: base - 600 + 20 * j for j in range(5)}
        for record in timers(sooner):
            topic.add(record)
        dues.update(sooner)
        assert wait_for(lambda: len(topic.put_back) == len(dues))
        # Then every one is put back once, none before its time, in due order
        assert sorted(topic.bodies()) == sorted(dues)
        assert_due_order_never_early(topic, dues)
        # And it never held more than 8 of them
        assert ref.proxy().peak_loaded().get(timeout=5) <= 8
    finally:
        ref.stop()


def test_the_window_restarts_from_the_progress(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "BATCH", 3)
    # Given 10 timers due at once and 20 due later, interleaved in the timer topic
    now = int(time.time() * 1000)
    first = {b"a%d" % i: now - 1000 + i for i in range(10)}
    later = {b"b%02d" % i: now + 2500 + 30 * i for i in range(20)}
    mixed = [*first.items(), *later.items()]
    random.Random(5).shuffle(mixed)
    records = timers(dict(mixed))
    topic = Topic(records)
    # When a TimerScheduler loading at most 4 delivers the first 10 and stops
    ref = TimerScheduler.start(topic, str(tmp_path), max_loaded=4)
    try:
        assert wait_for(lambda: len(topic.put_back) == len(first))
        assert ref.proxy().peak_loaded().get(timeout=5) <= 4
    finally:
        ref.stop()
    assert sorted(topic.bodies()) == sorted(first)
    assert_due_order_never_early(topic, first)
    # And another starts on the same topic and progress (a restart)
    again = Topic(records)
    ref = TimerScheduler.start(again, str(tmp_path), max_loaded=4)
    try:
        assert wait_for(lambda: len(again.put_back) == len(later))
        gevent.sleep(0.2)
        # Then it puts back the 20 later ones, in due order, none early, and none of the first
        assert sorted(again.bodies()) == sorted(later)
        assert_due_order_never_early(again, later)
        assert ref.proxy().peak_loaded().get(timeout=5) <= 4
    finally:
        ref.stop()
    # And its progress holds them all delivered
    with open(os.path.join(str(tmp_path), "timerProgress.json"), "rb") as fh:
        saved = json.loads(fh.read())
    assert saved["watermark"] == len(records) and saved["deliveredRanges"] == []


def test_a_backlog_due_at_a_restart_is_put_back_in_due_order(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "BATCH", 2)
    # Given 30 timers all due while the broker was down, stored in random order, in a topic
    # whose reads take a while
    now = int(time.time() * 1000)
    order = list(range(30))
    random.Random(11).shuffle(order)
    dues = {b"t%02d" % i: now - 60_000 + i for i in order}
    topic = Topic(timers(dues), read_s=0.01)
    # When a TimerScheduler loading at most 4 starts (it re-reads the topic for the ones it
    # left while it puts back the loaded ones)
    ref = TimerScheduler.start(topic, str(tmp_path), max_loaded=4)
    try:
        assert wait_for(lambda: len(topic.put_back) == len(dues))
        # Then all are put back in due order, none loaded past a rescan's floor going first
        assert_due_order_never_early(topic, dues)
        assert ref.proxy().peak_loaded().get(timeout=5) <= 4
    finally:
        ref.stop()


def test_a_timer_sent_during_a_rescan_is_not_held_up(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "BATCH", 2)
    # Given 3 timers due soon and 40 due in an hour, in a topic whose reads take 0.1 s (a
    # scheduler loading 4 at most re-reads the 40 in 20 reads once the 3 are delivered)
    now = int(time.time() * 1000)
    soon = {b"n%d" % i: now + 300 + i for i in range(3)}
    far = {b"f%02d" % i: now + 3_600_000 + i for i in range(40)}
    topic = Topic(timers({**soon, **far}), read_s=0.1)
    ref = TimerScheduler.start(topic, str(tmp_path), max_loaded=4)
    try:
        assert wait_for(lambda: len(topic.put_back) == len(soon))
        # When a timer due in 100 ms is sent while it re-reads them
        topic.watching = True
        due = int(time.time() * 1000) + 100
        topic.add(timer(b"q", due, **{UNIQ_KEY: "q"}))
        # Then it is put back (never early) before the re-read has reached the last of the 40
        # (offset 42; the re-read takes 20 reads of 0.1 s)
        assert wait_for(lambda: len(topic.put_back) == len(soon) + 1)
        body, at = topic.put_back[-1]
        assert body == b"q" and at >= due
        rescanned = [o for o in topic.read_before[b"q"] if o < len(soon) + len(far)]
        assert max(rescanned, default=-1) < 42, topic.read
        assert ref.proxy().peak_loaded().get(timeout=5) <= 4
    finally:
        ref.stop()


def test_a_recall_marker_past_the_horizon_recalls_its_loaded_message(tmp_path: Any) -> None:
    # Given a message and its recall marker due at the same time, 3 timers due with them
    # before the message and two between it and the marker (a scheduler loading 5 at most
    # keeps the first 4 once it reads the sixth: the message loaded, the marker read past
    # its horizon)
    due = int(time.time() * 1000) + 300
    records = [timer(b"a%d" % i, due, **{UNIQ_KEY: f"a{i}"}) for i in range(3)]
    records.append(timer(b"drop", due, **{UNIQ_KEY: "u-drop"}))
    records.append(timer(b"x", due, **{UNIQ_KEY: "x"}))
    records.append(timer(b"y", due, **{UNIQ_KEY: "y"}))
    records.append(timer(b"", due, **{UNIQ_KEY: "u-marker", TIMER_DEL_UNIQKEY: "u-drop"}))
    topic = Topic(records)
    # When they come due
    ref = TimerScheduler.start(topic, str(tmp_path), max_loaded=5)
    try:
        assert wait_for(lambda: len(topic.put_back) == 5)
        assert wait_for(lambda: ref.proxy().pending_count().get(timeout=5) == 0)
        # Then the message is recalled, the others put back
        assert sorted(topic.bodies()) == [b"a0", b"a1", b"a2", b"x", b"y"]
    finally:
        ref.stop()
