"""RocketMQ's pull knobs (``actors.client.pull_limits``): ``pull_interval`` (pullInterval), the
topic thresholds shared over the queues held (pullThresholdForTopic /
pullThresholdSizeForTopic), the lite consumer's total cap (pullThresholdForAll), and their
validation. Consumers run against a FakeCluster; pull times are the fake broker's."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import gevent.event
import pytest

from actors.client import ConsumeFrom, PullConsumer, PushConsumer
from actors.client.config import ClientConfig
from actors.client.consumer_requests import REBALANCER
from actors.client.errors import ClientError
from actors.client.instance import ClientInstance
from actors.client.message import MessageExt, MessageQueue
from actors.client.offsets import OffsetStore
from actors.client.pull import TagFilter
from actors.client.pull_limits import MIB, TotalCap, topic_share
from actors.client.puller import QueuePuller
from actors.client.puller_messages import PullOptions, SetLimits
from actors.client.testing import FakeCluster
from actors.client.testing_state import store_record
from runtime.store.record import PutRecord
from tests.client_support import Collector

pytestmark = pytest.mark.timeout(40)

INTERVAL = 0.6
"""Seconds: the pull interval tried, and what the default's pulls must come sooner than."""

_live: list[PushConsumer | PullConsumer] = []


def fake_cluster(queues: int, topics: tuple[str, ...] = ("Orders",)) -> Iterator[FakeCluster]:
    """A fake cluster of broker-a, for a fixture; the consumers a test left running (``_live``)
    are shut down after it, even when it failed."""
    with FakeCluster(("broker-a",), queues=queues, topics=topics) as fc:
        yield fc
        while _live:
            _live.pop().shutdown()


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    yield from fake_cluster(1)


@pytest.fixture
def cluster4() -> Iterator[FakeCluster]:
    yield from fake_cluster(4)


def push(cluster: FakeCluster, group: str, listener: Any, **options: Any) -> PushConsumer:
    options.setdefault("consume_from", ConsumeFrom.FIRST)
    options.setdefault("rebalance_interval", 60.0)
    consumer = PushConsumer(group, namesrv=cluster.namesrv, **options)
    _live.append(consumer)
    consumer.subscribe("Orders", "*", listener)
    return consumer


def pullers_read(consumer: PushConsumer | PullConsumer, attribute: str) -> dict[MessageQueue, Any]:
    """One attribute of each of the consumer's pullers, read in the puller (after whatever it
    was told before)."""

    def read() -> dict[MessageQueue, Any]:
        instance = consumer._instance
        assert instance is not None
        ref = instance.directory.get(instance.name(REBALANCER))
        pullers = ref.proxy().pullers_by_queue().get(timeout=5)
        return {mq: getattr(p.proxy(), attribute).get(timeout=5) for mq, p in pullers.items()}

    hub = consumer._hub
    assert hub is not None
    return hub.call(read, timeout=15, what="read pullers")


def limits(consumer: PushConsumer) -> set[tuple[int, int]]:
    """The per-queue (messages, bytes) limits the consumer's pullers apply."""
    options = pullers_read(consumer, "options").values()
    return {(o.max_cached_messages, o.max_cached_bytes) for o in options}


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# -- pull_interval -------------------------------------------------------------------------------


def test_after_a_pull_that_found_messages_the_queue_waits_pull_interval(
    cluster: FakeCluster,
) -> None:
    # Given 6 messages on the topic's one queue and a consumer pulling 2 at a time
    for i in range(6):
        cluster.put("Orders", b"%d" % i)
    seen = Collector(6)
    consumer = push(cluster, "paced", seen, pull_batch_size=2, pull_interval=INTERVAL)
    # When it consumes them
    consumer.start()
    assert seen.done.wait(15)
    # Then each pull after one that found messages (3 of them) came at least INTERVAL later
    times = cluster.wait_pulls("Orders", 0, 4)
    assert all(gap >= INTERVAL for gap in gaps(times)), gaps(times)
    assert consumer._settings()["pullInterval"] == str(int(INTERVAL * 1000))


