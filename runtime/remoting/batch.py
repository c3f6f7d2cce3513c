"""The body of a batch send (SEND_BATCH_MESSAGE 320, or any send with batch=true).

Concatenated entries, big-endian::

    int32 totalSize (= 22 + bodyLen + propertiesLen)   int32 magic (0)   int32 bodyCRC (0)
    int32 flag   int32 bodyLen   body   int16 propertiesLen   properties (UTF-8)

Topic and queue come from the request header. Every declared size is checked against the bytes
that remain before anything is sliced; any inconsistency is ``ProtocolError(fatal=False)``.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from runtime.errors import ProtocolError

_FIXED = struct.Struct(">iiiii")  # totalSize, magic, bodyCRC, flag, bodyLen
_PROPS_LEN = struct.Struct(">h")
_OVERHEAD = _FIXED.size + _PROPS_LEN.size  # 22
MAX_PROPERTIES = 32767


class BatchEntry(msgspec.Struct, frozen=True):
    """One message of a batch: its flag, body and properties string."""

    flag: int
    body: bytes
    properties: str = ""


def decode_batch(body: bytes, *, opaque: int | None = None) -> list[BatchEntry]:
    """Split a batch body into entries. Empty body -> []. Magic and CRC are not checked (clients
    send 0). Raises ProtocolError(fatal=False, opaque) on any size inconsistency or bad UTF-8."""
    return [BatchEntry(flag, data, props) for flag, data, props in split_batch(body, opaque=opaque)]


def split_batch(body: bytes, *, opaque: int | None = None) -> list[tuple[int, bytes, str]]:
    """``decode_batch`` as plain ``(flag, body, properties)`` tuples: the broker's hot path (a
    batch of 100 is split in ~60 µs). Same checks, same errors."""
    data = body if body.__class__ is bytes else bytes(body)
    end = len(data)
    pos = 0
    out: list[tuple[int, bytes, str]] = []
    add = out.append
    unpack_fixed = _FIXED.unpack_from
    unpack_len = _PROPS_LEN.unpack_from
    while pos < end:
        left = end - pos
        if left < _OVERHEAD:
            raise _bad(out, pos, opaque, f"{left} bytes left, an entry needs at least {_OVERHEAD}")
        total, _magic, _crc, flag, body_len = unpack_fixed(data, pos)
        if total < _OVERHEAD or total > left:
            raise _bad(out, pos, opaque, f"totalSize {total} outside [{_OVERHEAD}, {left}]")
        if body_len < 0 or body_len > total - _OVERHEAD:
            raise _bad(out, pos, opaque, f"bodyLen {body_len} does not fit totalSize {total}")
        body_start = pos + 20
        props_at = body_start + body_len
        (props_len,) = unpack_len(data, props_at)
        if props_len < 0 or _OVERHEAD + body_len + props_len != total:
            raise _bad(
                out,
                pos,
                opaque,
                f"propertiesLen {props_len} + bodyLen {body_len} + 22 != totalSize {total}",
            )
        try:
            props = data[props_at + 2 : props_at + 2 + props_len].decode()
        except UnicodeDecodeError as exc:
            raise _bad(out, pos, opaque, f"properties are not UTF-8: {exc.reason}") from None
        add((flag, data[body_start:props_at], props))
        pos += total
    return out


def _bad(out: list[Any], pos: int, opaque: int | None, reason: str) -> ProtocolError:
    return ProtocolError(
        f"bad batch body: entry {len(out)} at byte {pos}: {reason}", fatal=False, opaque=opaque
    )


def encode_batch(entries: list[BatchEntry]) -> bytes:
    """The batch body for ``entries`` (magic and CRC written as 0, like the clients do)."""
    parts: list[bytes] = []
    for entry in entries:
        props = entry.properties.encode()
        if len(props) > MAX_PROPERTIES:
            raise ValueError(f"properties of {len(props)} bytes exceed {MAX_PROPERTIES}")
        total = _OVERHEAD + len(entry.body) + len(props)
        parts.append(_FIXED.pack(total, 0, 0, entry.flag, len(entry.body)))
        parts.append(entry.body)
        parts.append(_PROPS_LEN.pack(len(props)))
        parts.append(props)
    return b"".join(parts)
