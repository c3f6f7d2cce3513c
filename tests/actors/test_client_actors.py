"""The client's actors on the test's own hub, against a FakeCluster on its own thread."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import gevent
import pykka
import pytest

from actors.client.config import ClientConfig
from actors.client.connections import Connect
from actors.client.errors import ConnectError, NoRouteError
from actors.client.instance import ClientInstance
from actors.client.message import MessageExt, MessageQueue
from actors.client.offsets import (
    Forget,
    OffsetStore,
    Persist,
    ReadOffset,
    UpdateOffset,
    read_local,
)
from actors.client.pull import TagFilter
from actors.client.pull_ticket import PullCancelled, PullTicket
from actors.client.puller import QueuePuller
from actors.client.puller_messages import Consumed, PullOptions, Seek, next_generation
from actors.client.testing import FakeCluster
from runtime.actor import new_future
from runtime.remoting.codes import RequestCode

pytestmark = pytest.mark.timeout(30)


def dead_address() -> str:
    """A local port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def route_queries(cluster: FakeCluster, topic: str) -> int:
    return sum(1 for code, ext in cluster.namesrv_requests if code == 105 and ext["topic"] == topic)


def test_concurrent_route_fetches_of_one_topic_share_one_request(
    cluster: FakeCluster, instance: ClientInstance
) -> None:
    # Given ten greenlets asking for the same unknown route at once
    jobs = [gevent.spawn(instance.route, "Orders") for _ in range(10)]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    # Then they all got the same route from one name-server request
    assert len({id(job.value) for job in jobs}) == 1
    assert [mq.queue_id for mq in jobs[0].value.publish] == [0, 1, 2, 3]
    assert route_queries(cluster, "Orders") == 1


def test_route_table_fails_over_to_the_next_name_server(cluster: FakeCluster) -> None:
    # Given a dead first name server
    cfg = ClientConfig.make([dead_address(), cluster.namesrv], route_refresh_interval=0)
    inst = ClientInstance(cfg)
    inst.start()
    try:
        # When a route is needed, Then the second one answers (and stays the one asked)
        assert inst.route("Orders").topic == "Orders"
        inst.fetch_route("Orders")
        assert route_queries(cluster, "Orders") == 2
    finally:
        inst.stop()


def test_a_consumer_route_for_an_unknown_topic_is_a_no_route_error(
    instance: ClientInstance,
) -> None:
    with pytest.raises(NoRouteError):
        instance.route("Nope")
    producer_route = instance.route("Nope2", allow_default=True)
    assert producer_route.via_default and len(producer_route.publish) == 4


def test_connections_open_one_session_per_address_and_forget_closed_ones(
    cluster: FakeCluster, instance: ClientInstance
) -> None:
    address = cluster.broker().address
    jobs = [gevent.spawn(instance.remoting.session, address) for _ in range(8)]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    assert len({id(job.value) for job in jobs}) == 1
    assert list(instance.sessions) == [address]
    # When the peer closes the connection, Then the pool forgets it and reconnects on demand
    first = jobs[0].value
    first.close()
    with gevent.Timeout(5):
        while address in instance.sessions:
            gevent.sleep(0.01)
    again = instance.remoting.session(address)
    assert again is not first and again.alive


def test_a_failed_connect_answers_every_waiter(instance: ClientInstance) -> None:
    address = dead_address()
    replies = [new_future() for _ in range(3)]
    ref = instance.directory.require(instance.names["connections"])
    for reply in replies:
        ref.tell(Connect(address, reply))
    for reply in replies:
        with pytest.raises(ConnectError):
            reply.get(timeout=5)


