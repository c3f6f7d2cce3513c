"""Commit-log record codec: every field round-trips, the byte layout is RocketMQ's, checks catch
damage, and the helper hashes/ids match Java/RocketMQ."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import AddressError
from runtime.store import record as R
from runtime.store import record_check as RC
from runtime.store import record_dispatch as RD
from runtime.store.msg_id import decode_offset_msg_id, offset_msg_id
from runtime.store.record_properties import encode_properties
from runtime.store.topic_names import SCHEDULE_TOPIC, topic_problem


def sample(**overrides: object) -> R.PutRecord:
    fields: dict[str, object] = {
        "topic": "TopicTest",
        "queue_id": 3,
        "body": b"hello world",
        "properties": encode_properties({"TAGS": "TagA", "KEYS": "k1 k2", "UNIQ_KEY": "U1"}),
        "flag": 7,
        "sys_flag": R.TRANSACTION_COMMIT_TYPE,
        "born_timestamp": 1_700_000_000_123,
        "born_host": R.host_bytes("10.1.2.3"),
        "born_port": 54321,
        "reconsume_times": 2,
        "prepared_transaction_offset": 99,
    }
    fields.update(overrides)
    return R.PutRecord(**fields)  # type: ignore[arg-type]


def test_round_trip_of_every_field() -> None:
    rec = sample()
    raw = R.encode_record(
        rec,
        queue_offset=42,
        physical_offset=123456,
        store_timestamp=1_700_000_000_999,
        store_host=R.host_bytes("192.168.0.9"),
        store_port=10911,
    )
    assert RC.check_record(raw, 0) == RC.RecordCheck(len(raw))
    got = R.decode_record(raw)
    assert got.total_size == len(raw)
    assert got.body_crc == zlib.crc32(b"hello world") & 0x7FFFFFFF
    assert got.queue_id == 3
    assert got.flag == 7
    assert got.queue_offset == 42
    assert got.physical_offset == 123456
    assert got.sys_flag == R.TRANSACTION_COMMIT_TYPE
    assert got.born_timestamp == 1_700_000_000_123
    assert got.born_host == bytes([10, 1, 2, 3])
    assert got.born_port == 54321
    assert got.store_timestamp == 1_700_000_000_999
    assert got.store_host == bytes([192, 168, 0, 9])
    assert got.store_port == 10911
    assert got.reconsume_times == 2
    assert got.prepared_transaction_offset == 99
    assert got.body == b"hello world"
    assert got.topic == "TopicTest"
    assert got.property_map() == {"TAGS": "TagA", "KEYS": "k1 k2", "UNIQ_KEY": "U1"}


def test_byte_layout_matches_store_md() -> None:
    rec = sample(body=b"xyz", properties="")
    raw = R.encode_record(rec, queue_offset=5, physical_offset=1000, store_timestamp=77)
    # totalSize = 84 + 4 + body + 1 + topic + 2 + props
    assert len(raw) == 84 + 4 + 3 + 1 + len("TopicTest") + 2 + 0
    total, magic, crc, qid, flag = struct.unpack_from(">iIiii", raw, 0)
    assert (total, magic, qid, flag) == (len(raw), 0xDAA320A7, 3, 7)
    assert crc == zlib.crc32(b"xyz") & 0x7FFFFFFF
    assert struct.unpack_from(">q", raw, 20)[0] == 5
    assert struct.unpack_from(">q", raw, 28)[0] == 1000
    assert struct.unpack_from(">q", raw, 56)[0] == 77
    assert struct.unpack_from(">i", raw, 84)[0] == 3
    assert raw[88:91] == b"xyz"
    assert raw[91] == len("TopicTest")
    assert raw[92 : 92 + 9] == b"TopicTest"
    assert struct.unpack_from(">h", raw, 101)[0] == 0


def test_java_hash_matches_known_values() -> None:
    # Values from Java: "TagA".hashCode() == 2598919, "".hashCode() == 0,
    # "hello".hashCode() == 99162322, "polygenelubricants".hashCode() == Integer.MIN_VALUE.
    assert R.java_hash("TagA") == 2598919
    assert R.java_hash("") == 0
    assert R.java_hash("hello") == 99162322
    assert R.java_hash("polygenelubricants") == -(2**31)
    # a non-BMP character hashes over its two UTF-16 code units
    assert R.java_hash("\U0001f600") == 31 * 0xD83D + 0xDE00


def test_offset_msg_id_round_trip() -> None:
    msg_id = offset_msg_id(R.host_bytes("10.0.0.1"), 10911, 0x0102030405)
    assert msg_id == "0A000001" + "00002A9F" + "0000000102030405"
    assert decode_offset_msg_id(msg_id) == ("10.0.0.1", 10911, 0x0102030405)
    with pytest.raises(AddressError):
        decode_offset_msg_id("ABC")


def test_check_record_detects_damage() -> None:
    raw = bytearray(R.encode_record(sample(), queue_offset=0, physical_offset=0, store_timestamp=1))
    assert RC.check_record(bytes(raw[:-1]), 0).size < 0  # torn
    flipped = bytearray(raw)
    flipped[90] ^= 0x01  # inside the body
    assert RC.check_record(bytes(flipped), 0).problem == "body CRC mismatch"
    assert RC.check_record(bytes(flipped), 0, verify_crc=False).size == len(raw)
    bad_magic = bytearray(raw)
    bad_magic[5] ^= 0xFF
    assert RC.check_record(bytes(bad_magic), 0).size < 0
    assert RC.check_record(b"", 0) == RC.END
    assert RC.check_record(bytes(64), 0) == RC.END
    blank = R.encode_blank(500)
    assert RC.check_record(blank, 0) == RC.RecordCheck(500, blank=True)


def test_topic_validation() -> None:
    assert topic_problem("Good_Topic-1%|x") is None
    assert topic_problem("") is not None
    assert topic_problem("a" * 128) is not None
    assert topic_problem("has space") is not None
    assert topic_problem("dot.not.allowed") is not None


def test_dispatch_fields() -> None:
    props = encode_properties({"TAGS": "TagA", "KEYS": "a b", "UNIQ_KEY": "U", "WAIT": "false"})
    code, keys, wait = RD.dispatch_fields("T", props, 0, 1000)
    assert code == R.java_hash("TagA")
    assert keys == ("U", "a", "b")
    assert wait is False
    # scheduled messages carry the delivery time as their tag code
    code, _, wait = RD.dispatch_fields(SCHEDULE_TOPIC, encode_properties({"DELAY": "3"}), 0, 1000)
    assert code == 1000 + 10_000
    assert wait is True
    # rolled-back transaction records are not indexed
    _, keys, _ = RD.dispatch_fields("T", props, R.TRANSACTION_ROLLBACK_TYPE, 0)
    assert keys == ()


def test_dispatch_entry_from_disk_matches_record() -> None:
    rec = sample()
    raw = R.encode_record(rec, queue_offset=8, physical_offset=640, store_timestamp=555)
    e = RD.dispatch_entry_at(raw, 0, len(raw))
    assert e == RD.DispatchEntry(
        "TopicTest", 3, 8, 640, len(raw), R.java_hash("TagA"), 555, rec.sys_flag, ("U1", "k1", "k2")
    )


topics = st.text(alphabet="abcXYZ019_-%|", min_size=1, max_size=127)
props_text = st.dictionaries(
    st.text(
        alphabet=st.characters(blacklist_characters="\x01\x02", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=8,
    ),
    st.text(
        alphabet=st.characters(blacklist_characters="\x01\x02", blacklist_categories=("Cs",)),
        max_size=20,
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    topic=topics,
    queue_id=st.integers(0, 2**31 - 1),
    body=st.binary(max_size=2000),
    props=props_text,
    flag=st.integers(-(2**31), 2**31 - 1),
    sys_flag=st.integers(0, 0xF),
    born=st.integers(0, 2**62),
    store=st.integers(0, 2**62),
    qoff=st.integers(0, 2**62),
    phys=st.integers(0, 2**62),
    port=st.integers(0, 65535),
    reconsume=st.integers(0, 1000),
    prepared=st.integers(0, 2**62),
    ip=st.binary(min_size=4, max_size=4),
)
def test_codec_property(
    topic: str,
    queue_id: int,
    body: bytes,
    props: dict[str, str],
    flag: int,
    sys_flag: int,
    born: int,
    store: int,
    qoff: int,
    phys: int,
    port: int,
    reconsume: int,
    prepared: int,
    ip: bytes,
) -> None:
    rec = R.PutRecord(
        topic=topic,
        queue_id=queue_id,
        body=body,
        properties=encode_properties(props),
        flag=flag,
        sys_flag=sys_flag,
        born_timestamp=born,
        born_host=ip,
        born_port=port,
        reconsume_times=reconsume,
        prepared_transaction_offset=prepared,
    )
    raw = R.encode_record(
        rec, queue_offset=qoff, physical_offset=phys, store_timestamp=store, store_host=ip
    )
    assert RC.check_record(raw, 0).size == len(raw)
    got = R.decode_record(raw)
    assert (got.topic, got.queue_id, got.body, got.flag, got.sys_flag) == (
        topic,
        queue_id,
        body,
        flag,
        sys_flag,
    )
    assert (got.born_timestamp, got.store_timestamp, got.queue_offset, got.physical_offset) == (
        born,
        store,
        qoff,
        phys,
    )
    assert (got.born_host, got.born_port, got.store_host, got.reconsume_times) == (
        ip,
        port,
        ip,
        reconsume,
    )
    assert got.prepared_transaction_offset == prepared
    assert got.property_map() == props
    # every strict prefix is reported as damaged or as the end, never as a valid record
    for cut in (1, 7, 8, 50, len(raw) - 1):
        if cut < len(raw):
            assert RC.check_record(raw[:cut], 0).size <= 0
