"""Producer(auto_batch=True): small sends held and sent together, each with its own result
(RocketMQ 5's autoBatch), against the fake cluster."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator

import pytest

from actors.client import ClientError, Message, MessageQueue, Producer, SendStatus
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from runtime.remoting.codes import RequestCode, ResponseCode

pytestmark = pytest.mark.timeout(30)

BATCH = RequestCode.SEND_BATCH_MESSAGE
SINGLE = RequestCode.SEND_MESSAGE_V2


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a", "broker-b"), topics=("Orders",)) as fc:
        yield fc


def send_codes(cluster: FakeCluster) -> list[int]:
    codes = cluster.broker("broker-a").codes() + cluster.broker("broker-b").codes()
    return [c for c in codes if c in (BATCH, SINGLE, RequestCode.SEND_MESSAGE)]


def stored(cluster: FakeCluster) -> list:
    return [decode_messages(s.record, "?")[0] for s in cluster.stored("Orders")]


def test_async_sends_are_sent_as_one_batch_and_each_gets_its_own_result(
    cluster: FakeCluster,
) -> None:
    # Given a producer that holds sends up to 1 s (the sends below take far less, loaded too)
    with Producer("p", namesrv=cluster.namesrv, auto_batch=True, batch_max_delay=1.0) as producer:
        # When ten small messages are sent asynchronously at once
        futures = [
            producer.send_async(Message("Orders", b"m%d" % i, tags="t", keys=[f"k{i}"]))
            for i in range(10)
        ]
        results = [f.result(timeout=5) for f in futures]
    # Then one SEND_BATCH_MESSAGE carried them, in order, to one queue
    assert send_codes(cluster) == [BATCH]
    messages = stored(cluster)
    assert [m.body for m in messages] == [b"m%d" % i for i in range(10)]
    assert [m.keys for m in messages] == [[f"k{i}"] for i in range(10)]
    # And each result names its own message: UNIQ_KEY, offset id and queue offset
    assert all(r.status is SendStatus.SEND_OK for r in results)
    assert [r.msg_id for r in results] == [m.msg_id for m in messages]
    assert len({r.offset_msg_id for r in results}) == 10
    assert all("," not in r.offset_msg_id and "," not in r.msg_id for r in results)
    assert len({r.queue for r in results}) == 1
    assert [r.queue_offset for r in results] == list(range(10))


def test_sync_sends_of_several_threads_share_a_batch(cluster: FakeCluster) -> None:
    # Given a producer that holds sends up to 1 s, and eight threads ready to send
    with Producer("p", namesrv=cluster.namesrv, auto_batch=True, batch_max_delay=1.0) as producer:
        producer.send(Message("Orders", b"warm-up"))  # the route, before the race
        gate = threading.Barrier(8)

        def send(i: int):
            gate.wait(5)
            return producer.send(Message("Orders", b"t%d" % i))

        # When each sends one message synchronously at the same moment
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(8)))
    # Then fewer requests than messages carried them (one, unless a thread was late)
    codes = send_codes(cluster)
    assert codes[1:].count(BATCH) < 8 and SINGLE not in codes
    by_id = {m.msg_id: m.body for m in stored(cluster)}
    assert [by_id[r.msg_id] for r in results] == [b"t%d" % i for i in range(8)]
    assert len({(r.queue, r.queue_offset) for r in results}) == 8


def test_a_full_batch_goes_at_once_not_after_the_delay(cluster: FakeCluster) -> None:
    # Given a producer that would hold sends 30 s, in batches of 4 KiB
    with Producer(
        "p",
        namesrv=cluster.namesrv,
        auto_batch=True,
        batch_max_delay=30.0,
        batch_max_bytes=4096,
    ) as producer:
        # When four 1,100-byte messages are sent (4,400 bytes)
        futures = [producer.send_async(Message("Orders", bytes(1100))) for _ in range(4)]
        # Then they are answered well before the delay: the batch was full
        done, _ = concurrent.futures.wait(futures, timeout=5)
        assert len(done) == 4 and all(f.result().status is SendStatus.SEND_OK for f in done)
    assert send_codes(cluster) == [BATCH]


def test_a_full_async_window_sends_what_is_held_at_once(cluster: FakeCluster) -> None:
    # Given a producer that would hold small sends 30 s, with room for 8 async sends
    with Producer(
        "p",
        namesrv=cluster.namesrv,
        auto_batch=True,
        batch_max_delay=30.0,
        max_async_sends=8,
    ) as producer:
        # When 20 one-byte messages are sent asynchronously (the 9th and the 17th find no room)
        futures = [producer.send_async(Message("Orders", b"%d" % i)) for i in range(20)]
        # Then no send waited out the delay, nor failed for want of room (3 s): a sender
        # waiting for room had the held batch sent at once, as Kafka's accumulator does; the
        # first 16 are answered, in two batches of 8
        concurrent.futures.wait(futures[:16], timeout=2)
        assert all(f.result(timeout=0).status is SendStatus.SEND_OK for f in futures[:16])
        assert send_codes(cluster).count(BATCH) == 2
        # And the last 4, held, wait for their batch's delay (or a flush)
        assert not any(f.done() for f in futures[16:])
        assert producer.flush(2) and send_codes(cluster).count(BATCH) == 3


def test_what_is_not_held_is_sent_alone(cluster: FakeCluster) -> None:
    # Given a producer holding sends of up to 4 KiB for 0.5 s
    with Producer(
        "p", namesrv=cluster.namesrv, auto_batch=True, batch_max_delay=0.5, batch_max_bytes=4096
    ) as producer:
        # When it sends a delayed message, one with a sharding key, one of 4 KiB and a oneway
        producer.send(Message("Orders", b"later", delay_level=1))
        producer.send(Message("Orders", b"keyed"), sharding_key="order-1")
        producer.send(Message("Orders", bytes(4096)))
        producer.send_oneway(Message("Orders", b"oneway"))
    # Then each went as a single send, none as a batch
    codes = send_codes(cluster)
    assert BATCH not in codes and codes.count(SINGLE) == 4


def test_a_batch_to_an_explicit_queue_goes_there(cluster: FakeCluster) -> None:
    mq = MessageQueue(topic="Orders", broker_name="broker-b", queue_id=3)
    with Producer("p", namesrv=cluster.namesrv, auto_batch=True, batch_max_delay=1.0) as producer:
        # When messages for one queue and for any queue are sent at once
        to_mq = [producer.send_async(Message("Orders", b"q%d" % i), queue=mq) for i in range(3)]
        anywhere = [producer.send_async(Message("Orders", b"a%d" % i)) for i in range(3)]
        results = [f.result(timeout=5) for f in to_mq + anywhere]
    # Then two batches went: the first three to that queue, at offsets 0-2
    assert send_codes(cluster) == [BATCH, BATCH]
    assert [(r.queue, r.queue_offset) for r in results[:3]] == [(mq, 0), (mq, 1), (mq, 2)]
    assert len({r.queue for r in results[3:]}) == 1


def test_a_refused_batch_fails_every_member(cluster: FakeCluster) -> None:
    # Given a broker that refuses the next send as illegal (not retried)
    cluster.run(lambda: cluster.broker("broker-a").fail_sends.append(ResponseCode.MESSAGE_ILLEGAL))
    with Producer(
        "p", namesrv=cluster.namesrv, auto_batch=True, batch_max_delay=1.0, retries=0
    ) as producer:
        # When three sends are held together and sent to it
        futures = [producer.send_async(Message("Orders", b"x%d" % i)) for i in range(3)]
        errors = [f.exception(timeout=5) for f in futures]
    # Then each send fails with the broker's answer, nothing stored
    assert all(isinstance(e, ClientError) for e in errors)
    assert all("13" in str(e) or "ILLEGAL" in str(e).upper() for e in errors)
    assert stored(cluster) == []


def test_shutdown_sends_what_is_held(cluster: FakeCluster) -> None:
    # Given sends held for up to 30 s
    producer = Producer("p", namesrv=cluster.namesrv, auto_batch=True, batch_max_delay=30.0)
    producer.start()
    futures = [producer.send_async(Message("Orders", b"s%d" % i)) for i in range(3)]
    # When the producer shuts down
    producer.shutdown()
    # Then they were sent and answered, not dropped
    assert [f.result(timeout=1).status for f in futures] == [SendStatus.SEND_OK] * 3
    assert [m.body for m in stored(cluster)] == [b"s0", b"s1", b"s2"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("batch_max_delay", 0.0),
        ("batch_max_delay", 31.0),
        ("batch_max_bytes", 0),
        ("batch_max_bytes", 2 * 1024 * 1024 + 1),
        ("total_batch_max_bytes", 0),
    ],
)
def test_options_out_of_rocketmqs_bounds_are_refused(option: str, value: float) -> None:
    with pytest.raises(ClientError, match=option):
        Producer("p", namesrv="127.0.0.1:9876", auto_batch=True, **{option: value})
