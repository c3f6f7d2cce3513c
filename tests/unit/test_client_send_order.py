"""A producer's sends that wait for a route or a connection keep their invoke order
(``actors.client.send``'s lanes), against an in-memory cluster over loopback.

The window that reordered them is narrow (the route or the connection is there, the sends that
waited for it have not woken yet), so the tests hold it open: the wait of the first sends is
gated after the route is cached or the connection is made, and later sends are issued then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent.event
import pytest

from actors.client import ConnectError, Message, MessageQueue, Producer
from actors.client.testing import FakeCluster
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(60)

BROKERS = ("broker-a", "broker-b")
EARLY = 20
LATER = 20


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(BROKERS, topics=("Orders", "Warm")) as fc:
        yield fc


@pytest.fixture
def producer(cluster: FakeCluster) -> Iterator[Producer]:
    with Producer("order-producer", namesrv=cluster.namesrv) as p:
        yield p


class Gate:
    """Holds the client's greenlets in a wrapped call, after the call itself, until opened."""

    def __init__(self, producer: Producer) -> None:
        self.hub = producer._hub
        self.event = gevent.event.Event()  # waited and set on the client's hub only

    def after(self, fn: Any, held: Any) -> Any:
        def gated(key: str, *args: Any, **kwargs: Any) -> Any:
            result = fn(key, *args, **kwargs)
            if held(key):
                self.event.wait()
            return result

        return gated

    def before(self, fn: Any, held: Any) -> Any:
        def gated(key: str, timeout: float, *args: Any) -> Any:
            if held(key) and not self.event.wait(max(timeout, 0.0)):
                raise ConnectError(key, f"no connection within {timeout:g}s (gated)")
            return fn(key, timeout, *args)

        return gated

    def open(self) -> None:
        assert self.hub is not None
        self.hub.run(self.event.set)  # after the sends issued before it (posted in order)


def send(producer: Producer, queues: list[MessageQueue], first: int, count: int) -> list[Any]:
    return [
        producer.send_async(Message("Orders", b"%d" % i), queue=queues[i % len(queues)])
        for i in range(first, first + count)
    ]


@pytest.mark.parametrize("stage", ["route", "connection"])
def test_later_sends_do_not_overtake_sends_waiting_at_start(
    cluster: FakeCluster, producer: Producer, stage: str
) -> None:
    instance = producer._instance
    assert instance is not None
    queues = [MessageQueue(topic="Orders", broker_name=b, queue_id=2) for b in BROKERS]
    addresses = {cluster.broker(b).address for b in BROKERS}
    gate = Gate(producer)
    if stage == "route":
        # Given connections to both brokers (a send to another topic), no route of Orders
        for b in BROKERS:
            producer.send(
                Message("Warm", b"w"), queue=MessageQueue(topic="Warm", broker_name=b, queue_id=0)
            )
        # And the first sends' wait for the route held once the route is cached
        instance.route = gate.after(instance.route, lambda topic: topic == "Orders")  # type: ignore[method-assign]
    else:
        # Given the route of Orders, no connection to its brokers yet
        producer.queues("Orders")
        # And the first sends' wait for a connection held once it is made
        remoting = instance.remoting
        remoting.session = gate.after(remoting.session, lambda a: a in addresses)  # type: ignore[method-assign]

    # When the first sends are issued, and the route or both connections become usable
    futures = send(producer, queues, 0, EARLY)
    if stage == "route":
        wait_until(lambda: "Orders" in instance.routes, what="the route cached")
    else:
        wait_until(
            lambda: all(instance.remoting.cached(a) is not None for a in addresses),
            what="both connections made",
        )
    # And later sends are issued while the first ones still wait
    futures += send(producer, queues, EARLY, LATER)
    gate.open()
    results = [f.result(timeout=30) for f in futures]

    # Then every queue stored its sends in the order they were invoked
    for k, mq in enumerate(queues):
        mine = results[k :: len(queues)]
        assert [r.queue for r in mine] == [mq] * len(mine)
        offsets = [r.queue_offset for r in mine]
        assert offsets == list(range(len(mine))), f"{mq}: {offsets}"


def test_a_send_with_time_left_outlives_the_timeout_of_the_send_it_waits_behind(
    cluster: FakeCluster, producer: Producer
) -> None:
    instance = producer._instance
    assert instance is not None
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    address = cluster.broker("broker-a").address
    # Given the connection to broker-a held back (from before the route is known: a heartbeat
    # the route starts would otherwise connect first, and the sends find that connection)
    gate = Gate(producer)
    remoting = instance.remoting
    remoting.session = gate.before(remoting.session, lambda a: a == address)  # type: ignore[method-assign]
    # and the route of Orders
    producer.queues("Orders")
    # When a send with 0.3 s to live waits for it, and a send with 20 s queues behind
    short = producer.send_async(Message("Orders", b"short"), queue=mq, timeout=0.3)
    long = producer.send_async(Message("Orders", b"long"), queue=mq, timeout=20)
    # Then the first fails when its time is up, the second still waits
    with pytest.raises(ConnectError):
        short.result(timeout=10)
    assert not long.done()
    # And once the connection can be made, the second is sent
    gate.open()
    assert long.result(timeout=10).queue_offset == 0
