"""Frames of the RocketMQ remoting protocol: encode, and an incremental, bounded decoder.

Wire layout (all integers big-endian)::

    int32 length                         = 4 + headerLen + bodyLen (not counting itself)
    int32 (serializeType << 24) | headerLen
    header (serializeType 0: JSON object; 1: ROCKETMQ binary header)
    body                                 the rest, may be empty

Limits are checked from the 8-byte prefix, before any body byte is buffered: a declared length
above ``max_frame`` (or below 4, or negative) fails at once (KAFKA-14063: never size anything
by a declared length). Errors: ``ProtocolError(fatal=True)`` when the stream can no longer be
framed, ``ProtocolError(fatal=False, opaque=...)`` when one whole frame was read but its header
is bad (``opaque`` is None when even the request id could not be read).
"""

from __future__ import annotations

import struct
from typing import Annotated, Any

import msgspec

from runtime.errors import ProtocolError
from runtime.remoting.codes import LanguageCode, SerializeType
from runtime.remoting.command import RemotingCommand, ext_value

MAX_FRAME = 16 * 1024 * 1024
"""Largest accepted value of the length field (RocketMQ's FRAME_MAX_LENGTH)."""

MAX_HEADER = 64 * 1024
"""Largest accepted header (JSON or binary) in bytes."""

_MAX_HEADER_FIELD = 0xFFFFFF  # headerLen has 24 bits
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

_LENGTH = struct.Struct(">i")
_HWORD = struct.Struct(">I")
_PREFIX = struct.Struct(">iI")
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


def _json_header(cmd: RemotingCommand) -> bytes:
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


def _rocketmq_header(cmd: RemotingCommand) -> bytes:
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


def encode_head(cmd: RemotingCommand, serialize_type: int = SerializeType.JSON) -> bytes:
    """The frame without its body: length, header word, header. Send ``cmd.body`` right after
    (lets the network layer write a large body without concatenating it)."""
    if serialize_type == SerializeType.JSON:
        header = _json_header(cmd)
    elif serialize_type == SerializeType.ROCKETMQ:
        header = _rocketmq_header(cmd)
    else:
        raise ValueError(f"unknown serialize type {serialize_type}")
    hlen = len(header)
    if hlen > _MAX_HEADER_FIELD:
        raise ValueError(f"header of {hlen} bytes does not fit the 24-bit header length")
    return _PREFIX.pack(4 + hlen + len(cmd.body), (int(serialize_type) << 24) | hlen) + header


def encode(cmd: RemotingCommand, serialize_type: int = SerializeType.JSON) -> bytes:
    """One complete frame. JSON unless asked otherwise (we always answer JSON)."""
    if not cmd.body:
        return encode_head(cmd, serialize_type)
    return b"".join((encode_head(cmd, serialize_type), cmd.body))


# ----------------------------------------------------------------------------------- decoding


def _fatal(reason: str) -> ProtocolError:
    return ProtocolError(reason, fatal=True)


def _check_length(length: int, max_frame: int) -> None:
    if length < 4:
        raise _fatal(f"frame length {length} is below 4")
    if length > max_frame:
        raise _fatal(f"frame length {length} exceeds the limit of {max_frame} bytes")


def _split_hword(hword: int, length: int, max_header: int) -> tuple[int, int]:
    stype = hword >> 24
    hlen = hword & _MAX_HEADER_FIELD
    if stype != SerializeType.JSON and stype != SerializeType.ROCKETMQ:
        raise _fatal(f"unknown serialize type {stype}")
    if hlen > length - 4:
        raise _fatal(f"header length {hlen} exceeds frame length {length} - 4")
    if hlen > max_header:
        raise _fatal(f"header length {hlen} exceeds the limit of {max_header} bytes")
    return stype, hlen


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


def _decode_json(src: bytes, start: int, end: int, body: bytes) -> RemotingCommand:
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


def _decode_rocketmq(src: bytes, start: int, end: int, body: bytes) -> RemotingCommand:
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


def _decode_at(src: bytes, start: int, end: int, stype: int, hlen: int) -> RemotingCommand:
    """Decode the frame src[start:end] (from its length field on); prefix already checked."""
    hstart = start + 8
    bstart = hstart + hlen
    body = src[bstart:end] if bstart < end else b""
    if stype == SerializeType.JSON:
        return _decode_json(src, hstart, bstart, body)
    return _decode_rocketmq(src, hstart, bstart, body)


def decode_frame(
    frame: bytes, *, max_frame: int = MAX_FRAME, max_header: int = MAX_HEADER
) -> RemotingCommand:
    """Decode exactly one complete frame INCLUDING its 4-byte length prefix (what ``encode``
    returns). Missing or extra bytes are a fatal ProtocolError."""
    frame = bytes(frame)
    if len(frame) < 8:
        raise _fatal(f"frame of {len(frame)} bytes is shorter than the 8-byte prefix")
    length, hword = _PREFIX.unpack_from(frame, 0)
    _check_length(length, max_frame)
    if length != len(frame) - 4:
        raise _fatal(f"frame length {length} does not match the {len(frame) - 4} bytes given")
    stype, hlen = _split_hword(hword, length, max_header)
    return _decode_at(frame, 0, len(frame), stype, hlen)


