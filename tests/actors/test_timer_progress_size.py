"""The TimerScheduler's progress is the watermark (the lowest timer offset not delivered) and the
offsets delivered above it, held and written as [start, end) ranges. They were a set of single
offsets: behind one long timer (up to 3 days), every shorter one delivered after it added an
offset to memory and to timerProgress.json, rewritten whole every second (a million 1-second
timers behind a 3-day one: a million offsets, for three days)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
import pytest

import actors.broker.timer_scheduler as timer_module
from actors.broker.timer_scheduler import TimerScheduler
from runtime.remoting.properties import UNIQ_KEY
from tests.actors.test_timer_recall_reload import TimerTopic, timer

pytestmark = pytest.mark.timeout(30)

SHORT = 2000


def delivered_all(topic: TimerTopic, count: int) -> None:
    deadline = time.monotonic() + 15
    while len(topic.put_back) < count and time.monotonic() < deadline:
        gevent.sleep(0.01)


def test_progress_behind_a_long_timer_stays_small(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "BATCH", 4096)
    # Given a timer due in an hour, then 2,000 timers due now, in the timer topic
    now = int(time.time() * 1000)
    records = [timer(b"later", now + 3_600_000, **{UNIQ_KEY: "u-later"})]
    records += [timer(b"now-%d" % i, now - 1000, **{UNIQ_KEY: f"u{i}"}) for i in range(SHORT)]
    topic = TimerTopic(records)
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        # When the due ones are delivered and the scheduler stops (its progress written)
        delivered_all(topic, SHORT)
        assert len(topic.put_back) == SHORT
    finally:
        ref.stop()
    # Then the progress file holds the watermark and one range, not 2,000 offsets
    path = os.path.join(str(tmp_path), "timerProgress.json")
    with open(path, "rb") as fh:
        saved = json.loads(fh.read())
    assert saved["watermark"] == 0
    assert saved["deliveredRanges"] == [[1, SHORT + 1]]
    assert os.path.getsize(path) < 200
    # And a restart from it puts back none of them again, and keeps the long one pending
    again = TimerTopic(records)
    ref = TimerScheduler.start(again, str(tmp_path))
    try:
        assert again.all_read.wait(10)
        deadline = time.monotonic() + 10
        while ref.proxy().pending_count().get(timeout=5) != 1 and time.monotonic() < deadline:
            gevent.sleep(0.01)
        assert ref.proxy().pending_count().get(timeout=5) == 1
        assert again.put_back == []
    finally:
        ref.stop()


def test_progress_written_before_ranges_is_read(tmp_path: Any) -> None:
    # Given a progress file in the earlier shape: a watermark and single offsets above it
    with open(os.path.join(str(tmp_path), "timerProgress.json"), "w") as fh:
        json.dump({"watermark": 1, "delivered": [2]}, fh)
    due = int(time.time() * 1000) - 1000
    topic = TimerTopic([timer(b"m%d" % i, due, **{UNIQ_KEY: f"u{i}"}) for i in range(4)])
    # When the TimerScheduler starts from it
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        delivered_all(topic, 2)
        # Then only the offsets not delivered yet are put back
        assert sorted(topic.put_back) == [b"m1", b"m3"]
    finally:
        ref.stop()
