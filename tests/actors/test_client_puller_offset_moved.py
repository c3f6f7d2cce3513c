"""A push/lite queue puller whose offset the broker moves (PULL_OFFSET_MOVED: the queue is
shorter than where the consumer pulls, e.g. a slave that lagged behind became the master and
its queue was written on since): what was cached before must not touch what comes after."""

from __future__ import annotations

import time
from typing import Any

import gevent
import gevent.event
import pytest

from actors.client.instance import ClientInstance
from actors.client.message import MessageExt, MessageQueue
from actors.client.orderly_puller import LockState, OrderlyPuller
from actors.client.pull import TagFilter
from actors.client.puller import QueuePuller
from actors.client.puller_messages import Consumed, PullOptions, Seek, next_generation
from actors.client.testing import FakeCluster

pytestmark = pytest.mark.timeout(30)


def wait_pulls(cluster: FakeCluster, count: int) -> None:
    """``cluster.wait_pulls`` of queue 0 from a real thread: this hub keeps running the
    puller meanwhile."""
    gevent.get_hub().threadpool.apply(cluster.wait_pulls, ("Orders", 0, count))


class Sink:
    """Records each delivery: (generation, offsets, bodies)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[int], list[bytes]]] = []
        self.arrived = gevent.event.Event()
        self.drops: list[tuple[MessageQueue, int]] = []

    def deliver(self, puller: Any, generation: int, mq: MessageQueue, msgs: list[MessageExt]):
        self.batches.append((generation, [m.queue_offset for m in msgs], [m.body for m in msgs]))
        self.arrived.set()

    def drop(self, mq: MessageQueue, floor: int) -> None:
        self.drops.append((mq, floor))

    def next(self) -> tuple[int, list[int], list[bytes]]:
        """The next delivery (waits for it)."""
        assert self.arrived.wait(5)
        self.arrived.clear()
        return self.batches[-1]


def test_a_report_from_before_the_offset_moved_does_not_consume_what_came_after(
    cluster: FakeCluster, instance: ClientInstance
) -> None:
    # Given a puller that pulled A0 and A1 of queue 0, both still being consumed
    cluster.put("Orders", b"A0", queue_id=0)
    cluster.put("Orders", b"A1", queue_id=0)
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    sink = Sink()
    puller = QueuePuller.start(
        instance,
        "moved",
        mq,
        0,
        TagFilter("*"),
        sink,
        instance.name("offsets"),
        PullOptions(suspend_ms=5000, commit_in_pull=False, error_delay=0.05),
    )
    try:
        old_generation, offsets, _ = sink.next()
        assert offsets == [0, 1]
        wait_pulls(cluster, 2)  # its long poll at offset 2 is parked

        # When the broker's queue turns out shorter (emptied: the pull at 2 is answered
        # PULL_OFFSET_MOVED to 0), and a different message B0 is then stored at offset 0
        def truncate() -> None:
            b = cluster.broker()
            b.queues[("Orders", 0)].clear()
            event = b.arrivals.pop(("Orders", 0), None)
            if event is not None:
                event.set()

        cluster.run(truncate)
        wait_pulls(cluster, 3)  # pulling again, from 0
        cluster.put("Orders", b"B0", queue_id=0)
        new_generation, offsets, bodies = sink.next()
        assert (offsets, bodies) == ([0], [b"B0"])
        # (the sink was told to drop what it holds from before the move: A1, waiting in the
        # consume pool, is never given to a listener)
        assert sink.drops == [(mq, new_generation)] and new_generation > old_generation
        # And A0's listener call, which began before the move, finishes only now
        puller.tell(Consumed(old_generation, [0, 1]))
        # Then B0, not consumed yet, still holds the committable offset
        assert puller.proxy().committable().get(timeout=5) == 0
    finally:
        puller.stop()


class OrderedSink(Sink):
    """An orderly puller's sink: one in-order task at a time (``deliver_ordered``)."""

    def deliver_ordered(
        self, puller: Any, generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None:
        self.deliver(puller, generation, mq, msgs)


@pytest.mark.parametrize("how", ["seek", "offset moved"])
def test_an_orderly_queue_goes_on_after_its_generation_changed_under_a_batch(
    cluster: FakeCluster, instance: ClientInstance, how: str
) -> None:
    # Given an orderly puller (lock held) whose first batch, A0 and A1, is being consumed
    cluster.put("Orders", b"A0", queue_id=0)
    cluster.put("Orders", b"A1", queue_id=0)
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    sink = OrderedSink()
    puller = OrderlyPuller.start(
        instance,
        "orderly-moved",
        mq,
        0,
        TagFilter("*"),
        sink,
        instance.name("offsets"),
        PullOptions(suspend_ms=5000, commit_in_pull=False, error_delay=0.05),
    )
    try:
        puller.tell(LockState(time.monotonic() + 60))
        old_generation, offsets, _ = sink.next()
        assert offsets == [0, 1]
        # When the queue's generation changes meanwhile: a seek (an offset reset) back to 0,
        # or the broker moving its offset (the queue emptied, then B0 stored)
        if how == "seek":
            puller.tell(Seek(0, next_generation()))
        else:
            wait_pulls(cluster, 2)

            def truncate() -> None:
                b = cluster.broker()
                b.queues[("Orders", 0)].clear()
                event = b.arrivals.pop(("Orders", 0), None)
                if event is not None:
                    event.set()

            cluster.run(truncate)
            wait_pulls(cluster, 3)
            cluster.put("Orders", b"B0", queue_id=0)
        # and only then the batch in progress ends
        wait_pulls(cluster, 3 if how == "seek" else 4)  # what it pulled since is cached
        puller.tell(Consumed(old_generation, [0, 1]))
        # Then the queue goes on: the next batch is offered, of the new generation
        generation, offsets, bodies = sink.next()
        assert generation != old_generation
        assert bodies == ([b"A0", b"A1"] if how == "seek" else [b"B0"])
    finally:
        puller.stop()
