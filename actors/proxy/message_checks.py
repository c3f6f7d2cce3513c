"""A gRPC client's message checked as RocketMQ's proxy checks it (``GrpcValidator``, the
``ProxyConfig`` defaults), each failure with RocketMQ's code, before anything is stored:

- topic: not a system topic (RocketMQ's ``TopicValidator.isSystemTopic``: TBW102,
  SCHEDULE_TOPIC_XXXX, the transaction half topics, RMQ_SYS_TRACE_TOPIC, every ``rmq_sys_``
  topic, ...; in a namespace too): ILLEGAL_TOPIC "cannot access system topic", as RocketMQ 5's
  proxy answers (a message in SCHEDULE_TOPIC_XXXX without its REAL_TOPIC was put back there
  every second, for ever); the broker refuses a client's send to those only it writes too
  (NO_PERMISSION); ``names_system_topic`` is also what refuses every other call's system
  topic (``actors.proxy.resources``);
- message id: at most 128 characters, printable (it is written into the stored properties:
  a separator in it would add properties): ILLEGAL_MESSAGE_ID;
- tag: not blank, no ``|``, no control character: ILLEGAL_MESSAGE_TAG;
- keys: none blank or with a control character: ILLEGAL_MESSAGE_KEY;
- message group: at most 64 characters (``maxMessageGroupSize``), printable:
  ILLEGAL_MESSAGE_GROUP;
- user properties: names not RocketMQ's own and without control characters
  (ILLEGAL_MESSAGE_PROPERTY_KEY); at most 128 of them and 16 KiB of names and values
  (MESSAGE_PROPERTIES_TOO_LARGE);
- delivery time: at most the broker's timer limit (3 days) ahead: ILLEGAL_DELIVERY_TIME.
"""

from __future__ import annotations

import time
from typing import Any

from actors.broker.delay import TIMER_MAX_DELAY_MS
from actors.client.message import SYSTEM_PROPERTIES
from actors.proxy.proto import Code
from runtime.store.topic_names import is_system_topic

MAX_MESSAGE_ID = 128
"""The longest message id a client may give (RocketMQ 5's are 34 characters)."""
MAX_MESSAGE_GROUP = 64
MAX_USER_PROPERTIES = 128
MAX_USER_PROPERTY_BYTES = 16 * 1024
MAX_DELAY_MS = TIMER_MAX_DELAY_MS
"""The broker's timer limit (RocketMQ's timerMaxDelaySec)."""


class ConvertError(Exception):
    """A gRPC message that cannot be stored; ``code`` is the ``Code`` to answer with."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


SYSTEM_TOPIC_REFUSAL = "cannot access system topic"
"""RocketMQ 5's proxy's words (``GrpcValidator.validateTopic``), answered with ILLEGAL_TOPIC."""


def names_system_topic(topic: Any) -> bool:
    """Whether the ``Resource`` ``topic`` names a system topic (RocketMQ's
    ``TopicValidator.isSystemTopic``), its name alone or in its namespace: RocketMQ never wraps
    a system topic's name in a namespace. ``%RETRY%`` and ``%DLQ%`` topics are not ones."""
    name = f"{topic.resource_namespace}%{topic.name}" if topic.resource_namespace else topic.name
    return is_system_topic(topic.name) or is_system_topic(name)


def check_message(msg: Any, deliver_at: int | None) -> None:
    """ConvertError with RocketMQ's code for the first thing wrong with ``msg``."""
    if names_system_topic(msg.topic):
        raise ConvertError(Code.ILLEGAL_TOPIC, SYSTEM_TOPIC_REFUSAL)
    system = msg.system_properties
    msg_id = system.message_id
    if len(msg_id) > MAX_MESSAGE_ID or not msg_id.isprintable():
        raise ConvertError(Code.ILLEGAL_MESSAGE_ID, f"message id {msg_id[:80]!r} is not one")
    if system.HasField("tag") and system.tag:
        tag = system.tag
        if not tag.strip() or "|" in tag or not tag.isprintable():
            raise ConvertError(
                Code.ILLEGAL_MESSAGE_TAG, f"tag {tag[:80]!r}: no '|', blank or control"
            )
    for key in system.keys:
        if not key.strip() or not key.isprintable():
            raise ConvertError(
                Code.ILLEGAL_MESSAGE_KEY, f"key {key[:80]!r} is blank or not printable"
            )
    if system.HasField("message_group"):
        group = system.message_group
        if len(group) > MAX_MESSAGE_GROUP or not group.isprintable():
            raise ConvertError(
                Code.ILLEGAL_MESSAGE_GROUP,
                f"message group of {len(group)} characters: at most {MAX_MESSAGE_GROUP}, printable",
            )
    _check_properties(msg.user_properties)
    if deliver_at is not None and deliver_at - int(time.time() * 1000) > MAX_DELAY_MS:
        raise ConvertError(
            Code.ILLEGAL_DELIVERY_TIME, f"delivery more than {MAX_DELAY_MS // 1000} s ahead"
        )


def _check_properties(properties: Any) -> None:
    if len(properties) > MAX_USER_PROPERTIES:
        raise ConvertError(
            Code.MESSAGE_PROPERTIES_TOO_LARGE,
            f"{len(properties)} user properties (at most {MAX_USER_PROPERTIES})",
        )
    size = 0
    for name, value in properties.items():
        if name in SYSTEM_PROPERTIES or not name or not name.isprintable():
            raise ConvertError(
                Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
                f"property {name[:80]!r} is RocketMQ's own, empty or not printable",
            )
        size += len(name.encode()) + len(value.encode())
    if size > MAX_USER_PROPERTY_BYTES:
        raise ConvertError(
            Code.MESSAGE_PROPERTIES_TOO_LARGE,
            f"user properties of {size} bytes (at most {MAX_USER_PROPERTY_BYTES})",
        )
