"""The Python client end to end against a real ``python -m runtime`` (name server + broker)."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections.abc import Iterator

import pytest

from actors.client import (
    Admin,
    BrokerError,
    ConsumeFrom,
    Message,
    MessageModel,
    MessageQueue,
    Producer,
    PullConsumer,
    PushConsumer,
    SendResult,
    SendStatus,
)
from runtime.remoting.codes import ResponseCode
from tests import client_support
from tests.client_support import Collector
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(120)

wait_until = functools.partial(client_support.wait_until, timeout=30.0)


@pytest.fixture(scope="module")
def namesrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("client-e2e")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()["namesrv"]
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture
def producer(namesrv: str) -> Iterator[Producer]:
    with Producer("e2e-producer", namesrv=namesrv) as p:
        yield p


_live: list[PushConsumer | PullConsumer] = []


@pytest.fixture(autouse=True)
def _shutdown_consumers() -> Iterator[None]:
    yield
    while _live:
        _live.pop().shutdown()


def push(namesrv: str, group: str, **options) -> PushConsumer:
    options.setdefault("consume_from", ConsumeFrom.FIRST)
    consumer = PushConsumer(group, namesrv=namesrv, **options)
    _live.append(consumer)
    return consumer


def test_what_the_producer_sends_the_push_consumer_receives_intact(
    namesrv: str, producer: Producer
) -> None:
    # Given messages with tags, keys, user properties, one large (compressed on the wire)
    big = bytes(range(256)) * 80
    sent = {}
    for i in range(10):
        body = big if i == 9 else f"order {i}".encode()
        msg = Message(
            "E2EOrders",
            body,
            tags="paid",
            keys=[f"order-{i}", "batch-1"],
            properties={"region": "eu", "n": str(i)},
        )
        r = producer.send(msg)
        assert r.status is SendStatus.SEND_OK
        sent[r.msg_id] = (r, body)
    # When a push consumer of a new group reads the topic
    got = Collector(10)
    consumer = push(namesrv, "e2e-intact")
    consumer.subscribe("E2EOrders", "paid", got)
    consumer.start()
    assert got.done.wait(30)
    # Then every message arrived once, whole, with its ids, tags, keys and properties
    assert sorted(m.msg_id for m in got.messages) == sorted(sent)
    for m in got.messages:
        result, body = sent[m.msg_id]
        assert m.body == body
        assert m.tags == "paid" and m.keys == [f"order-{m.properties['n']}", "batch-1"]
        assert m.properties["region"] == "eu"
        assert m.offset_msg_id == result.offset_msg_id
        assert (m.queue, m.queue_offset) == (result.queue, result.queue_offset)


def test_batch_messages_get_consecutive_offsets_and_are_consumed(
    namesrv: str, producer: Producer
) -> None:
    mq = MessageQueue(topic="E2EBatch", broker_name="broker-a", queue_id=0)
    producer.send(Message("E2EBatch", b"create"), queue=mq)
    r = producer.send_batch([Message("E2EBatch", b"b%d" % i) for i in range(100)], queue=mq)
    assert r.status is SendStatus.SEND_OK and r.queue_offset == 1
    consumer = PullConsumer("e2e-batch", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
    _live.append(consumer)
    consumer.assign([mq])
    consumer.start()
    polled: list = []
    deadline = time.monotonic() + 30
    while len(polled) < 101 and time.monotonic() < deadline:
        polled += consumer.poll(0.5)
    assert [m.queue_offset for m in polled] == list(range(101))
    assert [m.body for m in polled[1:]] == [b"b%d" % i for i in range(100)]
    assert [m.msg_id for m in polled[1:]] == r.msg_id.split(",")


def test_a_batch_of_thousands_is_answered_once_with_every_id_and_stored_once(
    producer: Producer,
) -> None:
    # Given a batch of 2,500 small messages: the answer's msgId list (~33 bytes a message)
    # passes 64 KiB, the header size a server accepts from its clients
    mq = MessageQueue(topic="E2EBigBatch", broker_name="broker-a", queue_id=0)
    producer.send(Message("E2EBigBatch", b"create"), queue=mq)
    # When it is sent
    r = producer.send_batch([Message("E2EBigBatch", b"%d" % i) for i in range(2500)], queue=mq)
    # Then it is answered SEND_OK naming all 2,500 (not SYSTEM_ERROR after storing them, which
    # made the producer retry: 7,500 stored), at consecutive offsets, stored once
    assert r.status is SendStatus.SEND_OK and len(r.msg_id.split(",")) == 2500
    assert r.queue_offset == 1
    again = producer.send(Message("E2EBigBatch", b"after"), queue=mq)
    assert again.queue_offset == 2501


def test_lz4_and_zstd_bodies_are_stored_with_their_sys_flag_and_read_back(namesrv: str) -> None:
    # Given one large message from a producer of each compress type (RocketMQ 5's compressType)
    mq = MessageQueue(topic="E2ECompressed", broker_name="broker-a", queue_id=0)
    body = b"lorem ipsum dolor sit amet " * 600
    for kind in ("ZLIB", "LZ4", "ZSTD"):
        with Producer(f"e2e-{kind}", namesrv=namesrv, compress_type=kind) as p:
            assert p.send(Message("E2ECompressed", body), queue=mq).status is SendStatus.SEND_OK
    # When a consumer reads the queue from the broker
    consumer = PullConsumer("e2e-compressed", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
    _live.append(consumer)
    consumer.assign([mq])
    consumer.start()
    polled: list = []
    deadline = time.monotonic() + 30
    while len(polled) < 3 and time.monotonic() < deadline:
        polled += consumer.poll(0.5)
    # Then the broker kept each sysFlag as sent (COMPRESSED | the type bits) and each body
    # inflates whole
    assert [m.sys_flag for m in polled] == [0x301, 0x101, 0x201]
    assert all(m.body == body for m in polled)


def test_tag_filter_and_a_restart_continue_from_the_committed_offset(
    namesrv: str, producer: Producer
) -> None:
    for i in range(20):
        producer.send(Message("E2ETags", b"%d" % i, tags="even" if i % 2 == 0 else "odd"))
    got = Collector(10)
    first = push(namesrv, "e2e-tags")
    first.subscribe("E2ETags", "even", got)
    first.start()
    assert got.done.wait(30)
    first.shutdown()
    assert sorted(int(m.body) for m in got.messages) == list(range(0, 20, 2))
    # a restarted member of the group continues after what was committed
    for i in range(20, 24):
        producer.send(Message("E2ETags", b"%d" % i, tags="even"))
    again = Collector(4)
    second = push(namesrv, "e2e-tags")
    second.subscribe("E2ETags", "even", again)
    second.start()
    assert again.done.wait(30)
    time.sleep(0.5)  # room for a wrong redelivery to show
    assert sorted(int(m.body) for m in again.messages) == [20, 21, 22, 23]


def test_two_members_split_the_queues_and_together_get_everything_once(
    namesrv: str, producer: Producer
) -> None:
    producer.send(Message("E2EShared", b"create"))
    a_got, b_got = Collector(1), Collector(1)
    a = push(namesrv, "e2e-shared")
    a.subscribe("E2EShared", "*", a_got)
    a.start()
    b = push(namesrv, "e2e-shared")
    b.subscribe("E2EShared", "*", b_got)
    b.start()

    def mine(c: PushConsumer) -> set[int]:
        return {mq.queue_id for mq in c.assignment() if mq.topic == "E2EShared"}

    wait_until(lambda: len(mine(a)) == 2 and len(mine(b)) == 2, what="2/2 split")
    assert mine(a) | mine(b) == {0, 1, 2, 3}
    for i in range(40):
        producer.send(Message("E2EShared", b"%d" % i))
    want = {b"create"} | {b"%d" % i for i in range(40)}
    # (wait for every body, not a count: a message in flight during the split may come twice)
    wait_until(
        lambda: {m.body for m in a_got.messages + b_got.messages} >= want, what="all 41 messages"
    )
    bodies = sorted(m.body for m in a_got.messages + b_got.messages)
    # at least once: nothing lost; only what was in flight during the split may come twice
    assert set(bodies) == {b"create"} | {b"%d" % i for i in range(40)}
    assert sorted(b for b in bodies if b != b"create") == sorted(b"%d" % i for i in range(40))
    # after the split each member only saw its own queues ("create" came before b joined)
    assert {m.queue_id for m in a_got.messages if m.body != b"create"} <= mine(a)
    assert {m.queue_id for m in b_got.messages} <= mine(b)


def test_broadcasting_members_each_get_everything(
    namesrv: str, producer: Producer, tmp_path
) -> None:
    producer.send(Message("E2ERadio", b"create"))
    collectors = [Collector(11), Collector(11)]
    for n, got in enumerate(collectors):
        c = push(
            namesrv,
            "e2e-radio",
            model=MessageModel.BROADCASTING,
            offset_store_dir=tmp_path,
            instance_name=f"m{n}",
        )
        c.subscribe("E2ERadio", "*", got)
        c.start()
    for i in range(10):
        producer.send(Message("E2ERadio", b"%d" % i))
    for got in collectors:
        assert got.done.wait(30)
        assert len({m.msg_id for m in got.messages}) == 11


def test_sharding_key_keeps_per_key_order(namesrv: str, producer: Producer) -> None:
    for step in range(10):
        for key in ("k1", "k2", "k3"):
            producer.send(Message("E2EOrdered", f"{key}:{step}".encode()), sharding_key=key)
    got = Collector(30)
    consumer = push(namesrv, "e2e-ordered", consume_threads=1)
    consumer.subscribe("E2EOrdered", "*", got)
    consumer.start()
    assert got.done.wait(30)
    per_key: dict[str, list[int]] = {}
    for m in sorted(got.messages, key=lambda m: (m.queue_id, m.queue_offset)):
        key, step = m.body.decode().split(":")
        per_key.setdefault(key, []).append(int(step))
    assert per_key == {k: list(range(10)) for k in ("k1", "k2", "k3")}


@pytest.mark.parametrize(
    "bounds", [{"max_async_sends": 2}, {"max_async_bytes": 10_000}], ids=["sends", "bytes"]
)
def test_send_async_waits_for_room_and_everything_is_stored_in_order(
    namesrv: str, bounds: dict[str, int]
) -> None:
    # Given a producer whose async sends may have 2 sends, or 10,000 body bytes (two 4 KiB
    # bodies), in flight
    with Producer("e2e-window", namesrv=namesrv, compress_over=-1, **bounds) as p:
        first = p.send(Message("E2eWindow", b"first"))
        queue = first.queue
        # When one thread fires 200 async sends of 4 KiB at one queue without waiting
        futures = [
            p.send_async(Message("E2eWindow", f"{i:04d}".encode() * 1024), queue=queue)
            for i in range(200)
        ]
        results = [f.result(30) for f in futures]
        window = p.async_window
        assert window is not None
        # Then every one is stored, in the order sent, and no more than two were ever in flight
        assert all(r.status == SendStatus.SEND_OK for r in results)
        offsets = [r.queue_offset for r in results]
        assert offsets == list(range(first.queue_offset + 1, first.queue_offset + 201))
        assert window.peak_sends == 2
        assert (window.sends, window.bytes) == (0, 0)


def test_auto_batched_sends_each_name_their_own_stored_message(namesrv: str) -> None:
    # Given a producer that holds small sends up to 1 s and batches them
    with Producer("e2e-auto-batch", namesrv=namesrv, auto_batch=True, batch_max_delay=1.0) as p:
        p.send(Message("E2eAutoBatch", b"route"))
        # When twenty messages are sent asynchronously at once
        futures = [
            p.send_async(Message("E2eAutoBatch", b"b%02d" % i, keys=[f"k{i}"])) for i in range(20)
        ]
        results = [f.result(30) for f in futures]
    # Then each result's offset message id and queue offset lead to its own message on the broker
    with Admin(namesrv) as admin:
        for i in (0, 7, 19):
            found = admin.view_message(results[i].offset_msg_id)
            assert (found.body, found.keys, found.msg_id) == (
                b"b%02d" % i,
                [f"k{i}"],
                results[i].msg_id,
            )
    queue = results[0].queue
    assert all(r.queue == queue and r.status == SendStatus.SEND_OK for r in results)
    offsets = [r.queue_offset for r in results]
    assert offsets == list(range(offsets[0], offsets[0] + 20))


def test_async_sends_right_after_start_are_stored_in_invoke_order(namesrv: str) -> None:
    # Given a producer just started: no route of the (new) topic, no connection to the broker;
    # no retries (a send the broker fast-fails SYSTEM_BUSY on a loaded machine, retried, would
    # land after later ones: RocketMQ's retries do not keep order either)
    with Producer("e2e-start-order", namesrv=namesrv, retries=0) as p:
        # When one thread fires 400 async sends round robin at once
        futures = [p.send_async(Message("E2eStartOrder", b"%d" % i)) for i in range(400)]
        outcomes = [f.exception(30) or f.result() for f in futures]
    # Then every queue stored its sends in the order they were invoked
    by_queue: dict[MessageQueue, list[int]] = {}
    results = [r for r in outcomes if isinstance(r, SendResult)]
    busy = [e for e in outcomes if isinstance(e, BrokerError)]
    assert len(results) + len(busy) == 400 and results
    assert all(e.code == ResponseCode.SYSTEM_BUSY for e in busy)
    for r in results:
        assert r.status == SendStatus.SEND_OK
        by_queue.setdefault(r.queue, []).append(r.queue_offset)
    for mq, offsets in by_queue.items():
        assert offsets == sorted(offsets), f"{mq}: {offsets}"


def test_a_callback_that_sends_while_the_window_is_full_gets_room(namesrv: str) -> None:
    # Given a producer allowing one async send in flight; the first send's callback (on the
    # producer's one callback thread) waits until the main thread's second send took the room
    with Producer("e2e-window-cb", namesrv=namesrv, max_async_sends=1) as p:
        second_sent, called = threading.Event(), threading.Event()
        third: list[concurrent.futures.Future[SendResult]] = []

        def first_done(_result: object, error: BaseException | None) -> None:
            assert second_sent.wait(10) and error is None
            # When it sends again while the window is full (the second is in flight)
            third.append(p.send_async(Message("E2eWindowCb", b"third")))
            called.set()

        p.send_async(Message("E2eWindowCb", b"first"), first_done)
        second = p.send_async(Message("E2eWindowCb", b"second"))
        second_sent.set()
        # Then the second's answer makes room for it: the callback thread that waits for room
        # is not the one that must see the answer
        assert called.wait(10)
        assert second.result(10).status == SendStatus.SEND_OK
        assert third[0].result(10).status == SendStatus.SEND_OK
