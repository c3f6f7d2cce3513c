"""Typed request and response headers, carried in a command's ``extFields``.

Python attributes are snake_case, wire names camelCase (RocketMQ's Java field names). Decoding
coerces what real clients send: strings ("123", "true", "1"), JSON numbers and booleans. Unknown
keys (AccessKey, Signature, OnsChannel, ns, bname, oway, lo, ...) are ignored. A missing required
field or a value that cannot be coerced raises ``ProtocolError(fatal=False)`` naming the field,
so the server can answer with an error code and a remark.

Required fields: those that identify what the request is about (group, topic, queue, offset...).
Fields RocketMQ marks not-null but that have an obvious neutral value get a default instead
(sysFlag 0, flag 0, bornTimestamp 0, defaultTopic TBW102, ...), to stay lenient with clients.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec

from runtime.errors import ProtocolError
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import ext_value

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

DEFAULT_TOPIC = "TBW102"
"""The topic producers name in ``defaultTopic`` so a broker may auto-create theirs."""


class Header(msgspec.Struct, kw_only=True, rename="camel", frozen=True):
    """Base of every header: keyword-only, camelCase on the wire, immutable."""


# --------------------------------------------------------------------------------- requests


class SendMessageRequestHeader(Header, kw_only=True):
    """SEND_MESSAGE (10) long names; SEND_MESSAGE_V2 (310) / SEND_BATCH_MESSAGE (320) send the
    same fields under the short names a..n: use ``decode_send_header``."""

    producer_group: str
    topic: str
    default_topic: str = DEFAULT_TOPIC
    default_topic_queue_nums: Int32 = 4
    queue_id: Int32
    sys_flag: Int32 = 0
    born_timestamp: Int64 = 0
    flag: Int32 = 0
    properties: str = ""
    reconsume_times: Int32 = 0
    unit_mode: bool = False
    batch: bool = False
    max_reconsume_times: Int32 | None = None
    broker_name: str | None = None


class PullMessageRequestHeader(Header, kw_only=True):
    """PULL_MESSAGE (11)."""

    consumer_group: str
    topic: str
    queue_id: Int32
    queue_offset: Int64
    max_msg_nums: Int32 = 32
    sys_flag: Int32 = 0
    commit_offset: Int64 = 0
    suspend_timeout_millis: Int64 = 0
    subscription: str | None = None
    sub_version: Int64 = 0
    expression_type: str | None = None
    max_msg_bytes: Int32 | None = None


class QueryConsumerOffsetRequestHeader(Header, kw_only=True):
    """QUERY_CONSUMER_OFFSET (14)."""

    consumer_group: str
    topic: str
    queue_id: Int32
    set_zero_if_not_found: bool | None = None


class UpdateConsumerOffsetRequestHeader(Header, kw_only=True):
    """UPDATE_CONSUMER_OFFSET (15)."""

    consumer_group: str
    topic: str
    queue_id: Int32
    commit_offset: Int64


class GetMaxOffsetRequestHeader(Header, kw_only=True):
    """GET_MAX_OFFSET (30)."""

    topic: str
    queue_id: Int32
    committed: bool = True


class GetMinOffsetRequestHeader(Header, kw_only=True):
    """GET_MIN_OFFSET (31)."""

    topic: str
    queue_id: Int32


class SearchOffsetRequestHeader(Header, kw_only=True):
    """SEARCH_OFFSET_BY_TIMESTAMP (29)."""

    topic: str
    queue_id: Int32
    timestamp: Int64
    boundary_type: str | None = None


class GetEarliestMsgStoretimeRequestHeader(Header, kw_only=True):
    """GET_EARLIEST_MSG_STORETIME (32)."""

    topic: str
    queue_id: Int32


class ViewMessageRequestHeader(Header, kw_only=True):
    """VIEW_MESSAGE_BY_ID (33): ``offset`` is the commit-log offset from the offset message id."""

    offset: Int64
    topic: str | None = None


class QueryMessageRequestHeader(Header, kw_only=True):
    """QUERY_MESSAGE (12)."""

    topic: str
    key: str
    max_num: Int32
    begin_timestamp: Int64
    end_timestamp: Int64


class GetConsumerListByGroupRequestHeader(Header, kw_only=True):
    """GET_CONSUMER_LIST_BY_GROUP (38)."""

    consumer_group: str


class GetTopicStatsInfoRequestHeader(Header, kw_only=True):
    """GET_TOPIC_STATS_INFO (202)."""

    topic: str


class GetConsumeStatsRequestHeader(Header, kw_only=True):
    """GET_CONSUME_STATS (208): every topic the group committed offsets for when ``topic`` is
    empty."""

    consumer_group: str
    topic: str = ""


class UnregisterClientRequestHeader(Header, kw_only=True):
    """UNREGISTER_CLIENT (35)."""

    client_id: str = msgspec.field(name="clientID")
    producer_group: str | None = None
    consumer_group: str | None = None


class ConsumerSendMsgBackRequestHeader(Header, kw_only=True):
    """CONSUMER_SEND_MSG_BACK (36)."""

    offset: Int64
    group: str
    delay_level: Int32 = 0
    origin_msg_id: str | None = None
    origin_topic: str | None = None
    unit_mode: bool = False
    max_reconsume_times: Int32 | None = None


class EndTransactionRequestHeader(Header, kw_only=True):
    """END_TRANSACTION (37). ``commit_or_rollback``: 0 unknown, 8 commit, 12 rollback."""

    producer_group: str
    tran_state_table_offset: Int64
    commit_log_offset: Int64
    commit_or_rollback: Int32
    from_transaction_check: bool = False
    msg_id: str
    transaction_id: str | None = None
    topic: str | None = None


class CheckTransactionStateRequestHeader(Header, kw_only=True):
    """CHECK_TRANSACTION_STATE (39), broker to producer."""

    tran_state_table_offset: Int64
    commit_log_offset: Int64
    msg_id: str | None = None
    transaction_id: str | None = None
    offset_msg_id: str | None = None
    topic: str | None = None


class NotifyConsumerIdsChangedRequestHeader(Header, kw_only=True):
    """NOTIFY_CONSUMER_IDS_CHANGED (40), broker to consumer."""

    consumer_group: str


class RegisterBrokerRequestHeader(Header, kw_only=True):
    """REGISTER_BROKER (103). ``compressed`` true means RocketMQ's compressed binary body, which
    we do not speak: our brokers register with JSON bodies."""

    broker_name: str
    broker_addr: str
    cluster_name: str
    ha_server_addr: str = ""
    broker_id: Int64
    heartbeat_timeout_millis: Int64 | None = None
    compressed: bool = False
    body_crc32: Int32 = 0


class UnregisterBrokerRequestHeader(Header, kw_only=True):
    """UNREGISTER_BROKER (104)."""

    broker_name: str
    broker_addr: str
    cluster_name: str
    broker_id: Int64


class GetRouteInfoRequestHeader(Header, kw_only=True):
    """GET_ROUTEINFO_BY_TOPIC (105)."""

    topic: str
    accept_standard_json_only: bool | None = None


class CreateTopicRequestHeader(Header, kw_only=True):
    """UPDATE_AND_CREATE_TOPIC (17)."""

    topic: str
    default_topic: str = DEFAULT_TOPIC
    read_queue_nums: Int32
    write_queue_nums: Int32
    perm: Int32
    topic_filter_type: str = "SINGLE_TAG"
    topic_sys_flag: Int32 = 0
    order: bool = False


# -------------------------------------------------------------------------------- responses


class SendMessageResponseHeader(Header, kw_only=True):
    """Reply to a send: the offset message id and where the (first) message landed."""

    msg_id: str
    queue_id: Int32
    queue_offset: Int64
    transaction_id: str | None = None


class PullMessageResponseHeader(Header, kw_only=True):
    """Reply to a pull (every value travels as a string)."""

    suggest_which_broker_id: Int64 = 0
    next_begin_offset: Int64
    min_offset: Int64
    max_offset: Int64


class QueryConsumerOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class GetMaxOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class GetMinOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class SearchOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class GetEarliestMsgStoretimeResponseHeader(Header, kw_only=True):
    timestamp: Int64


class QueryMessageResponseHeader(Header, kw_only=True):
    index_last_update_timestamp: Int64
    index_last_update_phyoffset: Int64


class RegisterBrokerResponseHeader(Header, kw_only=True):
    ha_server_addr: str | None = None
    master_addr: str | None = None


REQUEST_HEADERS: dict[int, type[Header]] = {
    RequestCode.SEND_MESSAGE: SendMessageRequestHeader,
    RequestCode.SEND_MESSAGE_V2: SendMessageRequestHeader,
    RequestCode.SEND_BATCH_MESSAGE: SendMessageRequestHeader,
    RequestCode.PULL_MESSAGE: PullMessageRequestHeader,
    RequestCode.QUERY_MESSAGE: QueryMessageRequestHeader,
    RequestCode.QUERY_CONSUMER_OFFSET: QueryConsumerOffsetRequestHeader,
    RequestCode.UPDATE_CONSUMER_OFFSET: UpdateConsumerOffsetRequestHeader,
    RequestCode.UPDATE_AND_CREATE_TOPIC: CreateTopicRequestHeader,
    RequestCode.SEARCH_OFFSET_BY_TIMESTAMP: SearchOffsetRequestHeader,
    RequestCode.GET_MAX_OFFSET: GetMaxOffsetRequestHeader,
    RequestCode.GET_MIN_OFFSET: GetMinOffsetRequestHeader,
    RequestCode.GET_EARLIEST_MSG_STORETIME: GetEarliestMsgStoretimeRequestHeader,
    RequestCode.VIEW_MESSAGE_BY_ID: ViewMessageRequestHeader,
    RequestCode.UNREGISTER_CLIENT: UnregisterClientRequestHeader,
    RequestCode.CONSUMER_SEND_MSG_BACK: ConsumerSendMsgBackRequestHeader,
    RequestCode.END_TRANSACTION: EndTransactionRequestHeader,
    RequestCode.GET_CONSUMER_LIST_BY_GROUP: GetConsumerListByGroupRequestHeader,
    RequestCode.GET_TOPIC_STATS_INFO: GetTopicStatsInfoRequestHeader,
    RequestCode.GET_CONSUME_STATS: GetConsumeStatsRequestHeader,
    RequestCode.CHECK_TRANSACTION_STATE: CheckTransactionStateRequestHeader,
    RequestCode.NOTIFY_CONSUMER_IDS_CHANGED: NotifyConsumerIdsChangedRequestHeader,
    RequestCode.REGISTER_BROKER: RegisterBrokerRequestHeader,
    RequestCode.UNREGISTER_BROKER: UnregisterBrokerRequestHeader,
    RequestCode.GET_ROUTEINFO_BY_TOPIC: GetRouteInfoRequestHeader,
}
"""Request code -> header class (send codes: decode with ``decode_send_header``)."""


# ---------------------------------------------------------------------------- send V2 names

SEND_V2_NAMES: dict[str, str] = {
    "a": "producerGroup",
    "b": "topic",
    "c": "defaultTopic",
    "d": "defaultTopicQueueNums",
    "e": "queueId",
    "f": "sysFlag",
    "g": "bornTimestamp",
    "h": "flag",
    "i": "properties",
    "j": "reconsumeTimes",
    "k": "unitMode",
    "l": "maxReconsumeTimes",
    "m": "batch",
    "n": "brokerName",
}
"""SEND_MESSAGE_V2 short name -> long wire name."""

_V2_ITEMS = tuple(SEND_V2_NAMES.items())
_V2_SHORT = {long: short for short, long in _V2_ITEMS}


# --------------------------------------------------------------------------------- decoding

H = TypeVar("H", bound=Header)

_STR, _INT, _BOOL, _OTHER = range(4)
_FIELD_RE = re.compile(r"`\$\.([^`\[]+)")
_MISSING_RE = re.compile(r"missing required field `([^`]+)`")
_kinds_cache: dict[type, tuple[tuple[str, int, bool], ...]] = {}


def _kind(tp: Any) -> int:
    info = msgspec.inspect.type_info(tp)
    if isinstance(info, msgspec.inspect.UnionType):
        none = msgspec.inspect.NoneType
        kinds = {_kind_of_info(t) for t in info.types if not isinstance(t, none)}
        return kinds.pop() if len(kinds) == 1 else _OTHER
    return _kind_of_info(info)


def _kind_of_info(info: msgspec.inspect.Type) -> int:
    if isinstance(info, msgspec.inspect.StrType):
        return _STR
    if isinstance(info, msgspec.inspect.IntType):
        return _INT
    if isinstance(info, msgspec.inspect.BoolType):
        return _BOOL
    return _OTHER


def _kinds(cls: type) -> tuple[tuple[str, int, bool], ...]:
    kinds = _kinds_cache.get(cls)
    if kinds is None:
        kinds = tuple(
            (f.encode_name, _kind(f.type), f.required) for f in msgspec.structs.fields(cls)
        )
        _kinds_cache[cls] = kinds
    return kinds


def _cleaned(cls: type, ext: Mapping[str, object]) -> dict[str, object]:
    """Slow path: coerce values msgspec's lax mode does not (numbers into str fields, padded
    numbers, empty strings for optional numbers); drop nulls."""
    out: dict[str, object] = {}
    for name, kind, _required in _kinds(cls):
        if name not in ext:
            continue
        value = ext[name]
        if value is None:
            continue
        if kind == _STR:
            if not isinstance(value, str):
                with contextlib.suppress(TypeError, ValueError):
                    value = ext_value(value)
        elif kind in (_INT, _BOOL) and isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        out[name] = value
    return out


def _short_repr(value: object, limit: int = 80) -> str:
    """repr for an error remark: bounded, never raising (huge ints refuse str())."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field_name(message: str) -> str | None:
    match = _MISSING_RE.search(message) or _FIELD_RE.search(message)
    return match.group(1) if match else None


