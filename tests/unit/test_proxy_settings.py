"""actors/proxy/settings.py: the Settings the proxy answers a client's telemetry with."""

from __future__ import annotations

from typing import Any

from actors.proxy.proto import ClientType, Code, Language, M
from actors.proxy.settings import (
    MAX_BODY_SIZE,
    RETRY_DELAYS_S,
    ProxySettings,
    reply_settings,
)


def _producer_settings() -> Any:
    given = M.Settings()
    given.client_type = ClientType.PRODUCER
    given.access_point.addresses.add(host="127.0.0.1", port=8081)
    given.publishing.topics.add(name="T1")
    given.publishing.topics.add(resource_namespace="ns", name="T2")
    given.publishing.max_body_size = 1  # a client's own value is replaced
    return given


def _consumer_settings(client_type: int = ClientType.SIMPLE_CONSUMER) -> Any:
    given = M.Settings()
    given.client_type = client_type
    given.subscription.group.name = "G"
    entry = given.subscription.subscriptions.add()
    entry.topic.name = "T"
    entry.expression.expression = "TagA || TagB"
    given.subscription.fifo = True
    given.request_timeout.seconds = 7
    return given


def test_producer_reply() -> None:
    reply = reply_settings(_producer_settings(), ProxySettings())

    assert reply.status.code == Code.OK
    assert reply.WhichOneof("command") == "settings"
    settings = reply.settings
    assert settings.client_type == ClientType.PRODUCER
    assert settings.access_point.addresses[0].host == "127.0.0.1"
    assert settings.access_point.addresses[0].port == 8081
    assert settings.WhichOneof("pub_sub") == "publishing"
    assert settings.publishing.max_body_size == 4 * 1024 * 1024 == MAX_BODY_SIZE
    assert settings.publishing.validate_message_type is True
    assert [(t.resource_namespace, t.name) for t in settings.publishing.topics] == [
        ("", "T1"),
        ("ns", "T2"),
    ]
    policy = settings.backoff_policy
    assert policy.max_attempts == 3
    assert policy.WhichOneof("strategy") == "exponential_backoff"
    backoff = policy.exponential_backoff
    assert (backoff.initial.seconds, backoff.initial.nanos) == (0, 10_000_000)
    assert (backoff.max.seconds, backoff.max.nanos) == (1, 0)
    assert backoff.multiplier == 2.0
    assert settings.HasField("metric")
    assert settings.metric.on is False


def test_producer_reply_without_publishing_still_has_the_body_limit() -> None:
    given = M.Settings(client_type=ClientType.PRODUCER)
    reply = reply_settings(given, ProxySettings())
    assert reply.settings.publishing.max_body_size == MAX_BODY_SIZE
    assert reply.settings.publishing.validate_message_type is True
    assert not reply.settings.HasField("access_point")
    # no request timeout given: 3 s
    assert reply.settings.request_timeout.seconds == 3
    assert reply.settings.request_timeout.nanos == 0


def test_consumer_reply() -> None:
    proxy = ProxySettings(long_polling_s=12.5)

    reply = reply_settings(_consumer_settings(), proxy, max_attempts=5)

    assert reply.status.code == Code.OK
    settings = reply.settings
    assert settings.client_type == ClientType.SIMPLE_CONSUMER
    policy = settings.backoff_policy
    assert policy.max_attempts == 5
    assert policy.WhichOneof("strategy") == "customized_backoff"
    delays = [(d.seconds, d.nanos) for d in policy.customized_backoff.next]
    assert delays[:6] == [(1, 0), (5, 0), (10, 0), (30, 0), (60, 0), (120, 0)]
    assert delays == [(s, 0) for s in RETRY_DELAYS_S]
    assert settings.WhichOneof("pub_sub") == "subscription"
    subscription = settings.subscription
    assert subscription.group.name == "G"
    assert [e.topic.name for e in subscription.subscriptions] == ["T"]
    assert subscription.subscriptions[0].expression.expression == "TagA || TagB"
    assert subscription.HasField("fifo")
    assert subscription.fifo is False
    assert subscription.receive_batch_size == 32
    timeout = subscription.long_polling_timeout
    assert (timeout.seconds, timeout.nanos) == (12, 500_000_000)
    # the client's own request timeout is kept
    assert settings.request_timeout.seconds == 7
    assert settings.metric.on is False


def test_push_consumer_reply_uses_the_default_max_attempts() -> None:
    reply = reply_settings(_consumer_settings(ClientType.PUSH_CONSUMER), ProxySettings())
    assert ProxySettings().max_attempts is None  # each group's retryMaxTimes + 1
    assert reply.settings.client_type == ClientType.PUSH_CONSUMER
    assert reply.settings.backoff_policy.max_attempts == 17
    assert reply.settings.subscription.long_polling_timeout.seconds == 20


def test_retry_delays_are_rocketmqs_delay_levels_in_seconds() -> None:
    assert RETRY_DELAYS_S[:5] == [1, 5, 10, 30, 60]
    assert sorted(RETRY_DELAYS_S) == RETRY_DELAYS_S
    assert RETRY_DELAYS_S[-1] >= 30 * 60


def test_reply_survives_the_wire() -> None:
    reply = reply_settings(_consumer_settings(), ProxySettings(), max_attempts=4)
    decoded = M.TelemetryCommand.FromString(reply.SerializeToString())
    assert decoded == reply
    assert decoded.HasField("status")
    assert decoded.settings.subscription.HasField("fifo")
    assert decoded.settings.backoff_policy.max_attempts == 4


def test_a_node_js_consumer_is_told_an_exponential_backoff() -> None:
    # the Node.js client ignores a customized backoff (and would nack with no delay)
    given = _consumer_settings(ClientType.PUSH_CONSUMER)
    given.user_agent.language = Language.NODE_JS
    policy = reply_settings(given, ProxySettings(), max_attempts=5).settings.backoff_policy
    assert policy.WhichOneof("strategy") == "exponential_backoff"
    assert policy.max_attempts == 5
    backoff = policy.exponential_backoff
    assert (backoff.initial.seconds, backoff.max.seconds, backoff.multiplier) == (1, 7200, 2.0)
    # and a Python one the customized delays
    given.user_agent.language = Language.PYTHON
    policy = reply_settings(given, ProxySettings()).settings.backoff_policy
    assert policy.WhichOneof("strategy") == "customized_backoff"
