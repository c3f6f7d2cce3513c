"""Namespaces: RocketMQ 4.5+'s ``ClientConfig.namespace`` (NamespaceUtil).

A client with a namespace ``ns`` keeps its topics and groups apart from other tenants' on the
same cluster by naming them ``ns%<name>`` on the wire, while the program keeps using the plain
names: ``Producer("orders", namespace="ns")`` sends as group ``ns%orders``, a message to
``Orders`` goes to ``ns%Orders``, and a consumer of ``Orders`` receives messages whose topic
reads ``Orders`` again. Retry and dead-letter topics keep their prefix in front:
``%RETRY%ns%group``, ``%DLQ%ns%group``. System topics (``TBW102``, ``RMQ_SYS_TRACE_TOPIC``,
``rmq_sys_*``, ...) and system groups (``CID_RMQ_SYS_*``) are never wrapped, and a name that
already carries the namespace is left as it is (wrapping twice is wrapping once), as RocketMQ's.
The broker knows nothing of namespaces: they are names with a ``%`` in them.
"""

from __future__ import annotations

import re

from actors.client.errors import ClientError
from runtime.remoting.bodies import MessageQueue
from runtime.store.topic_names import SYSTEM_TOPICS as _SYSTEM_TOPICS

SEPARATOR = "%"
RETRY_PREFIX = "%RETRY%"
DLQ_PREFIX = "%DLQ%"
SYSTEM_TOPIC_PREFIX = "rmq_sys_"
SYSTEM_GROUP_PREFIX = "CID_RMQ_SYS_"
SYSTEM_TOPICS = _SYSTEM_TOPICS | {"SCHEDULE_TOPIC_XXXX_V2"}
"""RocketMQ's TopicValidator system topic set: never wrapped."""
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")


def is_sys_consumer_group(group: str) -> bool:
    """RocketMQ's ``MixAll.isSysConsumerGroup``: a ``CID_RMQ_SYS_`` group (its transaction
    check group ``CID_RMQ_SYS_TRANS`` among them). The prefix alone: MixAll's other named
    groups (TOOLS_CONSUMER, FILTERSRV_CONSUMER, SELF_TEST_C_GROUP, CID_ONS-HTTP-PROXY,
    CID_ONSAPI_*, ...) are not ones (``admin_export.is_system_group`` adds them)."""
    return group.startswith(SYSTEM_GROUP_PREFIX)


def is_system_resource(resource: str) -> bool:
    return (
        resource in SYSTEM_TOPICS
        or resource.startswith(SYSTEM_TOPIC_PREFIX)
        or is_sys_consumer_group(resource)
    )


def _split_prefix(resource: str) -> tuple[str, str]:
    """(``%RETRY%`` / ``%DLQ%`` / "", the rest)."""
    for prefix in (RETRY_PREFIX, DLQ_PREFIX):
        if resource.startswith(prefix):
            return prefix, resource[len(prefix) :]
    return "", resource


class Namespace:
    """One client's namespace: ``wrap`` names for the wire, ``unwrap`` them for the program."""

    __slots__ = ("_mark", "name")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ClientError(f"namespace {name!r}: use only letters, digits, '_' and '-'")
        self.name = name
        self._mark = name + SEPARATOR

    @classmethod
    def of(cls, name: str | None) -> Namespace | None:
        """The namespace ``name`` names; None for None or "" (no namespace)."""
        return cls(name) if name else None

    def wrap(self, resource: str) -> str:
        """``Orders`` -> ``ns%Orders``; ``%RETRY%g`` -> ``%RETRY%ns%g`` (NamespaceUtil
        .wrapNamespace). System names and names already in this namespace stay."""
        if not resource or is_system_resource(resource):
            return resource
        prefix, rest = _split_prefix(resource)
        if rest.startswith(self._mark):
            return resource
        return f"{prefix}{self._mark}{rest}"

    def unwrap(self, resource: str) -> str:
        """``ns%Orders`` -> ``Orders``; ``%RETRY%ns%g`` -> ``%RETRY%g`` (NamespaceUtil
        .withoutNamespace(resource, namespace)): names of another namespace or none stay."""
        if not resource or is_system_resource(resource):
            return resource
        prefix, rest = _split_prefix(resource)
        if not rest.startswith(self._mark):
            return resource
        return prefix + rest[len(self._mark) :]

    def wrap_queue(self, mq: MessageQueue) -> MessageQueue:
        topic = self.wrap(mq.topic)
        if topic == mq.topic:
            return mq
        return MessageQueue(topic=topic, broker_name=mq.broker_name, queue_id=mq.queue_id)

    def unwrap_queue(self, mq: MessageQueue) -> MessageQueue:
        topic = self.unwrap(mq.topic)
        if topic == mq.topic:
            return mq
        return MessageQueue(topic=topic, broker_name=mq.broker_name, queue_id=mq.queue_id)

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"


def without_namespace(resource: str) -> str:
    """``resource`` without whatever namespace it carries (NamespaceUtil.withoutNamespace with
    one argument, what RocketMQ's trace hooks record): ``a%Orders`` -> ``Orders``,
    ``%RETRY%a%g`` -> ``%RETRY%g``; system names and names without a ``%`` stay."""
    if not resource or is_system_resource(resource):
        return resource
    prefix, rest = _split_prefix(resource)
    index = rest.find(SEPARATOR)
    return prefix + rest[index + 1 :] if index > 0 else resource


def wire_name(ns: Namespace | None, resource: str) -> str:
    """``resource`` as the brokers know it (itself without a namespace)."""
    return resource if ns is None else ns.wrap(resource)


def plain_name(ns: Namespace | None, resource: str) -> str:
    """``resource`` as the program knows it (itself without a namespace)."""
    return resource if ns is None else ns.unwrap(resource)


def wire_queue(ns: Namespace | None, mq: MessageQueue) -> MessageQueue:
    return mq if ns is None else ns.wrap_queue(mq)


def plain_queue(ns: Namespace | None, mq: MessageQueue) -> MessageQueue:
    return mq if ns is None else ns.unwrap_queue(mq)
