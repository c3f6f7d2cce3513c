"""The header inside a remoting frame: JSON (serializeType 0) and ROCKETMQ binary (1) codecs.

JSON: an object with code, language, version, opaque, flag, remark and extFields (strings;
numbers and booleans from other clients are accepted and turned into strings); we write
fastjson's key order, the shape Java brokers send. ROCKETMQ (all integers big-endian)::

    int16 code, uint8 language, int16 version, int32 opaque, int32 flag,
    int32 remarkLen + remark, int32 extLen + (int16 keyLen + key, int32 valueLen + value)*

A bad header is ``ProtocolError(fatal=False, opaque=...)``: the frame around it was whole, so
the stream goes on (``opaque`` is None when even the request id could not be read). Framing
itself (length prefix, limits, the incremental decoder) is ``runtime.remoting.frame``.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any

import msgspec

from runtime.errors import ProtocolError
from runtime.remoting.codes import LanguageCode, SerializeType
from runtime.remoting.command import RemotingCommand, ext_value

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

_BIN_FIXED = struct.Struct(">hBhiii")  # code, language, version, opaque, flag, remarkLen
_BIN_INT = struct.Struct(">i")
_BIN_SHORT = struct.Struct(">h")

Int32 = Annotated[int, msgspec.Meta(ge=_INT32_MIN, le=_INT32_MAX)]
ExtScalar = str | int | float | bool | None


class _JsonHeaderIn(msgspec.Struct):
    """What we accept in a JSON header; unknown keys (serializeTypeCurrentRPC...) are ignored."""

    code: Int32
    language: str | int | None = None
    version: Int32 = 0
    opaque: Int32 = 0
    flag: Int32 = 0
    remark: str | None = None
    extFields: dict[str, ExtScalar] | None = None


class _OpaqueProbe(msgspec.Struct):
    opaque: int | None = None


class _JsonHeaderOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Key order = fastjson's sorted order, the shape Java brokers send."""

    code: int
    extFields: dict[str, str]
    flag: int
    language: str
    opaque: int
    remark: str | None = None
    serializeTypeCurrentRPC: str
    version: int


_JSON_IN = msgspec.json.Decoder(_JsonHeaderIn)
_PROBE = msgspec.json.Decoder(_OpaqueProbe)
_JSON_OUT = msgspec.json.Encoder()
_LANG_BY_NUMBER = {m.value: m.name for m in LanguageCode}


# ----------------------------------------------------------------------------------- encoding


def encode_json(cmd: RemotingCommand) -> bytes:
    """``cmd``'s JSON header (no length fields)."""
    return _JSON_OUT.encode(
        _JsonHeaderOut(
            code=cmd.code,
            extFields=cmd.ext_fields,
            flag=cmd.flag,
            language=cmd.language,
            opaque=cmd.opaque,
            remark=cmd.remark,
            serializeTypeCurrentRPC="JSON",
            version=cmd.version,
        )
    )


def encode_rocketmq(cmd: RemotingCommand) -> bytes:
    """``cmd``'s ROCKETMQ binary header (no length fields)."""
    try:
        language = LanguageCode[cmd.language].value
    except KeyError:
        language = LanguageCode.OTHER.value
    remark = cmd.remark.encode() if cmd.remark else b""
    ext = bytearray()
    for key, value in cmd.ext_fields.items():
        k = key.encode()
        v = value.encode()
        ext += _BIN_SHORT.pack(len(k))
        ext += k
        ext += _BIN_INT.pack(len(v))
        ext += v
    return b"".join(
        (
            _BIN_FIXED.pack(cmd.code, language, cmd.version, cmd.opaque, cmd.flag, len(remark)),
            remark,
            _BIN_INT.pack(len(ext)),
            ext,
        )
    )


# ----------------------------------------------------------------------------------- decoding


def probe_opaque(stype: int, header: bytes) -> int | None:
    """The request id of a header not decoded (too large), when it can be read: a ROCKETMQ
    header's at its fixed place, a JSON one's by a decode that skips every other field
    (builds nothing of them, so a large header costs no more than its bytes)."""
    if stype == SerializeType.ROCKETMQ:
        if len(header) < _BIN_FIXED.size:
            return None
        return int(_BIN_FIXED.unpack_from(header)[3])
    return _probe_opaque(header)


