"""The commit-log record: RocketMQ's V1 layout (IPv4 hosts), which is also the PULL wire format.

```
 0 int32 totalSize        4 int32 magic 0xDAA320A7 (blank end-of-segment marker 0xCBD43194)
 8 int32 bodyCRC         12 int32 queueId          16 int32 flag
20 int64 queueOffset     28 int64 physicalOffset    36 int32 sysFlag
40 int64 bornTimestamp   48 bornHost ipv4(4)+port(int32)
56 int64 storeTimestamp  64 storeHost ipv4(4)+port(int32)
72 int32 reconsumeTimes  76 int64 preparedTransactionOffset
84 int32 bodyLen + body, int8 topicLen + topic, int16 propsLen + props
```

Everything is big-endian. Encoding is one precompiled ``Struct.pack_into`` for the fixed part of
each record into one preallocated ``bytearray`` per batch; see ``encode_into``.

Also here: Java ``String.hashCode`` (tag hashes in consume queues), the offset message id (store
host + physical offset), topic validation, the property-string parser used on the hot path, and
``DispatchEntry``: what one stored record contributes to consume queues and the key index.
"""

from __future__ import annotations

import re
import socket
import struct
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import msgspec

from runtime.remoting import properties as P

MAGIC = 0xDAA320A7
BLANK_MAGIC = 0xCBD43194
HEADER = struct.Struct(">iIiiiqqiq4siq4siiqi")
"""Fixed part through bodyLen: 88 bytes."""
HEADER_SIZE = HEADER.size
assert HEADER_SIZE == 88
BLANK = struct.Struct(">iI")
BLANK_SIZE = BLANK.size  # a record must leave room for this marker in its segment
SIZE_MAGIC = struct.Struct(">iI")
_H = struct.Struct(">h")
_PROPS_LEN = struct.Struct(">h")
MIN_RECORD_SIZE = HEADER_SIZE + 1 + 2
MAX_PROPERTIES_SIZE = 32767
TOPIC_MAX_LENGTH = 127

# sysFlag bits (RocketMQ MessageSysFlag)
COMPRESSED_FLAG = 0x1
MULTI_TAGS_FLAG = 0x2
TRANSACTION_NOT_TYPE = 0x0
TRANSACTION_PREPARED_TYPE = 0x4
TRANSACTION_COMMIT_TYPE = 0x8
TRANSACTION_ROLLBACK_TYPE = 0xC
TRANSACTION_MASK = 0xC
BORNHOST_V6_FLAG = 0x10
STOREHOST_V6_FLAG = 0x20

# property names the store reads (RocketMQ MessageConst)
PROPERTY_KEYS = P.KEYS
PROPERTY_TAGS = P.TAGS
PROPERTY_UNIQ_KEY = P.UNIQ_KEY
PROPERTY_DELAY = P.DELAY
PROPERTY_WAIT = P.WAIT
NAME_VALUE_SEPARATOR = P.NAME_VALUE_SEPARATOR
PROPERTY_SEPARATOR = P.PROPERTY_SEPARATOR
KEY_SEPARATOR = P.KEY_SEPARATOR
SCHEDULE_TOPIC = "SCHEDULE_TOPIC_XXXX"
TOPIC_DELETED_MARKER = "rmq_sys_TOPIC_DELETED"
"""The topic of deletion markers (``runtime.store.fences``): never a client's topic (the
TopicConfig refuses to create it and the writer refuses client records for it)."""

_TOPIC_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")


def body_crc(body: bytes) -> int:
    """RocketMQ's body CRC: zlib CRC-32 masked to a non-negative int32."""
    return zlib.crc32(body) & 0x7FFFFFFF


@lru_cache(maxsize=8192)
def java_hash(text: str) -> int:
    """Java ``String.hashCode()`` as a signed int32 (over UTF-16 code units)."""
    h = 0
    data = text.encode("utf-16-be", "surrogatepass")
    for (unit,) in struct.iter_unpack(">H", data):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - 0x100000000 if h & 0x80000000 else h


