"""No stale offset reaches the broker after a queue moved on: neither the commit offset of a
pull cancelled before its request was written, nor a periodic offset commit that waited for its
connection while the queue was handed over."""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
import pytest

from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.offsets import Forget, OffsetStore, Persist, UpdateOffset
from actors.client.pull import TagFilter
from actors.client.pull_ticket import PullCancelled, PullTicket, pull_once
from actors.client.puller_messages import PullOptions
from actors.client.testing import FakeCluster
from runtime.actor import new_future
from runtime.remoting.codes import RequestCode

pytestmark = pytest.mark.timeout(30)
MQ = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=1)


def test_a_pull_cancelled_while_its_connection_comes_is_never_written(
    cluster: FakeCluster, instance: ClientInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pull carrying commit offset 3, cancelled (its queue handed over) while its
    # connection to the broker is being made
    ticket = PullTicket()
    connect = instance.remoting.session

    def slow_connect(address: str, timeout: float | None = None) -> Any:
        handle = connect(address, timeout)
        if address != cluster.namesrv:  # (the route came: this is the broker's connection)
            ticket.cancel()  # the puller stops meanwhile
        return handle

    monkeypatch.setattr(instance.remoting, "session", slow_connect)
    # When the pull goes on once connected
    pull = gevent.spawn(
        pull_once,
        instance,
        "g",
        MQ,
        offset=3,
        commit=3,
        tag_filter=TagFilter("*"),
        options=PullOptions(suspend_ms=1000),
        suggested=0,
        ticket=ticket,
    )
    pull.join(timeout=10)
    # Then it ends cancelled, and no PULL_MESSAGE (with its stale commit offset) was written
    assert isinstance(pull.exception, PullCancelled)
    assert RequestCode.PULL_MESSAGE not in cluster.broker().codes()


def test_a_periodic_commit_that_waited_past_a_handover_does_not_move_the_offset_back(
    cluster: FakeCluster, instance: ClientInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = OffsetStore.start(instance, "g", interval=0)
    connect = instance.remoting.session
    waiting, go_on = gevent.event.Event(), gevent.event.Event()
    calls = 0

    def first_connect_slow(address: str, timeout: float | None = None) -> Any:
        nonlocal calls
        calls += address != cluster.namesrv
        if calls == 1 and address != cluster.namesrv:
            waiting.set()
            assert go_on.wait(10)
        return connect(address, timeout)

    monkeypatch.setattr(instance.remoting, "session", first_connect_slow)
    try:
        # Given a periodic commit of offset 5 waiting for its connection
        store.tell(UpdateOffset(MQ, 5))
        periodic = new_future()
        store.tell(Persist(None, periodic))
        assert waiting.wait(10)
        # And meanwhile the queue handed over: its last offset, 8, persisted, then forgotten
        store.tell(UpdateOffset(MQ, 8))
        handover = new_future()
        store.tell(Persist((MQ,), handover))
        assert handover.get(timeout=10) == 1
        assert cluster.committed("g", "Orders", 1) == 8
        store.tell(Forget(MQ))
        # When the periodic commit's connection comes
        go_on.set()
        # Then it writes nothing: the broker keeps 8, not 5
        assert periodic.get(timeout=10) == 0
        assert cluster.committed("g", "Orders", 1) == 8
        assert cluster.broker().codes().count(RequestCode.UPDATE_CONSUMER_OFFSET) == 1
    finally:
        store.stop()


def test_a_commit_that_waited_while_the_table_moved_on_writes_the_newer_offset(
    cluster: FakeCluster, instance: ClientInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = OffsetStore.start(instance, "g", interval=0)
    connect = instance.remoting.session
    waiting, go_on = gevent.event.Event(), gevent.event.Event()

    def slow_connect(address: str, timeout: float | None = None) -> Any:
        if address != cluster.namesrv:
            waiting.set()
            assert go_on.wait(10)
        return connect(address, timeout)

    monkeypatch.setattr(instance.remoting, "session", slow_connect)
    try:
        # Given a commit of offset 5 waiting for its connection while the offset moves to 9
        store.tell(UpdateOffset(MQ, 5))
        first = new_future()
        store.tell(Persist(None, first))
        assert waiting.wait(10)
        store.tell(UpdateOffset(MQ, 9))
        read = new_future()
        store.tell(Persist((), read))  # (a round trip: the update was taken)
        read.get(timeout=10)
        # When the connection comes, it writes 9, the offset held at its write
        go_on.set()
        assert first.get(timeout=10) == 1
        assert cluster.committed("g", "Orders", 1) == 9
    finally:
        store.stop()
