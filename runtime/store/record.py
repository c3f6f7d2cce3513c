"""The commit-log record: RocketMQ's layout, which is also the PULL wire format.

```
 0 int32 totalSize        4 int32 magic 0xDAA320A7 (blank end-of-segment marker 0xCBD43194)
 8 int32 bodyCRC         12 int32 queueId          16 int32 flag
20 int64 queueOffset     28 int64 physicalOffset    36 int32 sysFlag
40 int64 bornTimestamp   48 bornHost ipv4(4)+port(int32)
56 int64 storeTimestamp  64 storeHost ipv4(4)+port(int32)
72 int32 reconsumeTimes  76 int64 preparedTransactionOffset
84 int32 bodyLen + body, int8 topicLen + topic, int16 propsLen + props
```

With sysFlag BORNHOST_V6 (0x10) the born host is 16 bytes (+ port) instead of 4, with
STOREHOST_V6 (0x20) the store host: every field after it moves 12 bytes (RocketMQ's
MessageSysFlag and MessageDecoder). ``layout(sys_flag)`` gives the positions, ``header(sys_flag)``
the fixed part's Struct; the store sets both flags from the hosts' lengths (``host_flags``),
whatever a client sent.

Everything is big-endian. Encoding is one precompiled ``Struct.pack_into`` for the fixed part of
each record into one preallocated ``bytearray`` per batch; see ``encode_into``.

Also here: Java ``String.hashCode`` (tag hashes in consume queues). Elsewhere: checking raw bytes
for a valid record (``runtime.store.record_check``); what a stored record contributes to consume
queues and the key index (the property scan, tag code, index keys, ``DispatchEntry``:
``runtime.store.record_dispatch``); the offset message id, store host + physical offset
(``runtime.store.msg_id``); topic validation and the reserved topics
(``runtime.store.topic_names``); the property names the store reads, the property-string helpers
and the delay levels (``runtime.store.record_properties``).
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from typing import NamedTuple

import msgspec

from runtime.hostport import ip_bytes
from runtime.store.msg_id import offset_msg_id
from runtime.store.record_properties import parse_properties

MAGIC = 0xDAA320A7
BLANK_MAGIC = 0xCBD43194
HEADER = struct.Struct(">iIiiiqqiq4siq4siiqi")
"""Fixed part through bodyLen of an IPv4 record: 88 bytes (``header`` for any record)."""
HEADER_SIZE = HEADER.size
assert HEADER_SIZE == 88
BLANK = struct.Struct(">iI")
BLANK_SIZE = BLANK.size  # a record must leave room for this marker in its segment
SIZE_MAGIC = struct.Struct(">iI")
_H = struct.Struct(">h")
_PROPS_LEN = struct.Struct(">h")
MIN_RECORD_SIZE = HEADER_SIZE + 1 + 2
MAX_PROPERTIES_SIZE = 32767

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
HOST_V6_MASK = BORNHOST_V6_FLAG | STOREHOST_V6_FLAG
V6_EXTRA = 12
"""An IPv6 host field is 16 bytes instead of 4."""


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


def host_bytes(ip: str) -> bytes:
    """An IP literal -> 4 (IPv4) or 16 (IPv6) bytes (``runtime.hostport.ip_bytes``)."""
    return ip_bytes(ip)


def host_flags(born_host: bytes, store_host: bytes) -> int:
    """The sysFlag host bits a record with these host fields carries (16 bytes: IPv6)."""
    return (BORNHOST_V6_FLAG if len(born_host) == 16 else 0) | (
        STOREHOST_V6_FLAG if len(store_host) == 16 else 0
    )


class Layout(NamedTuple):
    """Byte positions inside a record whose sysFlag has these host bits."""

    born_host_len: int
    born_port_at: int
    store_timestamp_at: int
    store_host_at: int
    store_host_len: int
    store_port_at: int
    reconsume_at: int
    prepared_at: int
    body_len_at: int
    header_size: int  # the fixed part through bodyLen


def _layout(hosts: int) -> Layout:
    born = 16 if hosts & BORNHOST_V6_FLAG else 4
    store = 16 if hosts & STOREHOST_V6_FLAG else 4
    at = 48 + born + 4  # storeTimestamp
    s_host = at + 8
    return Layout(
        born, 48 + born, at, s_host, store, s_host + store, s_host + store + 4,
        s_host + store + 8, s_host + store + 16, s_host + store + 20,
    )  # fmt: skip


_LAYOUTS = tuple(_layout(i << 4) for i in range(4))
_HEADERS = tuple(
    struct.Struct(f">iIiiiqqiq{lay.born_host_len}siq{lay.store_host_len}siiqi") for lay in _LAYOUTS
)
assert _HEADERS[0].size == HEADER_SIZE and _LAYOUTS[3].header_size == HEADER_SIZE + 24
SYS_FLAG_AT = 36


def layout(sys_flag: int) -> Layout:
    return _LAYOUTS[(sys_flag & HOST_V6_MASK) >> 4]


def header(sys_flag: int) -> struct.Struct:
    """The Struct of a record's fixed part (through bodyLen) for its sysFlag."""
    return _HEADERS[(sys_flag & HOST_V6_MASK) >> 4]