def test_by_default_the_next_pull_goes_out_at_once(cluster: FakeCluster) -> None:
    # Given the same queue and consumer, without a pull interval (RocketMQ's default 0)
    for i in range(6):
        cluster.put("Orders", b"%d" % i)
    seen = Collector(6)
    consumer = push(cluster, "unpaced", seen, pull_batch_size=2)
    # When it consumes them
    consumer.start()
    assert seen.done.wait(15)
    # Then every next pull came well within the interval the test above waits
    times = cluster.wait_pulls("Orders", 0, 4)
    assert all(gap < INTERVAL for gap in gaps(times)), gaps(times)
    assert consumer.pull_options.pull_interval == 0.0


def test_a_pull_that_found_nothing_is_not_paced(cluster: FakeCluster) -> None:
    # Given an empty queue and a paced consumer whose long polls end after 0.2 s
    consumer = push(cluster, "idle", Collector(1), pull_interval=INTERVAL * 10, suspend_timeout=0.2)
    # When it starts, Then its pulls that found nothing follow each other without the interval
    consumer.start()
    times = cluster.wait_pulls("Orders", 0, 3)
    assert all(gap < INTERVAL * 10 for gap in gaps(times)), gaps(times)


# -- pull_threshold_for_topic / pull_threshold_size_for_topic -------------------------------------


def test_topic_thresholds_are_shared_over_the_queues_held_at_each_rebalance(
    cluster4: FakeCluster,
) -> None:
    options = {"pull_threshold_for_topic": 100, "pull_threshold_size_for_topic": 10}
    # Given a consumer alone in its group: it holds Orders' 4 queues and its retry topic's
    # one, 5 in all
    first = push(cluster4, "shared", Collector(1), **options)
    first.start()
    assert len(first.assignment()) == 5
    # Then each queue may cache 100 // 5 messages and 10 // 5 MiB, as its running info says
    assert limits(first) == {(20, 2 * MIB)}
    properties = first.running_info().properties
    assert (properties["pullThresholdForQueue"], properties["pullThresholdSizeForQueue"]) == (
        "20",
        "2",
    )
    # When a second member joins and the first rebalances: 2 Orders queues each, the retry
    # queue to one of them
    second = push(cluster4, "shared", Collector(1), **options)
    second.start()
    first.rebalance()
    held = {len(c.assignment()): c for c in (first, second)}
    assert sorted(held) == [2, 3]
    # Then each shares the thresholds over what it holds now
    assert limits(held[2]) == {(50, 5 * MIB)}
    assert limits(held[3]) == {(33, 3 * MIB)}
    # When the second leaves, Then the first is back to 5 queues and the first share
    second.shutdown()
    first.rebalance()
    assert len(first.assignment()) == 5
    assert limits(first) == {(20, 2 * MIB)}


def test_without_topic_thresholds_the_per_queue_limits_stay(cluster4: FakeCluster) -> None:
    # Given a consumer with only per-queue limits, When it holds 5 queues (4 and its retry queue)
    consumer = push(
        cluster4, "plain", Collector(1), max_cached_messages=7, max_cached_bytes=3 * MIB
    )
    consumer.start()
    assert len(consumer.assignment()) == 5
    # Then its pullers keep them
    assert limits(consumer) == {(7, 3 * MIB)}


def test_a_count_threshold_alone_leaves_the_size_limit() -> None:
    opts = PullOptions(pull_threshold_for_topic=1000, max_cached_bytes=5 * MIB)
    assert topic_share(opts, 10) == (100, 5 * MIB)
    assert topic_share(opts, 3000) == (1, 5 * MIB)  # at least 1, as RocketMQ
    assert topic_share(opts, 0) is None  # no queue held: the limits stay
    sized = PullOptions(pull_threshold_size_for_topic=1, max_cached_messages=9)
    assert topic_share(sized, 4) == (9, MIB)  # at least 1 MiB
    assert topic_share(PullOptions(), 4) is None


# -- SetLimits: a paused puller resumes -----------------------------------------------------------


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.arrived = gevent.event.Event()

    def deliver(self, puller: Any, generation: int, mq: MessageQueue, msgs: list[MessageExt]):
        self.batches.append([m.queue_offset for m in msgs])
        self.arrived.set()

    def drop(self, mq: MessageQueue, floor: int) -> None:
        pass


