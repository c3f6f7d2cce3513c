"""Members of one consumer group that subscribe different topics (lite topics through several
proxies do): each topic's queues are shared among the members that subscribe it (actormq's
broker answers GET_CONSUMER_LIST_BY_GROUP for a topic with those; RocketMQ's answers every
member, and a topic's queues allocated to a member that does not pull it wait forever)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from actors.client import Admin, ConsumeFrom, Message, Producer, PullConsumer
from runtime.remoting.codes import RequestCode
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)

GROUP = "mixed-topics"


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]) as node:
        ready = node.wait_ready()
        with Admin(ready["namesrv"]) as admin:
            for topic in ("MixedA", "MixedB"):
                admin.create_topic(topic, queues=4)
        yield ready
        assert node.terminate() == 0, node.stderr_text()


def _poll_all(consumer: PullConsumer, count: int) -> list[bytes]:
    got: list[bytes] = []

    def more() -> bool:
        got.extend(m.body for m in consumer.poll(timeout=0.5))
        return len(got) >= count

    wait_until(more, timeout=30, what=f"{count} messages")
    return got


def test_each_topic_goes_to_the_members_that_subscribe_it(cluster: dict[str, str]) -> None:
    namesrv = cluster["namesrv"]
    # Given two members of one group, one subscribing MixedA, the other MixedB
    first = PullConsumer(GROUP, namesrv, consume_from=ConsumeFrom.FIRST, instance_name="a")
    second = PullConsumer(GROUP, namesrv, consume_from=ConsumeFrom.FIRST, instance_name="b")
    first.subscribe("MixedA")
    second.subscribe("MixedB")
    with first, second:
        # When 8 messages go to each topic, 2 to every queue
        with Producer("mixed-topics-producer", namesrv) as producer:
            for topic in ("MixedA", "MixedB"):
                for queue in producer.queues(topic):
                    for i in range(2):
                        body = f"{topic}-{queue.queue_id}-{i}".encode()
                        producer.send(Message(topic, body), queue=queue)
        # Then each member gets all 8 of its topic (every queue of it), none of the other's
        got_a = _poll_all(first, 8)
        got_b = _poll_all(second, 8)
        assert sorted(got_a) == sorted(
            f"MixedA-{q}-{i}".encode() for q in range(4) for i in range(2)
        )
        assert sorted(got_b) == sorted(
            f"MixedB-{q}-{i}".encode() for q in range(4) for i in range(2)
        )
        # And the broker lists, for a topic, the members subscribing it; without one, all
        wire = WireClient(cluster["broker-a/0"])
        try:
            every = wire.call(RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": GROUP})
            only = wire.call(
                RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": GROUP, "topic": "MixedA"}
            )
            nobody = wire.call(
                RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": GROUP, "topic": "Other"}
            )
        finally:
            wire.close()
        assert len(json_ids(every.body)) == 2
        assert json_ids(only.body) == [first.client_id]
        assert nobody.code == 0 and json_ids(nobody.body) == []


def test_a_member_taking_up_a_topic_is_met_at_once_by_its_other_subscribers(
    cluster: dict[str, str],
) -> None:
    namesrv = cluster["namesrv"]
    # Given one member pulling all of MixedA's queues, another MixedB's; rebalance timers far
    # off, so only a notice can move a queue
    quiet = {"consume_from": ConsumeFrom.FIRST, "rebalance_interval": 600.0}
    first = PullConsumer(GROUP, namesrv, instance_name="a", **quiet)
    second = PullConsumer(GROUP, namesrv, instance_name="b", **quiet)
    first.subscribe("MixedA")
    second.subscribe("MixedB")
    with first, second:
        wait_until(lambda: len(first.assignment()) == 4, timeout=30, what="MixedA's 4 queues")
        # When the second takes up MixedA too
        second.change_topics(add=["MixedA"])

        # Then the first hears of it from the broker and lets two of MixedA's queues go, the
        # second pulls them: each queue of MixedA pulled by exactly one
        def shared() -> bool:
            a = [mq for mq in first.assignment() if mq.topic == "MixedA"]
            b = [mq for mq in second.assignment() if mq.topic == "MixedA"]
            return len(a) == 2 and len(b) == 2 and not set(a) & set(b)

        wait_until(shared, timeout=15, what="MixedA's queues shared 2/2")
        # When the second drops MixedA again, Then the first takes all four back
        second.change_topics(remove=["MixedA"])
        wait_until(lambda: len(first.assignment()) == 4, timeout=15, what="MixedA's 4 again")
        assert {mq.topic for mq in second.assignment()} == {"MixedB"}


def json_ids(body: bytes) -> list[str]:
    return list(json.loads(body)["consumerIdList"])
