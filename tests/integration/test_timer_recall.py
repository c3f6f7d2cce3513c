"""Recalling a timer message (``actors.client.recall``) against a real broker: the recalled
message never reaches consumers, before or after a broker restart; the others do."""

from __future__ import annotations

import pathlib
import time

import pytest

from actors.client import (
    Admin,
    BrokerError,
    ConsumeFrom,
    Message,
    MessageQueue,
    Producer,
    PullConsumer,
)
from actors.client.recall import recall_timer
from runtime.remoting.codes import ResponseCode
from tests.client_support import wait_until
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(90)

TOPIC = "RecallOrders"


def _read(namesrv: str, group: str, until: float) -> list[bytes]:
    """What a new group reads of TOPIC until ``until`` (time.time())."""
    consumer = PullConsumer(group, namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe(TOPIC)
    got: list[bytes] = []
    with consumer:
        while time.time() < until:
            got.extend(m.body for m in consumer.poll(timeout=0.5))
    return got


def test_a_recalled_timer_message_is_never_delivered_even_after_a_restart(
    tmp_path: pathlib.Path,
) -> None:
    args = ["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]
    with RuntimeProcess(args) as node:
        namesrv = node.wait_ready()["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=1)
        # Given two timer messages due in 4 s, and the recall of one of them
        due = int(time.time() * 1000) + 4000
        with Producer("recall-producer", namesrv) as producer:
            keep = producer.send(Message(TOPIC, b"keep", deliver_at_ms=due))
            drop = producer.send(Message(TOPIC, b"drop", deliver_at_ms=due))
            recall_timer(producer, drop.queue, drop.msg_id, due)
        # When the broker restarts before they are due
        assert node.terminate() == 0, node.stderr_text()
    with RuntimeProcess(args) as node:
        namesrv = node.wait_ready()["namesrv"]
        wait_until(lambda: time.time() * 1000 > due, timeout=10, what="due")
        # Then after their due time only the one not recalled is read, and no marker either
        got = _read(namesrv, "recall-reader", time.time() + 3)
        assert got == [b"keep"]
        assert keep.msg_id != drop.msg_id


def test_a_recall_names_its_topic_and_comes_before_the_due_time(tmp_path: pathlib.Path) -> None:
    args = ["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]
    with RuntimeProcess(args) as node:
        namesrv = node.wait_ready()["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=1)
            admin.create_topic("OtherOrders", queues=1)
        due = int(time.time() * 1000) + 3000
        with Producer("recall-producer", namesrv) as producer:
            sent = producer.send(Message(TOPIC, b"stays", deliver_at_ms=due))
            # Given a marker naming the message's id, sent on another topic
            other = MessageQueue(topic="OtherOrders", broker_name="broker-a", queue_id=0)
            recall_timer(producer, other, sent.msg_id, due)
            # And a marker too late (its due time passed): refused, nothing stored
            with pytest.raises(BrokerError) as late:
                recall_timer(producer, sent.queue, sent.msg_id, due - 10_000)
            assert late.value.code == ResponseCode.MESSAGE_ILLEGAL
        # Then the message is delivered all the same
        wait_until(lambda: time.time() * 1000 > due, timeout=10, what="due")
        assert _read(namesrv, "recall-reader-2", time.time() + 3) == [b"stays"]
