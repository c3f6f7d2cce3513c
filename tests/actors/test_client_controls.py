"""What a consumer's user controls while it runs: a lite consumer's ``pause`` / ``resume`` of
queues (RocketMQ's and Kafka's) and ``commit(offsets=...)``, a push consumer's ``suspend`` /
``resume`` (RocketMQ's), against the fake cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from actors.client import ClientError, ConsumeFrom, MessageQueue, PullConsumer
from actors.client.testing import FakeCluster
from tests.actors.test_client_pull_limits import (
    _live,
    fake_cluster,
    lite,
    pullers_read,
    push,
    wait_buffered,
)
from tests.client_support import Collector

pytestmark = pytest.mark.timeout(30)

Q0 = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
Q1 = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=1)
LONG_POLL = 0.2
"""The consumers' long-poll time here (``suspend_timeout``): a parked pull ends soon."""


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    yield from fake_cluster(2)


def pulls(cluster: FakeCluster, queue_id: int) -> int:
    return cluster.run(lambda: len(cluster.broker().pull_times[("Orders", queue_id)]))


def no_more_pulls(cluster: FakeCluster, queue_id: int, seen: int) -> bool:
    """Whether at most one more pull of the queue (one being issued as it was paused) arrives
    within 1 s; unpaused, with 0.2 s long polls, some five would."""
    try:
        cluster.wait_pulls("Orders", queue_id, seen + 2, timeout=1.0)
    except AssertionError:
        return True
    return False


