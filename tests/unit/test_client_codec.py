"""The client's pure parts: message encoding, pull decoding, allocation, selection, ids, offsets."""

from __future__ import annotations

import re
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from lz4 import frame as lz4_frame

from actors.client import selectors
from actors.client.allocate import allocate_averagely
from actors.client.config import resolve_namesrv
from actors.client.errors import ClientError, MessageInvalidError, MessageTooLargeError
from actors.client.message import Message, MessageExt, MessageQueue
from actors.client.msgid import MessageIdGenerator
from actors.client.offsets import read_local, write_local
from actors.client.outgoing import prepare, prepare_batch
from actors.client.process_queue import ProcessQueue
from actors.client.pull import TagFilter, decode_messages, decode_pull_response, pull_header
from actors.client.selectors import ByShardingKey, RoundRobin, shard_index
from runtime.errors import ProtocolError
from runtime.remoting.batch import decode_batch
from runtime.remoting.codes import MessageSysFlag, PullSysFlag, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import PullMessageRequestHeader
from runtime.remoting.properties import decode_properties
from runtime.store.record import PutRecord, encode_record, host_bytes


def record(
    body: bytes, *, offset: int = 0, props: str = "", sys_flag: int = 0, topic: str = "T"
) -> bytes:
    return encode_record(
        PutRecord(topic=topic, queue_id=2, body=body, properties=props, sys_flag=sys_flag),
        queue_offset=offset,
        physical_offset=1000 + offset * 200,
        store_timestamp=1_700_000_000_000,
        store_host=host_bytes("10.1.2.3"),
        store_port=10911,
    )


# -- outgoing ----------------------------------------------------------------------------------


def test_prepare_puts_tags_keys_uniq_key_and_user_properties_in_properties() -> None:
    out = prepare(Message("Orders", b"x", tags="paid", keys=["k1", "k2"], properties={"r": "eu"}))
    props = decode_properties(out.properties)
    assert props["TAGS"] == "paid"
    assert props["KEYS"] == "k1 k2"
    assert props["UNIQ_KEY"] == out.msg_id
    assert props["WAIT"] == "true"
    assert props["r"] == "eu"
    assert re.fullmatch(r"[0-9A-F]{32}", out.msg_id)
    assert out.sys_flag == 0


def test_prepare_compresses_bodies_over_4_kib_with_the_compressed_flag() -> None:
    body = b"abc" * 3000
    out = prepare(Message("T", body))
    assert out.sys_flag & MessageSysFlag.COMPRESSED
    assert zlib.decompress(out.body) == body
    small = prepare(Message("T", b"a" * 4095))
    assert small.sys_flag == 0 and small.body == b"a" * 4095


def test_prepare_compresses_a_body_of_exactly_4_kib() -> None:
    # RocketMQ's tryToCompressMessage: body.length >= compressMsgBodyOverHowmuch (4096)
    out = prepare(Message("T", b"a" * 4096))
    assert out.sys_flag & MessageSysFlag.COMPRESSED
    assert zlib.decompress(out.body) == b"a" * 4096
    assert prepare(Message("T", b"a" * 64), compress_over=64).sys_flag & MessageSysFlag.COMPRESSED


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (Message("T", b""), "body"),
        (Message("bad topic!", b"x"), "topic"),
        (Message("T", b"x", properties={"TAGS": "sneaky"}), "properties"),
        (Message("T", b"x", properties={"a": "b\x01c"}), "property 'a'"),
        (Message("T", b"x", keys=["has space"]), "keys"),
        (Message("T", b"x", delay_level=19), "delay_level"),
    ],
)
def test_prepare_refuses_invalid_messages(msg: Message, field: str) -> None:
    with pytest.raises(MessageInvalidError) as err:
        prepare(msg)
    assert err.value.field == field


def test_the_4_mib_limit_is_checked_before_anything_is_sent() -> None:
    with pytest.raises(MessageTooLargeError) as err:
        prepare(Message("T", b"x" * (4 * 1024 * 1024 + 1)))
    assert err.value.size == 4 * 1024 * 1024 + 1 and err.value.limit == 4 * 1024 * 1024
    assert isinstance(err.value, ClientError)
    prepare(Message("T", b"x" * (4 * 1024 * 1024)))  # exactly the limit is fine


