"""Message properties: the string ``name\\x01value\\x02name\\x01value\\x02...`` and its keys.

The same string travels in the send header (``properties`` / ``i``), in batch entries and in
stored records. Key names are RocketMQ's ``MessageConst`` values.
"""

from __future__ import annotations

from collections.abc import Mapping

NAME_VALUE_SEPARATOR = "\x01"
PROPERTY_SEPARATOR = "\x02"

KEYS = "KEYS"
"""Message keys, several separated by ``KEY_SEPARATOR`` (indexed as topic#key)."""
KEY_SEPARATOR = " "
TAGS = "TAGS"
WAIT = "WAIT"
"""WAIT_STORE_MSG_OK: "true" (default) or "false"."""
DELAY = "DELAY"
"""Delay level 1..18."""
RETRY_TOPIC = "RETRY_TOPIC"
REAL_TOPIC = "REAL_TOPIC"
REAL_QID = "REAL_QID"
TRAN_MSG = "TRAN_MSG"
"""TRANSACTION_PREPARED: "true" on half messages."""
PGROUP = "PGROUP"
"""Producer group (transaction check-back goes to a producer of this group)."""
MIN_OFFSET = "MIN_OFFSET"
MAX_OFFSET = "MAX_OFFSET"
BUYER_ID = "BUYER_ID"
ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
TRANSFER_FLAG = "TRANSFER_FLAG"
CORRECTION_FLAG = "CORRECTION_FLAG"
MQ2_FLAG = "MQ2_FLAG"
RECONSUME_TIME = "RECONSUME_TIME"
MSG_REGION = "MSG_REGION"
TRACE_ON = "TRACE_ON"
UNIQ_KEY = "UNIQ_KEY"
"""Client-side unique message id (UNIQ_CLIENT_MESSAGE_ID_KEYIDX)."""
EXTEND_UNIQ_INFO = "EXTEND_UNIQ_INFO"
MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
CONSUME_START_TIME = "CONSUME_START_TIME"
TRAN_PREPARED_QUEUE_OFFSET = "TRAN_PREPARED_QUEUE_OFFSET"
TRANSACTION_CHECK_TIMES = "TRANSACTION_CHECK_TIMES"
CHECK_IMMUNITY_TIME_IN_SECONDS = "CHECK_IMMUNITY_TIME_IN_SECONDS"
INSTANCE_ID = "INSTANCE_ID"
CORRELATION_ID = "CORRELATION_ID"
REPLY_TO_CLIENT = "REPLY_TO_CLIENT"
TTL = "TTL"
ARRIVE_TIME = "ARRIVE_TIME"
PUSH_REPLY_TIME = "PUSH_REPLY_TIME"
CLUSTER = "CLUSTER"
MSG_TYPE = "MSG_TYPE"
SHARDING_KEY = "__SHARDINGKEY"
BORN_HOST = "__BORNHOST"
"""The host a message was born on, when another sent it for it (a proxy, for its gRPC client)."""
TIMER_DELIVER_MS = "TIMER_DELIVER_MS"
TIMER_DELAY_SEC = "TIMER_DELAY_SEC"
TIMER_DELAY_MS = "TIMER_DELAY_MS"
TIMER_OUT_MS = "TIMER_OUT_MS"
TIMER_ENQUEUE_MS = "TIMER_ENQUEUE_MS"
TIMER_DEQUEUE_MS = "TIMER_DEQUEUE_MS"
TIMER_ROLL_TIMES = "TIMER_ROLL_TIMES"
TIMER_DEL_UNIQKEY = "TIMER_DEL_UNIQKEY"
DLQ_ORIGIN_TOPIC = "DLQ_ORIGIN_TOPIC"
DLQ_ORIGIN_MESSAGE_ID = "DLQ_ORIGIN_MESSAGE_ID"
INNER_NUM = "INNER_NUM"
INNER_BASE = "INNER_BASE"

DELAY_LEVELS = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
"""RocketMQ's default messageDelayLevel (levels 1..18)."""


def decode_properties(text: str) -> dict[str, str]:
    """Parse a properties string. Tolerates a missing trailing \\x02, empty input and empty
    items; an item without \\x01 is skipped (as RocketMQ does); a repeated name keeps the last."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for item in text.split(PROPERTY_SEPARATOR):
        name, sep, value = item.partition(NAME_VALUE_SEPARATOR)
        if sep:
            out[name] = value
    return out


_DELAY_KEYS = (DELAY, TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS)


def message_kind(props: Mapping[str, str]) -> str:
    """RocketMQ 5's type of a message sent with ``props`` (``TopicMessageType``'s reading of
    them), lower case as its metrics' ``message_type`` label: ``transaction`` (TRAN_MSG=true),
    ``delay`` (a delay level or a timer), ``fifo`` (a sharding key), else ``normal``."""
    if props.get(TRAN_MSG) == "true":
        return "transaction"
    if any(key in props for key in _DELAY_KEYS):
        return "delay"
    if SHARDING_KEY in props:
        return "fifo"
    return "normal"


def encode_properties(props: Mapping[str, str]) -> str:
    """The properties string for ``props`` (each pair ends with \\x02). A name or value holding a
    separator would corrupt the string: ValueError."""
    parts: list[str] = []
    for name, value in props.items():
        if _has_separator(name) or _has_separator(value):
            raise ValueError(f"property {name!r} holds a \\x01 or \\x02 separator")
        parts.append(f"{name}\x01{value}\x02")
    return "".join(parts)


def property_value_ok(text: str) -> bool:
    """Whether ``text`` may be a property's name or value (it holds no separator)."""
    return not _has_separator(text)


def _has_separator(text: str) -> bool:
    return NAME_VALUE_SEPARATOR in text or PROPERTY_SEPARATOR in text


def tag_hash(tag: str) -> int:
    """Java ``String.hashCode()`` of a tag (the consume queue's tagsCode and the subscription
    codeSet): h = 31*h + utf16 unit, as a signed int32."""
    h = 0
    data = tag.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - 0x100000000 if h & 0x80000000 else h