def poll_until(consumer: PullConsumer, count: int, timeout: float = 10.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += [m.body for m in consumer.poll(0.5)]
    return got


def test_a_paused_queue_is_neither_pulled_nor_polled_until_resumed(cluster: FakeCluster) -> None:
    # Given a lite consumer of two queues, each with one message buffered
    cluster.put("Orders", b"q0-a", queue_id=0)
    cluster.put("Orders", b"q1-a", queue_id=1)
    consumer = lite(cluster, "paused", queues=2, suspend_timeout=LONG_POLL)
    consumer.start()
    wait_buffered(consumer, 2)
    # When queue 0 is paused
    consumer.pause([Q0])
    # Then poll returns queue 1's message only, and queue 0 is no longer pulled
    assert poll_until(consumer, 1) == [b"q1-a"]
    assert consumer.poll(0.3) == []
    assert consumer.paused() == {Q0}
    assert pullers_read(consumer, "on_hold") == {Q0: True, Q1: False}
    assert no_more_pulls(cluster, 0, pulls(cluster, 0))
    cluster.put("Orders", b"q0-b", queue_id=0)
    cluster.put("Orders", b"q1-b", queue_id=1)
    assert poll_until(consumer, 1) == [b"q1-b"]
    # When it is resumed
    consumer.resume([Q0])
    # Then its buffered message and the new one come, in order
    assert poll_until(consumer, 2) == [b"q0-a", b"q0-b"]
    assert consumer.paused() == set()


def test_a_queue_paused_before_it_is_assigned_starts_paused(cluster: FakeCluster) -> None:
    # Given a lite consumer of queue 1 that paused queue 0, which it does not hold
    cluster.put("Orders", b"q0-a", queue_id=0)
    consumer = PullConsumer(
        "later", namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST, suspend_timeout=0.2
    )
    _live.append(consumer)
    consumer.assign([Q1])
    consumer.start()
    consumer.pause([Q0])
    # When queue 0 is assigned too
    consumer.assign([Q0, Q1])
    # Then its puller starts paused: nothing of it is returned until it is resumed
    assert pullers_read(consumer, "on_hold") == {Q0: True, Q1: False}
    assert consumer.poll(0.5) == []
    consumer.resume([Q0])
    assert poll_until(consumer, 1) == [b"q0-a"]


def test_pause_takes_message_queues_only(cluster: FakeCluster) -> None:
    consumer = lite(cluster, "typed", queues=1)
    consumer.start()
    with pytest.raises(ClientError, match="is not a MessageQueue"):
        consumer.pause(["Orders/0"])  # type: ignore[list-item]


def test_a_suspended_push_consumer_pulls_again_on_resume(cluster: FakeCluster) -> None:
    # Given a push consumer of two queues that consumed one message
    got = Collector(1)
    consumer = push(cluster, "suspended", got, suspend_timeout=LONG_POLL)
    consumer.start()
    cluster.put("Orders", b"first", queue_id=0)
    assert got.done.wait(10)
    # When it is suspended
    consumer.suspend()
    # Then no queue is pulled any more, and a message sent meanwhile waits
    assert consumer.suspended and set(pullers_read(consumer, "on_hold").values()) == {True}
    assert no_more_pulls(cluster, 0, pulls(cluster, 0))
    assert no_more_pulls(cluster, 1, pulls(cluster, 1))
    got.expect, got.done = 2, type(got.done)()
    cluster.put("Orders", b"second", queue_id=1)
    assert not got.done.wait(0.5)
    # When it is resumed, Then the message is consumed
    consumer.resume()
    assert got.done.wait(10) and got.bodies() == [b"first", b"second"]
    assert not consumer.suspended


def test_a_lite_consumer_commits_the_offsets_it_is_given(cluster: FakeCluster) -> None:
    # Given a lite consumer without auto-commit that polled 5 messages of queue 0
    for i in range(5):
        cluster.put("Orders", b"m%d" % i, queue_id=0)
    consumer = lite(cluster, "given", queues=1, auto_commit=False)
    consumer.start()
    assert poll_until(consumer, 5) == [b"m%d" % i for i in range(5)]
    # When it commits what it polled, then offset 2 of queue 0 (lower) as given
    assert consumer.commit() == 1
    stored = lambda: cluster.run(lambda: cluster.broker().offsets[("given", "Orders", 0)])  # noqa: E731
    assert stored() == 5
    assert consumer.commit(offsets={Q0: 2}) == 1
    # Then the broker holds 2, and the group's next consumer starts there
    assert stored() == 2 and consumer.committed(Q0) == 2
    consumer.shutdown()
    _live.remove(consumer)
    again = lite(cluster, "given", queues=1, auto_commit=False)
    again.start()
    assert poll_until(again, 3) == [b"m2", b"m3", b"m4"]
    with pytest.raises(ClientError, match="is not an offset"):
        again.commit(offsets={Q0: -1})
    with pytest.raises(ClientError, match="is not a MessageQueue"):
        again.commit(offsets={"Orders/0": 1})  # type: ignore[dict-item]


def test_a_topic_queue_listener_hears_the_topics_queues_change() -> None:
    with FakeCluster(("broker-a", "broker-b"), queues=2, topics=("Orders",)) as two:
        # Given a lite consumer refreshing routes every 0.2 s, listening to Orders' queues
        consumer = PullConsumer("listening", namesrv=two.namesrv, route_refresh_interval=0.2)
        consumer.assign([Q0])
        consumer.start()
        try:
            heard: list[tuple[str, set[MessageQueue]]] = []
            changed = threading.Event()

            def listener(topic: str, queues: set[MessageQueue]) -> None:
                heard.append((topic, queues))
                changed.set()

            baseline = consumer.register_topic_queue_listener("Orders", listener)
            assert {(mq.broker_name, mq.queue_id) for mq in baseline} == {
                (b, q) for b in ("broker-a", "broker-b") for q in (0, 1)
            }
            # When broker-b leaves the route
            two.run(lambda: two.hidden.add("broker-b"))
            # Then the listener hears the topic's queues now: broker-a's
            assert changed.wait(10)
            assert heard[0] == ("Orders", {Q0, Q1})
            # And an unchanged route tells it nothing more
            changed.clear()
            assert not changed.wait(0.6) and len(heard) == 1
        finally:
            consumer.shutdown()