def test_batch_body_decodes_with_the_broker_codec_and_each_message_has_its_own_id() -> None:
    msgs = [Message("T", f"m{i}".encode(), tags="t", keys=[f"k{i}"]) for i in range(3)]
    out = prepare_batch(msgs)
    entries = decode_batch(out.body)
    assert [e.body for e in entries] == [b"m0", b"m1", b"m2"]
    ids = out.msg_id.split(",")
    assert len(set(ids)) == 3
    assert [decode_properties(e.properties)["UNIQ_KEY"] for e in entries] == ids
    assert out.batch and out.count == 3


def test_batch_rules() -> None:
    with pytest.raises(MessageInvalidError):
        prepare_batch([])
    with pytest.raises(MessageInvalidError):
        prepare_batch([Message("A", b"x"), Message("B", b"y")])
    with pytest.raises(MessageInvalidError):
        prepare_batch([Message("A", b"x", delay_level=2)])
    with pytest.raises(MessageTooLargeError):
        prepare_batch([Message("A", b"x" * 1024 * 1024)] * 5)


def test_a_batch_refuses_a_retry_topic_and_mixed_wait_store_ok_as_rocketmq_does() -> None:
    # Given a batch whose second message asks to wait for the store and the first does not,
    # When it is prepared, Then it is refused (the batch has one WAIT: the second would
    # silently be answered before its flush or replication)
    with pytest.raises(MessageInvalidError) as mixed:
        prepare_batch([Message("A", b"x", wait_store_ok=False), Message("A", b"y")])
    assert mixed.value.field == "batch[1].wait_store_ok"
    # And a batch to a retry topic is refused ("Retry Group is not supported for batching")
    with pytest.raises(MessageInvalidError) as retry:
        prepare_batch([Message("%RETRY%billing", b"x"), Message("%RETRY%billing", b"y")])
    assert retry.value.field == "batch.topic"
    # While a batch whose messages all skip the wait is one, marked so
    out = prepare_batch([Message("A", b"x", wait_store_ok=False)] * 2)
    assert out.properties == "WAIT\x01false\x02"


# -- pull ----------------------------------------------------------------------------------------


def test_decode_messages_reads_every_field_of_stored_records() -> None:
    props = "TAGS\x01paid\x02KEYS\x01a b\x02UNIQ_KEY\x01ABC\x02region\x01eu\x02"
    body = record(b"hello", offset=7, props=props) + record(b"again", offset=8)
    first, second = decode_messages(body, "broker-a")
    assert first.body == b"hello" and second.body == b"again"
    assert (first.topic, first.queue_id, first.queue_offset) == ("T", 2, 7)
    assert first.queue == MessageQueue(topic="T", broker_name="broker-a", queue_id=2)
    assert first.tags == "paid" and first.keys == ["a", "b"] and first.msg_id == "ABC"
    assert first.properties == {"region": "eu"}
    assert first.store_host == "10.1.2.3:10911"
    assert first.commit_log_offset == 1000 + 7 * 200
    assert first.offset_msg_id == "0A01020300002A9F" + f"{1000 + 7 * 200:016X}"
    assert second.msg_id == second.offset_msg_id  # no UNIQ_KEY: the offset id


def test_decode_messages_inflates_compressed_bodies() -> None:
    packed = zlib.compress(b"z" * 10000)
    [msg] = decode_messages(record(packed, sys_flag=MessageSysFlag.COMPRESSED), "b")
    assert msg.body == b"z" * 10000


