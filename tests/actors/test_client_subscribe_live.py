"""Subscribing and unsubscribing a consumer that runs (RocketMQ's consumers allow both after
``start``), against the fake cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from actors.client import BrokerError, ClientError, ConsumeFrom, MessageQueue, PullConsumer
from actors.client.testing import FakeCluster
from tests.actors.test_client_pull_limits import _live, fake_cluster, pullers_read, push
from tests.client_support import Collector

pytestmark = pytest.mark.timeout(30)

TAG_A = "TAGS\x01a\x02"
TAG_B = "TAGS\x01b\x02"


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    yield from fake_cluster(1, ("Orders", "Payments"))


def wait_for(got: Collector, count: int) -> list[bytes]:
    got.expect, got.done = count, type(got.done)()
    if len(got.bodies()) >= count:
        got.done.set()
    assert got.done.wait(10), got.bodies()
    return got.bodies()


def test_a_running_push_consumer_subscribes_to_another_topic(cluster: FakeCluster) -> None:
    # Given a push consumer of Orders that consumed a message
    got = Collector(1)
    consumer = push(cluster, "live-sub", got, suspend_timeout=0.2)
    consumer.start()
    cluster.put("Orders", b"order-1")
    assert wait_for(got, 1) == [b"order-1"]
    # When it subscribes to Payments while running
    consumer.subscribe("Payments", "*", got)
    # (a topic without a listener is refused once running: the decorator would come too late)
    with pytest.raises(ClientError, match="no listener for Refunds"):
        consumer.subscribe("Refunds")
    # Then it pulls Payments' queue and consumes its messages too
    cluster.put("Payments", b"payment-1")
    assert wait_for(got, 2) == [b"order-1", b"payment-1"]
    assert {mq.topic for mq in pullers_read(consumer, "on_hold")} >= {"Orders", "Payments"}


def test_unsubscribe_lets_the_topics_queues_go_with_their_offsets(cluster: FakeCluster) -> None:
    # Given a push consumer of Orders and Payments that consumed one message of Orders
    got = Collector(1)
    consumer = push(cluster, "live-unsub", got, suspend_timeout=0.2)
    consumer.subscribe("Payments", "*", got)
    consumer.start()
    cluster.put("Orders", b"order-1")
    assert wait_for(got, 1) == [b"order-1"]
    # When it unsubscribes Orders
    consumer.unsubscribe("Orders")
    # Then it holds no Orders queue, the queue's offset was committed past what it consumed,
    # and a message sent to Orders now is not consumed while Payments' still are
    assert "Orders" not in {mq.topic for mq in pullers_read(consumer, "on_hold")}
    committed = cluster.run(lambda: dict(cluster.broker().offsets))
    assert committed[("live-unsub", "Orders", 0)] == 1
    cluster.put("Orders", b"order-2")
    cluster.put("Payments", b"payment-1")
    assert wait_for(got, 2) == [b"order-1", b"payment-1"]
    got.expect, got.done = 3, type(got.done)()
    assert not got.done.wait(0.5), got.bodies()
    assert "Orders" not in {s.topic for s in consumer.consumer_data().subscription_data_set}


def test_a_new_filter_for_a_subscribed_topic_applies_from_then(cluster: FakeCluster) -> None:
    # Given a push consumer of Orders' tag a, which consumed an a-message
    got = Collector(1)
    consumer = push(cluster, "live-refilter", got, suspend_timeout=0.2)
    consumer.unsubscribe("Orders")  # before start: forgotten
    consumer.subscribe("Orders", "a", got)
    consumer.start()
    cluster.put("Orders", b"a-1", properties=TAG_A)
    assert wait_for(got, 1) == [b"a-1"]
    # When it subscribes to tag b instead
    consumer.subscribe("Orders", "b", got)
    # Then b-messages are consumed from then on, a-messages no more
    cluster.put("Orders", b"a-2", properties=TAG_A)
    cluster.put("Orders", b"b-1", properties=TAG_B)
    assert wait_for(got, 2) == [b"a-1", b"b-1"]
    assert consumer.subscriptions["Orders"].expression == "b"


def test_a_refused_sql_subscription_changes_nothing(cluster: FakeCluster) -> None:
    # Given a running push consumer of Orders, and a broker without property filtering
    cluster.run(lambda: setattr(cluster.broker(), "property_filter", False))
    consumer = push(cluster, "live-sql", Collector(1))
    consumer.start()
    # When it subscribes to Payments with a SQL92 filter
    with pytest.raises(BrokerError):
        consumer.subscribe("Payments", listener=Collector(1), sql="a > 1")
    # Then it is refused by the broker's check and its subscriptions are as they were
    assert set(consumer.subscriptions) == {"Orders"}


def test_a_running_lite_consumer_subscribes_and_polls_the_new_topic(cluster: FakeCluster) -> None:
    # Given a lite consumer of Orders, running
    consumer = PullConsumer(
        "live-lite", namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST, suspend_timeout=0.2
    )
    _live.append(consumer)
    consumer.subscribe("Orders")
    consumer.start()
    # When it subscribes to Payments and a message arrives there
    consumer.subscribe("Payments")
    cluster.put("Payments", b"payment-1")
    # Then poll returns it, and the consumer holds Payments' queue
    got: list[bytes] = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        got = [m.body for m in consumer.poll(0.5)]
    assert got == [b"payment-1"]
    assert MessageQueue(topic="Payments", broker_name="broker-a", queue_id=0) in set(
        consumer.assignment()
    )
