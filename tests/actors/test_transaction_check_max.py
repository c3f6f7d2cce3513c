"""Half messages whose producer group has no producer online: each due check round counts a
check all the same (RocketMQ's TransactionalMessageServiceImpl counts TRANSACTION_CHECK_TIMES
before its listener looks for a channel), and after ``transactionCheckMax`` checks the half
message is discarded: a copy is stored in TRANS_CHECK_MAX_TIME_TOPIC (RocketMQ's
DefaultTransactionalMessageCheckListener.resolveDiscardMsg), where it can be read back. So far
such half messages were never counted, never discarded: checked for ever, the table growing."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import gevent
import pytest

from actors.broker.transaction_manager import HalfMessage, TransactionManager
from runtime.directory import Directory
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import decode_properties
from runtime.store.record import TRANSACTION_MASK
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.actors.test_broker_end_transaction import end, visible
from tests.actors.test_transaction_catch_up import half as send_half
from tests.actors.test_transaction_check_round import Producers
from tests.actors.test_transaction_check_unread import run_round
from tests.integration.test_broker_wire import pull, records
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)

CHECK_MAX_TOPIC = "TRANS_CHECK_MAX_TIME_TOPIC"


class Keeper:
    """A ``keep_discarded`` that records what it was given; fails while ``refuse`` is set."""

    def __init__(self) -> None:
        self.kept: list[tuple[bytes, int]] = []
        self.refuse = False
        self.asked = 0

    def __call__(self, raw: bytes, checks: int) -> bool:
        self.asked += 1
        if self.refuse:
            return False
        self.kept.append((raw, checks))
        return True


def manager_with(tmp_path: pathlib.Path, producers: Any, keeper: Any, **kw: Any) -> Any:
    """A TransactionManager checking at most twice, its discards kept by ``keeper``."""
    directory = Directory()
    directory.put("producers", producers)
    return TransactionManager.start(
        directory,
        "producers",
        str(tmp_path),
        lambda offset: b"record %d" % offset,
        timeout_s=0.0,
        check_max=2,
        check_interval_s=3600.0,
        keep_discarded=keeper,
        **kw,
    )


def test_checks_with_no_producer_online_count_and_then_discard_to_the_check_max_topic(
    tmp_path: pathlib.Path,
) -> None:
    keeper = Keeper()
    producers = Producers.start(None)  # no producer of any group online
    manager = manager_with(tmp_path, producers, keeper)
    try:
        proxy = manager.proxy()
        # Given an open half message of a group with no producer online
        proxy.prepared(HalfMessage(100, "g", "T", "id100", "u100", stored_ms=0)).get(timeout=5)
        # When two check rounds run
        run_round(manager, 5)
        run_round(manager, 5)
        # Then each counted a check, though nobody could be asked
        assert [h.checks for h in proxy.pending().get(timeout=5)] == [2]
        assert keeper.kept == []
        # And the next round discards it, its record kept first (with its check count)
        run_round(manager, 5)
        wait_until(lambda: proxy.pending().get(timeout=5) == [])
        assert keeper.kept == [(b"record 100", 2)]
        # And a late END still settles it (as in RocketMQ; RESUME brings it back too)
        assert proxy.claim(100).get(timeout=5) is True
        assert proxy.resolve(100).get(timeout=5) is True
    finally:
        manager.stop()
        producers.stop()


def test_a_half_message_whose_copy_cannot_be_stored_stays_open(tmp_path: pathlib.Path) -> None:
    keeper = Keeper()
    producers = Producers.start(None)
    manager = manager_with(tmp_path, producers, keeper)
    try:
        proxy = manager.proxy()
        # Given a half message whose checks ran out, and a store refusing its copy
        proxy.prepared(HalfMessage(100, "g", "T", "id100", "u100", 0, checks=2)).get(timeout=5)
        keeper.refuse = True
        # When a check round runs, Then it is not discarded: it stays open, no more checks
        run_round(manager, 5)
        wait_until(lambda: keeper.asked == 1)
        assert [h.checks for h in proxy.pending().get(timeout=5)] == [2]
        # And once the store takes the copy, the next round discards it
        keeper.refuse = False
        run_round(manager, 5)
        wait_until(lambda: proxy.pending().get(timeout=5) == [])
        assert keeper.kept == [(b"record 100", 2)]
    finally:
        manager.stop()
        producers.stop()


def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        gevent.sleep(0.02)


def kept_count(client: WireClient) -> int:
    got = client.call(RequestCode.GET_MAX_OFFSET, {"topic": CHECK_MAX_TOPIC, "queueId": 0})
    return int(got.ext_fields["offset"]) if got.code == ResponseCode.SUCCESS else 0


def test_a_broker_keeps_a_half_message_nobody_answers_for_in_the_check_max_topic(
    tmp_path: pathlib.Path,
) -> None:
    settings = {
        "transaction_timeout": 1,
        "transaction_check_interval": 20,
        "transaction_check_max": 2,
    }
    with lone_broker(tmp_path / "b", **settings) as client, no_errors_logged() as errors:
        # Given a half message of group pg whose producer then went away
        producer = WireClient(client.sock.getpeername())
        offset = send_half(producer, "U-gone")
        producer.close()
        # When the broker's check rounds find no producer of pg online, Then after two
        # (counted) checks it is discarded into TRANS_CHECK_MAX_TIME_TOPIC
        wait_until(lambda: kept_count(client) == 1)
        got = pull(client, CHECK_MAX_TOPIC, 0, 0)
        assert got.code == ResponseCode.SUCCESS, got.remark
        [kept] = records(got.body)
        # And the copy is an ordinary message holding the half message and where it was sent
        assert (kept.topic, kept.body, kept.sys_flag & TRANSACTION_MASK) == (
            CHECK_MAX_TOPIC,
            b"U-gone",
            0,
        )
        props = decode_properties(kept.properties)
        assert (props["REAL_TOPIC"], props["REAL_QID"], props["PGROUP"]) == ("Tx", "0", "pg")
        assert (props["UNIQ_KEY"], props["TRANSACTION_CHECK_TIMES"]) == ("U-gone", "2")
        # And a late COMMIT still delivers the half message to its topic, as in RocketMQ
        assert end(client, offset, 8).code == ResponseCode.SUCCESS
        assert visible(client) == 1
        assert errors == []
