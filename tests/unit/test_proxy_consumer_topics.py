"""actors/proxy/consumer_topics.py: a consumer's Settings subscribe its group to topics that
exist, and to a bounded number of them (``ProxyService._apply``)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from actors.client.errors import BrokerError, RequestTimeoutError
from actors.proxy import consumer_topics
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
    assert sorted(cluster.asked) == ["Nope", "Nope", "Orders"]


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


class _SlowNameServer(_Cluster):
    """Each look-up answers once ``together`` are under way (or after 0.5 s): a name server
    a few milliseconds away, whose look-ups one after another add up."""

    def __init__(self, *topics: str, together: int) -> None:
        super().__init__(*topics)
        self.together = together
        self.under_way = 0
        self.most_at_once = 0
        self.enough = threading.Event()
        self.hung: set[str] = set()
        """Topics whose look-up never answers (within the test)."""
        self._count = threading.Lock()

    def topic_route(self, topic: str) -> Any:
        with self._count:
            self.under_way += 1
            self.most_at_once = max(self.most_at_once, self.under_way)
            if self.under_way >= self.together:
                self.enough.set()
        try:
            self.enough.wait(0.5)
            if topic in self.hung:
                threading.Event().wait(5)
            return super().topic_route(topic)
        finally:
            with self._count:
                self.under_way -= 1


def test_a_settings_new_topics_are_looked_up_together_within_the_clients_wait() -> None:
    topics = [f"T{n}" for n in range(40)]
    cluster = _SlowNameServer(*topics[:-1], together=8)
    proxy, pop = _proxy(cluster)
    # Given a Settings naming 40 topics new to the group (the last one does not exist)
    started = time.monotonic()
    # When it is applied
    ProxyService._apply(proxy, "client-1", _settings(*topics))  # type: ignore[arg-type]
    # Then the look-ups went at once, up to the bound (before: one after another, so each
    # waited its 0.5 s here, 20 s in all; with a name server 10 ms away, 300 took 3 s, past
    # the client's wait)
    assert time.monotonic() - started < 5
    assert 8 <= cluster.most_at_once <= consumer_topics.LOOKUPS_AT_ONCE
    assert sorted(cluster.asked) == sorted(topics)
    assert sorted(pop.expressions) == sorted(topics[:-1])


def test_look_ups_not_answered_in_time_leave_their_topics_subscribed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer_topics, "LOOKUP_BUDGET_S", 0.5, raising=False)
    cluster = _SlowNameServer("Orders", "Payments", together=1)
    cluster.hung.add("Payments")
    proxy, pop = _proxy(cluster)
    # Given a name server that never answers the look-up of one of a Settings' topics
    started = time.monotonic()
    # When the Settings is applied, Then it is answered within the budget, the topic
    # subscribed as when the name servers cannot be reached
    ProxyService._apply(proxy, "client-1", _settings("Orders", "Nope", "Payments"))  # type: ignore[arg-type]
    assert time.monotonic() - started < 3
    assert sorted(pop.expressions) == ["Orders", "Payments"]
