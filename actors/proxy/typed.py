"""A gRPC producer's message as its topic's ``message.type`` attribute takes it
(``actors.proxy.lite``'s ``TopicTypes``): lite messages go to their lite topic's queue topic
(made on first use, ``LiteTopics``), priority messages to their priority's queue
(``actors.proxy.priority``); anything else as it is. A message its topic does not take is
refused with MESSAGE_PROPERTY_CONFLICT_WITH_TYPE (RocketMQ 5's message type check):

- a lite message (a ``lite_topic``) to a topic that is not LITE, or any other to a LITE topic;
- a priority message to a topic that is not PRIORITY (a PRIORITY topic takes plain messages
  too: they go round robin, as RocketMQ's broker stores them);
- a lite or priority message with a message group, a delivery time, or in a transaction.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.client.message import Message
from actors.client.selectors import QueueSelector
from actors.proxy.lite import LiteError, LiteTopics, TopicTypes
from actors.proxy.priority import PRIORITY_PROPERTY, ByPriority
from actors.proxy.proto import Code, MessageType

_CONFLICT = Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE


def typed(
    msg: Any, message: Message, group: str | None, types: TopicTypes, lites: LiteTopics
) -> tuple[Message, QueueSelector | None]:
    """(the message to store, the queue selector its type needs or None); LiteError, or
    TopicTypeUnknownError for a lite or priority message when the topic's type cannot be read
    (a plain one is taken as to a MIXED topic then)."""
    system = msg.system_properties
    lite = system.lite_topic if system.HasField("lite_topic") else None
    priority = system.priority if system.HasField("priority") else None
    is_lite = lite is not None or system.message_type == MessageType.LITE
    is_priority = priority is not None or system.message_type == MessageType.PRIORITY
    kind = types.of(message.topic, strict=is_lite or is_priority)
    if not is_lite and not is_priority:
        if kind == "LITE":
            raise LiteError(_CONFLICT, f"topic {message.topic} takes lite messages only")
        return message, None
    what = "lite" if is_lite else "priority"
    if is_lite and is_priority:
        raise LiteError(_CONFLICT, "a message is lite or has a priority, not both")
    if kind != what.upper():
        raise LiteError(_CONFLICT, f"topic {message.topic} is {kind}, not a {what.upper()} topic")
    if group is not None or message.deliver_at_ms is not None:
        raise LiteError(_CONFLICT, f"a {what} message has no message group or delivery time")
    if system.message_type == MessageType.TRANSACTION:
        raise LiteError(_CONFLICT, f"a {what} message is not transactional")
    if is_lite:
        name = lites.ensure(message.topic, lite or "")
        return msgspec.structs.replace(message, topic=name), None
    if priority is None or priority < 0:
        raise LiteError(Code.BAD_REQUEST, "a priority message needs a priority >= 0")
    properties = {**message.properties, PRIORITY_PROPERTY: str(priority)}
    return msgspec.structs.replace(message, properties=properties), ByPriority(priority)
