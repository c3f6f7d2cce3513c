"""Messages between RocketMQ 5's gRPC form (``apache.rocketmq.v2.Message``) and actormq's.

- ``outgoing``: a message a gRPC producer sent -> an ``actors.client.Message`` to store, its
  message id (kept as the UNIQ_KEY, so both protocols show one id) and its message group
  (stored as RocketMQ's sharding key ``__SHARDINGKEY``, the queue chosen by its hash).
- ``incoming``: a stored message (``MessageExt``) -> the gRPC message a consumer receives,
  with the receipt handle, delivery attempt and invisible duration of this delivery.
- ``encode_handle`` / ``decode_handle``: a delayed message's recall handle (where it waits,
  its id and due time; opaque to the client, ``actors.proxy.recall``).

RocketMQ's proxy does the same mapping: tag <-> TAGS, keys <-> KEYS, message group <->
``__SHARDINGKEY``, delivery timestamp <-> TIMER_DELIVER_MS, user properties as they are.
Bodies are handed out uncompressed (IDENTITY) with an MD5 digest in upper-case hex, as
RocketMQ's proxy does (the Node.js client reads a CRC32 digest as decimal, the Python client as
hex: MD5 is the one both check alike); a GZIP body from a producer is inflated before it is
stored. A delayed message's delivery time is TIMER_DELIVER_MS, or TIMER_OUT_MS once the timer
re-put it (the broker drops the former then).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
import zlib
from typing import Annotated, Any

import msgspec

from actors.client.compression import InflateLimitError, bounded_zlib
from actors.client.message import Message, MessageExt, MessageQueue
from actors.client.outgoing import MAX_MESSAGE_SIZE
from actors.proxy.message_checks import ConvertError, check_message
from actors.proxy.priority import PRIORITY_PROPERTY
from actors.proxy.proto import Code, DigestType, Encoding, FilterType, M, MessageType
from runtime.remoting import properties as P
from runtime.store.topic_names import split_lmq

_DELAY_KEYS = (P.TIMER_DELIVER_MS, P.TIMER_DELAY_MS, P.TIMER_OUT_MS, P.DELAY)
MS_IN_SECONDS_FIELD = 10**11
"""A delivery timestamp's ``seconds`` above this (the year 5138) are milliseconds."""


def ms_of(value: Any) -> int:
    """A ``Timestamp`` or ``Duration`` in milliseconds."""
    return value.seconds * 1000 + value.nanos // 1_000_000


def set_ms(target: Any, ms: int) -> None:
    """Set a ``Timestamp`` or ``Duration`` to ``ms`` milliseconds."""
    target.seconds, millis = divmod(ms, 1000)
    target.nanos = millis * 1_000_000


def filter_of(expression: Any) -> tuple[str, str | None]:
    """A ``FilterExpression`` as ``PullConsumer.subscribe`` takes it: (tag expression, SQL92
    or None)."""
    if expression.type == FilterType.SQL:
        return "*", expression.expression
    return expression.expression or "*", None


def resource_name(resource: Any) -> str:
    """A ``Resource`` as the broker names it: RocketMQ's ``<namespace>%<name>`` when it has a
    namespace."""
    if resource.resource_namespace:
        return f"{resource.resource_namespace}%{resource.name}"
    return resource.name


