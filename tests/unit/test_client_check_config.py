"""CHECK_CLIENT_CONFIG at consumer start, against the in-memory cluster: what is asked, and a
refusal failing ``start``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.client import BrokerError, PullConsumer, PushConsumer
from actors.client.testing import FakeCluster
from runtime.remoting.codes import RequestCode, ResponseCode

pytestmark = pytest.mark.timeout(40)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders", "Refunds")) as fc:
        yield fc


def test_start_asks_about_each_sql92_subscription_only(cluster: FakeCluster) -> None:
    # Given a push consumer with one SQL92 and one TAG subscription
    consumer = PushConsumer("check-both", namesrv=cluster.namesrv, listener=print)
    consumer.subscribe("Orders", sql="amount > 5")
    consumer.subscribe("Refunds", "a || b")
    # When it starts (the broker can filter by SQL92)
    consumer.start()
    consumer.shutdown()
    # Then the broker was asked once, about the SQL92 subscription, as RocketMQ's client asks
    [check] = cluster.broker().checks
    assert check.group == "check-both" and check.client_id == consumer.client_id
    sub = check.subscription_data
    assert sub is not None
    assert (sub.topic, sub.sub_string, sub.expression_type) == ("Orders", "amount > 5", "SQL92")
    # And before the heartbeat made the group a member
    codes = cluster.broker().codes()
    assert codes.index(RequestCode.CHECK_CLIENT_CONFIG) < codes.index(RequestCode.HEART_BEAT)


def test_a_refusal_fails_start_and_leaves_nothing_running(cluster: FakeCluster) -> None:
    # Given a broker that cannot filter by SQL92
    cluster.broker().property_filter = False
    for consumer in (
        PushConsumer("check-refused", namesrv=cluster.namesrv, listener=print),
        PullConsumer("check-refused-lite", namesrv=cluster.namesrv),
    ):
        consumer.subscribe("Orders", sql="amount > 5")
        # When the consumer starts, Then it raises the broker's code and remark
        with pytest.raises(BrokerError) as refused:
            consumer.start()
        assert refused.value.code == ResponseCode.SYSTEM_ERROR
        assert refused.value.remark == "The broker does not support SQL92"
        assert "Orders" in str(refused.value)
        # And it never joined the group
        assert not cluster.broker().consumers[consumer.group]
        consumer.shutdown()


def test_tag_subscriptions_are_not_checked(cluster: FakeCluster) -> None:
    # Given a broker that cannot filter by SQL92 and a consumer with tags only
    cluster.broker().property_filter = False
    consumer = PullConsumer("check-tags", namesrv=cluster.namesrv)
    consumer.subscribe("Orders", "*")
    # When it starts, Then it runs without asking
    with consumer.start():
        assert consumer.assignment()
    assert not cluster.broker().checks
