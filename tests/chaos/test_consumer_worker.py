"""The chaos consumer worker's own reporting (no broker): what it tells the history."""

from __future__ import annotations

from typing import Any

import pytest

from actors.client import MessageQueue, PullConsumer
from tests.chaos import checker as C
from tests.chaos.consumer_worker import _RecordingPullConsumer
from tests.chaos.history import History, Read
from tests.chaos.workload import record_observation


class _FakeRebalancer:
    """Stands in for the client's Rebalancer: its two hooks, doing nothing."""

    def _start_pullers(self, mqs: list[Any]) -> list[Any]:
        return list(mqs)

    def _stop_pullers(self, mqs: list[Any], persist: bool = True) -> None:
        del mqs, persist


def test_a_queue_removed_and_given_back_between_two_polls_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the lite pull worker's consumer, its rebalancer's hooks reporting to a history
    monkeypatch.setattr(PullConsumer, "_rebalancer_class", lambda self: _FakeRebalancer)
    h = History()

    def emit(obj: dict[str, Any]) -> None:
        record_observation(h, "c2-pull", "chaos", "pull", obj)

    consumer = _RecordingPullConsumer("chaos", namesrv="127.0.0.1:9876", emit=emit)
    rebalancer = consumer._rebalancer_class()()
    q3 = MessageQueue(topic="T", broker_name="b", queue_id=3)
    h.reads("c2-pull", "chaos", "pull", [Read("T/b/3", 1834, "p0-4787")], f="poll")
    # When a rebalance drops the queue (e.g. another member joined; before the client kept its
    # queues while a restarted broker did not list it, that dropped them too) and the next one
    # gives it back, both before the next poll, which restarts from the
    # broker's committed offset (lost with the broker's unsaved offsets: 0)
    rebalancer._stop_pullers([q3])
    rebalancer._start_pullers([q3])
    h.reads("c2-pull", "chaos", "pull", [Read("T/b/3", 0, "p0-3")], f="poll")
    # Then both changes are in the history and excuse the jump back (R17 soak, seeds 2-4:
    # sampling the assignment before each poll saw no change and called it nonmonotonic-poll)
    assigns = [e.data for e in h.snapshot() if e.f == "assign"]
    assert assigns == [{"removed": ["T/b/3"]}, {"added": ["T/b/3"]}]
    assert C.kafka(h.snapshot()).nonmonotonic_poll == []
