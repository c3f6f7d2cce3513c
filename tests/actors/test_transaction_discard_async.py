"""Three things a check round did wrong with the TransactionManager's half messages.

- A ProducerManager that did not answer in time counted as "no producer online": each due
  half message's check was counted (d35a658), so an internal delay brought discards nearer.
- The copy of a discarded half message (TRANS_CHECK_MAX_TIME_TOPIC) was stored inside the
  manager's handler: END_TRANSACTIONs (claim, resolve) waited behind the put, up to the store's
  put timeout for each discarded message.
- A half message older than fileReservedTime was kept until its checks ran out, though
  retention may remove its record meanwhile (RocketMQ's needSkip discards it, its copy kept).
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import gevent
import gevent.event
import pytest

from actors.broker import transaction_manager
from actors.broker.transaction_manager import Check, HalfMessage
from runtime.actor import GeventActor
from tests.actors.test_transaction_check_max import manager_with
from tests.actors.test_transaction_check_round import Producers
from tests.actors.test_transaction_check_unread import run_round

pytestmark = pytest.mark.timeout(30)


class Keeper:
    """A ``keep_discarded`` that blocks while ``gate`` is not set."""

    def __init__(self) -> None:
        self.gate = gevent.event.Event()
        self.gate.set()
        self.kept: list[tuple[bytes, int]] = []
        self.asked = 0

    def __call__(self, raw: bytes, checks: int) -> bool:
        self.asked += 1
        self.gate.wait(20)
        self.kept.append((raw, checks))
        return True


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        gevent.sleep(0.01)


def test_a_producer_table_that_does_not_answer_counts_no_check(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    monkeypatch.setattr(transaction_manager, "CHANNEL_TIMEOUT_S", 0.2, raising=False)
    stall = gevent.event.Event()
    producers = Producers.start(None, stall)  # answers "nobody online", but too late
    manager = manager_with(tmp_path, producers, Keeper())
    try:
        proxy = manager.proxy()
        # Given two due half messages of two groups, and a ProducerManager that does not answer
        proxy.prepared(HalfMessage(100, "g1", "T", "id100", "u100", stored_ms=0)).get(timeout=5)
        proxy.prepared(HalfMessage(200, "g2", "T", "id200", "u200", stored_ms=0)).get(timeout=5)
        # When a check round runs
        run_round(manager, 15)
        # Then no check is counted (it counted one each, as if no producer were online)
        assert [h.checks for h in proxy.pending().get(timeout=5)] == [0, 0]
        # And the round waited for one answer only, and said why it checked nothing
        assert producers.proxy().asked_groups().get(timeout=15) == ["g1"]
        assert any("did not answer" in w and "2 due half" in w for w in warnings), warnings
    finally:
        stall.set()
        manager.stop()
        producers.stop()


def test_ends_are_not_held_behind_a_discards_copy(tmp_path: pathlib.Path) -> None:
    keeper = Keeper()
    keeper.gate.clear()  # the store takes its time storing the copy
    producers = Producers.start(None)
    manager = manager_with(tmp_path, producers, keeper)
    try:
        proxy = manager.proxy()
        # Given a half message whose checks ran out, and another one open
        proxy.prepared(HalfMessage(100, "g", "T", "id100", "u100", 0, checks=2)).get(timeout=5)
        proxy.prepared(HalfMessage(200, "g", "T", "id200", "u200", 10**15)).get(timeout=5)
        # When a check round starts storing the first one's copy
        manager.tell(Check())
        wait_until(lambda: keeper.asked == 1)
        # Then an END for the other is served meanwhile (it waited for the put)
        assert proxy.claim(200).get(timeout=1) is True
        assert proxy.resolve(200).get(timeout=1) is True
        # And the first is not discarded before its copy is stored
        assert [h.offset for h in proxy.pending().get(timeout=1)] == [100]
        # And once the copy is stored it is discarded, the copy made once
        manager.tell(Check())  # (a round meanwhile does not store it twice)
        keeper.gate.set()
        wait_until(lambda: proxy.pending().get(timeout=5) == [])
        assert keeper.kept == [(b"record 100", 2)]
    finally:
        keeper.gate.set()
        manager.stop()
        producers.stop()


def test_an_end_during_the_copy_settles_the_half_message(tmp_path: pathlib.Path) -> None:
    keeper = Keeper()
    keeper.gate.clear()
    producers = Producers.start(None)
    manager = manager_with(tmp_path, producers, keeper)
    try:
        proxy = manager.proxy()
        # Given a half message whose discard's copy is being stored
        proxy.prepared(HalfMessage(100, "g", "T", "id100", "u100", 0, checks=2)).get(timeout=5)
        manager.tell(Check())
        wait_until(lambda: keeper.asked == 1)
        # When its producer's COMMIT settles it meanwhile
        assert proxy.claim(100).get(timeout=1) is True
        assert proxy.resolve(100).get(timeout=1) is True
        keeper.gate.set()
        wait_until(lambda: keeper.kept != [])
        # Then the copy's report discards nothing: a second END finds it settled
        gevent.sleep(0.05)
        assert proxy.claim(100).get(timeout=5) is False
    finally:
        keeper.gate.set()
        manager.stop()
        producers.stop()


def test_a_half_message_older_than_the_file_reserved_time_is_discarded(
    tmp_path: pathlib.Path, warnings: list[str]
) -> None:
    keeper = Keeper()
    producers = Producers.start(None)
    manager = manager_with(tmp_path, producers, keeper, file_reserved_s=3600.0)
    try:
        proxy = manager.proxy()
        now = int(time.time() * 1000)
        # Given a half message stored 61 minutes ago with fileReservedTime 1 h (checked
        # once), and one stored 59 minutes ago
        old = HalfMessage(100, "g", "T", "id100", "u100", now - 61 * 60_000, checks=1)
        young = HalfMessage(200, "g", "T", "id200", "u200", now - 59 * 60_000)
        proxy.prepared(old).get(timeout=5)
        proxy.prepared(young).get(timeout=5)
        # When a check round runs
        run_round(manager, 5)
        # Then the old one is discarded, its checks not run out, a copy kept first (retention
        # may remove its record: it was kept until its checks ran out, the record maybe gone)
        wait_until(lambda: [h.offset for h in proxy.pending().get(timeout=5)] == [200])
        assert keeper.kept == [(b"record 100", 1)]
        # And a WARNING says why
        assert any("fileReservedTime" in w and "u100" in w for w in warnings), warnings
        # And the young one was checked (counted) as usual
        assert [h.checks for h in proxy.pending().get(timeout=5)] == [1]
    finally:
        manager.stop()
        producers.stop()


def test_a_stop_waits_for_a_discards_copy_and_the_restart_stores_none(
    tmp_path: pathlib.Path,
) -> None:
    keeper = Keeper()
    keeper.gate.clear()
    producers = Producers.start(None)
    manager = manager_with(tmp_path, producers, keeper)
    again = None
    try:
        # Given a half message whose discard's copy is being stored
        proxy = manager.proxy()
        proxy.prepared(HalfMessage(100, "g", "T", "id100", "u100", 0, checks=2)).get(timeout=5)
        manager.tell(Check())
        wait_until(lambda: keeper.asked == 1)
        # When the manager stops meanwhile, and the copy is stored while it stops
        stopping = gevent.spawn(manager.stop)
        wait_until(manager.actor_stopped.is_set)
        keeper.gate.set()
        stopping.get(timeout=10)
        wait_until(lambda: keeper.kept != [])
        assert keeper.kept == [(b"record 100", 2)]
        # Then the next start finds it discarded: its round stores no second copy (the copy's
        # report reached a stopped manager, so the half message stayed open)
        second = Keeper()
        again = manager_with(tmp_path, producers, second)
        run_round(again, 5)
        assert second.asked == 0
        assert again.proxy().pending().get(timeout=5) == []
        # And a late END still settles it (remembered as discarded)
        assert again.proxy().resolve(100).get(timeout=5) is True
    finally:
        keeper.gate.set()
        manager.stop()
        if again is not None:
            again.stop()
        producers.stop()


class SilentProducers(GeventActor):
    """A ProducerManager that answers ``any_channel`` (no producer online) only once ``answer``
    is set (its events are the test's: asking the stalled actor for them would wait)."""

    def __init__(self, asked: Any, answer: Any, answered: Any) -> None:
        super().__init__()
        self.asked, self.answer, self.answered = asked, answer, answered

    def any_channel(self, _group: str) -> None:
        self.asked.set()
        self.answer.wait(20)
        self.answered.set()
        return None


def test_an_end_is_answered_while_a_round_waits_for_the_producer_table(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction_manager, "CHANNEL_TIMEOUT_S", 25.0)
    asked, answer, answered = gevent.event.Event(), gevent.event.Event(), gevent.event.Event()
    producers = SilentProducers.start(asked, answer, answered)
    manager = manager_with(tmp_path, producers, Keeper())
    try:
        proxy = manager.proxy()
        # Given a due half message of group g, and another one open
        proxy.prepared(HalfMessage(100, "g", "T", "id100", "u100", stored_ms=0)).get(timeout=5)
        proxy.prepared(HalfMessage(200, "h", "T", "id200", "u200", 10**15)).get(timeout=5)
        # When a check round waits for the ProducerManager, which does not answer yet
        done = gevent.event.Event()
        manager.tell(Check(done))
        assert asked.wait(10)
        # Then an END for the other one is answered before the ProducerManager answers (it
        # waited behind the round, up to CHANNEL_TIMEOUT_S)
        assert proxy.claim(200).get(timeout=10) is True
        assert proxy.resolve(200).get(timeout=10) is True
        assert not answered.is_set()
        assert not done.is_set()
        # And once it answers (no producer of g online) the round counts the check as before
        answer.set()
        assert done.wait(10)
        assert [(h.offset, h.checks) for h in proxy.pending().get(timeout=5)] == [(100, 1)]
    finally:
        answer.set()
        manager.stop()
        producers.stop()


class BrokenProducers(GeventActor):
    def any_channel(self, _group: str) -> None:
        raise RuntimeError("broken producer table")


def test_a_producer_table_that_raises_ends_the_round_and_the_next_runs(
    tmp_path: pathlib.Path,
) -> None:
    producers = BrokenProducers.start()
    manager = manager_with(tmp_path, producers, Keeper())
    try:
        proxy = manager.proxy()
        # Given a due half message, and a ProducerManager whose answer is an exception
        proxy.prepared(HalfMessage(100, "g", "T", "id100", "u100", stored_ms=0)).get(timeout=5)
        # When two check rounds run
        run_round(manager, 5)
        run_round(manager, 5)
        # Then both finish (a round left waiting would hold every later one), counting nothing
        assert [h.checks for h in proxy.pending().get(timeout=5)] == [0]
    finally:
        manager.stop()
        producers.stop()
