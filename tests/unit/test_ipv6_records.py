"""Commit-log records with IPv6 hosts (RocketMQ's MessageSysFlag BORNHOST_V6 0x10 and
STOREHOST_V6 0x20: a 16-byte host + port instead of 4 + 4), and 56-digit offset message ids."""

from __future__ import annotations

import tempfile

import pytest

from actors.client.message import MessageExt
from actors.client.pull import decode_messages
from runtime.errors import AddressError, ProtocolError
from runtime.store import commitlog as CL
from runtime.store import dispatch as D
from runtime.store import record as R
from runtime.store import record_check as RC
from runtime.store import record_dispatch as RD
from runtime.store.accel import fastlog
from runtime.store.msg_id import decode_offset_msg_id, offset_msg_id
from runtime.store.record_properties import encode_properties

V4 = R.host_bytes("10.1.2.3")
V6 = R.host_bytes("2001:db8::7")
LOOP6 = R.host_bytes("::1")
HOSTS = [(V4, V4), (V6, V4), (V4, LOOP6), (V6, LOOP6)]


def put(born: bytes, sys_flag: int = 0) -> R.PutRecord:
    return R.PutRecord(
        topic="TopicV6",
        queue_id=2,
        body=b"hello over IPv6",
        properties=encode_properties({"TAGS": "t", "KEYS": "k1 k2", "UNIQ_KEY": "U1"}),
        flag=7,
        sys_flag=sys_flag,
        born_timestamp=1_700_000_000_123,
        born_host=born,
        born_port=40001,
        reconsume_times=2,
        prepared_transaction_offset=99,
    )


@pytest.mark.parametrize(("born", "store"), HOSTS)
def test_round_trip_with_each_host_family(born: bytes, store: bytes) -> None:
    # Given a record encoded with these born and store hosts
    raw = R.encode_record(
        put(born), queue_offset=5, physical_offset=1234, store_timestamp=42, store_host=store
    )
    # Then its size counts 12 more bytes per IPv6 host and the sysFlag says which
    flags = R.host_flags(born, store)
    assert len(raw) == R.encoded_size(15, 7, len(put(born).properties), flags)
    assert len(raw) - R.encoded_size(15, 7, len(put(born).properties)) == 12 * bin(flags).count("1")
    # And every reader agrees on every field
    got = R.decode_record(raw)
    assert (got.born_host, got.store_host, got.sys_flag) == (born, store, flags)
    assert (got.born_port, got.store_port, got.store_timestamp) == (40001, 10911, 42)
    assert (got.reconsume_times, got.prepared_transaction_offset) == (2, 99)
    assert (got.body, got.topic, got.queue_offset) == (b"hello over IPv6", "TopicV6", 5)
    assert RC.check_record(raw, 0) == RC.RecordCheck(len(raw))
    assert R.store_timestamp_of(raw) == 42
    entry = RD.dispatch_entry_at(raw, 0, len(raw))
    assert (entry.store_timestamp, entry.queue_offset, entry.keys) == (42, 5, ("U1", "k1", "k2"))
    reader = D.LogDispatchReader()
    reader.on_record(memoryview(raw), 0, len(raw), 1234)
    assert reader.batch.index == [("TopicV6", 1234, 42, ("U1", "k1", "k2"))]
    # And the client's pull decoder too, with the offset msg id of the store host
    (msg,) = decode_messages(raw, "broker-a")
    assert (msg.born_ip, msg.store_ip, msg.body) == (born, store, b"hello over IPv6")
    assert msg.offset_msg_id == got.msg_id
    assert len(got.msg_id) == (56 if len(store) == 16 else 32)


def test_sent_host_bits_are_replaced_by_the_hosts_own() -> None:
    # Given a client that sent BORNHOST_V6 from an IPv4 connection (and none from IPv6)
    raw4 = R.encode_record(
        put(V4, 0x10 | 0x1), queue_offset=0, physical_offset=0, store_timestamp=1
    )
    raw6 = R.encode_record(put(V6, 0x1), queue_offset=0, physical_offset=0, store_timestamp=1)
    # Then the stored sysFlag follows the hosts and keeps the other bits
    assert R.decode_record(raw4).sys_flag == 0x1
    assert R.decode_record(raw6).sys_flag == 0x1 | 0x10


@pytest.mark.skipif(fastlog() is None, reason="the native encoder is not built")
@pytest.mark.parametrize(("born", "store"), HOSTS)
def test_native_and_python_encoders_agree_byte_for_byte(born: bytes, store: bytes) -> None:
    out = []
    for fast in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            log = CL.CommitLog(tmp, 1 << 16, store_host=store, store_port=10911)
            log._fast = fastlog().encode_batch if fast else None
            recs = [put(born, sys_flag=0x10), put(V4), put(V6, sys_flag=0x4)]
            result = log.append_batch(recs, {}, 77, 1 << 20)
            assert isinstance(result, CL.AppendedBatch)
            out.append((log.read(0, result.end), result.dispatch.index, result.queue_offsets))
            log.segments.close()
    assert out[0] == out[1]
    # And the records read back as written
    data = out[0][0]
    pos, hosts = 0, []
    while pos < len(data):
        rec = R.decode_record(data, pos)
        hosts.append((rec.born_host, rec.store_host))
        pos += rec.total_size
    assert hosts == [(born, store), (V4, store), (V6, store)]


def test_offset_msg_id_of_an_ipv6_store_host() -> None:
    # Given RocketMQ's createMessageId for a 16-byte store host
    msg_id = offset_msg_id(LOOP6, 10911, 0x0102030405)
    # Then it is 56 upper-case hex digits: ip(16) + port(4) + offset(8)
    assert msg_id == "0" * 31 + "1" + "00002A9F" + "0000000102030405"
    assert decode_offset_msg_id(msg_id) == ("::1", 10911, 0x0102030405)
    assert decode_offset_msg_id(msg_id.lower()) == ("::1", 10911, 0x0102030405)
    ext = MessageExt("T", b"", "", store_ip=LOOP6, store_port=10911, commit_log_offset=0x0102030405)
    assert ext.offset_msg_id == msg_id
    assert ext.store_host == "::1:10911"


@pytest.mark.parametrize("bad", ["", "ABC", "0" * 33, "Z" * 32, "0" * 55, "G" * 56])
def test_bad_offset_msg_ids_raise_the_address_error(bad: str) -> None:
    with pytest.raises(AddressError):
        decode_offset_msg_id(bad)


def test_client_decoder_rejects_a_v6_record_cut_inside_its_header() -> None:
    raw = R.encode_record(put(V6), queue_offset=0, physical_offset=0, store_timestamp=1)
    # Given a pull body that ends after the IPv4 header size but inside the IPv6 one
    with pytest.raises(ProtocolError):
        decode_messages(raw[: R.HEADER_SIZE + 4], "b")
    # And a record whose sysFlag claims an IPv6 host its size has no room for
    bad = bytearray(R.encode_record(put(V4), queue_offset=0, physical_offset=0, store_timestamp=1))
    bad[39] |= 0x30
    with pytest.raises(ProtocolError):
        decode_messages(bytes(bad), "b")
    assert RC.check_record(bytes(bad), 0).size < 0
