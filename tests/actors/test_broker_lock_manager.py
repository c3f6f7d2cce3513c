"""Rebalance locks (LOCK_BATCH_MQ 41): they expire 60 s after their last renewal and are then
forgotten; one request may name at most 65,536 queues, and the table holds at most
``MAX_LOCKS`` (131,072) in all."""

from __future__ import annotations

import json
import pathlib

import pytest

from actors.broker.lock_manager import MAX_LOCKS, RebalanceLockManager
from runtime.remoting.bodies import MessageQueue
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged

pytestmark = pytest.mark.timeout(30)


def queues(n: int, topic: str = "T") -> list[MessageQueue]:
    return [MessageQueue(topic=topic, broker_name="broker-t", queue_id=i) for i in range(n)]


def test_expired_locks_are_taken_over_and_then_forgotten() -> None:
    now = [0.0]
    locks = RebalanceLockManager.start(clock=lambda: now[0]).proxy()
    # Given c1 locks 1,000 queues of a topic nobody consumes, and 1 queue it keeps renewing
    assert len(locks.lock_batch("g", "c1", queues(1000, "Junk")).get(timeout=5).queues) == 1000
    kept = queues(1)
    locks.lock_batch("g", "c1", kept).get(timeout=5)
    # Then within 60 s nobody else gets them
    now[0] = 59.0
    assert locks.lock_batch("g", "c2", queues(1, "Junk")).get(timeout=5).queues == []
    assert locks.lock_batch("g", "c1", kept).get(timeout=5).queues == kept  # (renewed)
    # When 60 s pass without a renewal, Then another client may take one
    now[0] = 61.0
    assert locks.lock_batch("g", "c2", queues(1, "Junk")).get(timeout=5).queues == queues(1, "Junk")
    # And the other 999 expired locks were forgotten (swept by that request); live ones stay
    # (c1's renewed queue, the one c2 took at 61 s)
    now[0] = 110.0
    assert locks.lock_batch("g", "c1", kept).get(timeout=5).queues == kept
    assert locks.lock_count().get(timeout=5) == 2
    assert locks.holder("g", kept[0]).get(timeout=5) == "c1"


def test_a_lock_request_of_more_than_65536_queues_is_refused(tmp_path: pathlib.Path) -> None:
    def lock(n: int) -> object:
        mqs = [{"topic": "T", "brokerName": "broker-t", "queueId": i} for i in range(n)]
        body = json.dumps({"consumerGroup": "g", "clientId": "c1", "mqSet": mqs}).encode()
        return client.call(RequestCode.LOCK_BATCH_MQ, body=body)

    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # When a client asks to lock 100,000 queues in one request
        got = lock(100_000)
        # Then it is refused, naming the limit, and nothing is locked
        assert got.code == ResponseCode.INVALID_PARAMETER
        assert "at most 65536 queues" in got.remark
        # And 5,120 (five topics of 1,024 queues) are taken
        got = lock(5120)
        assert got.code == ResponseCode.SUCCESS
        assert len(json.loads(got.body)["lockOKMQSet"]) == 5120
        assert errors == []


def test_the_lock_table_is_bounded_in_total_and_renewals_go_on_when_it_is_full() -> None:
    now = [0.0]
    locks = RebalanceLockManager.start(max_locks=100, clock=lambda: now[0]).proxy()
    try:
        # Given c1 holds 60 queues of group g
        held = queues(60)
        assert locks.lock_batch("g", "c1", held).get(timeout=5).queues == held
        # When another client sends many requests, each of other groups and queues
        for i in range(50):
            got = locks.lock_batch(f"junk-{i}", f"x{i}", queues(30, f"J{i}")).get(timeout=5)
            assert len(got.queues) + got.refused == 30
        # Then the table holds no more than its bound, the rest refused and counted
        assert locks.lock_count().get(timeout=5) == 100
        # And c1 still renews all it holds (no room needed), but gets no new queue
        got = locks.lock_batch("g", "c1", held + queues(1, "New")).get(timeout=5)
        assert got.queues == held and got.refused == 1
        # When the flood's locks expire (c1 renewed its own at 30 s)
        now[0] = 30.0
        assert locks.lock_batch("g", "c1", held).get(timeout=5).queues == held
        now[0] = 61.0
        # Then there is room again: the new queue is locked, c1's stay
        got = locks.lock_batch("g", "c1", queues(1, "New")).get(timeout=5)
        assert got.queues == queues(1, "New") and got.refused == 0
        assert locks.lock_count().get(timeout=5) == 61
    finally:
        locks.stop()


def test_a_lock_request_finding_the_table_full_is_told_so(tmp_path: pathlib.Path) -> None:
    def lock(group: str, n: int) -> object:
        mqs = [{"topic": "T", "brokerName": "broker-t", "queueId": i} for i in range(n)]
        body = json.dumps({"consumerGroup": group, "clientId": "c1", "mqSet": mqs}).encode()
        return client.call(RequestCode.LOCK_BATCH_MQ, body=body)

    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given requests that filled the lock table (each of the most queues one may name)
        per = 65_536
        for group in range(MAX_LOCKS // per):
            got = lock(f"g{group}", per)
            assert len(json.loads(got.body)["lockOKMQSet"]) == per
        # When one more group asks for a queue
        got = lock("late", 1)
        # Then it is answered that nothing was locked, and why (a table grew without bound:
        # the cap was per request only)
        assert got.code == ResponseCode.SUCCESS
        assert json.loads(got.body)["lockOKMQSet"] == []
        assert "lock table is full: 1 queue(s) not locked" in got.remark
        # And a holder renewing its queues is still answered in full
        got = lock("g0", per)
        assert len(json.loads(got.body)["lockOKMQSet"]) == per
        assert got.remark is None or "full" not in got.remark
        assert errors == []
