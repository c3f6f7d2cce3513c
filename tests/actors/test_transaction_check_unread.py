"""A check round that cannot read a half message's record yet (the store has not dispatched
it: e.g. a controller-mode master whose in-sync slave lags holds back what consumers and
readers see) keeps the transaction open: it was forgotten, so the producer's commit, refused
meanwhile ("find prepared transaction message failed") and never asked again, was lost."""

from __future__ import annotations

import pathlib
from typing import Any

import gevent.event
import pytest

from actors.broker.transaction_manager import Check, HalfMessage, TransactionManager
from runtime.actor import GeventActor
from runtime.directory import Directory
from runtime.remoting.codes import RequestCode

pytestmark = pytest.mark.timeout(20)


def run_round(manager: Any, timeout: float = 5.0) -> None:
    """A check round, waited for until it has checked what it could (the ProducerManager's
    answers come back to the manager after the Check's handler)."""
    done = gevent.event.Event()
    manager.tell(Check(done))
    assert done.wait(timeout), "the check round did not finish"


class Channel:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_oneway(self, command: Any) -> None:
        self.sent.append(command)


class Producers(GeventActor):
    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel

    def any_channel(self, _group: str) -> Channel:
        return self.channel


def test_a_half_message_not_readable_yet_stays_open_and_is_checked_later(
    tmp_path: pathlib.Path,
) -> None:
    channel = Channel()
    directory = Directory()
    producers = Producers.start(channel)
    directory.put("producers", producers)
    readable: set[int] = set()
    manager = TransactionManager.start(
        directory,
        "producers",
        str(tmp_path),
        lambda offset: b"record" if offset in readable else None,
        timeout_s=0.0,
        check_max=15,
        check_interval_s=3600.0,
    )
    try:
        proxy = manager.proxy()
        # Given an open half message of a group with a live producer, its record not readable
        half = HalfMessage(100, "g", "T", "id100", "u100", stored_ms=0)
        proxy.prepared(half).get(timeout=5)
        # When a check round runs before the store lets it be read
        run_round(manager, 5)
        # Then the transaction is still open (a commit may still settle it)
        assert [h.offset for h in proxy.pending().get(timeout=5)] == [100]
        assert proxy.claim(100).get(timeout=5) is True
        proxy.release(100).get(timeout=5)
        # And once it can be read, the next round asks the producer about it
        readable.add(100)
        run_round(manager, 5)
        assert [c.code for c in channel.sent] == [RequestCode.CHECK_TRANSACTION_STATE]
        assert int(channel.sent[0].ext_fields["commitLogOffset"]) == 100
    finally:
        manager.stop()
        producers.stop()
