"""Rebalancing when a broker's consumer list lacks this client (a broker that just restarted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger

from actors.client import ConsumeFrom, PushConsumer
from actors.client.testing import FakeCluster
from runtime.remoting.codes import RequestCode
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(40)

GROUP = "restart-g"


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING", format="{message}")
    yield seen
    logger.remove(sink)


def member(cluster: FakeCluster, orderly: bool) -> PushConsumer:
    consumer = PushConsumer(
        GROUP,
        namesrv=cluster.namesrv,
        consume_from=ConsumeFrom.LAST,
        rebalance_interval=60.0,  # rounds happen when the test (or a notification) asks
        orderly=orderly,
    )
    consumer.subscribe("Orders", "*", lambda m: None)
    consumer.start()
    return consumer


def orders(consumer: PushConsumer) -> list[int]:
    return [mq.queue_id for mq in consumer.assignment() if mq.topic == "Orders"]


def heartbeats(cluster: FakeCluster) -> int:
    return cluster.run(lambda: cluster.broker().codes().count(RequestCode.HEART_BEAT))


@pytest.mark.parametrize("orderly", [False, True], ids=["concurrently", "orderly"])
def test_a_member_the_broker_does_not_list_yet_keeps_its_queues(
    cluster: FakeCluster, warnings: list[str], orderly: bool
) -> None:
    # Given two members of a group sharing the topic's 4 queues 2/2
    first = member(cluster, orderly)
    second = member(cluster, orderly)
    try:
        wait_until(lambda: len(orders(first)) == 2 and len(orders(second)) == 2, what="2/2")
        held = orders(first)

        # And the broker restarted: it knows the second member only, and holds off
        # registering the first's heartbeats
        def restart() -> None:
            broker = cluster.broker()
            broker.forget_heartbeats = True
            del broker.consumers[GROUP][first.client_id]

        cluster.run(restart)
        beats = heartbeats(cluster)

        # When the first member rebalances twice against that list
        changed = [first.rebalance(), first.rebalance()]

        # Then it keeps the queues it holds (nothing dropped, nothing taken)
        assert changed == [False, False]
        assert orders(first) == held
        # And it warned once for the topic, not once per round
        mine = [w for w in warnings if first.client_id in w and "queues of Orders" in w]
        assert len(mine) == 1, warnings
        # And each round asked for a heartbeat at once (the 30 s timer is far away)
        wait_until(lambda: heartbeats(cluster) >= beats + 2, what="two prompt heartbeats")

        # When the broker registers heartbeats again and the first rebalances
        cluster.run(lambda: setattr(cluster.broker(), "forget_heartbeats", False))
        first.rebalance()

        # Then its heartbeat puts it back on the list, and the split stays as it was
        wait_until(lambda: first.client_id in cluster.consumer_ids(GROUP), what="listed again")
        assert first.rebalance() is False
        assert orders(first) == held
        assert len(orders(second)) == 2
    finally:
        first.shutdown()
        second.shutdown()