def test_rocketmq_5_lz4_and_zstd_bodies_inflate() -> None:
    # Given bodies in the frame formats RocketMQ 5's Java producer writes (its ZSTD stream
    # writes no content size), flagged COMPRESSED with the type bits
    body = b"order-42 paid " * 1000
    lz4 = lz4_frame.compress(body)
    zstd = zstandard.ZstdCompressor(write_content_size=False).compress(body)
    flag = int(MessageSysFlag.COMPRESSED)
    data = record(lz4, sys_flag=flag | MessageSysFlag.COMPRESSION_LZ4) + record(
        zstd, offset=1, sys_flag=flag | MessageSysFlag.COMPRESSION_ZSTD
    )
    # When they are decoded, Then both bodies are the producer's
    assert [m.body for m in decode_messages(data, "b")] == [body, body]


def test_a_body_that_does_not_inflate_is_delivered_as_stored() -> None:
    # Given a damaged zlib body and one of an unknown compression type, between good records
    flag = int(MessageSysFlag.COMPRESSED)
    data = (
        record(b"first")
        + record(b"not zlib at all", offset=1, sys_flag=flag)
        + record(b"??", offset=2, sys_flag=flag | 0x400)
        + record(zlib.compress(b"last"), offset=3, sys_flag=flag)
    )
    # When decoded, Then nothing fails: the two are delivered as stored
    out = decode_messages(data, "b")
    assert [m.body for m in out] == [b"first", b"not zlib at all", b"??", b"last"]


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_decode_messages_raises_only_protocol_error_on_damaged_bodies(data: st.DataObject) -> None:
    good = record(b"payload", props="TAGS\x01x\x02") + record(b"second", offset=1)
    cut = data.draw(st.integers(0, len(good) - 1))
    flip = data.draw(st.integers(0, len(good) - 1))
    damaged = bytearray(good[:cut] if data.draw(st.booleans()) else good)
    if damaged and data.draw(st.booleans()):
        damaged[flip % len(damaged)] ^= 0xFF
    try:
        out = decode_messages(bytes(damaged), "b")
    except ProtocolError:
        return
    assert all(isinstance(m, MessageExt) for m in out)


def test_pull_response_statuses_and_client_side_tag_filter() -> None:
    mq = MessageQueue(topic="T", broker_name="b", queue_id=2)
    body = record(b"a", offset=5, props="TAGS\x01paid\x02") + record(
        b"b", offset=6, props="TAGS\x01other\x02"
    )
    ext = {"nextBeginOffset": "7", "minOffset": "0", "maxOffset": "7"}
    found = RemotingCommand(code=0, flag=1, ext_fields=ext, body=body)
    result = decode_pull_response(found, mq, 5, TagFilter("paid || refunded"))
    assert result is not None
    assert [m.body for m in result.messages] == [b"a"]
    assert result.next_begin_offset == 7 and result.raw_count == 2
    none = decode_pull_response(found, mq, 5, TagFilter("nothing"))
    assert none is not None and none.status.name == "NO_MATCHED_MSG"
    not_found = RemotingCommand(code=ResponseCode.PULL_NOT_FOUND, flag=1, ext_fields=ext)
    nf = decode_pull_response(not_found, mq, 7, TagFilter("*"))
    assert nf is not None and nf.status.name == "NO_NEW_MSG"
    error = RemotingCommand(code=ResponseCode.SYSTEM_ERROR, flag=1)
    assert decode_pull_response(error, mq, 7, TagFilter("*")) is None


def test_pull_response_carries_the_brokers_read_suggestion() -> None:
    mq = MessageQueue(topic="T", broker_name="b", queue_id=0)
    body = record(b"a", offset=0, props="")
    ext = {"nextBeginOffset": "1", "minOffset": "0", "maxOffset": "9", "suggestWhichBrokerId": "1"}
    result = decode_pull_response(
        RemotingCommand(code=0, flag=1, ext_fields=ext, body=body), mq, 0, TagFilter("*")
    )
    # The master says "read from the slave (1)"; an absent or broken value means the master
    assert result is not None and result.suggest_which_broker_id == 1
    for bad in ({}, {"suggestWhichBrokerId": "x"}):
        plain = RemotingCommand(
            code=ResponseCode.PULL_NOT_FOUND, flag=1, ext_fields={"nextBeginOffset": "1", **bad}
        )
        got = decode_pull_response(plain, mq, 1, TagFilter("*"))
        assert got is not None and got.suggest_which_broker_id == 0