def test_offset_store_writes_only_what_changed_and_never_goes_back(
    cluster: FakeCluster, instance: ClientInstance
) -> None:
    store = OffsetStore.start(instance, "g", interval=0)
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=1)
    other = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=2)
    try:
        store.tell(UpdateOffset(mq, 5))
        store.tell(UpdateOffset(mq, 3))  # lower: ignored
        store.tell(UpdateOffset(other, 7))
        written = new_future()
        store.tell(Persist(None, written))
        assert written.get(timeout=5) == 2
        assert cluster.committed("g", "Orders", 1) == 5
        # nothing changed since: nothing is sent
        before = cluster.broker().codes().count(RequestCode.UPDATE_CONSUMER_OFFSET)
        again = new_future()
        store.tell(Persist(None, again))
        assert again.get(timeout=5) == 0
        assert cluster.broker().codes().count(RequestCode.UPDATE_CONSUMER_OFFSET) == before
        # a seek may move it back
        store.tell(UpdateOffset(mq, 2, force=True))
        read = new_future()
        store.tell(ReadOffset(mq, read))
        assert read.get(timeout=5) == 2
    finally:
        store.stop()


def test_offset_store_reads_the_broker_and_minus_one_for_none(
    cluster: FakeCluster, instance: ClientInstance
) -> None:
    cluster.run(lambda: cluster.broker().offsets.__setitem__(("g2", "Orders", 0), 9))
    store = OffsetStore.start(instance, "g2", interval=0)
    try:
        results = []
        for qid in (0, 3):
            reply = new_future()
            store.tell(
                ReadOffset(
                    MessageQueue(topic="Orders", broker_name="broker-a", queue_id=qid), reply
                )
            )
            results.append(reply.get(timeout=5))
        assert results == [9, -1]
        _code, ext = [r for r in cluster.broker().requests if r[0] == 14][-1]
        assert ext["setZeroIfNotFound"] == "false"
    finally:
        store.stop()


def test_local_offset_store_keeps_a_file(instance: ClientInstance, tmp_path) -> None:
    path = tmp_path / "offsets.json"
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    store = OffsetStore.start(instance, "g", local_path=path, interval=0)
    store.tell(UpdateOffset(mq, 11))
    done = new_future()
    store.tell(Persist(None, done))
    assert done.get(timeout=5) == 1
    store.stop()
    assert read_local(path) == {mq: 11}
    reopened = OffsetStore.start(instance, "g", local_path=path, interval=0)
    reply = new_future()
    reopened.tell(ReadOffset(mq, reply))
    assert reply.get(timeout=5) == 11
    reopened.stop()


def test_local_start_offsets_wait_for_the_next_write_moved_ones_do_not(
    instance: ClientInstance, tmp_path
) -> None:
    path = tmp_path / "offsets.json"
    mqs = [MessageQueue(topic="Orders", broker_name="broker-a", queue_id=q) for q in range(3)]
    store = OffsetStore.start(instance, "g", local_path=path, interval=60)

    def persist(mqs: tuple[MessageQueue, ...] | None) -> int:
        done = new_future()
        store.tell(Persist(mqs, done))
        return done.get(timeout=5)

    try:
        # Given three queues started as the rebalancer starts them: a forced start offset,
        # committed at once
        for n, mq in enumerate(mqs):
            store.tell(UpdateOffset(mq, 10 * n, True))
            # Then nothing is written yet
            assert persist((mq,)) == 0
        assert not path.exists()
        # When queue 0 moves on and is taken away (persisted, then forgotten)
        store.tell(UpdateOffset(mqs[0], 5))
        assert persist((mqs[0],)) == 3
        # Then it is written at once, with the start offsets waiting
        assert read_local(path) == {mqs[0]: 5, mqs[1]: 10, mqs[2]: 20}
        # When a fourth queue starts and is taken away unmoved, and queue 2 is sought back
        late = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=3)
        store.tell(UpdateOffset(late, 30, True))
        assert persist((late,)) == 0
        store.tell(Forget(late))
        store.tell(UpdateOffset(mqs[2], 0, True))
        # Then the next write (the 5 s timer's, or the shutdown's) has both
        assert persist(None) == 2
        assert read_local(path) == {mqs[0]: 5, mqs[1]: 10, mqs[2]: 0, late: 30}
    finally:
        store.stop()


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[tuple[int, list[int]]] = []
        self.arrived = gevent.event.Event()

    def deliver(self, puller: Any, generation: int, mq: MessageQueue, msgs: list[MessageExt]):
        self.batches.append((generation, [m.queue_offset for m in msgs]))
        self.arrived.set()

    def drop(self, mq: MessageQueue, floor: int) -> None:
        pass


