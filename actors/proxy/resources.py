"""The names a gRPC call carries, checked before anything reaches the cluster (RocketMQ's
``GrpcValidator``): a topic as RocketMQ's TopicValidator has it (at most 127 characters of
``[%|a-zA-Z0-9_-]``; a lite topic's queue topic, ``%LMQ%$...``, too), a consumer group as its
``Validators.checkGroup`` (at most 255 of the same characters). ILLEGAL_TOPIC /
ILLEGAL_CONSUMER_GROUP otherwise. Besides the answer RocketMQ's clients know, this keeps names
that could never be served off the proxy's connections to the cluster (a name past the
remoting header's 64 KiB would make a server close a connection every client shares).

Names left empty are the handlers' to judge (a producer's heartbeat names no group).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from actors.proxy.convert import resource_name
from actors.proxy.proto import Code
from runtime.store.topic_names import topic_problem

GROUP_MAX_LENGTH = 255
_GROUP_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")


def group_problem(group: str) -> str | None:
    """Why ``group`` is not a legal consumer group name, or None."""
    if len(group) > GROUP_MAX_LENGTH:
        return f"consumer group is longer than {GROUP_MAX_LENGTH} characters"
    if not _GROUP_RE.match(group):
        return f"consumer group {group!r} contains characters other than [%|a-zA-Z0-9_-]"
    return None


def resource_refusal(request: Any) -> tuple[int, str] | None:
    """(code, reason) for the first illegal topic or group name ``request`` carries, or None."""
    return _first_refusal(_names(request))


def settings_refusal(settings: Any) -> tuple[int, str] | None:
    """The same for a client's ``Settings`` on its telemetry stream: the topics it publishes
    to, its consumer group and the topics it subscribes."""
    names: list[tuple[str, str]] = []
    if settings.HasField("publishing"):
        names += [("topic", resource_name(t)) for t in settings.publishing.topics]
    if settings.HasField("subscription"):
        subscription = settings.subscription
        if subscription.HasField("group"):
            names.append(("group", resource_name(subscription.group)))
        names += [("topic", resource_name(e.topic)) for e in subscription.subscriptions]
    return _first_refusal(iter(names))


def _first_refusal(names: Iterator[tuple[str, str]]) -> tuple[int, str] | None:
    for kind, name in names:
        if not name:
            continue
        if kind == "topic":
            problem = topic_problem(name)
            if problem is not None:
                return Code.ILLEGAL_TOPIC, _short(problem)
        else:
            problem = group_problem(name)
            if problem is not None:
                return Code.ILLEGAL_CONSUMER_GROUP, _short(problem)
    return None


def _names(request: Any) -> Iterator[tuple[str, str]]:
    fields = request.DESCRIPTOR.fields_by_name
    if "topic" in fields and request.HasField("topic"):
        yield "topic", resource_name(request.topic)
    if "message_queue" in fields and request.HasField("message_queue"):
        yield "topic", resource_name(request.message_queue.topic)
    if "messages" in fields:
        for message in request.messages:
            yield "topic", resource_name(message.topic)
    if "group" in fields and request.HasField("group"):
        yield "group", resource_name(request.group)


def _short(problem: str) -> str:
    """A reason short enough to answer (it may quote the name)."""
    return problem if len(problem) <= 300 else problem[:300] + "..."