def tags_code(tags: str | None) -> int:
    """The consume-queue tag code of a TAGS property (0 when there is none)."""
    return java_hash(tags) if tags else 0


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` is not a legal topic name (RocketMQ's TopicValidator), or None."""
    if not topic:
        return "topic is empty"
    if len(topic) > TOPIC_MAX_LENGTH:
        return f"topic is longer than {TOPIC_MAX_LENGTH} characters"
    if not _TOPIC_RE.match(topic):
        return f"topic {topic!r} contains characters other than [%|a-zA-Z0-9_-]"
    return None


@lru_cache(maxsize=1024)
def reserved_problem(topic: str) -> str | None:
    """Why a client may not create or send to ``topic`` although its name is legal, or None."""
    if topic == TOPIC_DELETED_MARKER:
        return f"topic {topic} is reserved for the store's deletion markers"
    return None


def host_bytes(ip: str) -> bytes:
    """IPv4 dotted quad -> 4 bytes."""
    return socket.inet_aton(ip)


def offset_msg_id(store_ip: bytes, store_port: int, physical_offset: int) -> str:
    """RocketMQ's offset message id: hex of store ip(4) + port(int32) + physical offset(int64)."""
    return (store_ip + struct.pack(">iq", store_port, physical_offset)).hex().upper()


class OffsetMsgId(NamedTuple):
    ip: str
    port: int
    physical_offset: int


def decode_offset_msg_id(msg_id: str) -> OffsetMsgId:
    """Inverse of ``offset_msg_id``; raises ValueError for anything but a 32-hex-digit V1 id."""
    if len(msg_id) != 32:
        raise ValueError(f"offset message id must be 32 hex digits, got {len(msg_id)}")
    raw = bytes.fromhex(msg_id)
    port, offset = struct.unpack(">iq", raw[4:])
    return OffsetMsgId(socket.inet_ntoa(raw[:4]), port, offset)


def parse_properties(text: str) -> dict[str, str]:
    """``name\\x01value\\x02`` repeated -> dict (``runtime.remoting.properties``)."""
    return P.decode_properties(text)


def encode_properties(props: dict[str, str]) -> str:
    return P.encode_properties(props)


def parse_delay_levels(spec: str) -> tuple[int, ...]:
    """``"1s 5s 10s 30s 1m ... 2h"`` -> delays in milliseconds."""
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    out = []
    for item in spec.split():
        out.append(int(item[:-1]) * units[item[-1]])
    return tuple(out)


DEFAULT_DELAY_LEVELS_SPEC = P.DELAY_LEVELS
DEFAULT_DELAY_LEVELS = parse_delay_levels(DEFAULT_DELAY_LEVELS_SPEC)


class PutRecord(msgspec.Struct, frozen=True, gc=False):
    """One message to append, as the remoting layer decoded it.

    ``properties`` is RocketMQ's encoded property string. ``born_host`` is 4 IPv4 bytes
    (``host_bytes("10.0.0.1")``).
    """

    topic: str
    queue_id: int
    body: bytes
    properties: str = ""
    flag: int = 0
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: bytes = b"\x7f\x00\x00\x01"
    born_port: int = 0
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0


class StoredRecord(msgspec.Struct, gc=False):
    """A decoded commit-log record."""

    total_size: int
    body_crc: int
    queue_id: int
    flag: int
    queue_offset: int
    physical_offset: int
    sys_flag: int
    born_timestamp: int
    born_host: bytes
    born_port: int
    store_timestamp: int
    store_host: bytes
    store_port: int
    reconsume_times: int
    prepared_transaction_offset: int
    body: bytes
    topic: str
    properties: str

    @property
    def msg_id(self) -> str:
        return offset_msg_id(self.store_host, self.store_port, self.physical_offset)

    def property_map(self) -> dict[str, str]:
        return parse_properties(self.properties)


class DispatchEntry(NamedTuple):
    """What one stored record contributes to its consume queue and the key index."""

    topic: str
    queue_id: int
    queue_offset: int
    physical_offset: int
    size: int
    tags_code: int
    store_timestamp: int
    sys_flag: int
    keys: tuple[str, ...]  # index keys: UNIQ_KEY then each of KEYS (without the topic prefix)

    @property
    def takes_queue_offset(self) -> bool:
        return takes_queue_offset(self.sys_flag)


def takes_queue_offset(sys_flag: int) -> bool:
    """Prepared and rolled-back transaction records get no queue offset and no queue entry."""
    tran = sys_flag & TRANSACTION_MASK
    return tran != TRANSACTION_PREPARED_TYPE and tran != TRANSACTION_ROLLBACK_TYPE


_PROP_RE = re.compile(
    "(?:^|\x02)(" + "|".join((P.TAGS, P.KEYS, P.UNIQ_KEY, P.DELAY, P.WAIT)) + ")\x01([^\x02]*)"
)


def scan_properties(properties: str) -> tuple[str | None, str | None, str | None, str | None, bool]:
    """(TAGS, KEYS, UNIQ_KEY, DELAY, wait-store-ok) from a property string, in one regex pass."""
    tags = keys = uniq = delay = None
    wait = True
    if properties:
        for name, value in _PROP_RE.findall(properties):
            if name == PROPERTY_TAGS:
                tags = value
            elif name == PROPERTY_UNIQ_KEY:
                uniq = value
            elif name == PROPERTY_KEYS:
                keys = value
            elif name == PROPERTY_DELAY:
                delay = value
            else:
                wait = value != "false"
    return tags, keys, uniq, delay, wait


def index_keys(sys_flag: int, keys: str | None, uniq: str | None) -> tuple[str, ...]:
    """The keys a record is indexed under: UNIQ_KEY, then each of KEYS (none for rollbacks)."""
    if (sys_flag & TRANSACTION_MASK) == TRANSACTION_ROLLBACK_TYPE:
        return ()
    out: tuple[str, ...] = (uniq,) if uniq else ()
    if keys:
        out += tuple(k for k in keys.split(KEY_SEPARATOR) if k)
    return out


def tags_code_of(
    topic: str, tags: str | None, delay: str | None, store_timestamp: int, levels: tuple[int, ...]
) -> int:
    """The consume-queue tag code: the TAGS hash, or the delivery time for scheduled messages."""
    if delay is not None and topic == SCHEDULE_TOPIC and levels:
        try:
            level = min(int(delay), len(levels))
        except ValueError:
            level = 0
        if level > 0:
            return store_timestamp + levels[level - 1]
    return java_hash(tags) if tags else 0


def dispatch_fields(
    topic: str,
    properties: str,
    sys_flag: int,
    store_timestamp: int,
    delay_levels: tuple[int, ...] = DEFAULT_DELAY_LEVELS,
) -> tuple[int, tuple[str, ...], bool]:
    """(tags code, index keys, wait-store-ok) read from a property string."""
    tags, keys, uniq, delay, wait = scan_properties(properties)
    code = tags_code_of(topic, tags, delay, store_timestamp, delay_levels)
    return code, index_keys(sys_flag, keys, uniq), wait


@lru_cache(maxsize=4096)
def record_struct(body_len: int, topic_len: int, props_len: int) -> struct.Struct:
    """One Struct for a whole record of this shape: header, body, topic, properties."""
    return struct.Struct(f">iIiiiqqiq4siq4siiqi{body_len}sB{topic_len}sh{props_len}s")


def encoded_size(body_len: int, topic_len: int, props_len: int) -> int:
    return HEADER_SIZE + body_len + 1 + topic_len + 2 + props_len


def encode_into(
    buf: bytearray,
    pos: int,
    rec: PutRecord,
    topic_b: bytes,
    props_b: bytes,
    size: int,
    crc: int,
    queue_offset: int,
    physical_offset: int,
    store_timestamp: int,
    store_host: bytes,
    store_port: int,
) -> None:
    """Encode one record at ``buf[pos:pos+size]`` (``buf`` must be large enough)."""
    body = rec.body
    blen = len(body)
    tlen = len(topic_b)
    plen = len(props_b)
    record_struct(blen, tlen, plen).pack_into(
        buf,
        pos,
        size,
        MAGIC,
        crc,
        rec.queue_id,
        rec.flag,
        queue_offset,
        physical_offset,
        rec.sys_flag,
        rec.born_timestamp,
        rec.born_host,
        rec.born_port,
        store_timestamp,
        store_host,
        store_port,
        rec.reconsume_times,
        rec.prepared_transaction_offset,
        blen,
        body,
        tlen,
        topic_b,
        plen,
        props_b,
    )


def encode_record(
    rec: PutRecord,
    *,
    queue_offset: int,
    physical_offset: int,
    store_timestamp: int,
    store_host: bytes = b"\x7f\x00\x00\x01",
    store_port: int = 10911,
) -> bytes:
    """One record as bytes (tests and tools; the writer encodes batches with ``encode_into``)."""
    topic_b = rec.topic.encode()
    props_b = rec.properties.encode()
    size = encoded_size(len(rec.body), len(topic_b), len(props_b))
    buf = bytearray(size)
    encode_into(
        buf,
        0,
        rec,
        topic_b,
        props_b,
        size,
        body_crc(rec.body),
        queue_offset,
        physical_offset,
        store_timestamp,
        store_host,
        store_port,
    )
    return bytes(buf)


def encode_blank(remaining: int) -> bytes:
    """The end-of-segment marker: ``[remaining int32][0xCBD43194]``."""
    return BLANK.pack(remaining, BLANK_MAGIC)


class RecordCheck(NamedTuple):
    """Outcome of ``check_record`` at one position: exactly one of the cases holds.

    ``size > 0`` and not ``blank``: a valid record of that size. ``blank``: an end-of-segment
    marker (``size`` = remaining bytes it covers). ``size == 0``: no more data here (the end).
    ``size < 0``: corrupt or torn; ``problem`` says why.
    """

    size: int
    blank: bool = False
    problem: str | None = None


END = RecordCheck(0)


def check_record(buf: bytes | memoryview, pos: int, *, verify_crc: bool = True) -> RecordCheck:
    """Validate the record starting at ``buf[pos]`` (``buf`` may end anywhere).

    A record is valid when its magic, its length fields and (optionally) its body CRC agree.
    A torn record (the buffer ends inside it) is reported as corrupt.
    """
    avail = len(buf) - pos
    if avail < 8:
        if avail == 0 or not any(buf[pos:]):
            return END
        return RecordCheck(-1, problem=f"{avail} stray bytes at the end")
    size, magic = SIZE_MAGIC.unpack_from(buf, pos)
    if magic == BLANK_MAGIC:
        if size < BLANK_SIZE:
            return RecordCheck(-1, problem=f"blank marker with remaining {size}")
        return RecordCheck(size, blank=True)
    if magic != MAGIC:
        if size == 0 and magic == 0 and not any(buf[pos : pos + 64]):
            return END  # zero-filled: never written
        return RecordCheck(-1, problem=f"bad magic 0x{magic:08X}")
    if size < MIN_RECORD_SIZE:
        return RecordCheck(-1, problem=f"totalSize {size} below the minimum")
    if size > avail:
        return RecordCheck(-1, problem=f"torn record: totalSize {size}, {avail} bytes present")
    _size, _magic, crc, blen = _CHECK_HEAD.unpack_from(buf, pos)
    if blen < 0 or HEADER_SIZE + blen + 3 > size:
        return RecordCheck(-1, problem=f"bodyLen {blen} inconsistent with totalSize {size}")
    tpos = pos + HEADER_SIZE + blen
    ppos = tpos + 1 + buf[tpos]
    if ppos + 2 > pos + size:
        return RecordCheck(-1, problem="topic length runs past the record")
    (plen,) = _H.unpack_from(buf, ppos)
    if plen < 0 or ppos + 2 + plen != pos + size:
        return RecordCheck(-1, problem="length fields do not add up to totalSize")
    if verify_crc and zlib.crc32(buf[pos + HEADER_SIZE : tpos]) & 0x7FFFFFFF != crc:
        return RecordCheck(-1, problem="body CRC mismatch")
    return RecordCheck(size)


_CHECK_HEAD = struct.Struct(">iIi72xi")  # totalSize, magic, bodyCRC, bodyLen


def check_run(
    data: bytes,
    start: int,
    entries: Sequence[tuple[int, int, int]],
    queue_id: int,
    verify_crc: bool,
) -> int:
    """How many of ``entries`` ((queue offset, commit-log offset, size), in order) are, from the
    first on, valid records of queue ``queue_id`` in ``data`` (the log's bytes from ``start``):
    ``check_record`` says so with exactly that size, and the record names that queue and queue
    offset. The read path's check; ``runtime.store._fastlog.check_run`` does the same in C."""
    for n, (q, phys, size) in enumerate(entries):
        pos = phys - start
        if pos < 0 or pos + size > len(data):
            return n
        check = check_record(data, pos, verify_crc=verify_crc)
        if (
            check.size != size
            or check.blank
            or _QOFF_AT.unpack_from(data, pos + 20)[0] != q
            or int.from_bytes(data[pos + 12 : pos + 16], "big", signed=True) != queue_id
        ):
            return n
    return len(entries)


_QOFF_AT = struct.Struct(">q")


def decode_record(buf: bytes | memoryview, pos: int = 0) -> StoredRecord:
    """Decode a record known to be valid (see ``check_record``) at ``buf[pos]``."""
    (
        size,
        _magic,
        crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_ts,
        born_ip,
        born_port,
        store_ts,
        store_ip,
        store_port,
        reconsume,
        prepared,
        blen,
    ) = HEADER.unpack_from(buf, pos)
    p = pos + HEADER_SIZE
    body = bytes(buf[p : p + blen])
    p += blen
    tlen = buf[p]
    topic = bytes(buf[p + 1 : p + 1 + tlen]).decode()
    p += 1 + tlen
    (plen,) = _H.unpack_from(buf, p)
    props = bytes(buf[p + 2 : p + 2 + plen]).decode()
    return StoredRecord(
        size,
        crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_ts,
        born_ip,
        born_port,
        store_ts,
        store_ip,
        store_port,
        reconsume,
        prepared,
        body,
        topic,
        props,
    )


# queueId, queueOffset, physicalOffset, sysFlag, storeTimestamp
_DISPATCH_HEAD = struct.Struct(">12xi4xqqi8x8xq")
assert _DISPATCH_HEAD.size == 64
assert _CHECK_HEAD.size == HEADER_SIZE


def dispatch_entry_at(
    buf: bytes | memoryview,
    pos: int,
    size: int,
    delay_levels: tuple[int, ...] = DEFAULT_DELAY_LEVELS,
) -> DispatchEntry:
    """The dispatch entry of the valid record at ``buf[pos:pos+size]`` (reput from disk)."""
    queue_id, queue_offset, physical_offset, sys_flag, store_ts = _DISPATCH_HEAD.unpack_from(
        buf, pos
    )
    blen = int.from_bytes(buf[pos + 84 : pos + 88], "big", signed=True)
    p = pos + HEADER_SIZE + blen
    tlen = buf[p]
    topic = bytes(buf[p + 1 : p + 1 + tlen]).decode()
    p += 1 + tlen
    (plen,) = _H.unpack_from(buf, p)
    props = bytes(buf[p + 2 : p + 2 + plen]).decode() if plen else ""
    code, keys, _wait = dispatch_fields(topic, props, sys_flag, store_ts, delay_levels)
    return DispatchEntry(
        topic, queue_id, queue_offset, physical_offset, size, code, store_ts, sys_flag, keys
    )


STORE_TIMESTAMP_AT = 56
"""Byte position of storeTimestamp inside a record."""
_Q = struct.Struct(">q")


def store_timestamp_of(buf: bytes | memoryview, pos: int = 0) -> int:
    return _Q.unpack_from(buf, pos + STORE_TIMESTAMP_AT)[0]
