"""ProxySettings, and the ``Settings`` the proxy answers a RocketMQ 5 client's telemetry with.

A client writes its Settings (type, access point, its publishing topics or its group's
subscriptions) on its telemetry stream when it starts and every 5 minutes; the proxy answers
each with the settings it is to use (RocketMQ's proxy does the same):

- producers: ``publishing.max_body_size`` (the broker's 4 MiB; a client applies the value as
  it comes, so it must be there), message-type validation on, 3 attempts with exponential
  backoff;
- consumers: ``max_attempts`` deliveries with RocketMQ's retry delays (1 s, 5 s, 10 s, 30 s,
  1 min, ... as a customized backoff: what a push consumer waits before a failed message comes
  back; Node.js clients an exponential one, ``EXPONENTIAL_ONLY``), the long-polling timeout,
  ``fifo`` as the group's ``consumeMessageOrderly`` (always for lite consumers, which are also
  told their lite subscription quota and the longest lite topic name), batches of 32;
- everyone: metrics off (a client would otherwise export OpenTelemetry to the proxy).
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.proxy.convert import set_ms
from actors.proxy.lite import LITE_TOPIC_MAX_BYTES, MAX_LITE_TOPICS
from actors.proxy.lite_subscriptions import CLIENT_QUOTA
from actors.proxy.proto import ClientType, Code, Language, M
from runtime.store.record_properties import DEFAULT_DELAY_LEVELS

LITE_CLIENTS = frozenset({ClientType.LITE_PUSH_CONSUMER, ClientType.LITE_SIMPLE_CONSUMER})
"""Client types of lite topics' consumers: their groups are lite groups."""
MAX_ATTEMPTS = 17
"""Deliveries before a message goes to ``%DLQ%<group>``: RocketMQ's retryMaxTimes (16) + 1."""
MAX_BODY_SIZE = 4 * 1024 * 1024
"""RocketMQ's maxMessageSize, what actormq's broker accepts."""

RETRY_DELAYS_S = [ms // 1000 for ms in DEFAULT_DELAY_LEVELS]
"""A failed message's wait before its next delivery, by attempt (RocketMQ's delay levels
1s .. 2h: a push consumer's retry policy; the last one repeats)."""


EXPONENTIAL_ONLY = frozenset({Language.NODE_JS})
"""Client languages told an exponential backoff (1 s doubling up to 2 h) instead of the retry
delays: the Node.js client 1.0.8 ignores a customized one and nacks with no delay at all (the
Python client is the other way round: it reads only a customized one)."""


class ProxySettings(msgspec.Struct, frozen=True, kw_only=True):
    """How one proxy serves (``python -m runtime proxy`` options; docs/proxy.md)."""

    long_polling_s: float = 20.0
    """The most a receive waits for a message (a client asking for longer gets this: RocketMQ's
    proxy's grpcClientConsumerMaxLongPollingTimeoutMillis, 20 s)."""
    min_long_polling_s: float = 5.0
    """The least a receive naming a long-polling time waits for a message (a client asking for
    less, 0 say, gets this, unless its deadline comes sooner: it cannot spin against the
    proxy; RocketMQ's proxy's grpcClientConsumerMinLongPollingTimeoutMillis, 5 s);
    ``long_polling_s`` wins when it is less."""
    invisible_s: float = 60.0
    """A delivery's invisible duration when the receive names none (push consumers)."""
    max_attempts: int | None = None
    """Deliveries of a message before the proxy moves it to ``%DLQ%<group>``, for every group;
    None: each group's ``retryMaxTimes`` + 1 (RocketMQ's rule; ``MAX_ATTEMPTS`` by default)."""
    consume_from_first: bool = False
    """Where a group new to the brokers starts: the queues' first offsets instead of their
    last (RocketMQ's CONSUME_FROM_FIRST_OFFSET / CONSUME_FROM_LAST_OFFSET)."""
    batch_limit: int = 256
    """The most messages one receive returns, whatever the client asks."""
    max_lite_topics: int = MAX_LITE_TOPICS
    """Lite topics the proxy makes in the cluster at most (LITE_TOPIC_QUOTA_EXCEEDED past
    that; each is a topic of one queue)."""
    group_idle_s: float = 120.0
    """A group no consumer received from, acked through or heartbeat for this long leaves: its
    consumer shuts down (offsets written; unacked messages go to the group's other members),
    so a proxy its clients left holds none of the group's queues."""


def _seconds(target: Any, seconds: float) -> None:
    set_ms(target, round(seconds * 1000))


def reply_settings(
    given: Any, proxy: ProxySettings, fifo: bool = False, max_attempts: int = MAX_ATTEMPTS
) -> Any:
    """The TelemetryCommand answering a client's Settings ``given`` (``fifo``: a consumer's
    group consumes in order; ``max_attempts``: its deliveries before the DLQ)."""
    out = M.TelemetryCommand()
    out.status.code = Code.OK
    out.status.message = "OK"
    settings = out.settings
    settings.client_type = given.client_type
    if given.HasField("access_point"):
        settings.access_point.CopyFrom(given.access_point)
    if given.HasField("request_timeout"):
        settings.request_timeout.CopyFrom(given.request_timeout)
    else:
        _seconds(settings.request_timeout, 3)
    settings.metric.on = False
    if given.client_type == ClientType.PRODUCER:
        policy = settings.backoff_policy
        policy.max_attempts = 3
        _seconds(policy.exponential_backoff.initial, 0.01)
        _seconds(policy.exponential_backoff.max, 1)
        policy.exponential_backoff.multiplier = 2.0
        if given.HasField("publishing"):
            settings.publishing.CopyFrom(given.publishing)
        settings.publishing.max_body_size = MAX_BODY_SIZE
        settings.publishing.validate_message_type = True
    else:
        policy = settings.backoff_policy
        policy.max_attempts = max_attempts
        if given.user_agent.language in EXPONENTIAL_ONLY:
            _seconds(policy.exponential_backoff.initial, RETRY_DELAYS_S[0])
            _seconds(policy.exponential_backoff.max, RETRY_DELAYS_S[-1])
            policy.exponential_backoff.multiplier = 2.0
        else:
            for delay in RETRY_DELAYS_S:
                _seconds(policy.customized_backoff.next.add(), delay)
        if given.HasField("subscription"):
            settings.subscription.CopyFrom(given.subscription)
        settings.subscription.fifo = fifo
        settings.subscription.receive_batch_size = 32
        if given.client_type in LITE_CLIENTS:
            settings.subscription.lite_subscription_quota = CLIENT_QUOTA
            settings.subscription.max_lite_topic_size = LITE_TOPIC_MAX_BYTES
        _seconds(settings.subscription.long_polling_timeout, proxy.long_polling_s)
    return out
