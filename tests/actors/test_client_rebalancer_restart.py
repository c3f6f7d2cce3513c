"""A consumer's rebalancer that fails is restarted by its supervisor: what the user changed
while it ran (subscribe, unsubscribe, suspend) holds for the new one too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import ConsumeFrom, PushConsumer
from actors.client.consumer_requests import REBALANCER
from actors.client.rebalance import DoRebalance
from actors.client.testing import FakeCluster
from runtime.remoting.codes import RETRY_PREFIX
from tests.actors.test_client_pull_limits import pullers_read
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), queues=2, topics=("Orders", "Invoices", "Payments")) as fc:
        yield fc


class Exploding:
    """A reply future whose ``set`` raises: the rebalancer fails handling the message."""

    def set(self, _value: Any) -> None:
        raise RuntimeError("injected rebalancer failure")


def rebalancer_urn(consumer: PushConsumer) -> str | None:
    instance = consumer._instance
    assert instance is not None
    ref = instance.directory.get(instance.name(REBALANCER))
    return None if ref is None or not ref.is_alive() else ref.actor_urn


def test_a_restarted_rebalancer_keeps_the_subscriptions_and_holds_made_while_it_ran(
    cluster: FakeCluster,
) -> None:
    # Given a consumer started on Orders and Invoices, which then subscribed Payments,
    # unsubscribed Invoices and was suspended
    consumer = PushConsumer(
        "restart", namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST, rebalance_interval=60
    )
    consumer.subscribe("Orders", "*", lambda _m: None)
    consumer.subscribe("Invoices", "*", lambda _m: None)
    consumer.start()
    try:
        consumer.subscribe("Payments", "*", lambda _m: None)
        consumer.unsubscribe("Invoices")
        consumer.suspend()
        hub = consumer._hub
        assert hub is not None
        # When its rebalancer fails and the supervisor restarts it
        old = rebalancer_urn(consumer)
        instance = consumer._instance
        assert instance is not None
        ref = instance.directory.get(instance.name(REBALANCER))
        hub.call(lambda: ref.tell(DoRebalance("injected failure", Exploding())))
        wait_until(lambda: rebalancer_urn(consumer) not in (None, old), what="the restart")
        hub.call(lambda: consumer._ask(REBALANCER, lambda r: DoRebalance("test", r), 20.0))
        # Then the new one pulls Payments, not Invoices, and every queue it pulls stays held
        held = pullers_read(consumer, "on_hold")
        topics = {mq.topic for mq in held}
        assert topics == {"Orders", "Payments", f"{RETRY_PREFIX}restart"}
        assert all(held.values())
    finally:
        consumer.shutdown()


def test_a_restarted_rebalancer_takes_its_queues_back_at_once(cluster: FakeCluster) -> None:
    # Given a consumer (20 s rebalance timer) holding Orders' two queues and its retry queue
    consumer = PushConsumer(
        "again", namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST, rebalance_interval=20
    )
    consumer.subscribe("Orders", "*", lambda _m: None)
    consumer.start()
    try:
        assert len(pullers_read(consumer, "generation")) == 3
        hub = consumer._hub
        instance = consumer._instance
        assert hub is not None and instance is not None
        # When its rebalancer fails (its pullers stop with it) and is restarted
        old = rebalancer_urn(consumer)
        ref = instance.directory.get(instance.name(REBALANCER))
        hub.call(lambda: ref.tell(DoRebalance("injected failure", Exploding())))
        wait_until(lambda: rebalancer_urn(consumer) not in (None, old), what="the restart")
        # Then the new one pulls them again well before its timer's first round
        wait_until(lambda: len(pullers_read(consumer, "generation")) == 3, timeout=5)
    finally:
        consumer.shutdown()
