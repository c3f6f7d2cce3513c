"""Decoding and encoding of the typed headers (``runtime.remoting.headers``) from/to extFields.

Decoding coerces what real clients send: strings ("123", "true", "1"), JSON numbers and booleans.
Unknown keys (AccessKey, Signature, OnsChannel, ns, bname, oway, lo, ...) are ignored. A missing
required field or a value that cannot be coerced raises ``ProtocolError(fatal=False)`` naming the
field, so the server can answer with an error code and a remark.

``decode_header`` decodes any header class; ``decode_send_header`` the send header under either
its long names (SEND_MESSAGE) or the short names a..n of SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE
(``SEND_V2_NAMES``). ``encode_header`` / ``encode_send_header_v2`` go the other way: every value a
string, as RocketMQ's Java clients send them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from runtime.errors import ProtocolError
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import ext_value
from runtime.remoting.headers import Header, SendMessageRequestHeader

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


def send_uses_long_names(code: int, ext_fields: Mapping[str, object]) -> bool:
    """Whether ``decode_send_header`` reads this send's header by its long names (``topic``),
    else by the short ones (``b``). The ACL names the topic the same way (``runtime.acl``)."""
    return code == RequestCode.SEND_MESSAGE or ("b" not in ext_fields and "topic" in ext_fields)


def decode_send_header(
    code: int, ext_fields: Mapping[str, object], *, opaque: int | None = None
) -> SendMessageRequestHeader:
    """The send header of a SEND_MESSAGE (10: long names) or SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE
    (310 / 320: short names a..n; long names accepted too). Code 320 always means batch."""
    if ext_fields.__class__ is not dict and not isinstance(ext_fields, Mapping):
        raise ProtocolError(
            "bad SendMessageRequestHeader: extFields is not an object", fatal=False, opaque=opaque
        )
    if send_uses_long_names(code, ext_fields):
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
