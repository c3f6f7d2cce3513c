"""The TimerScheduler's delivery keeps going after an unexpected error (an I/O error reading a
due message's record): it logs it, keeps the message and retries. Its delivery greenlet
caught only pykka's errors before, so any other exception ended timer delivery silently: no
timer message was put back again until a restart."""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest
from loguru import logger

import actors.broker.timer_scheduler as timer_module
from actors.broker.timer_scheduler import TimerScheduler
from runtime.remoting.properties import UNIQ_KEY
from tests.actors.test_timer_recall_reload import TimerTopic, timer

pytestmark = pytest.mark.timeout(20)


class FlakyTimerTopic(TimerTopic):
    """Its first read of a record fails with EIO."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.failed = False

    def read_message_bytes(self, physical: int) -> bytes:
        if not self.failed:
            self.failed = True
            raise OSError(5, "Input/output error")
        return super().read_message_bytes(physical)


def test_a_failed_read_is_retried_and_delivery_goes_on(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timer_module, "RETRY_S", 0.01)
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    # Given two timer messages due now, the first read of a record failing
    due = int(time.time() * 1000) - 1000
    topic = FlakyTimerTopic(
        [timer(b"first", due, **{UNIQ_KEY: "u1"}), timer(b"second", due, **{UNIQ_KEY: "u2"})]
    )
    ref = TimerScheduler.start(topic, str(tmp_path))
    try:
        # When the scheduler delivers them
        deadline = time.monotonic() + 10
        while len(topic.put_back) < 2 and time.monotonic() < deadline:
            gevent.sleep(0.01)
        # Then both are put back, once each, and the failure was logged
        assert sorted(topic.put_back) == [b"first", b"second"]
        assert topic.failed
        assert any("Input/output error" in line for line in errors), errors
    finally:
        ref.stop()
        logger.remove(sink)