def _header_error(
    cls: type,
    ext: Mapping[str, object],
    message: str,
    opaque: int | None,
    labels: Mapping[str, str] | None = None,
) -> ProtocolError:
    field = _field_name(message)
    if field is None:
        return ProtocolError(f"bad {cls.__name__}: {message}", fatal=False, opaque=opaque)
    shown = labels.get(field, field) if labels else field
    if message.startswith("Object missing"):
        reason = f"{cls.__name__}: missing field {shown}"
    else:
        shown_value = _short_repr(ext.get(field))
        reason = f"{cls.__name__}: invalid value {shown_value} for field {shown}: {message}"
    return ProtocolError(reason, fatal=False, opaque=opaque)


def _decode(
    cls: type[H],
    ext: Mapping[str, object],
    opaque: int | None,
    labels: Mapping[str, str] | None = None,
    name: str | None = None,
) -> H:
    try:
        return msgspec.convert(ext, cls, strict=False)
    except msgspec.ValidationError:
        pass
    except Exception as exc:  # something msgspec cannot walk
        raise ProtocolError(
            f"bad {name or cls.__name__}: {exc}", fatal=False, opaque=opaque
        ) from None
    try:
        return msgspec.convert(_cleaned(cls, ext), cls, strict=False)
    except msgspec.ValidationError as exc:
        shown_cls = _Named(name) if name else cls
        raise _header_error(shown_cls, ext, str(exc), opaque, labels) from None
    except Exception as exc:
        raise ProtocolError(
            f"bad {name or cls.__name__}: {exc}", fatal=False, opaque=opaque
        ) from None


