"""Rebalancing: when a broker's consumer list lacks this client (a broker that just restarted),
and with allocation strategies other than the default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger

from actors.client import ConsumeFrom, MessageQueue, PullConsumer, PushConsumer
from actors.client.allocate import AllocateOption
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


def member(cluster: FakeCluster, orderly: bool, allocate: AllocateOption = "AVG") -> PushConsumer:
    consumer = PushConsumer(
        GROUP,
        namesrv=cluster.namesrv,
        consume_from=ConsumeFrom.LAST,
        rebalance_interval=60.0,  # rounds happen when the test (or a notification) asks
        orderly=orderly,
        allocate=allocate,
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


def consumer_lists(cluster: FakeCluster) -> int:
    codes = cluster.run(lambda: cluster.broker().codes())
    return codes.count(RequestCode.GET_CONSUMER_LIST_BY_GROUP)


def test_a_member_not_listed_looks_again_a_second_later(cluster: FakeCluster) -> None:
    # Given two members sharing the topic, the broker no longer listing the first (and not
    # registering its heartbeats); rebalance timers a minute off
    first = member(cluster, False)
    second = member(cluster, False)
    try:
        wait_until(lambda: len(orders(first)) == 2 and len(orders(second)) == 2, what="2/2")

        def restart() -> None:
            broker = cluster.broker()
            broker.forget_heartbeats = True
            del broker.consumers[GROUP][first.client_id]

        cluster.run(restart)
        # When the first rebalances and finds itself unlisted (it asks for a heartbeat)
        first.rebalance()
        lists = consumer_lists(cluster)  # (one per topic: Orders and the retry topic)
        # Then it looks at the topic again by itself about a second later (by then its
        # heartbeat is in, as a rule: a heartbeat that only takes up topics is no join, and
        # the broker tells the member itself nothing), not at its timer a minute on
        wait_until(lambda: consumer_lists(cluster) > lists, timeout=10, what="a retry")
    finally:
        first.shutdown()
        second.shutdown()


# -- allocation strategies ----------------------------------------------------------------------


@pytest.mark.parametrize("orderly", [False, True], ids=["concurrently", "orderly"])
def test_two_members_by_circle_deal_the_queues_round(cluster: FakeCluster, orderly: bool) -> None:
    # Given two members of a group with RocketMQ's AVG_BY_CIRCLE strategy
    one = member(cluster, orderly, allocate="AVG_BY_CIRCLE")
    two = member(cluster, orderly, allocate="AVG_BY_CIRCLE")
    try:
        # When both see each other (the second's heartbeat tells the first)
        low, high = sorted([one, two], key=lambda c: c.client_id)

        # Then the 4 queues are dealt round by sorted client id: 0 and 2, 1 and 3 (AVG would
        # give 0 and 1, 2 and 3)
        wait_until(lambda: orders(low) == [0, 2] and orders(high) == [1, 3], what="dealt round")
        # And the running info names RocketMQ's strategy class, as a Java consumer's does
        info = low.running_info()
        assert info.properties["allocateMessageQueueStrategy"] == (
            "org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragelyByCircle"
        )
    finally:
        one.shutdown()
        two.shutdown()


@pytest.fixture
def errors() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="ERROR", format="{message}")
    yield seen
    logger.remove(sink)


def test_a_strategy_answering_a_foreign_queue_is_refused_for_the_round(
    cluster: FakeCluster, errors: list[str]
) -> None:
    # Given a lite pull consumer whose own strategy takes every queue it is offered
    stray = MessageQueue(topic="Orders", broker_name="broker-z", queue_id=0)
    answer_stray = False

    def everything(group: str, cid: str, mqs: list[MessageQueue], cids: list[str]) -> list:
        return [*mqs, stray] if answer_stray else mqs

    consumer = PullConsumer(
        GROUP, namesrv=cluster.namesrv, rebalance_interval=60.0, allocate=everything
    )
    consumer.subscribe("Orders", "*")
    consumer.start()
    try:
        assert orders(consumer) == [0, 1, 2, 3]

        # When the strategy starts answering a queue the route does not list
        answer_stray = True
        changed = consumer.rebalance()

        # Then the round is refused: the queues stay as they were, and the refusal is logged
        assert changed is False
        assert orders(consumer) == [0, 1, 2, 3]
        assert any("keeps its queues of Orders" in e and "broker-z" in e for e in errors), errors

        # When it answers within what it was offered again
        answer_stray = False
        errors.clear()

        # Then rounds go on as before, without errors
        assert consumer.rebalance() is False
        assert errors == []
    finally:
        consumer.shutdown()


def test_a_lone_member_of_many_topics_asks_each_broker_once_a_round() -> None:
    topics = tuple(f"Lite{i}" for i in range(20))  # more than fan_out's ONE_BY_ONE
    with FakeCluster(("broker-a",), topics=topics) as fc:
        first = PullConsumer("lone-g", namesrv=fc.namesrv, rebalance_interval=60.0)
        for topic in topics:
            first.subscribe(topic)
        first.start()
        second = None
        try:
            wait_until(lambda: len(first.assignment()) == 20 * 4, what="all queues")
            # Given the group's only member, When it rebalances its 20 topics
            lists = consumer_lists(fc)
            first.rebalance()
            # Then it asked the broker once (the whole list: itself alone), not once per topic
            assert consumer_lists(fc) == lists + 1
            # When a second member joins, Then rounds ask per topic again, and share the queues
            second = PullConsumer("lone-g", namesrv=fc.namesrv, rebalance_interval=60.0)
            for topic in topics:
                second.subscribe(topic)
            second.start()
            wait_until(
                lambda: len(first.assignment()) == 40 and len(second.assignment()) == 40,
                what="the queues shared",
            )
            lists = consumer_lists(fc)
            first.rebalance()
            assert consumer_lists(fc) == lists + 1 + 20
        finally:
            first.shutdown()
            if second is not None:
                second.shutdown()