def decode_payload(
    payload: bytes, *, max_frame: int = MAX_FRAME, max_header: int = MAX_HEADER
) -> RemotingCommand:
    """Decode one frame WITHOUT its length prefix (header word, header, body), as handed over by
    a reader that already consumed the length field."""
    return decode_frame(
        _LENGTH.pack(len(payload)) + bytes(payload), max_frame=max_frame, max_header=max_header
    )


class FrameDecoder:
    """Incremental decoder for one connection: bytes in arbitrary pieces -> commands.

    Memory stays bounded by ``max_frame`` plus one chunk: a declared length is checked as soon as
    its 4 bytes arrive and nothing is ever allocated from it. Bytes of an incomplete frame are
    appended to one bytearray (amortised O(1)) and copied out once when the frame completes.

    Two ways to use it:

    - ``feed(data) -> list``: every command the bytes complete. On a non-fatal error the bad
      frame is consumed and the commands decoded before it in that call are kept: the next call
      returns them first. So after answering the error, call ``feed(b"")`` to go on with what is
      already buffered.
    - ``push(data)`` then ``next_command()`` until None: one command or one error per call, in
      stream order (simplest for a session loop).

    A fatal ProtocolError poisons the decoder (every later call raises it again): close the
    connection.
    """

    __slots__ = ("_buf", "_failed", "_need", "_ready", "max_frame", "max_header")

    def __init__(self, max_frame: int = MAX_FRAME, max_header: int = MAX_HEADER) -> None:
        self.max_frame = max_frame
        self.max_header = max_header
        self._buf = bytearray()
        self._need = 0
        self._ready: list[RemotingCommand] = []
        self._failed: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf)

    @property
    def pending(self) -> bool:
        """True when a call to ``feed(b"")`` may return commands without new bytes."""
        return bool(self._ready) or (bool(self._buf) and len(self._buf) >= self._need)

    def feed(self, data: bytes) -> list[RemotingCommand]:
        """Take the next bytes of the stream; return every command they complete, in order."""
        if self._failed is not None:
            raise self._failed
        out = self._ready
        self._ready = []
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return out
            src = bytes(buf)
            buf.clear()
        elif not data:
            return out
        else:
            src = data if data.__class__ is bytes else bytes(data)
        n = len(src)
        pos = 0
        need = 0
        max_frame = self.max_frame
        try:
            while True:
                avail = n - pos
                if avail < 4:
                    need = 4
                    break
                (length,) = _LENGTH.unpack_from(src, pos)
                _check_length(length, max_frame)
                if avail < 8:
                    need = 8
                    break
                (hword,) = _HWORD.unpack_from(src, pos + 4)
                stype, hlen = _split_hword(hword, length, self.max_header)
                total = length + 4
                if avail < total:
                    need = total
                    break
                start = pos
                pos += total
                out.append(_decode_at(src, start, pos, stype, hlen))
        except ProtocolError as exc:
            if exc.fatal:
                self._failed = exc
                self._buf = bytearray()
                self._ready = []
                raise
            self._ready = out
            self._need = 0
            if pos < n:
                buf += memoryview(src)[pos:]
            raise
        if pos < n:
            buf += memoryview(src)[pos:]
        self._need = need
        return out

    def push(self, data: bytes) -> None:
        """Buffer bytes without decoding; take commands out with ``next_command``."""
        if self._failed is not None:
            raise self._failed
        self._buf += data

    def next_command(self) -> RemotingCommand | None:
        """The next command from what is buffered, or None when no complete frame is left
        (h11 style: ``push`` bytes, then call until None). Each call returns one command or
        raises one ProtocolError, in stream order; a non-fatal error consumes its frame."""
        if self._failed is not None:
            raise self._failed
        if self._ready:
            return self._ready.pop(0)
        buf = self._buf
        avail = len(buf)
        try:
            if avail < 4:
                return None
            (length,) = _LENGTH.unpack_from(buf, 0)
            _check_length(length, self.max_frame)
            if avail < 8:
                return None
            (hword,) = _HWORD.unpack_from(buf, 4)
            stype, hlen = _split_hword(hword, length, self.max_header)
        except ProtocolError as exc:
            self._failed = exc
            self._buf = bytearray()
            raise
        total = length + 4
        if avail < total:
            self._need = total
            return None
        with memoryview(buf) as view:
            src = view[:total].tobytes()
        del buf[:total]
        self._need = 0
        return _decode_at(src, 0, total, stype, hlen)
