"""Turning user messages into what a send carries: validation, properties, compression, batches.

Runs in the caller's thread (pure functions), so the hub only moves bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import msgspec

from actors.client.errors import MessageInvalidError, MessageTooLargeError
from actors.client.message import SYSTEM_PROPERTIES, Message
from actors.client.msgid import new_message_id
from runtime.remoting import properties as P
from runtime.remoting.batch import MAX_PROPERTIES, BatchEntry, encode_batch
from runtime.remoting.codes import MessageSysFlag
from runtime.store.record import topic_problem

MAX_MESSAGE_SIZE = 4 * 1024 * 1024
COMPRESS_OVER = 4 * 1024
COMPRESS_LEVEL = 5
MAX_DELAY_LEVEL = 18
_BAD_VALUE = (P.NAME_VALUE_SEPARATOR, P.PROPERTY_SEPARATOR)


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """One send's payload: a single message or a batch, ready for the wire."""

    topic: str
    body: bytes
    properties: str
    sys_flag: int = 0
    flag: int = 0
    msg_id: str
    """UNIQ_KEY (comma-joined over a batch)."""
    batch: bool = False
    count: int = 1
    tags: str | None = None
    keys: tuple[str, ...] = ()


def _check_text(field: str, value: str) -> None:
    if any(sep in value for sep in _BAD_VALUE):
        raise MessageInvalidError(field, "contains a \\x01 or \\x02 separator")


def message_properties(msg: Message, uniq_key: str) -> str:
    """The properties string of ``msg`` (system keys first, then the user's)."""
    parts: list[str] = []
    if msg.tags:
        _check_text("tags", msg.tags)
        parts.append(f"{P.TAGS}\x01{msg.tags}\x02")
    keys = msg.keys_list()
    if keys:
        for key in keys:
            _check_text("keys", key)
            if P.KEY_SEPARATOR in key:
                raise MessageInvalidError("keys", f"key {key!r} contains a space")
        parts.append(f"{P.KEYS}\x01{P.KEY_SEPARATOR.join(keys)}\x02")
    if msg.delay_level:
        if not 0 < msg.delay_level <= MAX_DELAY_LEVEL:
            raise MessageInvalidError("delay_level", f"{msg.delay_level} is outside 1..18")
        parts.append(f"{P.DELAY}\x01{int(msg.delay_level)}\x02")
    parts.append(f"{P.UNIQ_KEY}\x01{uniq_key}\x02")
    parts.append(f"{P.WAIT}\x01{'true' if msg.wait_store_ok else 'false'}\x02")
    for name, value in (msg.properties or {}).items():
        name, value = str(name), str(value)
        if not name:
            raise MessageInvalidError("properties", "empty property name")
        if name in SYSTEM_PROPERTIES:
            raise MessageInvalidError("properties", f"{name!r} is reserved by RocketMQ")
        _check_text(f"property {name!r}", name)
        _check_text(f"property {name!r}", value)
        parts.append(f"{name}\x01{value}\x02")
    text = "".join(parts)
    if len(text) > MAX_PROPERTIES or len(text.encode()) > MAX_PROPERTIES:
        raise MessageInvalidError("properties", f"longer than {MAX_PROPERTIES} bytes")
    return text


def check_topic(topic: str) -> None:
    problem = topic_problem(topic)
    if problem:
        raise MessageInvalidError("topic", problem)


def prepare(
    msg: Message,
    *,
    max_size: int = MAX_MESSAGE_SIZE,
    compress_over: int = COMPRESS_OVER,
) -> Outgoing:
    """Validate ``msg`` and encode it for a single send (compressing a large body)."""
    if not isinstance(msg, Message):
        raise MessageInvalidError("message", f"expected a Message, got {type(msg).__name__}")
    check_topic(msg.topic)
    body = msg.body_bytes()
    if not body:
        raise MessageInvalidError("body", "is empty")
    if len(body) > max_size:
        raise MessageTooLargeError(len(body), max_size)
    uniq = new_message_id()
    props = message_properties(msg, uniq)
    sys_flag = 0
    if compress_over >= 0 and len(body) > compress_over:
        packed = zlib.compress(body, COMPRESS_LEVEL)
        if len(packed) < len(body):
            body = packed
            sys_flag |= MessageSysFlag.COMPRESSED
    return Outgoing(
        topic=msg.topic,
        body=body,
        properties=props,
        sys_flag=int(sys_flag),
        flag=int(msg.flag),
        msg_id=uniq,
        tags=msg.tags,
        keys=tuple(msg.keys_list()),
    )


def prepare_batch(msgs: Sequence[Message], *, max_size: int = MAX_MESSAGE_SIZE) -> Outgoing:
    """Validate and encode a batch (SEND_BATCH_MESSAGE): one topic, no delay, not compressed."""
    msgs = list(msgs)
    if not msgs:
        raise MessageInvalidError("batch", "is empty")
    topic = msgs[0].topic
    check_topic(topic)
    entries: list[BatchEntry] = []
    ids: list[str] = []
    wait = msgs[0].wait_store_ok
    for i, msg in enumerate(msgs):
        if not isinstance(msg, Message):
            raise MessageInvalidError(
                f"batch[{i}]", f"expected a Message, got {type(msg).__name__}"
            )
        if msg.topic != topic:
            raise MessageInvalidError(f"batch[{i}].topic", f"{msg.topic!r} differs from {topic!r}")
        if msg.delay_level:
            raise MessageInvalidError(f"batch[{i}].delay_level", "batches cannot be delayed")
        body = msg.body_bytes()
        if not body:
            raise MessageInvalidError(f"batch[{i}].body", "is empty")
        uniq = new_message_id()
        ids.append(uniq)
        entries.append(BatchEntry(int(msg.flag), body, message_properties(msg, uniq)))
    body = encode_batch(entries)
    if len(body) > max_size:
        raise MessageTooLargeError(len(body), max_size, "batch")
    return Outgoing(
        topic=topic,
        body=body,
        properties=f"{P.WAIT}\x01{'true' if wait else 'false'}\x02",
        msg_id=",".join(ids),
        batch=True,
        count=len(msgs),
    )
