"""Frames of the RocketMQ remoting protocol: encode, and an incremental, bounded decoder.

Wire layout (all integers big-endian)::

    int32 length                         = 4 + headerLen + bodyLen (not counting itself)
    int32 (serializeType << 24) | headerLen
    header (serializeType 0: JSON object; 1: ROCKETMQ binary header)
    body                                 the rest, may be empty

Limits are checked from the 8-byte prefix, before any body byte is buffered: a declared length
above ``max_frame`` (or below 4, or negative) fails at once (KAFKA-14063: never size anything
by a declared length). A header above ``max_header`` inside such a frame does not break the
stream: the frame is read whole (within ``max_frame``) and refused alone, like a bad header,
with its request id when that can be read (RocketMQ bounds the header by the frame only; a
server answers that request and goes on). Errors: ``ProtocolError(fatal=True)`` when the
stream can no longer be framed, ``ProtocolError(fatal=False, opaque=...)`` when one whole frame
was read but its header is bad or too large (``opaque`` is None when even the request id could
not be read). The two header codecs are ``runtime.remoting.frame_header``.
"""

from __future__ import annotations

import struct

from runtime.errors import ProtocolError
from runtime.remoting.codes import SerializeType
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame_header import (
    decode_json,
    decode_rocketmq,
    encode_json,
    encode_rocketmq,
    probe_opaque,
)

MAX_FRAME = 16 * 1024 * 1024
"""Largest accepted value of the length field (RocketMQ's FRAME_MAX_LENGTH)."""

MAX_HEADER = 256 * 1024
"""Largest header (JSON or binary) a server decodes, in bytes; a larger one (in a frame within
``MAX_FRAME``) is refused alone, the connection goes on. RocketMQ has no limit below the
frame's, and the largest header of a send it can store is ~200 KiB: 32,767 bytes of properties
(the commit log's 16-bit length), each written as a 6-byte escape by a JSON writer that
escapes the properties' separators (0x01, 0x02) or <, >, & (Go's encoding/json), plus the
other fields. A bound still: a decoded header costs several times its size (many tiny keys)."""

MAX_RESPONSE_HEADER = 8 * 1024 * 1024
"""Largest header a client accepts on its own connections, and a server writes in a response:
an answer to a batch names every message's id in its header (RocketMQ's comma-joined
``msgId``: ~33 bytes a message, 2,000 small messages pass 64 KiB), and RocketMQ's clients take
any size."""

MAX_RESPONSE_FRAME = 128 * 1024 * 1024
"""Largest frame a client reads on its own connections, and a server writes in a response:
whole-table answers grow with the broker (GET_ALL_CONSUMER_OFFSET for 40,000 offsets of long
names, GET_ALL_TOPIC_CONFIG for a few hundred thousand topics pass 16 MiB), and a slave that
could not read its master's offsets never linked. Requests stay bounded by ``MAX_FRAME``.
RocketMQ's Java clients read 16 MiB (``com.rocketmq.remoting.frameMaxLength``)."""

_MAX_HEADER_FIELD = 0xFFFFFF  # headerLen has 24 bits

_LENGTH = struct.Struct(">i")
_HWORD = struct.Struct(">I")
_PREFIX = struct.Struct(">iI")


# ----------------------------------------------------------------------------------- encoding


def encode_head(cmd: RemotingCommand, serialize_type: int = SerializeType.JSON) -> bytes:
    """The frame without its body: length, header word, header. Send ``cmd.body`` right after
    (lets the network layer write a large body without concatenating it)."""
    if serialize_type == SerializeType.JSON:
        header = encode_json(cmd)
    elif serialize_type == SerializeType.ROCKETMQ:
        header = encode_rocketmq(cmd)
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


def _split_hword(hword: int, length: int) -> tuple[int, int]:
    stype = hword >> 24
    hlen = hword & _MAX_HEADER_FIELD
    if stype != SerializeType.JSON and stype != SerializeType.ROCKETMQ:
        raise _fatal(f"unknown serialize type {stype}")
    if hlen > length - 4:
        raise _fatal(f"header length {hlen} exceeds frame length {length} - 4")
    return stype, hlen


def _decode_at(
    src: bytes, start: int, end: int, stype: int, hlen: int, max_header: int
) -> RemotingCommand:
    """Decode the frame src[start:end] (from its length field on); prefix already checked."""
    hstart = start + 8
    bstart = hstart + hlen
    if hlen > max_header:
        raise ProtocolError(
            f"header length {hlen} exceeds the limit of {max_header} bytes",
            fatal=False,
            opaque=probe_opaque(stype, src[hstart:bstart]),
        )
    body = src[bstart:end] if bstart < end else b""
    if stype == SerializeType.JSON:
        return decode_json(src, hstart, bstart, body)
    return decode_rocketmq(src, hstart, bstart, body)


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
    stype, hlen = _split_hword(hword, length)
    return _decode_at(frame, 0, len(frame), stype, hlen, max_header)


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
        max_header = self.max_header
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
                stype, hlen = _split_hword(hword, length)
                total = length + 4
                if avail < total:
                    need = total
                    break
                start = pos
                pos += total
                out.append(_decode_at(src, start, pos, stype, hlen, max_header))
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
            stype, hlen = _split_hword(hword, length)
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
        return _decode_at(src, 0, total, stype, hlen, self.max_header)
