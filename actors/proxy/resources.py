"""The names a gRPC call carries, checked before anything reaches the cluster (RocketMQ's
``GrpcValidator``): a topic as RocketMQ's TopicValidator has it (at most 127 characters of
``[%|a-zA-Z0-9_-]``; a lite topic's queue topic, ``%LMQ%$...``, too), a consumer group as its
``Validators.checkGroup`` (at most 255 of the same characters). ILLEGAL_TOPIC /
ILLEGAL_CONSUMER_GROUP otherwise. Besides the answer RocketMQ's clients know, this keeps names
that could never be served off the proxy's connections to the cluster (a name past the
remoting header's 64 KiB would make a server close a connection every client shares).

A call's topic (QueryRoute, QueryAssignment, ReceiveMessage, AckMessage,
ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue, EndTransaction, RecallMessage,
SyncLiteSubscription) and the topics of a client's Settings (published or subscribed) may be
no system topic either (``message_checks.names_system_topic``: SCHEDULE_TOPIC_XXXX, the
transaction half topics, TBW102, every ``rmq_sys_`` topic, ...): ILLEGAL_TOPIC "cannot access
system topic", as RocketMQ 5's proxy answers (its ``validateTopic`` in each of those calls); a
consumer reading SCHEDULE_TOPIC_XXXX through the proxy got the delayed messages before their
time. RocketMQ checks a Settings' published topics only; the proxy subscribes a consumer's
group to its Settings' topics at once (it pulls them ahead), so those are checked too.
A SendMessage's messages' topics are checked here for their names only: the system-topic check
is ``message_checks.check_message``'s, answered per message. Heartbeat and
NotifyClientTermination name no topic. ``%RETRY%`` and ``%DLQ%`` topics pass, as in RocketMQ.

A call's consumer group (ReceiveMessage, AckMessage, ChangeInvisibleDuration,
ForwardMessageToDeadLetterQueue, QueryAssignment, Heartbeat, NotifyClientTermination,
SyncLiteSubscription) and a Settings' subscription group may be no system group either
(``names_system_group``: RocketMQ's ``MixAll.isSysConsumerGroup``, a ``CID_RMQ_SYS_`` group, such
as the brokers' transaction check group CID_RMQ_SYS_TRANS): ILLEGAL_CONSUMER_GROUP "cannot use
system consumer group", as RocketMQ 5's proxy answers (its ``validateConsumerGroup``). MixAll's
other named groups (TOOLS_CONSUMER, ...) are not system groups there and pass.

Names left empty are the handlers' to judge (a producer's heartbeat names no group).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from actors.client.namespace import is_sys_consumer_group
from actors.proxy.convert import resource_name
from actors.proxy.message_checks import SYSTEM_TOPIC_REFUSAL, names_system_topic
from actors.proxy.proto import Code
from runtime.store.topic_names import topic_problem

GROUP_MAX_LENGTH = 255
_GROUP_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")

TOPIC, MESSAGE_TOPIC, GROUP = "topic", "message topic", "group"
"""What a name is: a call's topic, a sent message's topic (its system-topic check is
``check_message``'s), a consumer group."""

SYSTEM_GROUP_REFUSAL = "cannot use system consumer group"
"""RocketMQ 5's proxy's words (``GrpcValidator.validateConsumerGroup``), answered with
ILLEGAL_CONSUMER_GROUP."""


def names_system_group(group: Any) -> bool:
    """Whether the ``Resource`` ``group`` names a system consumer group (RocketMQ's
    ``MixAll.isSysConsumerGroup``), its name alone or in its namespace (RocketMQ never wraps a
    ``CID_RMQ_SYS_`` name in a namespace, and checks the wrapped name)."""
    return is_sys_consumer_group(group.name) or is_sys_consumer_group(resource_name(group))


def group_problem(group: str) -> str | None:
    """Why ``group`` is not a legal consumer group name, or None."""
    if len(group) > GROUP_MAX_LENGTH:
        return f"consumer group is longer than {GROUP_MAX_LENGTH} characters"
    if not _GROUP_RE.match(group):
        return f"consumer group {group!r} contains characters other than [%|a-zA-Z0-9_-]"
    return None


def resource_refusal(request: Any) -> tuple[int, str] | None:
    """(code, reason) for the first illegal topic or group name ``request`` carries, or a
    system topic or group it names, or None."""
    return _first_refusal(_names(request))


def settings_refusal(settings: Any) -> tuple[int, str] | None:
    """The same for a client's ``Settings`` on its telemetry stream: the topics it publishes
    to, its consumer group and the topics it subscribes."""
    names: list[tuple[str, Any]] = []
    if settings.HasField("publishing"):
        names += [(TOPIC, t) for t in settings.publishing.topics]
    if settings.HasField("subscription"):
        subscription = settings.subscription
        if subscription.HasField("group"):
            names.append((GROUP, subscription.group))
        names += [(TOPIC, e.topic) for e in subscription.subscriptions]
    return _first_refusal(iter(names))


def _first_refusal(names: Iterator[tuple[str, Any]]) -> tuple[int, str] | None:
    for kind, resource in names:
        name = resource_name(resource)
        if not name:
            continue
        if kind == GROUP:
            problem = group_problem(name)
            if problem is not None:
                return Code.ILLEGAL_CONSUMER_GROUP, _short(problem)
            if names_system_group(resource):
                return Code.ILLEGAL_CONSUMER_GROUP, SYSTEM_GROUP_REFUSAL
            continue
        problem = topic_problem(name)
        if problem is not None:
            return Code.ILLEGAL_TOPIC, _short(problem)
        if kind == TOPIC and names_system_topic(resource):
            return Code.ILLEGAL_TOPIC, SYSTEM_TOPIC_REFUSAL
    return None


def _names(request: Any) -> Iterator[tuple[str, Any]]:
    fields = request.DESCRIPTOR.fields_by_name
    if "topic" in fields and request.HasField("topic"):
        yield TOPIC, request.topic
    if "message_queue" in fields and request.HasField("message_queue"):
        yield TOPIC, request.message_queue.topic
    if "messages" in fields:
        for message in request.messages:
            yield MESSAGE_TOPIC, message.topic
    if "group" in fields and request.HasField("group"):
        yield GROUP, request.group


def _short(problem: str) -> str:
    """A reason short enough to answer (it may quote the name)."""
    return problem if len(problem) <= 300 else problem[:300] + "..."
