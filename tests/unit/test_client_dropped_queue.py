"""A push consumer's queue reset while its messages wait in the consume pool: the messages
from before the reset are never given to the listener (RocketMQ marks the ProcessQueue dropped
and starts a new one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from actors.client import ConsumeFrom, MessageExt, PushConsumer
from actors.client.message import MessageQueue
from actors.client.remoting import make_request
from actors.client.testing import FakeCluster
from runtime.remoting.codes import RequestCode
from runtime.remoting.queue_maps import encode_queue_map

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc


@pytest.mark.parametrize("orderly", [False, True], ids=["concurrent", "orderly"])
def test_messages_pulled_before_a_reset_offset_are_not_consumed(
    cluster: FakeCluster, orderly: bool
) -> None:
    # Given four messages of queue 0 pulled at once, the first one's listener call still running
    # on the consumer's only thread, the other three waiting behind it (in its task)
    for i in range(4):
        cluster.put("Orders", b"m%d" % i, queue_id=0)
    seen: list[bytes] = []
    first, release, fifth = threading.Event(), threading.Event(), threading.Event()

    def listener(msg: MessageExt) -> None:
        seen.append(msg.body)
        if msg.body == b"m0":
            first.set()
            assert release.wait(10)
        if msg.body == b"m4":
            fifth.set()

    consumer = PushConsumer(
        "reset",
        namesrv=cluster.namesrv,
        consume_from=ConsumeFrom.FIRST,
        consume_threads=1,
        rebalance_interval=60.0,
        orderly=orderly,
    )
    consumer.subscribe("Orders", "*", listener)
    consumer.start()
    try:
        assert first.wait(10)
        cluster.wait_pulls("Orders", 0, 2)  # its long poll at offset 4 is parked
        # When the broker resets the group's offset of queue 0 to 4 (mqadmin resetOffsetByTime)
        mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
        body = encode_queue_map("offsetTable", [(mq, 4)])
        ext = {"topic": "Orders", "group": "reset", "timestamp": "0", "isForce": "true"}
        request = make_request(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, ext, body)
        hub = consumer._hub
        assert hub is not None
        hub.call(consumer._reset_offsets, None, request)
        cluster.wait_pulls("Orders", 0, 3)  # the puller pulls again, from 4
        cluster.put("Orders", b"m4", queue_id=0)
        release.set()
        # Then the listener gets the message after the reset, and none of the three from before
        # (an orderly queue is not left waiting for the dropped task: it goes on)
        assert fifth.wait(10)
        assert seen == [b"m0", b"m4"]
    finally:
        release.set()
        consumer.shutdown()