def _probe_opaque(data: bytes) -> int | None:
    try:
        opaque = _PROBE.decode(data).opaque
    except Exception:  # anything: the probe is best effort
        return None
    if isinstance(opaque, int) and _INT32_MIN <= opaque <= _INT32_MAX:
        return opaque
    return None


def _normalise_ext(ext: dict[str, ExtScalar]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in ext.items():
        text = ext_value(value)
        if text is not None:
            out[key] = text
    return out


def _language_name(language: str | int | None) -> str:
    if language is None:
        return LanguageCode.OTHER.name
    if isinstance(language, int):
        return _LANG_BY_NUMBER.get(language, LanguageCode.OTHER.name)
    return language


def decode_json(src: bytes, start: int, end: int, body: bytes) -> RemotingCommand:
    """The command whose JSON header is ``src[start:end]``, with ``body``."""
    data = src[start:end]
    try:
        h = _JSON_IN.decode(data)
    except Exception as exc:  # msgspec errors, RecursionError on deep nesting, MemoryError
        raise ProtocolError(
            f"bad JSON header: {exc}", fatal=False, opaque=_probe_opaque(data)
        ) from None
    ext: dict[str, Any] | None = h.extFields
    if ext is None:
        ext = {}
    else:
        for value in ext.values():
            if value.__class__ is not str:
                try:
                    ext = _normalise_ext(ext)
                except ValueError as exc:  # a number too long to print
                    raise ProtocolError(
                        f"bad JSON header: extFields: {exc}", fatal=False, opaque=h.opaque
                    ) from None
                break
    return RemotingCommand(
        h.code,
        _language_name(h.language),
        h.version,
        h.opaque,
        h.flag,
        h.remark,
        ext,
        body,
    )


def decode_rocketmq(src: bytes, start: int, end: int, body: bytes) -> RemotingCommand:
    """The command whose ROCKETMQ header is ``src[start:end]``, with ``body``."""
    if end - start < _BIN_FIXED.size:
        raise ProtocolError(
            f"ROCKETMQ header of {end - start} bytes is shorter than {_BIN_FIXED.size}", fatal=False
        )
    code, lang, version, opaque, flag, remark_len = _BIN_FIXED.unpack_from(src, start)

    def bad(reason: str) -> ProtocolError:
        return ProtocolError(f"bad ROCKETMQ header: {reason}", fatal=False, opaque=opaque)

    pos = start + _BIN_FIXED.size
    if remark_len < 0 or remark_len > end - pos:
        raise bad(f"remark length {remark_len} exceeds the {end - pos} bytes left")
    try:
        remark = src[pos : pos + remark_len].decode() if remark_len else None
        pos += remark_len
        if end - pos < 4:
            raise bad("extFields length missing")
        (ext_len,) = _BIN_INT.unpack_from(src, pos)
        pos += 4
        if ext_len < 0 or ext_len != end - pos:
            raise bad(f"extFields length {ext_len} does not match the {end - pos} bytes left")
        ext: dict[str, str] = {}
        while pos < end:
            if end - pos < 2:
                raise bad("truncated extFields key length")
            (klen,) = _BIN_SHORT.unpack_from(src, pos)
            pos += 2
            if klen < 0 or klen > end - pos:
                raise bad(f"extFields key length {klen} exceeds the {end - pos} bytes left")
            key = src[pos : pos + klen].decode()
            pos += klen
            if end - pos < 4:
                raise bad("truncated extFields value length")
            (vlen,) = _BIN_INT.unpack_from(src, pos)
            pos += 4
            if vlen < 0 or vlen > end - pos:
                raise bad(f"extFields value length {vlen} exceeds the {end - pos} bytes left")
            ext[key] = src[pos : pos + vlen].decode()
            pos += vlen
    except UnicodeDecodeError as exc:
        raise bad(f"invalid UTF-8: {exc.reason}") from None
    name = _LANG_BY_NUMBER.get(lang, LanguageCode.OTHER.name)
    return RemotingCommand(code, name, version, opaque, flag, remark, ext, body)
