"""RocketMQ's compressed REGISTER_BROKER body: what a broker sends with the request header's
``compressed`` true (RocketMQ's broker config ``compressedRegister``).

The whole body is one zlib stream (RocketMQ's broker deflates at its best compression; any level
inflates the same). Inflated, it holds, every integer a big-endian int32 and every text UTF-8::

    length, DataVersion JSON            {"timestamp":...,"counter":...} (5.x adds stateVersion)
    count, then per topic:
        length, topic line              "name readQueueNums writeQueueNums perm filterType"
                                        (5.x: then a space and the attributes JSON, maybe empty)
    length, filter server list JSON     ["host:port", ...]
    count, then per entry:              (5.x only: a 4.x broker's body ends before it)
        length, TopicQueueMappingInfo JSON

Topic lines: ``filterType`` is SINGLE_TAG or MULTI_TAG; the numbers are decimal int32s. The line
carries no topic sys flag and no order flag: a topic registered this way has sysFlag 0 and
order false at the name server (as in RocketMQ). A topic name never holds a space (brokers
refuse such names), so the fifth space ends the fixed fields and the rest is the attributes
JSON, spaces and all. ``encode_topic_line`` writes 4.x's five fields when a topic has no
attributes (RocketMQ 4's name server takes exactly five; 5's takes five or six) and 5.x's six
otherwise.

The static-topic mapping entries are kept as raw JSON bytes, not parsed: actormq serves no
static topics, and RocketMQ's fastjson may write their ``currIdMap`` with bare integer keys,
which is not JSON. Bytes after the last field are ignored, as RocketMQ's reader does.

``decode_register_body`` raises only ``ProtocolError`` (fatal=False): a stream that does not
inflate, or inflates past the limit (a "bomb"), truncated fields, negative lengths or counts,
bad numbers, text that is not UTF-8, JSON that does not decode.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterable, Mapping

import msgspec

from runtime.errors import ProtocolError
from runtime.inflate import InflateLimitError, bounded_zlib
from runtime.remoting.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
    decode_body,
)

MAX_INFLATED_REGISTER = 64 * 1024 * 1024
MAX_REGISTER_TOPICS = 500_000
"""Topics one compressed registration may name: 3 million short lines inflate from 160 KB to
64 MiB and took 7 s of CPU to decode, 2.3 million distinct ones 400 MB of memory (a review
finding); a broker with more is an error to fix, not a table to route."""
"""The most bytes a compressed REGISTER_BROKER body is inflated to. The binary form takes ~45
bytes a topic, so this is over a million topics; a body that inflates further is refused (a
2.9 MB body once stood for 3 GB)."""

COMPRESS_LEVEL = 9
"""zlib level of the bodies actormq's brokers send (RocketMQ's broker: BEST_COMPRESSION)."""

FILTER_TYPES = frozenset({"SINGLE_TAG", "MULTI_TAG"})
"""RocketMQ's TopicFilterType names."""

_INT = struct.Struct(">i")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,10}")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_FILTER_SERVERS = msgspec.json.Decoder(list[str] | None)
_ATTRIBUTES = msgspec.json.Decoder(dict[str, str] | None)
_ENCODER = msgspec.json.Encoder()


def body_crc32(body: bytes) -> int:
    """The header's ``bodyCrc32`` of a REGISTER_BROKER body as sent (compressed or JSON):
    RocketMQ's ``UtilAll.crc32``, zlib's CRC-32 masked to a non-negative int32 (0 for no body).
    RocketMQ's name server refuses a registration whose nonzero ``bodyCrc32`` differs."""
    return zlib.crc32(body) & 0x7FFFFFFF


class CompressedRegisterBody(msgspec.Struct, frozen=True, kw_only=True):
    """A compressed REGISTER_BROKER body, decoded: ``body`` as the JSON form would carry it
    (topics without sys flag or order), and the 5.x static-topic mapping entries, raw."""

    body: RegisterBrokerBody
    queue_mappings: tuple[bytes, ...] = ()


# ------------------------------------------------------------------------------------ topics


def encode_topic_line(tc: TopicConfig) -> str:
    """One topic as the binary form's line (see the module docstring)."""
    line = (
        f"{tc.topic_name} {tc.read_queue_nums} {tc.write_queue_nums} {tc.perm} "
        f"{tc.topic_filter_type}"
    )
    if tc.attributes:
        line += " " + _ENCODER.encode(tc.attributes).decode()
    return line


def _int32(text: str, what: str, line: str) -> int:
    if _DECIMAL.fullmatch(text) is None:
        raise ProtocolError(f"register body: topic line {line[:80]!r}: bad {what}", fatal=False)
    value = int(text)
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ProtocolError(
            f"register body: topic line {line[:80]!r}: {what} out of range", fatal=False
        )
    return value