def test_pull_header_decodes_with_the_broker_header_class() -> None:
    mq = MessageQueue(topic="T", broker_name="b", queue_id=3)
    ext = pull_header("g", mq, 42, max_nums=16, expression="a || b", commit_offset=40)
    h = decode_header(PullMessageRequestHeader, ext)
    assert (h.consumer_group, h.topic, h.queue_id, h.queue_offset) == ("g", "T", 3, 42)
    assert h.sys_flag & PullSysFlag.SUSPEND and h.sys_flag & PullSysFlag.COMMIT_OFFSET
    assert h.commit_offset == 40 and h.subscription == "a || b" and h.max_msg_nums == 16
    no_commit = decode_header(
        PullMessageRequestHeader, pull_header("g", mq, 0, max_nums=1, expression="*")
    )
    assert not no_commit.sys_flag & PullSysFlag.COMMIT_OFFSET
    lite = pull_header("g", mq, 0, max_nums=1, expression="*", suspend_ms=0, lite=True)
    expected = PullSysFlag.SUBSCRIPTION | PullSysFlag.LITE_PULL
    assert lite["sysFlag"] == str(int(expected))


def test_tag_filter_expressions() -> None:
    assert TagFilter("*").matches_all and TagFilter("").matches_all
    assert TagFilter(" a ||b|| c ").tags == frozenset({"a", "b", "c"})
    with pytest.raises(ValueError):
        TagFilter("||")


# -- allocation and selection -----------------------------------------------------------------


@given(
    st.integers(0, 40),
    st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=12, unique=True),
)
def test_average_allocation_covers_every_queue_once_and_evenly(q: int, cids: list[str]) -> None:
    queues = [MessageQueue(topic="T", broker_name=f"b{i % 2}", queue_id=i // 2) for i in range(q)]
    shares = [allocate_averagely(cid, list(reversed(queues)), cids) for cid in cids]
    flat = [mq for share in shares for mq in share]
    assert sorted(flat) == sorted(queues)  # every queue exactly once
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1
    # the blocks are contiguous in sorted order, first ids get the larger ones
    by_id = [len(allocate_averagely(cid, queues, cids)) for cid in sorted(cids)]
    assert by_id == sorted(by_id, reverse=True)


def test_allocation_matches_rocketmq_for_8_queues_over_3_clients() -> None:
    qs = list(range(8))
    assert [allocate_averagely(c, qs, ["c", "a", "b"]) for c in "abc"] == [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7],
    ]
    assert allocate_averagely("z", qs, ["a"]) == []


def test_sharding_key_selection_is_stable_and_uses_java_hash() -> None:
    queues = [MessageQueue(topic="T", broker_name="b", queue_id=i) for i in range(4)]
    sel = ByShardingKey("order-42")
    assert sel(queues, Message("T", b"x")) == sel(queues, Message("T", b"y"))
    # Java: "abc".hashCode() == 96354 -> 96354 % 4 == 2
    assert shard_index("abc", 4) == 2
    assert shard_index("polygenelubricants", 7) == abs(-2147483648) % 7


def test_round_robin_avoids_the_broker_that_failed() -> None:
    queues = [MessageQueue(topic="T", broker_name=b, queue_id=i) for b in "ab" for i in range(2)]
    rr = RoundRobin()
    assert [rr.select(queues).queue_id for _ in range(4)] == [0, 1, 0, 1]
    for _ in range(6):
        assert rr.select(queues, avoid="a").broker_name == "b"


def test_each_round_robin_starts_at_a_random_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given many producers' selectors (short-lived producers, one send each), as outside tests
    monkeypatch.setattr(selectors, "FIRST_QUEUE", None)
    queues = [MessageQueue(topic="T", broker_name=b, queue_id=i) for b in "ab" for i in range(4)]
    # When each picks its first queue
    firsts = {RoundRobin().select(queues) for _ in range(64)}
    # Then they spread over the queues instead of all taking the first (RocketMQ's
    # ThreadLocalIndex starts at a random value); (all 64 on one queue: p = 8 * 8^-64)
    assert len(firsts) > 1


# -- ids, config, process queue, offsets file -------------------------------------------------


def test_message_ids_are_unique_and_32_hex_digits() -> None:
    gen = MessageIdGenerator("10.0.0.1", pid=1234)
    ids = [gen.next_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"0A000001" "04D2" r"[0-9A-F]{20}", i) for i in ids)
    other = MessageIdGenerator("10.0.0.1", pid=1234).next_id()
    assert other[:20] != ids[0][:20]  # random part differs between generators