def outgoing(msg: Any, code_bad_request: int) -> tuple[Message, str, str | None]:
    """(the message to store, its message id, its message group or None)."""
    system = msg.system_properties
    body = msg.body
    if system.body_encoding == Encoding.GZIP:
        try:  # (never past the message limit: a few KiB of GZIP can stand for gigabytes)
            body = bounded_zlib(body, MAX_MESSAGE_SIZE, wbits=31)
        except InflateLimitError:
            raise ConvertError(
                Code.MESSAGE_BODY_TOO_LARGE,
                f"the GZIP body inflates past {MAX_MESSAGE_SIZE} bytes (the message limit)",
            ) from None
        except zlib.error as exc:
            raise ConvertError(code_bad_request, f"GZIP body does not inflate: {exc}") from None
    deliver_at: int | None = None
    if system.HasField("delivery_timestamp"):
        stamp = system.delivery_timestamp
        deliver_at = ms_of(stamp)
        if stamp.seconds > MS_IN_SECONDS_FIELD:
            # RocketMQ's Python client 5.x puts the user's milliseconds in ``seconds``
            deliver_at = stamp.seconds
        if deliver_at <= int(time.time() * 1000):
            deliver_at = None  # due already: an ordinary message, as RocketMQ's proxy stores it
    group = system.message_group if system.HasField("message_group") else None
    check_message(msg, deliver_at)
    msg_id = system.message_id
    message = Message(
        resource_name(msg.topic),
        body,
        tags=system.tag if system.HasField("tag") and system.tag else None,
        keys=list(system.keys) or None,
        properties=dict(msg.user_properties),
        deliver_at_ms=deliver_at,
    )
    return message, msg_id, group or None


def message_type(ext: MessageExt) -> int:
    props = ext.all_properties
    if P.TRAN_MSG in props:
        return MessageType.TRANSACTION
    if P.SHARDING_KEY in props:
        return MessageType.FIFO
    if any(key in props for key in _DELAY_KEYS):
        return MessageType.DELAY
    return MessageType.NORMAL


def incoming(
    ext: MessageExt,
    topic: Any,
    *,
    receipt_handle: str,
    attempt: int,
    invisible_ms: int,
) -> Any:
    """The gRPC ``Message`` of one delivery of ``ext`` (``topic``: the Resource the consumer
    asked for, handed back as it came)."""
    out = M.Message()
    out.topic.CopyFrom(topic)
    out.body = ext.body
    for name, value in ext.properties.items():
        if name == PRIORITY_PROPERTY:
            if value.isdigit():
                out.system_properties.priority = int(value)
                out.system_properties.message_type = MessageType.PRIORITY
            continue
        out.user_properties[name] = value
    system = out.system_properties
    props = ext.all_properties
    tags = props.get(P.TAGS)
    if tags:
        system.tag = tags
    system.keys.extend(ext.keys)
    system.message_id = ext.msg_id
    system.body_digest.type = DigestType.MD5
    system.body_digest.checksum = hashlib.md5(ext.body).hexdigest().upper()
    system.body_encoding = Encoding.IDENTITY
    if not system.HasField("priority"):
        system.message_type = message_type(ext)
    set_ms(system.born_timestamp, ext.born_timestamp)
    system.born_host = props.get(P.BORN_HOST) or ext.born_host  # (the sending client's)
    set_ms(system.store_timestamp, ext.store_timestamp)
    system.store_host = ext.store_host
    due = props.get(P.TIMER_DELIVER_MS) or props.get(P.TIMER_OUT_MS)
    if due and due.isdigit():
        set_ms(system.delivery_timestamp, int(due))
    system.receipt_handle = receipt_handle
    system.queue_id = ext.queue_id
    system.queue_offset = ext.queue_offset
    set_ms(system.invisible_duration, invisible_ms)
    system.delivery_attempt = attempt
    group = props.get(P.SHARDING_KEY)
    if group:
        system.message_group = group
    lite = split_lmq(ext.topic)
    if lite is not None:
        system.lite_topic = lite[1]
        system.message_type = MessageType.LITE
    return out


class RecallHandle(msgspec.Struct, array_like=True, frozen=True):
    topic: str
    broker: str
    queue_id: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]  # (a forged one: not one)
    msg_id: str
    due_ms: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


def encode_handle(queue: MessageQueue, msg_id: str, due_ms: int) -> str:
    handle = RecallHandle(queue.topic, queue.broker_name, queue.queue_id, msg_id, due_ms)
    return base64.urlsafe_b64encode(msgspec.json.encode(handle)).decode()


def decode_handle(text: str) -> RecallHandle | None:
    """The handle, or None for one this proxy did not make."""
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(text.encode()), type=RecallHandle)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