def decode_topic_line(line: str) -> TopicConfig:
    """A topic line (4.x's five fields or 5.x's six) -> TopicConfig; ProtocolError if bad."""
    fields = line.split(" ", 5)
    if len(fields) < 5 or not fields[0]:
        raise ProtocolError(f"register body: bad topic line {line[:80]!r}", fatal=False)
    name, read, write, perm, filter_type = fields[:5]
    if filter_type not in FILTER_TYPES:
        raise ProtocolError(
            f"register body: topic {name[:80]!r}: unknown filter type {filter_type[:40]!r}",
            fatal=False,
        )
    attributes: dict[str, str] | None = None
    rest = fields[5].strip() if len(fields) == 6 else ""
    if rest:
        try:
            attributes = _ATTRIBUTES.decode(rest)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            raise ProtocolError(
                f"register body: topic {name[:80]!r}: bad attributes: {exc}", fatal=False
            ) from None
    return TopicConfig(
        topic_name=name,
        read_queue_nums=_int32(read, "readQueueNums", line),
        write_queue_nums=_int32(write, "writeQueueNums", line),
        perm=_int32(perm, "perm", line),
        topic_filter_type=filter_type,
        attributes=attributes or {},
    )


# ------------------------------------------------------------------------------------ encode


def _framed(data: bytes) -> bytes:
    return _INT.pack(len(data)) + data


def encode_register_body(
    body: RegisterBrokerBody,
    queue_mappings: Iterable[bytes] = (),
    level: int = COMPRESS_LEVEL,
) -> bytes:
    """``body`` in the compressed binary form (5.x's layout: a mapping count is always
    written; RocketMQ 4's name server stops reading before it)."""
    wrapper = body.topic_config_serialize_wrapper
    topics: Mapping[str, TopicConfig] = wrapper.topic_config_table
    mappings = list(queue_mappings)
    parts = [_framed(_ENCODER.encode(wrapper.data_version)), _INT.pack(len(topics))]
    parts.extend(_framed(encode_topic_line(tc).encode()) for tc in topics.values())
    parts.append(_framed(_ENCODER.encode(list(body.filter_server_list))))
    parts.append(_INT.pack(len(mappings)))
    parts.extend(_framed(m) for m in mappings)
    return zlib.compress(b"".join(parts), level)


# ------------------------------------------------------------------------------------ decode


class _Reader:
    """Reads the inflated bytes front to back; every problem is a ProtocolError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def int32(self, what: str) -> int:
        if self.remaining < 4:
            raise ProtocolError(f"register body: truncated at {what}", fatal=False)
        (value,) = _INT.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def count(self, what: str) -> int:
        value = self.int32(what)
        if value < 0:
            raise ProtocolError(f"register body: negative {what} {value}", fatal=False)
        # every entry takes at least its 4-byte length: a larger count cannot be honest
        if value > self.remaining // 4:
            raise ProtocolError(
                f"register body: {what} {value} exceeds the {self.remaining} bytes left",
                fatal=False,
            )
        return value

    def framed(self, what: str) -> bytes:
        length = self.int32(f"{what} length")
        if length < 0:
            raise ProtocolError(f"register body: negative {what} length {length}", fatal=False)
        if length > self.remaining:
            raise ProtocolError(
                f"register body: {what} of {length} bytes, {self.remaining} left", fatal=False
            )
        out = self.data[self.pos : self.pos + length]
        self.pos += length
        return out

    def text(self, what: str) -> str:
        raw = self.framed(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"register body: {what} is not UTF-8: {exc}", fatal=False) from None


def _inflate(data: bytes, limit: int) -> bytes:
    try:
        return bounded_zlib(data, limit)
    except InflateLimitError:
        raise ProtocolError(
            f"register body: inflates past {limit} bytes: refused", fatal=False
        ) from None
    except zlib.error as exc:
        raise ProtocolError(f"register body does not inflate: {exc}", fatal=False) from None


def decode_register_body(
    data: bytes, *, limit: int = MAX_INFLATED_REGISTER, opaque: int | None = None
) -> CompressedRegisterBody:
    """The compressed binary form -> CompressedRegisterBody (4.x's or 5.x's layout); inflates
    at most ``limit`` bytes. Raises only ``ProtocolError(fatal=False, opaque=opaque)``."""
    try:
        return _decode(_inflate(data, limit))
    except ProtocolError as exc:
        raise ProtocolError(exc.reason, fatal=False, opaque=opaque) from None
    except MemoryError:
        raise ProtocolError("register body: out of memory", fatal=False, opaque=opaque) from None


def _decode(raw: bytes) -> CompressedRegisterBody:
    reader = _Reader(raw)
    version = decode_body(DataVersion, reader.framed("data version"))
    topics: dict[str, TopicConfig] = {}
    count = reader.count("topic count")
    if count > MAX_REGISTER_TOPICS:
        raise ProtocolError(
            f"register body: {count} topics, more than {MAX_REGISTER_TOPICS}", fatal=False
        )
    for _ in range(count):
        tc = decode_topic_line(reader.text("topic line"))
        topics[tc.topic_name] = tc
    filter_json = reader.framed("filter server list")
    try:
        servers = _FILTER_SERVERS.decode(filter_json) or []
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeError) as exc:
        raise ProtocolError(f"register body: bad filter server list: {exc}", fatal=False) from None
    mappings: list[bytes] = []
    if reader.remaining:  # 5.x: the static-topic mappings follow
        mappings.extend(
            reader.framed("topic queue mapping")
            for _ in range(reader.count("topic queue mapping count"))
        )
    wrapper = TopicConfigSerializeWrapper(topic_config_table=topics, data_version=version)
    return CompressedRegisterBody(
        body=RegisterBrokerBody(topic_config_serialize_wrapper=wrapper, filter_server_list=servers),
        queue_mappings=tuple(mappings),
    )
