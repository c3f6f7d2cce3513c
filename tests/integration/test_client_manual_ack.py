"""``PullConsumer(manual_ack=True)`` against a real ``python -m runtime``: a queue's committed
offset stops at its oldest unacknowledged message, and a group's next consumer starts there."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from actors.client import (
    Admin,
    ClientError,
    ConsumeFrom,
    Message,
    MessageQueue,
    Producer,
    PullConsumer,
)
from tests.client_support import wait_until
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(90)

TOPIC = "ManualAckOrders"


@pytest.fixture
def namesrv(tmp_path: pathlib.Path) -> Iterator[str]:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]) as node:
        address = node.wait_ready()["namesrv"]
        with Admin(address) as admin:
            admin.create_topic(TOPIC, queues=1)
        yield address
        assert node.terminate() == 0, node.stderr_text()


def _poll(consumer: PullConsumer, count: int) -> list:
    got: list = []
    wait_until(lambda: got.extend(consumer.poll(timeout=0.5)) or len(got) >= count, timeout=30)
    return got


def test_commits_stop_at_the_oldest_unacked_message(namesrv: str) -> None:
    queue = MessageQueue(topic=TOPIC, broker_name="broker-a", queue_id=0)
    # Given 5 messages in one queue
    with Producer("manual-ack-producer", namesrv) as producer:
        for i in range(5):
            producer.send(Message(TOPIC, f"m{i}".encode()))
    consumer = PullConsumer("manual-ack", namesrv, manual_ack=True, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe(TOPIC)
    with consumer:
        msgs = _poll(consumer, 5)
        assert [m.body for m in msgs] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
        # When 0, 1 and 3 are acked and the offsets committed
        assert consumer.ack([msgs[0], msgs[1], msgs[3]]) == 3
        consumer.commit()
        # Then the committed offset is 2: m2 is still unacked
        assert consumer.committed(queue) == 2
        # And an ack twice counts nothing
        assert consumer.ack([msgs[0]]) == 0
        # When m2 is acked, the offset moves to m4 (the next unacked)
        consumer.ack([msgs[2]])
        consumer.commit()
        assert consumer.committed(queue) == 4
    # When the consumer stopped with m4 unacked, the group's next consumer starts at m4
    again = PullConsumer("manual-ack", namesrv, manual_ack=True)
    again.subscribe(TOPIC)
    with again:
        assert [m.body for m in _poll(again, 1)] == [b"m4"]


def test_ack_needs_manual_ack(namesrv: str) -> None:
    # Given a consumer with automatic acks
    consumer = PullConsumer("auto-ack", namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe(TOPIC)
    # When ack is called, Then it is refused
    with consumer, pytest.raises(ClientError, match="manual_ack"):
        consumer.ack([])


def test_a_queue_rebalanced_away_is_no_longer_owned(namesrv: str) -> None:
    # Given a two-queue topic read by one member with manual acks, every message unacked
    topic = "ManualAckTwoQueues"
    with Admin(namesrv) as admin:
        admin.create_topic(topic, queues=2)
    with Producer("manual-ack-producer-2", namesrv) as producer:
        for i in range(2):
            producer.send(
                Message(topic, f"m{i}".encode()),
                queue=MessageQueue(topic=topic, broker_name="broker-a", queue_id=i),
            )
    first = PullConsumer("manual-ack-2", namesrv, manual_ack=True, consume_from=ConsumeFrom.FIRST)
    first.subscribe(topic)
    with first:
        msgs = _poll(first, 2)
        assert all(first.still_owned(m) for m in msgs)
        # When a second member joins and takes one of the queues
        second = PullConsumer("manual-ack-2", namesrv, manual_ack=True)
        second.subscribe(topic)
        with second:
            wait_until(
                lambda: sum(first.still_owned(m) for m in msgs) == 1, timeout=30, what="moved"
            )
            # Then only the message of the queue it kept is still its own
            kept = {m.queue_id for m in msgs if first.still_owned(m)}
            assert kept == {q.queue_id for q in first.assignment()}
