"""Retries of sync and async sends as RocketMQ's: async sends retry ``async_retries`` times
(retryTimesWhenSendAsyncFailed, 2) whatever ``retries`` (retryTimesWhenSendFailed) is, after a
failure with no answer only (a lost connection, a timeout: ``MQClientAPIImpl.onExceptionImpl``),
whatever their selection (a selector's or a queue's to the same queue); a broker's refusal is an
async send's outcome. A stored answer that is not SEND_OK is an async send's outcome, never sent
again to another broker (retryAnotherBrokerWhenNotStoreOK is of sync sends only). A refusal
that is not retried ends a send with that very error (RocketMQ throws the MQBrokerException),
the earlier attempts' failures as its cause."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.client import (
    BrokerError,
    ConnectError,
    Message,
    MessageQueue,
    Producer,
    SendFailedError,
    SendStatus,
)
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from runtime.remoting.codes import RequestCode, ResponseCode

pytestmark = pytest.mark.timeout(30)

SENDS = (RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_MESSAGE, RequestCode.SEND_BATCH_MESSAGE)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a", "broker-b"), topics=("Orders",)) as fc:
        yield fc


def bodies(cluster: FakeCluster) -> list[bytes]:
    return [decode_messages(s.record, "?")[0].body for s in cluster.stored("Orders")]


def sends(cluster: FakeCluster) -> int:
    return sum(c in SENDS for b in cluster.brokers.values() for c in b.codes())


def refuse_next(cluster: FakeCluster, code: int, stored: bool = False) -> None:
    """Each broker answers its next send ``code`` (``stored``: having stored it)."""
    for name in ("broker-a", "broker-b"):
        broker = cluster.broker(name)
        codes = broker.stored_codes if stored else broker.fail_sends
        cluster.run(codes.append, code)


def drop_next(cluster: FakeCluster, name: str | None = None) -> None:
    """The broker ``name`` (None: each) closes the connection of its next send, unanswered."""
    for each in (name,) if name else ("broker-a", "broker-b"):
        broker = cluster.broker(each)
        cluster.run(lambda b=broker: setattr(b, "dropped_sends", b.dropped_sends + 1))


def test_async_sends_retry_async_retries_times_whatever_retries_is(cluster: FakeCluster) -> None:
    # Given a producer that does not retry its sync sends (retries=0), routes known
    with Producer("no-sync-retry", namesrv=cluster.namesrv, retries=0) as producer:
        producer.send(Message("Orders", b"warm-up"))
        # When each broker drops the connection of its next send and an async send goes
        drop_next(cluster)
        result = producer.send_async(Message("Orders", b"async")).result(timeout=10)
        # Then it was retried until a broker took it (async_retries, 2 by default)
        assert result.status is SendStatus.SEND_OK
        # When each broker drops its next send and a sync send goes
        drop_next(cluster)
        # Then it is not retried (retries=0): the lost connection is raised
        with pytest.raises(ConnectError):
            producer.send(Message("Orders", b"sync"))
    assert bodies(cluster).count(b"async") == 1
    assert bodies(cluster).count(b"sync") == 0


def test_an_async_send_refused_by_a_broker_is_not_retried(cluster: FakeCluster) -> None:
    # Given a producer whose routes are known, and brokers that refuse their next send
    # SYSTEM_BUSY (a code a sync send is retried on)
    with Producer("refused", namesrv=cluster.namesrv) as producer:
        producer.send(Message("Orders", b"warm-up"))
        refuse_next(cluster, ResponseCode.SYSTEM_BUSY)
        before = sends(cluster)
        # When an async send goes
        error = producer.send_async(Message("Orders", b"async")).exception(timeout=10)
        # Then the refusal is its outcome, the one send request it made (RocketMQ's
        # onExceptionImpl does not retry an MQBrokerException)
        assert isinstance(error, BrokerError) and error.code == ResponseCode.SYSTEM_BUSY
        assert sends(cluster) == before + 1
    assert bodies(cluster).count(b"async") == 0


def test_an_async_send_to_a_queue_is_retried_to_that_queue(cluster: FakeCluster) -> None:
    # Given a producer whose routes are known, and broker-a dropping its next two sends
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=2)
    with Producer("pinned", namesrv=cluster.namesrv) as producer:
        producer.send(Message("Orders", b"warm-up"))
        drop_next(cluster, "broker-a")
        drop_next(cluster, "broker-a")
        # When an async send names queue 2 of broker-a
        result = producer.send_async(Message("Orders", b"pinned"), queue=mq).result(timeout=10)
        # Then it was retried there (RocketMQ resends to the same broker) until stored
        assert result.status is SendStatus.SEND_OK and result.queue == mq
        # When a selector picks queue 2 of broker-a and broker-a drops its next send
        picked: list[MessageQueue] = []

        def selector(queues: list[MessageQueue], _msg: Message) -> MessageQueue:
            picked.append(mq)
            return mq

        drop_next(cluster, "broker-a")
        future = producer.send_async(Message("Orders", b"selected"), selector=selector)
        # Then the retry went to that queue, the selector asked once
        assert future.result(timeout=10).queue == mq and picked == [mq]
        # When a sync send names the queue and broker-a drops it, Then it is tried once
        drop_next(cluster, "broker-a")
        with pytest.raises(ConnectError):
            producer.send(Message("Orders", b"sync"), queue=mq)
    assert bodies(cluster).count(b"pinned") == 1 and bodies(cluster).count(b"selected") == 1
    assert b"sync" not in bodies(cluster)


def test_a_refusal_after_retried_failures_is_raised_itself(cluster: FakeCluster) -> None:
    # Given a producer whose routes are known, and brokers that refuse their next sends
    # SYSTEM_BUSY (retried), then MESSAGE_ILLEGAL (not)
    with Producer("illegal", namesrv=cluster.namesrv) as producer:
        producer.send(Message("Orders", b"warm-up"))
        refuse_next(cluster, ResponseCode.SYSTEM_BUSY)
        refuse_next(cluster, ResponseCode.MESSAGE_ILLEGAL)
        # When a sync send is refused SYSTEM_BUSY by both, then MESSAGE_ILLEGAL
        with pytest.raises(BrokerError) as err:
            producer.send(Message("Orders", b"sync"))
        # Then the refusal is raised itself (RocketMQ throws that MQBrokerException), the
        # earlier failures its cause
        assert err.value.code == ResponseCode.MESSAGE_ILLEGAL
        cause = err.value.__cause__
        assert isinstance(cause, SendFailedError)
        assert [e.code for e in cause.errors] == [ResponseCode.SYSTEM_BUSY] * 2  # type: ignore[attr-defined]
        # When an async send loses its connection to both, then is refused MESSAGE_ILLEGAL
        drop_next(cluster)
        refuse_next(cluster, ResponseCode.MESSAGE_ILLEGAL)
        error = producer.send_async(Message("Orders", b"async")).exception(timeout=10)
        # Then the same: the refusal itself, the lost connections its cause
        assert isinstance(error, BrokerError) and error.code == ResponseCode.MESSAGE_ILLEGAL
        assert isinstance(error.__cause__, SendFailedError)
        assert all(isinstance(e, ConnectError) for e in error.__cause__.errors)
        assert len(error.__cause__.errors) == 2


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


def test_an_auto_batch_of_async_sends_keeps_their_semantics(cluster: FakeCluster) -> None:
    # Given an auto-batching producer with retry_another_broker_when_not_store_ok, and brokers
    # that answer their next send FLUSH_DISK_TIMEOUT (stored)
    with Producer(
        "batched",
        namesrv=cluster.namesrv,
        auto_batch=True,
        batch_max_delay=0.5,
        retry_another_broker_when_not_store_ok=True,
    ) as producer:
        producer.send(Message("Orders", b"warm-up"))
        refuse_next(cluster, ResponseCode.FLUSH_DISK_TIMEOUT, stored=True)
        # When three async sends are held and sent as one batch
        futures = [producer.send_async(Message("Orders", b"b%d" % i)) for i in range(3)]
        results = [f.result(timeout=10) for f in futures]
        # Then the batch was an async send: that answer is each one's outcome, stored once
        assert [r.status for r in results] == [SendStatus.FLUSH_DISK_TIMEOUT] * 3
    assert [b for b in bodies(cluster) if b.startswith(b"b")] == [b"b0", b"b1", b"b2"]