def test_a_puller_paused_by_its_limit_resumes_when_a_rebalance_raises_it(
    cluster: FakeCluster,
) -> None:
    # Given a puller on the test's hub that may cache 1 message and pulls 2 at a time
    for i in range(6):
        cluster.put("Orders", b"%d" % i)
    instance = ClientInstance(ClientConfig.make(cluster.namesrv, route_refresh_interval=0))
    instance.start()
    offsets = OffsetStore.start(instance, "limits", interval=0)
    instance.directory.put(instance.name("offsets"), offsets)
    sink = RecordingSink()
    options = PullOptions(batch_size=2, max_cached_messages=1, commit_in_pull=False)
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    puller = QueuePuller.start(
        instance, "limits", mq, 0, TagFilter("*"), sink, instance.name("offsets"), options
    )
    try:
        # When its first pull brought 2 (nothing is consumed)
        assert sink.arrived.wait(5)
        # Then it stopped pulling: paused after that one pull
        assert puller.proxy().paused.get(timeout=5)
        assert cluster.run(lambda: len(cluster.broker().pull_times[("Orders", 0)])) == 1
        # When it is told the larger share a rebalance computed
        sink.arrived.clear()
        puller.tell(SetLimits(100, 100 * MIB))
        # Then it pulls again at once
        assert sink.arrived.wait(5)
        assert sink.batches == [[0, 1], [2, 3]]
        assert puller.proxy().options.get(timeout=5).max_cached_messages == 100
    finally:
        puller.stop()
        offsets.stop()
        instance.stop()


# -- the lite consumer's max_cached_messages_total (pullThresholdForAll) --------------------------


def lite(cluster: FakeCluster, group: str, queues: int = 1, **options: Any) -> PullConsumer:
    consumer = PullConsumer(
        group, namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST, **options
    )
    _live.append(consumer)
    consumer.assign(
        [MessageQueue(topic="Orders", broker_name="broker-a", queue_id=q) for q in range(queues)]
    )
    return consumer


def put_at_once(cluster: FakeCluster, bodies: list[bytes], queue_id: int) -> None:
    """Store messages in one go, so one pull (of enough) gets them all."""

    def store() -> None:
        for body in bodies:
            store_record(cluster.broker(), PutRecord(topic="Orders", queue_id=queue_id, body=body))

    cluster.run(store)


def wait_buffered(consumer: PullConsumer, count: int) -> None:
    buffer = consumer.buffer
    with buffer._cond:
        assert buffer._cond.wait_for(lambda: buffer.cap.count >= count, 10)


def test_lite_pulling_pauses_while_the_buffer_holds_more_than_the_total(
    cluster: FakeCluster,
) -> None:
    # Given 20 messages and a lite consumer whose buffer may hold 3 (pulls of 4)
    for i in range(20):
        cluster.put("Orders", b"%d" % i)
    consumer = lite(
        cluster, "capped", pull_batch_size=4, max_cached_messages_total=3, max_poll_messages=2
    )
    # When its first pull filled the buffer past the cap, nothing polled yet
    consumer.start()
    wait_buffered(consumer, 4)
    # Then its puller waits, after that one pull
    assert list(pullers_read(consumer, "paused").values()) == [True]
    assert cluster.run(lambda: len(cluster.broker().pull_times[("Orders", 0)])) == 1
    # When a poll takes 2, leaving 2 (at most the cap)
    assert [m.body for m in consumer.poll(5)] == [b"0", b"1"]
    # Then the puller is told and pulls again
    cluster.wait_pulls("Orders", 0, 2)
    assert consumer._settings()["pullThresholdForAll"] == "3"


def test_a_poll_of_other_queues_wakes_a_puller_waiting_for_room() -> None:
    with FakeCluster(("broker-a",), queues=2, topics=("Orders",)) as two:
        # Given a lite consumer of 2 queues whose buffer may hold 3, with 2 messages of queue 1
        # buffered (queue 0 empty: its pull waits at the broker)
        two.put("Orders", b"q1-0", queue_id=1)
        two.put("Orders", b"q1-1", queue_id=1)
        consumer = lite(two, "woken", queues=2, max_cached_messages_total=3, max_poll_messages=2)
        try:
            consumer.start()
            wait_buffered(consumer, 2)
            # When 3 messages of queue 0 arrive, making 5 buffered
            put_at_once(two, [b"q0-0", b"q0-1", b"q0-2"], queue_id=0)
            wait_buffered(consumer, 5)
            q0 = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
            # Then queue 0's puller waits for room
            assert pullers_read(consumer, "paused")[q0] is True
            pulls = two.run(lambda: len(two.broker().pull_times[("Orders", 0)]))
            # When a poll takes queue 1's 2 only, leaving 3 (the cap)
            assert [m.body for m in consumer.poll(5)] == [b"q1-0", b"q1-1"]
            # Then queue 0's puller, none of whose messages was polled, pulls again
            two.wait_pulls("Orders", 0, pulls + 1)
        finally:
            consumer.shutdown()


