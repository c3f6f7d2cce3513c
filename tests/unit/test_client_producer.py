"""Producer against an in-memory cluster over loopback (actors.client.testing.FakeCluster)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from actors.client import (
    BrokerError,
    ClientStateError,
    Message,
    MessageInvalidError,
    MessageQueue,
    MessageTooLargeError,
    Producer,
    RequestTimeoutError,
    SendFailedError,
    SendStatus,
)
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from runtime.remoting.codes import MessageSysFlag, RequestCode, ResponseCode
from runtime.remoting.header_codec import decode_send_header

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a", "broker-b"), topics=("Orders",)) as fc:
        yield fc


@pytest.fixture
def producer(cluster: FakeCluster) -> Iterator[Producer]:
    with Producer("orders-producer", namesrv=cluster.namesrv) as p:
        yield p


def stored_messages(cluster: FakeCluster, topic: str) -> list:
    return [decode_messages(s.record, "?")[0] for s in cluster.stored(topic)]


def test_sync_send_returns_where_the_message_landed(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given a topic on two brokers, When a message is sent
    msg = Message("Orders", b"body-1", tags="paid", keys=["order-42"], properties={"r": "eu"})
    r = producer.send(msg)
    # Then the result names the stored message
    assert r.status is SendStatus.SEND_OK
    assert r.queue == MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    assert r.queue_offset == 0
    assert len(r.offset_msg_id) == 32
    [stored] = stored_messages(cluster, "Orders")
    assert stored.body == b"body-1" and stored.tags == "paid" and stored.keys == ["order-42"]
    assert stored.properties == {"r": "eu"}
    assert stored.msg_id == r.msg_id  # msg_id is the UNIQ_KEY we generated
    # And the header is a valid SEND_MESSAGE_V2 header for the broker's decoder
    code, ext = next(x for x in cluster.broker("broker-a").requests if x[0] == 310)
    header = decode_send_header(code, ext)
    assert (header.producer_group, header.topic, header.queue_id) == (
        "orders-producer",
        "Orders",
        0,
    )
    assert header.default_topic == "TBW102" and header.broker_name == "broker-a"


def test_round_robin_spreads_over_every_queue_of_every_broker(producer: Producer) -> None:
    seen = [producer.send(Message("Orders", b"x")).queue for _ in range(8)]
    assert len(set(seen)) == 8
    assert {mq.broker_name for mq in seen} == {"broker-a", "broker-b"}


def test_unknown_topic_is_sent_through_tbw102_so_the_broker_creates_it(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given a topic nobody created
    # When it is sent to
    r = producer.send(Message("BrandNew", b"hello"))
    # Then the client asked the name server for it, then for TBW102, and the broker created it
    topics = [ext.get("topic") for code, ext in cluster.namesrv_requests if code == 105]
    assert topics[:2] == ["BrandNew", "TBW102"]
    assert r.status is SendStatus.SEND_OK
    assert [m.body for m in stored_messages(cluster, "BrandNew")] == [b"hello"]
    # And at most 4 queues per broker are used until the real route appears
    queues = producer.queues("BrandNew2")
    assert len(queues) == 8 and max(mq.queue_id for mq in queues) == 3


def test_no_tbw102_means_no_route_error(cluster: FakeCluster) -> None:
    cluster.auto_create = False
    with Producer("p", namesrv=cluster.namesrv) as p, pytest.raises(Exception) as err:
        p.send(Message("Nope", b"x"))
    assert "Nope" in str(err.value)


def test_a_send_waits_briefly_for_a_route_that_is_about_to_appear(cluster: FakeCluster) -> None:
    # Given a cluster whose brokers have not registered TBW102 yet (just started)
    cluster.tbw102_misses = 1  # the first lookup finds none, the next one does
    with Producer("p", namesrv=cluster.namesrv) as p:
        # When a send to a new topic starts before the route appears
        started = time.monotonic()
        r = p.send(Message("Later", b"x"))
    # Then a retry after a short back-off (0.2 s) finds it, within the send timeout
    assert r.status is SendStatus.SEND_OK
    assert 0.15 <= time.monotonic() - started < 3.0
    topics = [ext.get("topic") for code, ext in cluster.namesrv_requests if code == 105]
    assert topics.count("TBW102") >= 2


def test_a_failed_send_is_retried_on_the_other_broker(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given broker-a answers the next send with SYSTEM_BUSY
    producer.send(Message("Orders", b"warm-up"))  # route and connections known
    cluster.run(lambda: cluster.broker("broker-a").fail_sends.append(ResponseCode.SYSTEM_BUSY))
    sent_before = cluster.broker("broker-b").codes().count(310)
    # When the next send would go to broker-a (round robin: queue 1 of broker-a)
    r = producer.send(Message("Orders", b"retried"))
    # Then it landed on broker-b, in one call from the user's point of view (sends counted
    # alone: the producer's first heartbeat to a broker may come at any time)
    assert r.queue.broker_name == "broker-b"
    assert cluster.broker("broker-b").codes().count(310) == sent_before + 1
    assert [m.body for m in stored_messages(cluster, "Orders")][-1:] == [b"retried"]


def test_with_latency_fault_tolerance_a_failed_broker_is_skipped_for_a_while(
    cluster: FakeCluster,
) -> None:
    with Producer("faulty", namesrv=cluster.namesrv, send_latency_fault_enable=True) as producer:
        # Given broker-a refuses one send (round robin: the second send goes to broker-a)
        producer.send(Message("Orders", b"warm-up"))
        cluster.run(lambda: cluster.broker("broker-a").fail_sends.append(ResponseCode.SYSTEM_BUSY))
        # When eight more sends follow
        landed = [producer.send(Message("Orders", b"x")).queue.broker_name for _ in range(8)]
        # Then the refused one was retried on broker-b and broker-a got none of them (out for
        # 10 s), where the plain round robin would have sent it every other one
        assert landed == ["broker-b"] * 8
        assert producer.latency_fault is not None
        assert set(producer.latency_fault.unavailable()) == {"broker-a"}


def test_a_send_not_stored_ok_is_retried_on_another_broker_when_asked(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given broker-a answers its next sends FLUSH_DISK_TIMEOUT (stored, not yet on disk)
    producer.send(Message("Orders", b"warm-up"))  # the next send goes to broker-a
    flush_timeout = ResponseCode.FLUSH_DISK_TIMEOUT
    cluster.run(lambda: cluster.broker("broker-a").stored_codes.append(flush_timeout))
    # Then by default that is the outcome (RocketMQ's retryAnotherBrokerWhenNotStoreOK is off)
    assert producer.send(Message("Orders", b"once")).status is SendStatus.FLUSH_DISK_TIMEOUT
    with Producer(
        "retrying", namesrv=cluster.namesrv, retry_another_broker_when_not_store_ok=True
    ) as retrying:
        # When a producer with the option sends to broker-a (its first send: queue 0 of a)
        cluster.run(lambda: cluster.broker("broker-a").stored_codes.append(flush_timeout))
        r = retrying.send(Message("Orders", b"again"))
        # Then it was sent again to broker-b, which stored it OK
        assert r.status is SendStatus.SEND_OK and r.queue.broker_name == "broker-b"
        # When every attempt is answered not OK, Then the last such answer is the outcome
        for name in ("broker-a", "broker-b"):
            cluster.run(lambda n=name: cluster.broker(n).stored_codes.extend([flush_timeout] * 3))
        assert retrying.send(Message("Orders", b"x")).status is SendStatus.FLUSH_DISK_TIMEOUT
    bodies = [m.body for m in stored_messages(cluster, "Orders")]
    assert bodies.count(b"once") == 1 and bodies.count(b"again") == 2 and bodies.count(b"x") == 3


def test_an_async_send_is_retried_after_a_lost_connection_not_after_a_refusal(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given broker-a drops the connection of its next send
    producer.send(Message("Orders", b"warm-up"))  # route and connections known
    cluster.run(lambda: setattr(cluster.broker("broker-a"), "dropped_sends", 1))
    # When an async send goes to broker-a (round robin: queue 1 of broker-a)
    r = producer.send_async(Message("Orders", b"retried")).result(timeout=5)
    # Then it was retried on broker-b (RocketMQ's retryTimesWhenSendAsyncFailed)
    assert r.queue.broker_name == "broker-b"
    # When an async send names its queue on broker-a, which refuses it SYSTEM_BUSY
    cluster.run(lambda: cluster.broker("broker-a").fail_sends.append(ResponseCode.SYSTEM_BUSY))
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    future = producer.send_async(Message("Orders", b"pinned"), queue=mq)
    # Then the refusal is the answer (RocketMQ retries no async send a broker refused)
    with pytest.raises(BrokerError) as err:
        future.result(timeout=5)
    assert err.value.code == ResponseCode.SYSTEM_BUSY


def test_three_failures_raise_send_failed_with_every_error(
    cluster: FakeCluster, producer: Producer
) -> None:
    for name in ("broker-a", "broker-b"):
        cluster.run(
            lambda n=name: cluster.broker(n).fail_sends.extend([ResponseCode.SYSTEM_ERROR] * 3)
        )
    with pytest.raises(SendFailedError) as err:
        producer.send(Message("Orders", b"x"))
    assert len(err.value.errors) == 3
    assert all(isinstance(e, BrokerError) and e.code == 1 for e in err.value.errors)
    assert not err.value.maybe_stored


def test_a_non_retryable_error_is_raised_at_once(cluster: FakeCluster, producer: Producer) -> None:
    producer.send(Message("Orders", b"warm-up"))
    for name in ("broker-a", "broker-b"):
        cluster.run(
            lambda n=name: cluster.broker(n).fail_sends.append(ResponseCode.MESSAGE_ILLEGAL)
        )
    before = sum(b.codes().count(310) for b in cluster.brokers.values())
    with pytest.raises(BrokerError) as err:
        producer.send(Message("Orders", b"x"))
    assert err.value.code == ResponseCode.MESSAGE_ILLEGAL
    assert sum(b.codes().count(310) for b in cluster.brokers.values()) == before + 1


def test_no_answer_is_a_timeout_within_the_send_timeout(cluster: FakeCluster) -> None:
    for b in cluster.brokers.values():
        b.silent_sends = 10
    with Producer("p", namesrv=cluster.namesrv, send_timeout=0.5) as p:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as err:
            p.send(Message("Orders", b"x"))
        elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 1.5
    assert err.value.timeout == 0.5
    # and the message was sent once: a timeout spends the send's time, nothing is left to retry
    assert sum(b.codes().count(310) for b in cluster.brokers.values()) == 1


def test_too_large_is_refused_before_sending(cluster: FakeCluster, producer: Producer) -> None:
    with pytest.raises(MessageTooLargeError):
        producer.send(Message("Orders", b"x" * (4 * 1024 * 1024 + 1)))
    assert all(code != 310 for b in cluster.brokers.values() for code in b.codes())


def test_large_bodies_are_stored_compressed_and_read_back_whole(
    cluster: FakeCluster, producer: Producer
) -> None:
    body = bytes(range(256)) * 64  # 16 KiB
    producer.send(Message("Orders", body))
    [stored] = cluster.stored("Orders")
    [msg] = decode_messages(stored.record, "broker-a")
    assert msg.sys_flag & MessageSysFlag.COMPRESSED
    assert len(stored.record) < len(body)
    assert msg.body == body


def test_async_send_completes_future_and_callback_off_the_hub(producer: Producer) -> None:
    done = threading.Event()
    seen: list = []

    def callback(result, error) -> None:
        seen.append((result, error, threading.current_thread().name))
        done.set()

    future = producer.send_async(Message("Orders", b"a"), callback)
    result = future.result(timeout=5)
    assert done.wait(5)
    assert result.status is SendStatus.SEND_OK
    assert seen[0][0] == result and seen[0][1] is None
    assert seen[0][2].startswith("actormq-callback")
    # many in flight at once
    futures = [producer.send_async(Message("Orders", b"%d" % i)) for i in range(200)]
    assert all(f.result(10).status is SendStatus.SEND_OK for f in futures)


def test_a_callback_may_send_synchronously_without_deadlock(producer: Producer) -> None:
    out: list = []
    done = threading.Event()

    def callback(_result, _error) -> None:
        out.append(producer.send(Message("Orders", b"from-callback")))
        done.set()

    producer.send_async(Message("Orders", b"first"), callback)
    assert done.wait(5)
    assert out[0].status is SendStatus.SEND_OK


def test_oneway_and_batch(cluster: FakeCluster, producer: Producer) -> None:
    producer.send_oneway(Message("Orders", b"one"))
    mq = MessageQueue(topic="Orders", broker_name="broker-b", queue_id=2)
    r = producer.send_batch([Message("Orders", b"b%d" % i) for i in range(5)], queue=mq)
    assert r.queue == mq and r.queue_offset == 0 and len(r.msg_id.split(",")) == 5
    r2 = producer.send_batch([Message("Orders", b"c")], queue=mq)
    assert r2.queue_offset == 5  # every batch member took its own offset
    deadline = time.monotonic() + 5
    while b"one" not in [m.body for m in stored_messages(cluster, "Orders")]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    codes = cluster.broker("broker-b").codes()
    assert RequestCode.SEND_BATCH_MESSAGE in codes


def test_selectors_pick_the_queue(producer: Producer) -> None:
    by_key = {
        producer.send(Message("Orders", b"x"), sharding_key="order-7").queue for _ in range(5)
    }
    assert len(by_key) == 1
    last = producer.send(Message("Orders", b"x"), selector=lambda queues, msg: queues[-1]).queue
    assert last == MessageQueue(topic="Orders", broker_name="broker-b", queue_id=3)
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=2)
    assert producer.send(Message("Orders", b"x"), queue=mq).queue == mq


def test_heartbeat_names_the_group_and_shutdown_unregisters(cluster: FakeCluster) -> None:
    p = Producer("grp-h", namesrv=cluster.namesrv, heartbeat_interval=0.05)
    p.start()
    p.send(Message("Orders", b"x"))
    deadline = time.monotonic() + 5
    while p.client_id not in cluster.run(lambda: set(cluster.broker().producers["grp-h"])):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    p.shutdown()
    assert p.client_id not in cluster.run(lambda: set(cluster.broker().producers["grp-h"]))
    unregister = [e for c, e in cluster.broker().requests if c == RequestCode.UNREGISTER_CLIENT]
    assert unregister and unregister[-1]["producerGroup"] == "grp-h"
    with pytest.raises(ClientStateError):
        p.send(Message("Orders", b"x"))


def test_a_producer_beats_as_soon_as_its_first_route_names_a_broker(cluster: FakeCluster) -> None:
    # Given a producer whose periodic heartbeat is far off
    with Producer("grp-early", namesrv=cluster.namesrv, heartbeat_interval=3600) as p:
        # When its first send fetches a route naming the broker
        p.send(Message("Orders", b"x"))
        # Then the broker lists it at once, not at the next tick (as a Java producer's first
        # beat a second after its start)
        deadline = time.monotonic() + 5
        while p.client_id not in cluster.run(
            lambda: set(cluster.broker().producers.get("grp-early", ()))
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_namesrv_addr_environment_variable(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESRV_ADDR", cluster.namesrv)
    with Producer("env") as p:
        assert p.send(Message("Orders", b"x")).status is SendStatus.SEND_OK


def test_send_before_start_is_a_state_error(cluster: FakeCluster) -> None:
    p = Producer("p", namesrv=cluster.namesrv)
    with pytest.raises(ClientStateError):
        p.send(Message("Orders", b"x"))


def test_many_threads_send_concurrently(producer: Producer) -> None:
    results: list = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            r = producer.send(Message("Orders", b"t"))
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 200
    assert len({(r.queue, r.queue_offset) for r in results}) == 200


def test_a_message_sent_for_another_keeps_its_born_host(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given a message sent for a client elsewhere (as the proxy does for a gRPC client)
    producer.send(Message("Orders", b"for-another"), born_host="client-host-7")
    # Then its born host is kept as RocketMQ's __BORNHOST property, not a user property
    stored = stored_messages(cluster, "Orders")[-1]
    assert stored.all_properties["__BORNHOST"] == "client-host-7"
    assert stored.properties == {}
    # And a host holding a property separator is refused before sending
    with pytest.raises(MessageInvalidError, match="born_host"):
        producer.send(Message("Orders", b"x"), born_host="bad\x01host")


def test_a_sharding_key_past_the_properties_limit_is_refused_before_sending(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given a sharding key that would make the properties longer than their 32,767 bytes
    before = sum(b.codes().count(310) for b in cluster.brokers.values())
    # When it is sent, Then it is refused, naming the field, and nothing went out
    with pytest.raises(MessageInvalidError, match="sharding_key"):
        producer.send(Message("Orders", b"x"), sharding_key="k" * 40_000)
    assert sum(b.codes().count(310) for b in cluster.brokers.values()) == before


def test_a_callers_message_id_with_a_separator_is_refused(producer: Producer) -> None:
    # Given a message id that would add a property of its own to the stored message
    # Then the send is refused before anything goes out
    with pytest.raises(MessageInvalidError, match="msg_id"):
        producer.send(Message("Orders", b"x"), msg_id="ID1\x02TAGS\x01injected")
