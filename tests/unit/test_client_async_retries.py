"""Async sends retry as RocketMQ's do: ``async_retries`` times (retryTimesWhenSendAsyncFailed,
2), whatever ``retries`` (retryTimesWhenSendFailed, sync sends) is; and a stored answer that is
not SEND_OK is an async send's outcome, never sent again to another broker (RocketMQ's
retryAnotherBrokerWhenNotStoreOK is of sync sends only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.client import BrokerError, Message, Producer, SendStatus
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from runtime.remoting.codes import ResponseCode

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a", "broker-b"), topics=("Orders",)) as fc:
        yield fc


def bodies(cluster: FakeCluster) -> list[bytes]:
    return [decode_messages(s.record, "?")[0].body for s in cluster.stored("Orders")]


def refuse_next(cluster: FakeCluster, code: int, stored: bool = False) -> None:
    """Each broker answers its next send ``code`` (``stored``: having stored it)."""
    for name in ("broker-a", "broker-b"):
        broker = cluster.broker(name)
        codes = broker.stored_codes if stored else broker.fail_sends
        cluster.run(codes.append, code)


def test_async_sends_retry_async_retries_times_whatever_retries_is(cluster: FakeCluster) -> None:
    # Given a producer that does not retry its sync sends (retries=0), routes known
    with Producer("no-sync-retry", namesrv=cluster.namesrv, retries=0) as producer:
        producer.send(Message("Orders", b"warm-up"))
        # When each broker refuses its next send (SYSTEM_BUSY) and an async send goes
        refuse_next(cluster, ResponseCode.SYSTEM_BUSY)
        result = producer.send_async(Message("Orders", b"async")).result(timeout=10)
        # Then it was retried until a broker took it (async_retries, 2 by default)
        assert result.status is SendStatus.SEND_OK
        # When each broker refuses its next send and a sync send goes
        refuse_next(cluster, ResponseCode.SYSTEM_BUSY)
        # Then it is not retried (retries=0): the refusal is raised
        with pytest.raises(BrokerError):
            producer.send(Message("Orders", b"sync"))
    assert bodies(cluster).count(b"async") == 1
    assert bodies(cluster).count(b"sync") == 0


def test_an_async_send_not_stored_ok_is_not_sent_to_another_broker(cluster: FakeCluster) -> None:
    # Given a producer with retry_another_broker_when_not_store_ok, and brokers that answer
    # their next send FLUSH_DISK_TIMEOUT (stored, not yet on disk)
    with Producer(
        "not-ok", namesrv=cluster.namesrv, retry_another_broker_when_not_store_ok=True
    ) as producer:
        producer.send(Message("Orders", b"warm-up"))
        refuse_next(cluster, ResponseCode.FLUSH_DISK_TIMEOUT, stored=True)
        # When it sends async
        result = producer.send_async(Message("Orders", b"async")).result(timeout=10)
        # Then that answer is the outcome: stored once, not sent again to the other broker
        assert result.status is SendStatus.FLUSH_DISK_TIMEOUT
    assert bodies(cluster).count(b"async") == 1