def test_puller_drops_what_a_seek_made_stale(cluster: FakeCluster, instance: ClientInstance):
    for i in range(3):
        cluster.put("Orders", b"%d" % i, queue_id=0)
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    offsets = OffsetStore.start(instance, "p", interval=0)
    instance.directory.put(instance.name("offsets"), offsets)
    sink = RecordingSink()
    puller = QueuePuller.start(
        instance,
        "p",
        mq,
        0,
        TagFilter("*"),
        sink,
        instance.name("offsets"),
        PullOptions(suspend_ms=200, commit_in_pull=False),
    )
    try:
        assert sink.arrived.wait(5)
        [(first_gen, got)] = sink.batches
        assert got == [0, 1, 2]
        # When the queue is sought back to 1 with a new generation
        sink.arrived.clear()
        generation = next_generation()
        puller.tell(Seek(1, generation))
        assert sink.arrived.wait(5)
        assert sink.batches[-1] == (generation, [1, 2])
        # Then a completion from before the seek changes nothing
        puller.tell(Consumed(first_gen, [0, 1, 2]))
        assert puller.proxy().committable().get(timeout=5) == 1
        # while one of the current generation moves the committable offset
        puller.tell(Consumed(generation, [1, 2]))
        assert puller.proxy().committable().get(timeout=5) == 3
        reply = new_future()
        offsets.tell(ReadOffset(mq, reply))
        assert reply.get(timeout=5) == 3
    finally:
        puller.stop()
        offsets.stop()


def test_stopping_a_puller_hands_its_offset_to_the_store(
    cluster: FakeCluster, instance: ClientInstance
) -> None:
    cluster.put("Orders", b"x", queue_id=2)
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=2)
    offsets = OffsetStore.start(instance, "s", interval=0)
    instance.directory.put(instance.name("offsets"), offsets)
    sink = RecordingSink()
    puller = QueuePuller.start(
        instance,
        "s",
        mq,
        0,
        TagFilter("*"),
        sink,
        instance.name("offsets"),
        PullOptions(suspend_ms=5000),
    )
    assert sink.arrived.wait(5)
    generation = sink.batches[0][0]
    puller.tell(Consumed(generation, [0]))
    puller.stop()  # a long poll is in flight: stopping must not wait for it
    reply = new_future()
    offsets.tell(ReadOffset(mq, reply))
    assert reply.get(timeout=5) == 1
    offsets.stop()
    with pytest.raises(pykka.ActorDeadError):
        puller.tell(Consumed(generation, []))


def test_a_cancelled_pull_wakes_its_wait_forgets_the_request_and_tells_nothing() -> None:
    # Given a pull whose request is out and whose greenlet waits for the broker's answer
    ticket = PullTicket()
    session = SimpleNamespace(_pending={41: "other", 42: "this pull"})
    future = new_future()
    ticket.sent(session, 42, future)
    woke: list[type[BaseException]] = []

    def wait() -> None:
        try:
            future.get(timeout=5)
        except PullCancelled as exc:
            woke.append(type(exc))

    waiter = gevent.spawn(wait)
    gevent.sleep(0)
    # When the puller drops it (stop, seek, quiesce)
    ticket.cancel()
    # Then the wait ends at once with PullCancelled, the session no longer expects the answer,
    # and the ticket says not to tell the outcome; cancelling again is harmless
    waiter.join(timeout=5)
    assert woke == [PullCancelled]
    assert session._pending == {41: "other"}
    assert ticket.cancelled
    ticket.cancel()
