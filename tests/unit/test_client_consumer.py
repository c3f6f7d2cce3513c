"""Push and lite pull consumers against an in-memory cluster over loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import gevent.event
import pytest

from actors.client import (
    ClientStateError,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageModel,
    MessageQueue,
    Producer,
    PullConsumer,
    PushConsumer,
    offsets,
)
from actors.client.offsets import read_local
from actors.client.start_offsets import START_ONE_BY_ONE
from actors.client.testing import FakeCluster
from actors.client.testing_protocol import BrokerProcessor
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from tests.client_support import Collector, wait_until

pytestmark = pytest.mark.timeout(40)

TAGGED = "TAGS\x01{}\x02"


_live: list[PushConsumer | PullConsumer] = []


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc
        # a failed test must not leave consumers pulling in the background
        while _live:
            _live.pop().shutdown()


def fast_push(cluster: FakeCluster, group: str, **options) -> PushConsumer:
    options.setdefault("consume_from", ConsumeFrom.FIRST)
    options.setdefault("rebalance_interval", 60.0)
    consumer = PushConsumer(group, namesrv=cluster.namesrv, **options)
    _live.append(consumer)
    return consumer


def lite(cluster: FakeCluster, group: str, **options) -> PullConsumer:
    consumer = PullConsumer(group, namesrv=cluster.namesrv, **options)
    _live.append(consumer)
    return consumer


def queue_pulls(cluster: FakeCluster, topic: str = "Orders", queue_id: int = 0) -> int:
    """How many PULL_MESSAGE requests broker-a got for one queue."""
    return sum(
        1
        for code, ext in cluster.broker().requests
        if code == RequestCode.PULL_MESSAGE
        and ext["topic"] == topic
        and ext["queueId"] == str(queue_id)
    )


def test_push_consumer_gets_matching_tags_and_commits_offsets(cluster: FakeCluster) -> None:
    # Given 40 stored messages, half tagged "paid", half "other", over 4 queues
    for i in range(40):
        tag = "paid" if i % 2 == 0 else "other"
        cluster.put("Orders", b"m%d" % i, queue_id=i % 4, properties=TAGGED.format(tag))
    got = Collector(20)
    consumer = fast_push(cluster, "billing")
    consumer.subscribe("Orders", "paid || refunded", got)
    # When the consumer runs
    consumer.start()
    assert got.done.wait(10)
    # Then it got exactly the 20 "paid" ones, with their tags
    assert sorted(got.bodies()) == sorted(b"m%d" % i for i in range(0, 40, 2))
    assert {m.tags for m in got.messages} == {"paid"}
    consumer.shutdown()
    # And on shutdown the offsets past everything were committed
    assert [cluster.committed("billing", "Orders", q) for q in range(4)] == [10, 10, 10, 10]
    assert consumer.client_id not in cluster.consumer_ids("billing")


def test_reconsume_later_redelivers_locally_and_holds_the_offset(cluster: FakeCluster) -> None:
    # Given a listener that refuses a message twice before accepting it
    cluster.put("Orders", b"tricky", queue_id=0)
    cluster.put("Orders", b"easy", queue_id=0)
    attempts: list[int] = []
    ok = threading.Event()

    def listener(msg) -> ConsumeResult:
        if msg.body == b"easy":
            return ConsumeResult.CONSUME_SUCCESS
        attempts.append(msg.reconsume_times)
        if len(attempts) < 3:
            return ConsumeResult.RECONSUME_LATER
        ok.set()
        return ConsumeResult.CONSUME_SUCCESS

    consumer = fast_push(cluster, "retry-g", reconsume_delay=0.05, commit_interval=0.05)
    consumer.subscribe("Orders", "*", listener)
    consumer.start()
    # Then while it is refused, the committed offset stays at it (never skips it)
    wait_until(lambda: len(attempts) >= 1, what="first attempt")
    assert cluster.committed("retry-g", "Orders", 0) in (-1, 0)
    assert ok.wait(5)
    assert attempts == [0, 1, 2]  # reconsume_times counts the redeliveries
    wait_until(lambda: cluster.committed("retry-g", "Orders", 0) == 2, what="commit after success")
    consumer.shutdown()


def test_a_listener_exception_counts_as_reconsume_later(cluster: FakeCluster) -> None:
    cluster.put("Orders", b"boom", queue_id=1)
    calls: list[int] = []
    done = threading.Event()

    def listener(msg) -> None:
        calls.append(msg.reconsume_times)
        if len(calls) == 1:
            raise RuntimeError("listener bug")
        done.set()

    consumer = fast_push(cluster, "exc-g", reconsume_delay=0.05)
    consumer.subscribe("Orders", "*", listener)
    with consumer:
        assert done.wait(5)
    assert calls == [0, 1]
    assert cluster.committed("exc-g", "Orders", 1) == 1


def test_group_members_share_queues_and_rebalance_when_one_joins_or_leaves(
    cluster: FakeCluster,
) -> None:
    # Given one consumer of an 4-queue topic (timer rebalance effectively off)
    first = fast_push(cluster, "shared", consume_from=ConsumeFrom.LAST)
    first.subscribe("Orders", "*", lambda m: None)
    first.start()
    assert [mq.queue_id for mq in first.assignment() if mq.topic == "Orders"] == [0, 1, 2, 3]
    # When a second member joins, Then NOTIFY_CONSUMER_IDS_CHANGED splits the queues 2/2
    second = fast_push(cluster, "shared", consume_from=ConsumeFrom.LAST)
    second.subscribe("Orders", "*", lambda m: None)
    second.start()

    def orders(c: PushConsumer) -> list[int]:
        return [mq.queue_id for mq in c.assignment() if mq.topic == "Orders"]

    ids = sorted([first.client_id, second.client_id])
    wait_until(lambda: len(orders(first)) == 2 and len(orders(second)) == 2, what="2/2 split")
    by_id = {first.client_id: orders(first), second.client_id: orders(second)}
    assert by_id[ids[0]] == [0, 1] and by_id[ids[1]] == [2, 3]
    # When the second leaves, Then the first takes every queue back
    second.shutdown()
    wait_until(lambda: orders(first) == [0, 1, 2, 3], what="first owns all again")
    first.shutdown()


def test_a_queue_taken_away_has_its_offset_committed_first(cluster: FakeCluster) -> None:
    # Given a consumer that consumed everything on 4 queues, and a broker that takes
    # commits only as UPDATE_CONSUMER_OFFSET (not with pulls): only the start offsets (0)
    cluster.broker().commit_in_pulls = False
    for i in range(8):
        cluster.put("Orders", b"x%d" % i, queue_id=i % 4)
    got = Collector(8)
    first = fast_push(cluster, "handover", commit_interval=60.0)
    first.subscribe("Orders", "*", got)
    first.start()
    assert got.done.wait(5)
    wait_until(
        lambda: (
            first.committed(MessageQueue(topic="Orders", broker_name="broker-a", queue_id=3)) == 2
        ),
        what="local offset",
    )
    # When a second member joins and takes two of them (the first's commit timer is 60 s
    # away); it commits nothing itself (auto_commit off, never polled)
    second = lite(cluster, "handover", auto_commit=False)
    second.subscribe("Orders", "*")
    second.start()
    wait_until(lambda: len([q for q in first.assignment() if q.topic == "Orders"]) == 2)
    wait_until(lambda: len([q for q in second.assignment() if q.topic == "Orders"]) == 2)
    # Then the first committed the queues that moved as they moved (what it consumed: 2
    # each), and only those. Whether the newcomer reads those offsets before its first pull is
    # a race, as in RocketMQ (both members rebalance at once): it may get their messages again.
    moved = {q.queue_id for q in second.assignment() if q.topic == "Orders"}
    wait_until(
        lambda: all(cluster.committed("handover", "Orders", q) == 2 for q in moved),
        what="the moved queues' commits",
    )
    kept = {0, 1, 2, 3} - moved  # still at the start offsets committed when first started
    assert [cluster.committed("handover", "Orders", q) for q in kept] == [0, 0]
    second.shutdown()
    first.shutdown()


def test_a_poll_waiting_in_another_thread_returns_when_the_consumer_shuts_down(
    cluster: FakeCluster,
) -> None:
    # Given a lite consumer of an idle topic, and a thread waiting 20 s in poll
    consumer = lite(cluster, "closing")
    consumer.subscribe("Orders", "*")
    consumer.start()
    polled: list[object] = []
    returned = threading.Event()

    def poller() -> None:
        polled.append(consumer.poll(20))
        returned.set()

    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    wait_until(lambda: consumer.assignment() != [], what="queues assigned")
    # When the consumer shuts down
    consumer.shutdown()
    # Then the poll returns at once, with nothing
    assert returned.wait(3) and polled == [[]]
    # And a poll after the shutdown is a state error
    with pytest.raises(ClientStateError):
        consumer.poll(0.1)


def test_listeners_that_shut_their_consumer_down_do_not_wait_for_themselves(
    cluster: FakeCluster,
) -> None:
    # Given 5 messages and a consumer whose listener shuts the consumer down, on every call
    # (up to 5 at once on its threads), with the default 10 s shutdown_wait
    for i in range(5):
        cluster.put("Orders", b"m%d" % i, queue_id=i % 4)
    consumer = fast_push(cluster, "self-stopping")
    took: list[float] = []
    lock = threading.Lock()
    entered = [0]
    two_in = threading.Event()

    def listener(_msg: object) -> ConsumeResult:
        with lock:
            entered[0] += 1
            if entered[0] >= 2:
                two_in.set()
        assert two_in.wait(5)  # at least two listeners are in here together
        started = time.monotonic()
        consumer.shutdown()
        with lock:
            took.append(time.monotonic() - started)
        return ConsumeResult.CONSUME_SUCCESS

    consumer.subscribe("Orders", "*", listener)
    consumer.start()
    # When they call shutdown, Then each call returns well before shutdown_wait (none waits
    # for itself, nor for another listener waiting for it) and the consumer is shut down
    wait_until(lambda: len(took) >= 2, what="listeners returned", timeout=8)
    assert max(took) < 3.0, took
    wait_until(lambda: consumer._state == "shut down", what="shut down")


def test_flow_control_stops_pulling_until_the_listener_catches_up(cluster: FakeCluster) -> None:
    # Given 60 messages on one queue and a listener that blocks
    for i in range(60):
        cluster.put("Orders", b"%d" % i, queue_id=0)
    release = threading.Event()
    started = threading.Event()
    seen = Collector(60)

    def listener(msg) -> None:
        started.set()
        release.wait(10)
        seen(msg)

    consumer = fast_push(
        cluster, "flow", pull_batch_size=5, max_cached_messages=10, consume_threads=2
    )
    consumer.subscribe("Orders", "*", listener)
    consumer.start()
    assert started.wait(5)

    # Then pulling stops once more than 10 are cached: 3 pulls of 5
    wait_until(lambda: queue_pulls(cluster) >= 3, what="initial pulls")
    time.sleep(0.3)  # a runaway puller would pull all 12 batches meanwhile
    assert queue_pulls(cluster) == 3
    # When the listener is released, Then everything arrives
    release.set()
    assert seen.done.wait(10)
    assert sorted(int(b) for b in seen.bodies()) == list(range(60))
    consumer.shutdown()


def test_pulling_stops_while_the_cached_offsets_span_too_far(cluster: FakeCluster) -> None:
    # Given 60 messages on one queue, only every third one tagged "paid", and a blocked listener
    for i in range(60):
        cluster.put(
            "Orders", b"%d" % i, queue_id=0, properties=TAGGED.format("paid" if i % 3 == 0 else "x")
        )
    release = threading.Event()
    seen = Collector(20)

    def listener(msg) -> None:
        release.wait(10)
        seen(msg)

    consumer = fast_push(cluster, "span", pull_batch_size=2, max_span=12, consume_threads=2)
    consumer.subscribe("Orders", "paid", listener)
    consumer.start()

    # Then pulling stops once the cached offsets (0, 3, 6, ...) span more than 12, with only
    # 6 messages cached (RocketMQ's consumeConcurrentlyMaxSpan; max_cached_messages is 1000)
    wait_until(lambda: queue_pulls(cluster) >= 3, what="pulls up to the span")
    time.sleep(0.3)  # a puller ignoring the span would pull all 10 batches meanwhile
    assert queue_pulls(cluster) == 3
    # When the listener is released, Then everything tagged arrives
    release.set()
    assert seen.done.wait(10)
    assert sorted(int(b) for b in seen.bodies()) == list(range(0, 60, 3))
    consumer.shutdown()


def test_broadcasting_delivers_everything_to_every_member_with_local_offsets(
    cluster: FakeCluster, tmp_path
) -> None:
    for i in range(8):
        cluster.put("Orders", b"b%d" % i, queue_id=i % 4)
    collectors = [Collector(8), Collector(8)]
    consumers = []
    for n, got in enumerate(collectors):
        c = fast_push(
            cluster,
            "radio",
            model=MessageModel.BROADCASTING,
            offset_store_dir=tmp_path,
            instance_name=f"member{n}",
        )
        c.subscribe("Orders", "*", got)
        c.start()
        consumers.append(c)
    for got in collectors:
        assert got.done.wait(5)
        assert sorted(got.bodies()) == sorted(b"b%d" % i for i in range(8))
    for c in consumers:
        c.shutdown()
    # offsets live in each member's file, not on the broker
    for c in consumers:
        table = read_local(c.offsets_path)
        assert sorted(table.values()) == [2, 2, 2, 2]
    assert cluster.committed("radio", "Orders", 0) == -1
    # a restarted member continues from its file
    cluster.put("Orders", b"late", queue_id=0)
    again = Collector(1)
    c = fast_push(
        cluster,
        "radio",
        model=MessageModel.BROADCASTING,
        offset_store_dir=tmp_path,
        instance_name="member0",
    )
    c.subscribe("Orders", "*", again)
    with c:
        assert again.done.wait(5)
        time.sleep(0.1)
    assert again.bodies() == [b"late"]


def test_a_broadcasting_start_does_not_write_the_offsets_file_once_per_queue(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a topic of 64 queues (more than START_ONE_BY_ONE), one message in queue 5, and a
    # count of the offsets file's writes (each one fsync)
    queues = 64
    writes: list[int] = []
    real_write = offsets.write_local

    def counted(path, table) -> None:
        writes.append(len(table))
        real_write(path, table)

    monkeypatch.setattr(offsets, "write_local", counted)
    with FakeCluster(("broker-a",), topics=("Wide",), queues=queues) as fc:
        fc.put("Wide", b"old", queue_id=5)
        consumer = PushConsumer(
            "radio-wide",
            namesrv=fc.namesrv,
            model=MessageModel.BROADCASTING,
            offset_store_dir=tmp_path,
            instance_name="member0",
            consume_from=ConsumeFrom.LAST,
            rebalance_interval=60.0,
        )
        consumer.subscribe("Wide", "*", Collector(1))
        try:
            # When it starts and has pulled every queue
            consumer.start()
            wait_until(
                lambda: len(pulled_queues(fc, "Wide")) == queues, what="a pull of every queue"
            )
            # Then the file was written at most once (the 5 s timer's), not once per queue
            assert len(writes) <= 1
        finally:
            consumer.shutdown()
    # And the shutdown wrote every queue's start offset
    assert writes[-1] == queues
    expected = {
        MessageQueue(topic="Wide", broker_name="broker-a", queue_id=q): int(q == 5)
        for q in range(queues)
    }
    assert read_local(consumer.offsets_path) == expected


def pulled_queues(cluster: FakeCluster, topic: str) -> set[str]:
    return {
        ext["queueId"]
        for code, ext in list(cluster.broker().requests)
        if code == RequestCode.PULL_MESSAGE and ext["topic"] == topic
    }


@pytest.mark.parametrize("where", [ConsumeFrom.LAST, ConsumeFrom.FIRST, ConsumeFrom.TIMESTAMP])
def test_consume_from_applies_to_a_new_group_only(cluster: FakeCluster, where: ConsumeFrom) -> None:
    # Given 3 old messages (stored "long ago") and, for TIMESTAMP, 1 stored after the mark
    for i in range(3):
        cluster.put("Orders", b"old%d" % i, queue_id=0, store_timestamp=1_000)
    mark = int(time.time() * 1000) - 60_000
    cluster.put("Orders", b"recent", queue_id=0, store_timestamp=mark + 1)
    got = Collector(1)
    consumer = fast_push(cluster, f"new-{where.name}", consume_from=where, consume_timestamp=mark)
    consumer.subscribe("Orders", "*", got)
    consumer.start()
    # When a message is sent after the start
    with Producer("p", namesrv=cluster.namesrv) as producer:
        producer.send(
            Message("Orders", b"new"),
            queue=MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0),
        )
    wait_until(lambda: b"new" in got.bodies(), what="the new message")
    consumer.shutdown()
    expected = {
        ConsumeFrom.LAST: [b"new"],
        ConsumeFrom.FIRST: [b"old0", b"old1", b"old2", b"recent", b"new"],
        ConsumeFrom.TIMESTAMP: [b"recent", b"new"],
    }[where]
    # (a concurrent consumer's listener calls may finish in any order)
    assert sorted(got.bodies()) == sorted(expected)
    # And the start position was committed at once (fixed for the group)
    offsets = [e for c, e in cluster.broker().requests if c == RequestCode.UPDATE_CONSUMER_OFFSET]
    assert offsets and offsets[0]["queueId"] in "0123"


def test_consume_from_timestamp_defaults_to_half_an_hour_before_the_start(
    cluster: FakeCluster,
) -> None:
    # Given a message stored just inside "30 minutes before the consumer's start" and one now
    # (RocketMQ's consumeTimestamp default is fixed when the consumer is made, not per queue)
    started = int(time.time() * 1000)
    cluster.put("Orders", b"inside", queue_id=0, store_timestamp=started - 1_800_000 + 1_500)
    cluster.put("Orders", b"now", queue_id=0)
    queue = [MessageQueue(topic="Orders", broker_name="broker-a", queue_id=q) for q in (0, 1)]
    consumer = lite(cluster, "half-an-hour", consume_from=ConsumeFrom.TIMESTAMP)
    consumer.assign(queue[1:])
    with consumer:
        # When queue 0 is first assigned a few seconds after the start
        time.sleep(2.5)
        consumer.assign(queue[:1])
        got = poll_all(consumer, 2, timeout=5.0)
    # Then it starts from the consumer's start minus 30 minutes, so both messages come
    assert [m.body for m in got] == [b"inside", b"now"]
    # And its running info reports that default, as RocketMQ's always has a consumeTimestamp
    reported = int(consumer._settings()["consumeTimestamp"])
    assert started - 1_800_000 <= reported <= started - 1_800_000 + 1_500


def test_a_committed_offset_wins_over_consume_from(cluster: FakeCluster) -> None:
    for i in range(5):
        cluster.put("Orders", b"%d" % i, queue_id=0)
    cluster.run(lambda: cluster.broker().offsets.__setitem__(("old-group", "Orders", 0), 3))
    got = Collector(2)
    consumer = fast_push(cluster, "old-group", consume_from=ConsumeFrom.FIRST)
    consumer.subscribe("Orders", "*", got)
    with consumer:
        assert got.done.wait(5)
    # (a concurrent consumer's two messages may be consumed in either order)
    assert sorted(got.bodies()) == [b"3", b"4"]


# -- lite pull consumer ---------------------------------------------------------------------


def poll_all(consumer: PullConsumer, n: int, timeout: float = 10.0) -> list:
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out.extend(consumer.poll(0.2))
    return out


def test_lite_poll_manual_commit_and_seek(cluster: FakeCluster) -> None:
    for i in range(20):
        cluster.put("Orders", b"%d" % i, queue_id=i % 4)
    consumer = lite(
        cluster,
        "lite",
        consume_from=ConsumeFrom.FIRST,
        auto_commit=False,
        max_poll_messages=7,
    )
    consumer.subscribe("Orders", "*")
    consumer.start()
    # poll returns at most max_poll_messages at a time, everything eventually
    first = consumer.poll(5)
    assert 1 <= len(first) <= 7
    got = first + poll_all(consumer, 20 - len(first))
    assert sorted(int(m.body) for m in got) == list(range(20))
    # nothing is written until commit (beyond the start positions)
    assert [cluster.committed("lite", "Orders", q) for q in range(4)] == [0, 0, 0, 0]
    assert consumer.commit() == 4
    assert [cluster.committed("lite", "Orders", q) for q in range(4)] == [5, 5, 5, 5]
    # seek back on one queue: its messages come again from there
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=2)
    consumer.seek(mq, 3)
    again = poll_all(consumer, 2)
    assert [(m.queue_id, m.queue_offset) for m in again] == [(2, 3), (2, 4)]
    assert consumer.committed(mq) == 5
    consumer.shutdown()
    assert cluster.committed("lite", "Orders", 2) == 5


def test_lite_assign_without_a_group_rebalance(cluster: FakeCluster) -> None:
    for i in range(8):
        cluster.put("Orders", b"%d" % i, queue_id=i % 4)
    mqs = [MessageQueue(topic="Orders", broker_name="broker-a", queue_id=q) for q in (1, 3)]
    consumer = lite(cluster, "assigned", consume_from=ConsumeFrom.FIRST)
    consumer.assign(mqs)
    with consumer:
        got = poll_all(consumer, 4)
        assert sorted(consumer.assignment()) == mqs
        assert sorted(int(m.body) for m in got) == [1, 3, 5, 7]
        assert consumer.seek_to_end(mqs[0]) == 2
        consumer.assign(mqs[:1])
        assert consumer.assignment() == mqs[:1]
    assert all(c != RequestCode.GET_CONSUMER_LIST_BY_GROUP for c in cluster.broker().codes())


def test_lite_assign_looks_up_the_start_offsets_of_many_queues_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 6 topics of 4 queues (more than START_ONE_BY_ONE), a message in each queue,
    # and a broker that answers no QUERY_CONSUMER_OFFSET before 4 of them wait together
    topics = tuple(f"Many{t}" for t in range(6))
    assert len(topics) * 4 > START_ONE_BY_ONE
    original = BrokerProcessor.process
    waiting: list[int] = []
    gate: list[gevent.event.Event] = []

    def process(self: BrokerProcessor, session: object, request: RemotingCommand) -> object:
        if request.code == RequestCode.QUERY_CONSUMER_OFFSET:
            if not gate:
                gate.append(gevent.event.Event())  # on the fake cluster's own hub
            waiting.append(request.opaque)
            if len(waiting) >= 4:
                gate[0].set()
            gate[0].wait(10)  # one at a time: each waits past the client's 3 s timeout
        return original(self, session, request)  # type: ignore[arg-type]

    monkeypatch.setattr(BrokerProcessor, "process", process)
    with FakeCluster(("broker-a",), topics=topics) as fc:
        for topic in topics:
            for q in range(4):
                fc.put(topic, f"{topic}/{q}".encode(), queue_id=q)
        mqs = [
            MessageQueue(topic=t, broker_name="broker-a", queue_id=q)
            for t in topics
            for q in range(4)
        ]
        consumer = PullConsumer("many", namesrv=fc.namesrv, consume_from=ConsumeFrom.FIRST)
        consumer.assign(mqs)
        # When it starts
        with consumer:
            # Then every queue was started (at its first message) and read
            assert sorted(consumer.assignment()) == sorted(mqs)
            got = poll_all(consumer, len(mqs))
            assert sorted(m.body.decode() for m in got) == sorted(
                f"{t}/{q}" for t in topics for q in range(4)
            )
        # and each queue's offset was asked for once: none timed out waiting for the others
        # (looked up one at a time, the first three did, and a later rebalance retried them)
        assert len(waiting) == len(mqs)


def test_lite_auto_commit_writes_polled_offsets(cluster: FakeCluster) -> None:
    for i in range(4):
        cluster.put("Orders", b"%d" % i, queue_id=0)
    consumer = lite(cluster, "auto", consume_from=ConsumeFrom.FIRST, commit_interval=0.05)
    consumer.subscribe("Orders", "*")
    with consumer:
        assert len(poll_all(consumer, 4)) == 4
        wait_until(lambda: cluster.committed("auto", "Orders", 0) == 4, what="auto commit")


def test_a_pull_that_moves_nothing_is_not_repeated_at_once(cluster: FakeCluster) -> None:
    # Given a broker that keeps a consumer whose offset lies past the queue's end (a slave,
    # which never moves a consumer), and a group whose committed offset is 50 on an empty queue
    broker = cluster.broker()
    cluster.run(lambda: setattr(broker, "keep_consumers", True))
    cluster.run(lambda: broker.offsets.__setitem__(("ahead", "Orders", 0), 50))
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    consumer = lite(cluster, "ahead")
    consumer.assign([mq])

    def queue_pulls(cluster) -> int:
        return sum(code == RequestCode.PULL_MESSAGE for code in broker.codes())

    with consumer:
        wait_until(lambda: queue_pulls(cluster) >= 2, what="a second pull")
        # When it has been answered PULL_RETRY_IMMEDIATELY at its own offset for a second
        first = queue_pulls(cluster)
        time.sleep(1.0)  # a measuring window, not a wait for an event
        # Then it pulled again a few times a second (it used to pull again at once, thousands
        # of times a second), and its offset stays where it was
        assert queue_pulls(cluster) - first <= 10
        assert consumer.committed(mq) == 50


def test_a_broker_new_to_the_routes_hears_a_heartbeat_at_once() -> None:
    # Given two brokers, the second not yet in any route, and a consumer of the first whose
    # routes refresh every 0.2 s and whose heartbeat timer is a minute
    with FakeCluster(("broker-a", "broker-b"), topics=("Orders",)) as fc:
        fc.hidden.add("broker-b")
        consumer = PushConsumer(
            "newcomer",
            namesrv=fc.namesrv,
            heartbeat_interval=60.0,
            route_refresh_interval=0.2,
            rebalance_interval=60.0,
        )
        consumer.subscribe("Orders", "*", lambda _m: None)
        with consumer:
            assert fc.consumer_ids("newcomer", "broker-a") == [consumer.client_id]
            assert fc.consumer_ids("newcomer", "broker-b") == []
            # When broker-b appears in the route (registered, or a slave restarted)
            fc.run(fc.hidden.discard, "broker-b")
            # Then it lists the consumer within a refresh, not at the next heartbeat
            wait_until(
                lambda: fc.consumer_ids("newcomer", "broker-b") == [consumer.client_id],
                timeout=5.0,
                what="a heartbeat to broker-b",
            )


def test_a_topic_subscribed_while_running_is_the_only_one_rebalanced(
    cluster: FakeCluster,
) -> None:
    # Given a running lite consumer of Orders, and Invoices stored too
    cluster.put("Orders", b"o", queue_id=0)
    cluster.put("Invoices", b"i", queue_id=0)
    consumer = lite(cluster, "resubscriber", consume_from=ConsumeFrom.FIRST)
    consumer.subscribe("Orders")
    with consumer:
        wait_until(lambda: consumer.poll(timeout=0.2), timeout=10, what="Orders polled")
        asked = len(cluster.broker().requests)
        # When it subscribes Invoices
        consumer.subscribe("Invoices")
        # Then only Invoices' consumer list is asked for (with the topic: its subscribers),
        # and its message comes
        wait_until(lambda: consumer.poll(timeout=0.2), timeout=10, what="Invoices polled")
        lists = [
            ext.get("topic")
            for code, ext in cluster.broker().requests[asked:]
            if code == RequestCode.GET_CONSUMER_LIST_BY_GROUP
        ]
        assert lists and set(lists) == {"Invoices"}


def test_change_topics_adds_and_drops_several_with_one_heartbeat(cluster: FakeCluster) -> None:
    # Given a running lite consumer of Orders, and Invoices and Refunds stored
    for topic in ("Orders", "Invoices", "Refunds"):
        cluster.put(topic, topic.encode(), queue_id=0)
    consumer = lite(cluster, "changer", consume_from=ConsumeFrom.FIRST)
    consumer.subscribe("Orders")
    with consumer:
        wait_until(lambda: consumer.poll(timeout=0.2), timeout=10, what="Orders polled")
        asked = len(cluster.broker().requests)
        # When it takes Invoices and Refunds and drops Orders in one change
        consumer.change_topics(add=["Invoices", "Refunds"], remove=["Orders"])
        got: list[bytes] = []
        wait_until(
            lambda: got.extend(m.body for m in consumer.poll(timeout=0.2)) or len(got) >= 2,
            timeout=10,
            what="both polled",
        )
        # Then one heartbeat told the broker, and both new topics were consumed
        codes = [code for code, _ext in cluster.broker().requests[asked:]]
        assert codes.count(RequestCode.HEART_BEAT) == 1
        assert sorted(got) == [b"Invoices", b"Refunds"]
        assert set(consumer.subscriptions) == {"Invoices", "Refunds"}


def test_messages_waiting_for_a_listener_are_not_consumed_once_their_queue_is_taken_away(
    cluster: FakeCluster,
) -> None:
    # Given five messages on one queue and a consumer with one consume thread, whose listener
    # is still busy with the first while the other four wait behind it
    for i in range(5):
        cluster.put("Orders", b"m%d" % i, queue_id=0)
    seen: list[bytes] = []
    busy = threading.Event()
    release = threading.Event()

    def listener(msg) -> ConsumeResult:
        seen.append(msg.body)
        if msg.body == b"m0":
            busy.set()
            release.wait(10)
        return ConsumeResult.CONSUME_SUCCESS

    consumer = fast_push(cluster, "dropped-g", consume_threads=1, commit_interval=60.0)
    consumer.subscribe("Orders", "*", listener)
    consumer.start()
    assert busy.wait(5)
    # When the queue is taken away (the topic unsubscribed: its puller stops and its offset,
    # held by m0, is committed) and only then the listener returns
    consumer.unsubscribe("Orders")
    assert cluster.committed("dropped-g", "Orders", 0) == 0
    release.set()
    consumer.shutdown()  # waits for the pool
    # Then m1..m4 were not consumed here: they are the queue's next owner's, from offset 0
    # (as RocketMQ skips the consume requests of a dropped ProcessQueue)
    assert seen == [b"m0"]