class _Named:
    """Stands in for a class in error messages."""

    def __init__(self, name: str) -> None:
        self.__name__ = name


def decode_header(
    cls: type[H], ext_fields: Mapping[str, object], *, opaque: int | None = None
) -> H:
    """Decode ``ext_fields`` into header ``cls``. Raises ProtocolError(fatal=False, opaque)."""
    if ext_fields.__class__ is not dict and not isinstance(ext_fields, Mapping):
        raise ProtocolError(
            f"bad {cls.__name__}: extFields is not an object", fatal=False, opaque=opaque
        )
    return _decode(cls, ext_fields, opaque)


def _v2_struct() -> type[msgspec.Struct]:
    specs: list[Any] = []
    for f in msgspec.structs.fields(SendMessageRequestHeader):
        short = _V2_SHORT[f.encode_name]
        specs.append((short, f.type) if f.required else (short, f.type, f.default))
    return msgspec.defstruct("SendMessageRequestHeaderV2", specs, kw_only=True, frozen=True)


_SendV2 = _v2_struct()
_V2_LABELS = {short: f"{name} ({short})" for short, name in _V2_ITEMS}


def decode_send_header(
    code: int, ext_fields: Mapping[str, object], *, opaque: int | None = None
) -> SendMessageRequestHeader:
    """The send header of a SEND_MESSAGE (10: long names) or SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE
    (310 / 320: short names a..n; long names accepted too). Code 320 always means batch."""
    if ext_fields.__class__ is not dict and not isinstance(ext_fields, Mapping):
        raise ProtocolError(
            "bad SendMessageRequestHeader: extFields is not an object", fatal=False, opaque=opaque
        )
    if code == RequestCode.SEND_MESSAGE or ("b" not in ext_fields and "topic" in ext_fields):
        header = _decode(SendMessageRequestHeader, ext_fields, opaque)
    else:
        v: Any = _decode(_SendV2, ext_fields, opaque, _V2_LABELS, "SendMessageRequestHeader")
        header = SendMessageRequestHeader(
            producer_group=v.a,
            topic=v.b,
            default_topic=v.c,
            default_topic_queue_nums=v.d,
            queue_id=v.e,
            sys_flag=v.f,
            born_timestamp=v.g,
            flag=v.h,
            properties=v.i,
            reconsume_times=v.j,
            unit_mode=v.k,
            max_reconsume_times=v.l,
            batch=v.m,
            broker_name=v.n,
        )
    if code == RequestCode.SEND_BATCH_MESSAGE and not header.batch:
        header = msgspec.structs.replace(header, batch=True)
    return header


# --------------------------------------------------------------------------------- encoding


def encode_header(header: Header) -> dict[str, str]:
    """extFields for ``header``: camelCase names, every value a string, None fields left out."""
    out: dict[str, str] = {}
    for field in msgspec.structs.fields(header):
        text = ext_value(getattr(header, field.name))
        if text is not None:
            out[field.encode_name] = text
    return out


def encode_send_header_v2(header: SendMessageRequestHeader) -> dict[str, str]:
    """extFields of SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE: short names a..n, string values."""
    return {_V2_SHORT[name]: value for name, value in encode_header(header).items()}