def test_namesrv_from_argument_env_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESRV_ADDR", "10.0.0.1:9876;10.0.0.2:9876")
    assert resolve_namesrv(None) == ("10.0.0.1:9876", "10.0.0.2:9876")
    assert resolve_namesrv("h:1,h:2") == ("h:1", "h:2")
    monkeypatch.delenv("NAMESRV_ADDR")
    assert resolve_namesrv(None) == ("127.0.0.1:9876",)
    with pytest.raises(ClientError):
        resolve_namesrv("nohost")


def ext(offset: int, body: bytes = b"x") -> MessageExt:
    return MessageExt("T", body, "", queue_offset=offset)


def test_process_queue_commits_the_lowest_offset_in_flight() -> None:
    pq = ProcessQueue(10)
    pq.add([ext(10), ext(11), ext(14)], 15)  # 12, 13 filtered out by tag
    assert pq.committable() == 10 and pq.count == 3 and pq.bytes == 3
    pq.remove([11, 14])
    assert pq.committable() == 10  # 10 still in flight: never skip it
    pq.remove([10])
    assert pq.committable() == 15 and pq.count == 0 and pq.bytes == 0
    pq.advance(20)
    assert pq.committable() == 20
    assert pq.add([ext(20)], 21) and not pq.add([ext(20)], 21)  # duplicates are ignored


def test_process_queue_span_is_highest_minus_lowest_cached_offset() -> None:
    pq = ProcessQueue(0)
    assert pq.span() == 0
    pq.add([ext(0), ext(1), ext(7)], 8)
    assert pq.span() == 7
    pq.remove([7])  # the highest consumed: the span shrinks to what is still cached
    assert pq.span() == 1
    pq.add([ext(30)], 31)
    pq.remove([0, 1])
    assert pq.span() == 0 and pq.count == 1


def test_local_offsets_file_round_trip_and_corruption(tmp_path) -> None:
    path = tmp_path / "g" / "offsets.json"
    table = {MessageQueue(topic="T", broker_name="b", queue_id=i): i * 10 for i in range(3)}
    write_local(path, table)
    assert read_local(path) == table
    assert not list(path.parent.glob("*.tmp"))
    path.write_text("{not json")
    assert read_local(path) == {}
    assert read_local(tmp_path / "missing.json") == {}


@pytest.mark.parametrize("topic", ["SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC"])
def test_a_producer_refuses_a_topic_only_the_broker_writes_before_sending(topic: str) -> None:
    # (RocketMQ's client refuses its not-allowed-send set too; the broker answers NO_PERMISSION)
    with pytest.raises(MessageInvalidError, match=r"Sending message to topic\[.*\] is forbidden"):
        prepare(Message(topic, b"x"))
    with pytest.raises(MessageInvalidError, match="forbidden"):
        prepare_batch([Message(topic, b"x")])
    assert prepare(Message("%RETRY%g", b"x")) is not None  # (retry topics stay open)


def test_a_retry_copy_of_exactly_4_kib_is_compressed_as_rocketmq_s_internal_producer_does() -> None:
    from actors.client.send_back import retry_copy

    def copy(size: int) -> int:
        msg = MessageExt("T", b"a" * size, "")
        return retry_copy("g", msg, delay_level=0, max_reconsume_times=16).sys_flag

    assert copy(4095) == 0
    assert copy(4096) & MessageSysFlag.COMPRESSED
