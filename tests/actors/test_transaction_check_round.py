"""A check round asks the ProducerManager for a group's producer once, not once per half
message: it did one blocking ask per half message inside the TransactionManager (END_TRANSACTION
claims queued behind it), and a ProducerManager that did not answer in time failed the actor."""

from __future__ import annotations

import pathlib
from typing import Any

import gevent
import pytest

from actors.broker.transaction_manager import HalfMessage, TransactionManager
from runtime.actor import GeventActor
from runtime.directory import Directory
from tests.actors.test_transaction_check_unread import Channel, run_round

pytestmark = pytest.mark.timeout(30)


class Producers(GeventActor):
    def __init__(self, channel: Channel | None, stall: gevent.event.Event | None = None) -> None:
        super().__init__()
        self.channel = channel
        self.stall = stall
        self.asked: list[str] = []

    def any_channel(self, group: str) -> Any:
        self.asked.append(group)
        if self.stall is not None:
            self.stall.wait(10)
        return self.channel

    def asked_groups(self) -> list[str]:
        return self.asked


def manager_with(tmp_path: pathlib.Path, producers: Any) -> Any:
    directory = Directory()
    directory.put("producers", producers)
    return TransactionManager.start(
        directory,
        "producers",
        str(tmp_path),
        lambda offset: b"record",
        timeout_s=0.0,
        check_max=15,
        check_interval_s=3600.0,
    )


def test_a_round_asks_for_each_groups_producer_once(tmp_path: pathlib.Path) -> None:
    channel = Channel()
    producers = Producers.start(channel)
    manager = manager_with(tmp_path, producers)
    try:
        # Given 50 open half messages of group g and one of group h
        proxy = manager.proxy()
        for offset in range(50):
            proxy.prepared(HalfMessage(offset, "g", "T", f"id{offset}", "u", 0)).get(timeout=5)
        proxy.prepared(HalfMessage(99, "h", "T", "id99", "u", 0)).get(timeout=5)
        # When a check round runs
        run_round(manager, 5)
        # Then each is checked back, the producer manager asked once per group
        assert len(channel.sent) == 51
        assert sorted(producers.proxy().asked_groups().get(timeout=5)) == ["g", "h"]
    finally:
        manager.stop()
        producers.stop()


def test_a_producer_manager_that_does_not_answer_leaves_the_manager_running(
    tmp_path: pathlib.Path,
) -> None:
    stall = gevent.event.Event()
    producers = Producers.start(Channel(), stall)
    manager = manager_with(tmp_path, producers)
    try:
        # Given an open half message, and a ProducerManager that does not answer for 10 s
        proxy = manager.proxy()
        proxy.prepared(HalfMessage(7, "g", "T", "id7", "u", 0)).get(timeout=5)
        # When a check round runs
        run_round(manager, 15)
        # Then the manager is still running, the half message still open (the next round
        # tries again)
        assert [h.offset for h in proxy.pending().get(timeout=5)] == [7]
    finally:
        stall.set()
        manager.stop()
        producers.stop()
