"""Turning user messages into what a send carries: validation, properties, compression, batches.

Runs in the caller's thread (pure functions), so the hub only moves bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import msgspec

from actors.client.compression import DEFAULT_COMPRESSOR, Compressor
from actors.client.errors import MessageInvalidError, MessageTooLargeError
from actors.client.message import SYSTEM_PROPERTIES, Message
from actors.client.msgid import new_message_id, new_message_ids
from runtime.remoting import properties as P
from runtime.remoting.batch import MAX_PROPERTIES
from runtime.remoting.codes import RETRY_PREFIX
from runtime.store.topic_names import send_forbidden, topic_problem

MAX_MESSAGE_SIZE = 4 * 1024 * 1024
COMPRESS_OVER = 4 * 1024
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
    reply: bool = False
    """A request-reply reply (sent as SEND_REPLY_MESSAGE_V2; ``actors.client.reply``)."""
    reconsume_times: int = 0
    max_reconsume_times: int | None = None
    """Send-header fields of a message re-sent to ``%RETRY%<group>`` (a failed send-back)."""


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
    parts.extend(delay_properties(msg))
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


def delay_properties(msg: Message) -> list[str]:
    """DELAY, TIMER_DELIVER_MS or TIMER_DELAY_MS (encoded), from whichever ``msg`` sets."""
    given = [
        name
        for name, value in (
            ("delay_level", msg.delay_level),
            ("deliver_at_ms", msg.deliver_at_ms),
            ("delay_ms", msg.delay_ms),
        )
        if value
    ]
    if len(given) > 1:
        raise MessageInvalidError(given[1], f"give only one of {', '.join(given)}")
    if msg.delay_level:
        if not 0 < msg.delay_level <= MAX_DELAY_LEVEL:
            raise MessageInvalidError("delay_level", f"{msg.delay_level} is outside 1..18")
        return [f"{P.DELAY}\x01{int(msg.delay_level)}\x02"]
    if msg.deliver_at_ms:
        if isinstance(msg.deliver_at_ms, bool) or msg.deliver_at_ms < 0:
            raise MessageInvalidError("deliver_at_ms", f"{msg.deliver_at_ms!r} is not a time")
        return [f"{P.TIMER_DELIVER_MS}\x01{int(msg.deliver_at_ms)}\x02"]
    if msg.delay_ms:
        if isinstance(msg.delay_ms, bool) or msg.delay_ms < 0:
            raise MessageInvalidError("delay_ms", f"{msg.delay_ms!r} is not a delay")
        return [f"{P.TIMER_DELAY_MS}\x01{int(msg.delay_ms)}\x02"]
    return []


def check_topic(topic: str) -> None:
    """A topic a producer may send to (RocketMQ's client checks the name and refuses the
    not-allowed-send set, ``Validators.checkTopic``, before sending): MessageInvalidError."""
    problem = topic_problem(topic) or send_forbidden(topic)
    if problem:
        raise MessageInvalidError("topic", problem)


def prepare(
    msg: Message,
    *,
    max_size: int = MAX_MESSAGE_SIZE,
    compress_over: int = COMPRESS_OVER,
    compressor: Compressor = DEFAULT_COMPRESSOR,
    uniq: str | None = None,
) -> Outgoing:
    """Validate ``msg`` and encode it for a single send (a body of ``compress_over`` bytes or
    more compressed with ``compressor`` and flagged with its sysFlag bits, when that makes it
    smaller: RocketMQ's ``tryToCompressMessage`` tests ``body.length >=
    compressMsgBodyOverHowmuch``). ``uniq``: its UNIQ_KEY (default a new one)."""
    if not isinstance(msg, Message):
        raise MessageInvalidError("message", f"expected a Message, got {type(msg).__name__}")
    check_topic(msg.topic)
    body = msg.body_bytes()
    if not body:
        raise MessageInvalidError("body", "is empty")
    if len(body) > max_size:
        raise MessageTooLargeError(len(body), max_size)
    if uniq is None:
        uniq = new_message_id()
    else:  # a caller's id (the proxy's client's): it must not carry properties of its own in
        _check_text("msg_id", uniq)
    props = message_properties(msg, uniq)
    sys_flag = 0
    if compress_over >= 0 and len(body) >= compress_over:
        packed = compressor.compress(body)
        if len(packed) < len(body):
            body = packed
            sys_flag |= compressor.flag
    return Outgoing(
        topic=msg.topic,
        body=body,
        properties=props,
        sys_flag=sys_flag,
        flag=int(msg.flag),
        msg_id=uniq,
        tags=msg.tags,
        keys=tuple(msg.keys_list()),
    )


_ENTRY = struct.Struct(">iiiii")  # totalSize, magic 0, bodyCRC 0, flag, bodyLen
_PROPS_LEN = struct.Struct(">h")


def prepare_batch(msgs: Sequence[Message], *, max_size: int = MAX_MESSAGE_SIZE) -> Outgoing:
    """Validate and encode a batch (SEND_BATCH_MESSAGE): one topic, not a retry topic, no
    delay, one ``wait_store_ok`` (RocketMQ's ``MessageBatch.generateFromList`` rules), not
    compressed (RocketMQ's producers compress no batch either).
    The body is ``runtime.remoting.batch``'s layout, written here in one pass."""
    msgs = list(msgs)
    if not msgs:
        raise MessageInvalidError("batch", "is empty")
    topic = msgs[0].topic
    check_topic(topic)
    if topic.startswith(RETRY_PREFIX):
        # RocketMQ's MessageBatch.generateFromList: "Retry Group is not supported for batching"
        raise MessageInvalidError("batch.topic", f"{topic!r}: a retry topic takes no batch")
    wait = msgs[0].wait_store_ok
    ids = new_message_ids(len(msgs))
    parts: list[bytes] = []
    for i, msg in enumerate(msgs):
        if msg.__class__ is not Message and not isinstance(msg, Message):
            raise MessageInvalidError(f"batch[{i}]", f"not a Message: {type(msg).__name__}")
        if msg.topic != topic:
            raise MessageInvalidError(f"batch[{i}].topic", f"{msg.topic!r} differs from {topic!r}")
        if msg.wait_store_ok != wait:  # (the batch has one WAIT: RocketMQ refuses a mix too)
            raise MessageInvalidError(
                f"batch[{i}].wait_store_ok", f"{msg.wait_store_ok} differs from the first's {wait}"
            )
        parts.append(batch_entry(msg, ids[i], f"batch[{i}]"))
    return joined_batch(topic, parts, ids, wait, max_size)


def batch_entry(msg: Message, uniq: str, where: str = "message") -> bytes:
    """``msg`` encoded as one entry of a batch's body, with UNIQ_KEY ``uniq`` (not compressed,
    not delayed: MessageInvalidError otherwise, naming the field as ``<where>.<field>``)."""
    if msg.delay_level or msg.deliver_at_ms or msg.delay_ms:
        raise MessageInvalidError(f"{where}.delay_level", "batches cannot be delayed")
    body = msg.body
    if body.__class__ is not bytes:
        body = msg.body_bytes()
    if not body:
        raise MessageInvalidError(f"{where}.body", "is empty")
    if msg.tags or msg.keys or msg.properties or not msg.wait_store_ok:
        props = message_properties(msg, uniq).encode()
    else:
        props = f"UNIQ_KEY\x01{uniq}\x02WAIT\x01true\x02".encode()
    blen = len(body)
    head = _ENTRY.pack(22 + blen + len(props), 0, 0, msg.flag, blen)
    return b"".join((head, body, _PROPS_LEN.pack(len(props)), props))


def joined_batch(
    topic: str, entries: Sequence[bytes], ids: Sequence[str], wait: bool, max_size: int
) -> Outgoing:
    """The SEND_BATCH_MESSAGE of ``entries`` (``batch_entry``'s, of messages of ``topic``
    whose UNIQ_KEYs are ``ids``); MessageTooLargeError over ``max_size`` bytes."""
    data = b"".join(entries)
    if len(data) > max_size:
        raise MessageTooLargeError(len(data), max_size, "batch")
    return Outgoing(
        topic=topic,
        body=data,
        properties=f"{P.WAIT}\x01{'true' if wait else 'false'}\x02",
        msg_id=",".join(ids),
        batch=True,
        count=len(entries),
    )