def header_size(sys_flag: int) -> int:
    return _LAYOUTS[(sys_flag & HOST_V6_MASK) >> 4].header_size


def sys_flag_at(buf: bytes | memoryview | bytearray, pos: int = 0) -> int:
    """The sysFlag of the record at ``buf[pos]`` (which must hold at least 40 bytes)."""
    return int.from_bytes(buf[pos + SYS_FLAG_AT : pos + SYS_FLAG_AT + 4], "big", signed=True)


class PutRecord(msgspec.Struct, frozen=True, gc=False):
    """One message to append, as the remoting layer decoded it.

    ``properties`` is RocketMQ's encoded property string. ``born_host`` is 4 IPv4 bytes
    (``host_bytes("10.0.0.1")``) or 16 IPv6 bytes: the store sets sysFlag BORNHOST_V6 from its
    length.
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


@lru_cache(maxsize=4096)
def record_struct(body_len: int, topic_len: int, props_len: int, hosts: int = 0) -> struct.Struct:
    """One Struct for a whole record of this shape: header, body, topic, properties. ``hosts``:
    the sysFlag's host bits (``host_flags``)."""
    lay = layout(hosts)
    return struct.Struct(
        f">iIiiiqqiq{lay.born_host_len}siq{lay.store_host_len}siiqi"
        f"{body_len}sB{topic_len}sh{props_len}s"
    )


def encoded_size(body_len: int, topic_len: int, props_len: int, hosts: int = 0) -> int:
    return header_size(hosts) + body_len + 1 + topic_len + 2 + props_len


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
    """Encode one record at ``buf[pos:pos+size]`` (``buf`` must be large enough). The sysFlag's
    host bits come from the hosts' lengths (``host_flags``)."""
    body = rec.body
    blen = len(body)
    tlen = len(topic_b)
    plen = len(props_b)
    hosts = host_flags(rec.born_host, store_host)
    record_struct(blen, tlen, plen, hosts).pack_into(
        buf,
        pos,
        size,
        MAGIC,
        crc,
        rec.queue_id,
        rec.flag,
        queue_offset,
        physical_offset,
        (rec.sys_flag & ~HOST_V6_MASK) | hosts,
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
    hosts = host_flags(rec.born_host, store_host)
    size = encoded_size(len(rec.body), len(topic_b), len(props_b), hosts)
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


def decode_record(buf: bytes | memoryview, pos: int = 0) -> StoredRecord:
    """Decode a record known to be valid (see ``record_check.check_record``) at ``buf[pos]``."""
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
    ) = (head := header(sys_flag_at(buf, pos))).unpack_from(buf, pos)
    p = pos + head.size
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


STORE_TIMESTAMP_AT = 56
"""Byte position of storeTimestamp inside an IPv4 record (``layout`` for any record)."""
STORE_TIMESTAMP_HEAD = _LAYOUTS[1].store_timestamp_at + 8
"""Bytes of a record's head that hold its storeTimestamp, whatever its born host."""
_Q = struct.Struct(">q")


def store_timestamp_of(buf: bytes | memoryview, pos: int = 0) -> int:
    at = layout(sys_flag_at(buf, pos)).store_timestamp_at
    return _Q.unpack_from(buf, pos + at)[0]
