"""Message-trace records in RocketMQ's text format (its client's TraceDataEncoder).

A trace message's body is a run of records, each ending with ``FIELD_SPLITOR`` (\\x02), its
fields separated by ``CONTENT_SPLITOR`` (\\x01), the first field naming the type:

- ``Pub`` (14 fields): type, timestamp, regionId, group, topic, msgId, tags, keys, storeHost,
  bodyLength, costTime, msgType (MessageType's ordinal), offsetMsgId, success. Older writers
  sent 13 fields (no offsetMsgId) and some 15 (a clientHost last); ``decode`` reads all three.
- ``SubBefore`` (8, one record per message of a listener call): type, timestamp, regionId,
  group, requestId, msgId, retryTimes, keys.
- ``SubAfter`` (9): type, requestId, msgId, costTime, success, keys, contextCode
  (ConsumeReturnType's ordinal), timestamp, group. RocketMQ before 4.9.x wrote 6, 7 or 8 of
  them (no group, no timestamp, no context code); ``decode`` reads every length from 6.
- ``EndTransaction`` (13): type, timestamp, regionId, group, topic, msgId, tags, keys,
  storeHost, msgType (always Trans_msg_Commit's ordinal, 2), transactionId, transactionState
  (LocalTransactionState's name: COMMIT_MESSAGE, ROLLBACK_MESSAGE, UNKNOW),
  fromTransactionCheck. No costTime, success or offsetMsgId.

A value the Java client has as null is written ``null`` (its StringBuilder does that: a message
without tags or keys); decoding gives the text back as it is. Splitting is Java's
``String.split``: trailing empty fields vanish, so a record never ends with an empty field.
``encode`` also gives the keys the trace message is indexed under: each record's msgId and the
traced message's own keys (RocketMQ's TraceTransferBean.transKey), so ``queryMsgTraceById``
finds the trace by msgId.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable

import msgspec

from actors.client import message
from actors.client.msgid import new_message_id

CONTENT_SPLITOR = "\x01"
FIELD_SPLITOR = "\x02"
RMQ_SYS_TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
"""The default trace topic (RocketMQ's TopicValidator.RMQ_SYS_TRACE_TOPIC)."""
GROUP_NAME_PREFIX = "_INNER_TRACE_PRODUCER"
"""The internal trace producer's group starts with this (TraceConstants.GROUP_NAME_PREFIX)."""
DEFAULT_REGION = message.DEFAULT_REGION
"""The region traced when the broker names none (MixAll.DEFAULT_TRACE_REGION_ID)."""

MESSAGE_TYPES = ("Normal_Msg", "Trans_Msg_Half", "Trans_msg_Commit", "Delay_Msg")
"""RocketMQ's MessageType in declaration order: a Pub record carries the ordinal."""
CONSUME_RETURN_TYPES = ("SUCCESS", "TIME_OUT", "EXCEPTION", "RETURNNULL", "FAILED")
"""RocketMQ's ConsumeReturnType in declaration order: a SubAfter's contextCode is the ordinal."""


class TraceType(enum.Enum):
    """The record types (RocketMQ's TraceType; the value is the record's first field)."""

    Pub = "Pub"
    SubBefore = "SubBefore"
    SubAfter = "SubAfter"
    EndTransaction = "EndTransaction"


class TraceBean(msgspec.Struct, kw_only=True):
    """One traced message (RocketMQ's TraceBean). ``tags`` / ``keys`` None: the message had
    none (written ``null``, as Java writes them). ``keys``: the KEYS text, space-separated."""

    topic: str = ""
    msg_id: str = ""
    offset_msg_id: str = ""
    tags: str | None = ""
    keys: str | None = ""
    store_host: str = ""
    client_host: str = ""
    store_time: int = 0
    retry_times: int = 0
    body_length: int = 0
    msg_type: str = MESSAGE_TYPES[0]
    transaction_id: str | None = None
    transaction_state: str | None = None
    from_transaction_check: bool = False


class TraceContext(msgspec.Struct, kw_only=True):
    """One trace event and the messages it is about (RocketMQ's TraceContext): ``timestamp``
    in ms, ``cost_time`` in ms (per message for a SubAfter), ``request_id`` pairs a SubBefore
    with its SubAfter."""

    trace_type: TraceType
    timestamp: int = msgspec.field(default_factory=lambda: int(time.time() * 1000))
    region_id: str = ""
    group: str = ""
    cost_time: int = 0
    success: bool = True
    request_id: str = msgspec.field(default_factory=new_message_id)
    context_code: int = 0
    beans: list[TraceBean] = msgspec.field(default_factory=list)


class TraceTransfer(msgspec.Struct, frozen=True):
    """An encoded context: its records and the keys to index them under (TraceTransferBean)."""

    data: str
    keys: tuple[str, ...]


def _text(value: object) -> str:
    """A field as Java's StringBuilder appends it: None is ``null``, booleans lower case."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _record(fields: Iterable[object]) -> str:
    return CONTENT_SPLITOR.join(_text(f) for f in fields) + FIELD_SPLITOR


def _msg_type_ordinal(name: str) -> int:
    return MESSAGE_TYPES.index(name) if name in MESSAGE_TYPES else 0


def encode(ctx: TraceContext) -> TraceTransfer:
    """``ctx`` as RocketMQ's TraceDataEncoder.encoderFromContextBean writes it: one record for
    a Pub or an EndTransaction (its first bean), one per bean for SubBefore and SubAfter."""
    t = ctx.trace_type
    if t is TraceType.Pub:
        data = _record(_pub(ctx, ctx.beans[0]))
    elif t is TraceType.SubBefore:
        data = "".join(_record(_sub_before(ctx, b)) for b in ctx.beans)
    elif t is TraceType.SubAfter:
        data = "".join(_record(_sub_after(ctx, b)) for b in ctx.beans)
    else:
        data = _record(_end_transaction(ctx, ctx.beans[0]))
    return TraceTransfer(data, transfer_keys(ctx.beans))


# fmt: off
def _pub(ctx: TraceContext, b: TraceBean) -> tuple[object, ...]:
    return (
        ctx.trace_type.value, ctx.timestamp, ctx.region_id, ctx.group, b.topic, b.msg_id, b.tags,
        b.keys, b.store_host, b.body_length, ctx.cost_time, _msg_type_ordinal(b.msg_type),
        b.offset_msg_id, ctx.success,
    )


def _sub_before(ctx: TraceContext, b: TraceBean) -> tuple[object, ...]:
    return (
        ctx.trace_type.value, ctx.timestamp, ctx.region_id, ctx.group, ctx.request_id, b.msg_id,
        b.retry_times, b.keys,
    )


def _sub_after(ctx: TraceContext, b: TraceBean) -> tuple[object, ...]:
    return (
        ctx.trace_type.value, ctx.request_id, b.msg_id, ctx.cost_time, ctx.success, b.keys,
        ctx.context_code, ctx.timestamp, ctx.group,
    )


def _end_transaction(ctx: TraceContext, b: TraceBean) -> tuple[object, ...]:
    return (
        ctx.trace_type.value, ctx.timestamp, ctx.region_id, ctx.group, b.topic, b.msg_id, b.tags,
        b.keys, b.store_host, _msg_type_ordinal(b.msg_type), b.transaction_id,
        b.transaction_state, b.from_transaction_check,
    )
# fmt: on


def transfer_keys(beans: Iterable[TraceBean]) -> tuple[str, ...]:
    """Each bean's msgId and its keys, once each, in order (a message without keys adds none;
    RocketMQ adds the text ``null`` then, which no one looks up)."""
    keys: dict[str, None] = {}
    for b in beans:
        if b.msg_id:
            keys[b.msg_id] = None
        for key in (b.keys or "").split(" "):
            if key:
                keys[key] = None
    return tuple(keys)


def java_split(text: str, sep: str) -> list[str]:
    """Java's ``String.split(sep)`` for a one-character ``sep``: trailing empty parts vanish
    (and an empty text is one empty part)."""
    parts = text.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _bool(text: str) -> bool:
    return text.lower() == "true"  # Java's Boolean.parseBoolean


def _msg_type(text: str) -> str:
    return MESSAGE_TYPES[int(text)]


def decode(data: str) -> list[TraceContext]:
    """The records of a trace message's body (RocketMQ's
    TraceDataEncoder.decoderFromTraceDataString): one context with one bean per record. A
    record that does not parse (a field missing, a number that is not one, an unknown type) is
    left out, where the Java decoder would throw."""
    contexts: list[TraceContext] = []
    if not data:
        return contexts
    for record in java_split(data, FIELD_SPLITOR):
        line = java_split(record, CONTENT_SPLITOR)
        try:
            ctx = _decode_record(line)
        except (IndexError, ValueError):
            continue
        if ctx is not None:
            contexts.append(ctx)
    return contexts


def _decode_record(line: list[str]) -> TraceContext | None:
    kind = line[0]
    if kind == TraceType.Pub.value:
        bean = TraceBean(
            topic=line[4],
            msg_id=line[5],
            tags=line[6],
            keys=line[7],
            store_host=line[8],
            body_length=int(line[9]),
            msg_type=_msg_type(line[11]),
        )
        ctx = TraceContext(
            trace_type=TraceType.Pub,
            timestamp=int(line[1]),
            region_id=line[2],
            group=line[3],
            cost_time=int(line[10]),
            beans=[bean],
        )
        if len(line) == 13:
            ctx.success = _bool(line[12])
        elif len(line) >= 14:
            bean.offset_msg_id = line[12]
            ctx.success = _bool(line[13])
            if len(line) >= 15:
                bean.client_host = line[14]
        return ctx
    if kind == TraceType.SubBefore.value:
        bean = TraceBean(msg_id=line[5], retry_times=int(line[6]), keys=line[7])
        return TraceContext(
            trace_type=TraceType.SubBefore,
            timestamp=int(line[1]),
            region_id=line[2],
            group=line[3],
            request_id=line[4],
            beans=[bean],
        )
    if kind == TraceType.SubAfter.value:
        ctx = TraceContext(
            trace_type=TraceType.SubAfter,
            request_id=line[1],
            cost_time=int(line[3]),
            success=_bool(line[4]),
            beans=[TraceBean(msg_id=line[2], keys=line[5])],
        )
        if len(line) >= 7:
            ctx.context_code = int(line[6])
        if len(line) >= 8:
            ctx.timestamp = int(line[7])
        if len(line) >= 9:
            ctx.group = line[8]
        return ctx
    if kind == TraceType.EndTransaction.value:
        bean = TraceBean(
            topic=line[4],
            msg_id=line[5],
            tags=line[6],
            keys=line[7],
            store_host=line[8],
            msg_type=_msg_type(line[9]),
            transaction_id=line[10],
            transaction_state=line[11],
            from_transaction_check=_bool(line[12]),
        )
        return TraceContext(
            trace_type=TraceType.EndTransaction,
            timestamp=int(line[1]),
            region_id=line[2],
            group=line[3],
            beans=[bean],
        )
    return None
