"""actors/proxy/consumer_topics.py: a consumer's Settings subscribe its group to topics that
exist, and to a bounded number of them (``ProxyService._apply``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from actors.client.errors import BrokerError, RequestTimeoutError
from actors.proxy.consumer_topics import MAX_GROUP_TOPICS
from actors.proxy.lite import LiteError
from actors.proxy.pop import PopGroup
from actors.proxy.proto import ClientType, Code, M
from actors.proxy.service import ProxyService
from actors.proxy.settings import ProxySettings
from runtime.remoting.codes import ResponseCode
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer


class _Cluster:
    """The routes the name servers know (a topic not in ``topics``: TOPIC_NOT_EXIST)."""

    def __init__(self, *topics: str) -> None:
        self.topics = set(topics)
        self.asked: list[str] = []
        self.down = False

    def topic_route(self, topic: str) -> Any:
        self.asked.append(topic)
        if self.down:
            raise RequestTimeoutError("route", 3.0)
        if topic not in self.topics:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, "no topic", "10.0.0.2:9876")
        return object()


def _proxy(cluster: _Cluster) -> tuple[Any, PopGroup]:
    pop = PopGroup("G", FakeConsumer(FakeClock()))  # type: ignore[arg-type]
    proxy = SimpleNamespace(
        settings=ProxySettings(), admin=cluster, group=lambda name, lite=None, owner="": pop
    )
    return proxy, pop


def _settings(*topics: str) -> Any:
    settings = M.Settings()
    settings.client_type = ClientType.PUSH_CONSUMER
    settings.subscription.group.name = "G"
    for topic in topics:
        entry = settings.subscription.subscriptions.add()
        entry.topic.name = topic
        entry.expression.expression = "*"
    return settings


def test_a_topic_that_does_not_exist_is_not_subscribed() -> None:
    cluster = _Cluster("Orders")
    proxy, pop = _proxy(cluster)
    # A Settings naming a topic that exists and one that does not is answered as usual, and
    # the group subscribes the one that exists only (before: both, and its consumer looked
    # the missing one's route up at each rebalance, for the group's life)
    ProxyService._apply(proxy, "client-1", _settings("Orders", "Nope"))  # type: ignore[arg-type]
    assert sorted(pop.expressions) == ["Orders"]
    # Once it exists, the next Settings (every 5 minutes) subscribes it
    cluster.topics.add("Nope")
    ProxyService._apply(proxy, "client-1", _settings("Orders", "Nope"))  # type: ignore[arg-type]
    assert sorted(pop.expressions) == ["Nope", "Orders"]
    # ... and a topic subscribed already is not looked up again
    assert cluster.asked == ["Orders", "Nope", "Nope"]


def test_a_topic_is_subscribed_when_its_route_cannot_be_read() -> None:
    cluster = _Cluster()
    cluster.down = True  # the name servers do not answer: as before, it is subscribed
    proxy, pop = _proxy(cluster)
    ProxyService._apply(proxy, "client-1", _settings("Orders"))  # type: ignore[arg-type]
    assert sorted(pop.expressions) == ["Orders"]


def test_a_settings_naming_too_many_topics_is_refused_without_a_look_up() -> None:
    many = [f"T{n}" for n in range(MAX_GROUP_TOPICS * 100)]
    cluster = _Cluster(*many)
    proxy, pop = _proxy(cluster)
    # Given a Settings naming 100,000 topics (one 8 MiB message), it is refused: BAD_REQUEST
    # (before: the group subscribed every one, existing or not)
    with pytest.raises(LiteError) as refused:
        ProxyService._apply(proxy, "client-1", _settings(*many))  # type: ignore[arg-type]
    assert refused.value.code == Code.BAD_REQUEST and f"{MAX_GROUP_TOPICS}" in str(refused.value)
    assert pop.expressions == {} and cluster.asked == []
    # And the group's topics add up over its clients' Settings to that many at most
    ProxyService._apply(proxy, "c1", _settings(*many[:MAX_GROUP_TOPICS]))  # type: ignore[arg-type]
    with pytest.raises(LiteError) as refused:
        ProxyService._apply(proxy, "c2", _settings(many[MAX_GROUP_TOPICS]))  # type: ignore[arg-type]
    assert refused.value.code == Code.BAD_REQUEST
    assert len(pop.expressions) == MAX_GROUP_TOPICS
    # (a client naming topics the group has already is answered as usual)
    ProxyService._apply(proxy, "c3", _settings(*many[:10]))  # type: ignore[arg-type]