def test_lite_pulling_goes_on_without_the_total_cap(cluster: FakeCluster) -> None:
    # Given the same, with the cap off (0)
    for i in range(20):
        cluster.put("Orders", b"%d" % i)
    consumer = lite(cluster, "uncapped", pull_batch_size=4, max_cached_messages_total=0)
    # When it starts, Then it pulls everything into the buffer without a poll
    consumer.start()
    cluster.wait_pulls("Orders", 0, 5)
    wait_buffered(consumer, 20)


def test_total_cap_releases_its_waiters_once_back_at_the_cap() -> None:
    cap = TotalCap(3)
    cap.count = 4
    assert not cap.room("a")  # type: ignore[arg-type]
    assert cap.released() == []  # still over
    cap.count = 3
    assert cap.released() == ["a"]
    assert cap.released() == []  # told once
    assert cap.room("b")  # type: ignore[arg-type]
    assert TotalCap(0).room("c")  # type: ignore[arg-type]


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pull_interval": -0.1}, "pull_interval -0.1 is out of range [0, 65.535] seconds"),
        ({"pull_interval": 66}, "pull_interval 66 is out of range"),
        ({"pull_interval": "1"}, "pull_interval '1' is not a number"),
        (
            {"pull_threshold_for_topic": 0},
            "pull_threshold_for_topic 0 is out of range [1, 6553500]",
        ),
        ({"pull_threshold_for_topic": 6553501}, "pull_threshold_for_topic 6553501 is out of range"),
        ({"pull_threshold_size_for_topic": -2}, "[1, 102400] MiB (or -1: off)"),
        ({"pull_threshold_size_for_topic": 1.5}, "pull_threshold_size_for_topic 1.5 is not an int"),
    ],
)
def test_push_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as info:
        PushConsumer("g", namesrv="127.0.0.1:9876", **options)
    assert message in str(info.value)


def test_lite_total_is_checked() -> None:
    with pytest.raises(ClientError, match="max_cached_messages_total -1 is negative"):
        PullConsumer("g", namesrv="127.0.0.1:9876", max_cached_messages_total=-1)
    assert (
        PullConsumer("g", namesrv="127.0.0.1:9876").pull_options.max_cached_messages_total == 10_000
    )


def test_the_limits_at_their_bounds_are_accepted() -> None:
    c = PushConsumer(
        "g",
        namesrv="127.0.0.1:9876",
        pull_interval=65.535,
        pull_threshold_for_topic=6_553_500,
        pull_threshold_size_for_topic=102_400,
    )
    assert c._settings()["pullThresholdForTopic"] == "6553500"
    assert c._settings()["pullThresholdSizeForTopic"] == "102400"


@pytest.mark.parametrize("kind", [PushConsumer, PullConsumer])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pull_batch_size": 0}, "pull_batch_size 0 is out of range [1, 1024]"),
        ({"pull_batch_size": 1025}, "pull_batch_size 1025 is out of range"),
        ({"pull_batch_size": 2.0}, "pull_batch_size 2.0 is not an int"),
        ({"max_cached_messages": 0}, "max_cached_messages 0 is below 1"),
        ({"max_cached_bytes": -1}, "max_cached_bytes -1 is below 1"),
        ({"max_span": -1}, "max_span -1 is below 0 (0: off)"),
        ({"suspend_timeout": -1}, "suspend_timeout -1.0 is not a number of seconds >= 0"),
        ({"pull_error_delay": -0.5}, "pull_error_delay -0.5 is not a number of seconds"),
    ],
)
def test_the_pull_options_every_consumer_has_are_checked(
    kind: type, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as info:
        kind("g", namesrv="127.0.0.1:9876", **options)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"consume_timeout": -1}, "consume_timeout -1 is not a number of seconds >= 0"),
        ({"consume_threads": 0}, "consume_threads 0 is below 1"),
        ({"consume_threads": "4"}, "consume_threads '4' is not an int"),
    ],
)
def test_push_consumption_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as info:
        PushConsumer("g", namesrv="127.0.0.1:9876", **options)
    assert message in str(info.value)
