"""Trace records in RocketMQ's text format: the strings are those of RocketMQ's
TraceDataEncoderTest and TraceViewTest (client/src/test/java/org/apache/rocketmq/client/trace/),
so what we write RocketMQ's tools read, and what RocketMQ's clients write we read."""

from __future__ import annotations

import socket
import time

from actors.client.message import MessageExt
from actors.client.trace_data import (
    CONTENT_SPLITOR,
    FIELD_SPLITOR,
    TraceBean,
    TraceContext,
    TraceType,
    decode,
    encode,
    java_split,
)
from actors.client.trace_view import trace_views
from runtime.admin_trace import trace_lines

TIME = 1625883640000
MSG_ID = "AC1415116D1418B4AAC217FE1B4E0000"
OFFSET_ID = "0A9A002600002A9F0000000000002329"
S, F = CONTENT_SPLITOR, FIELD_SPLITOR
# TraceDataEncoderTest.init(): a Pub of 14 fields
PUB = S.join(
    ["Pub", str(TIME), "DefaultRegion", "PID-test", "topic-test", MSG_ID, "Tags", "Keys",
     "127.0.0.1:10911", "26", "245", "0", OFFSET_ID, "true"]
) + F  # fmt: skip


def pub_context() -> TraceContext:
    """TraceDataEncoderTest.testEncoderFromContextBean's context."""
    bean = TraceBean(
        topic="topic-test",
        keys="Keys",
        tags="Tags",
        msg_id=MSG_ID,
        offset_msg_id=OFFSET_ID,
        store_host="127.0.0.1:10911",
        store_time=TIME,
        msg_type="Normal_Msg",
        body_length=26,
    )
    return TraceContext(
        trace_type=TraceType.Pub,
        group="PID-test",
        region_id="DefaultRegion",
        cost_time=245,
        success=True,
        timestamp=TIME,
        beans=[bean],
    )


def test_a_pub_encodes_to_rocketmq_s_string_with_its_msg_id_and_keys_as_trace_keys() -> None:
    # Given the Pub context of RocketMQ's encoder test; When it is encoded
    transfer = encode(pub_context())
    # Then the text is RocketMQ's, and the trace message is indexed by msgId and keys
    assert transfer.data == PUB
    assert transfer.keys == (MSG_ID, "Keys")


def test_rocketmq_s_pub_string_decodes_to_its_fields() -> None:
    # Given RocketMQ's Pub string; When it is decoded
    [ctx] = decode(PUB)
    # Then every field is back (storeTime is not in the record)
    expected = pub_context()
    expected.beans[0].store_time = 0
    assert (ctx.trace_type, ctx.timestamp, ctx.region_id, ctx.group) == (
        TraceType.Pub,
        TIME,
        "DefaultRegion",
        "PID-test",
    )
    assert (ctx.cost_time, ctx.success, ctx.beans) == (245, True, expected.beans)


def test_older_pub_lengths_decode_as_rocketmq_s_decoder_reads_them() -> None:
    fields = PUB[:-1].split(S)
    # Given a 13-field Pub (no offsetMsgId) and TraceViewTest's 15-field one (a clientHost)
    old = S.join([*fields[:12], "false"]) + F
    with_host = S.join([*fields, "10.0.0.7"]) + F
    # When decoded, Then success, offsetMsgId and clientHost land where RocketMQ puts them
    [a] = decode(old)
    [b] = decode(with_host)
    assert (a.success, a.beans[0].offset_msg_id) == (False, "")
    assert (b.success, b.beans[0].offset_msg_id, b.beans[0].client_host) == (
        True,
        OFFSET_ID,
        "10.0.0.7",
    )


def test_sub_before_and_sub_after_have_rocketmq_s_field_counts_and_round_trip() -> None:
    # Given the SubBefore and SubAfter contexts of RocketMQ's format tests
    bean = TraceBean(msg_id=MSG_ID, retry_times=0, keys="keys")
    before = TraceContext(
        trace_type=TraceType.SubBefore,
        timestamp=TIME,
        region_id="Default-region",
        group="GroupName-test",
        request_id="3455848576927",
        beans=[bean],
    )
    after = TraceContext(
        trace_type=TraceType.SubAfter,
        request_id="3455848576927",
        cost_time=20,
        success=True,
        timestamp=TIME,
        group="GroupName-test",
        context_code=98623046,
        beans=[bean],
    )
    # When encoded, Then 8 and 9 fields (RocketMQ's counts), in its order
    b, a = encode(before).data, encode(after).data
    assert java_split(b, S) == [
        "SubBefore", str(TIME), "Default-region", "GroupName-test", "3455848576927", MSG_ID,
        "0", "keys" + F,
    ]  # fmt: skip
    assert java_split(a, S) == [
        "SubAfter", "3455848576927", MSG_ID, "20", "true", "keys", "98623046", str(TIME),
        "GroupName-test" + F,
    ]  # fmt: skip
    # And decoding gives the same contexts back
    [b2, a2] = decode(b + a)
    assert (b2.trace_type, b2.group, b2.request_id, b2.beans[0].msg_id) == (
        TraceType.SubBefore,
        "GroupName-test",
        "3455848576927",
        MSG_ID,
    )
    assert (a2.request_id, a2.cost_time, a2.context_code, a2.timestamp, a2.group) == (
        "3455848576927",
        20,
        98623046,
        TIME,
        "GroupName-test",
    )


def test_an_older_sub_after_without_group_decodes() -> None:
    # Given a SubAfter of RocketMQ 4.x (8 fields: no group) and one of 6 fields
    eight = S.join(["SubAfter", "r1", MSG_ID, "5", "false", "k", "4", str(TIME)]) + F
    six = S.join(["SubAfter", "r2", MSG_ID, "7", "true", "k"]) + F
    # When decoded, Then the fields it has are read, the group is empty
    [a, b] = decode(eight + six)
    assert (a.success, a.context_code, a.timestamp, a.group) == (False, 4, TIME, "")
    assert (b.cost_time, b.success, b.context_code) == (7, True, 0)


def test_end_transaction_round_trips_with_13_fields_and_splits_its_keys() -> None:
    # Given RocketMQ's EndTransaction test context with keys "Keys Keys2"
    bean = TraceBean(
        topic="topic-test",
        keys="Keys Keys2",
        tags="Tags",
        msg_id=MSG_ID,
        store_host="127.0.0.1:10911",
        msg_type="Trans_msg_Commit",
        transaction_id="transactionId",
        transaction_state="COMMIT_MESSAGE",
        from_transaction_check=False,
    )
    ctx = TraceContext(
        trace_type=TraceType.EndTransaction,
        group="PID-test",
        region_id="DefaultRegion",
        timestamp=TIME,
        beans=[bean],
    )
    # When encoded and decoded
    transfer = encode(ctx)
    [back] = decode(transfer.data)
    # Then 13 fields, each key its own trace key, and the bean comes back whole
    assert len(java_split(transfer.data, S)) == 13
    assert transfer.keys == (MSG_ID, "Keys", "Keys2")
    assert back.beans == [bean]
    assert (back.group, back.timestamp) == ("PID-test", TIME)


def test_missing_tags_and_keys_are_written_null_as_java_writes_them() -> None:
    # Given a Pub of a message without tags or keys
    ctx = pub_context()
    ctx.beans[0].tags = None
    ctx.beans[0].keys = None
    # When encoded, Then they are "null" (Java's StringBuilder) and only the msgId is a key
    transfer = encode(ctx)
    assert transfer.data.split(S)[6:8] == ["null", "null"]
    assert transfer.keys == (MSG_ID,)


def test_java_split_drops_trailing_empty_fields_and_bad_records_are_skipped() -> None:
    assert java_split("a\x01\x01b\x01\x01", S) == ["a", "", "b"]
    assert java_split("", S) == [""]
    # Given a body with a truncated Pub, a record of unknown type and a good Pub
    body = "Pub\x011\x02Nope\x01x\x02" + PUB
    # When decoded, Then only the good record comes out
    assert [c.trace_type for c in decode(body)] == [TraceType.Pub]
    assert decode("") == []


def trace_message(body: str, born: str = "10.0.0.9") -> MessageExt:
    return MessageExt(
        "RMQ_SYS_TRACE_TOPIC", body.encode(), "", born_ip=socket.inet_aton(born), born_port=5
    )


def test_trace_views_keep_the_records_of_one_msg_id_with_the_trace_message_s_born_host() -> None:
    # Given a trace message with a Pub of MSG_ID, a SubAfter of it and a Pub of another id
    other = PUB.replace(MSG_ID, "FFFF")
    after = S.join(["SubAfter", "r", MSG_ID, "3", "false", "Keys", "4", str(TIME), "cg"]) + F
    # When viewed for MSG_ID
    views = trace_views(MSG_ID, trace_message(PUB + other + after))
    # Then its two records, the client host being the trace message's born IP
    assert [(v.msg_type, v.group, v.status, v.client_host) for v in views] == [
        ("Pub", "PID-test", "success", "10.0.0.9"),
        ("SubAfter", "cg", "failed", "10.0.0.9"),
    ]


def test_query_msg_trace_by_id_prints_as_mqadmin() -> None:
    # Given a Pub, two SubAfters of two groups, two EndTransactions (and a SubBefore, which
    # is not printed)
    before = S.join(["SubBefore", str(TIME), "R", "cg-a", "r", MSG_ID, "0", "Keys"]) + F
    end = ["EndTransaction", str(TIME), "R", "PID-test", "T", MSG_ID, "null", "null", "h:1", "2"]
    local = S.join([*end, MSG_ID, "UNKNOW", "false"]) + F
    checked = S.join([*end, MSG_ID, "COMMIT_MESSAGE", "true"]) + F
    a = S.join(["SubAfter", "r", MSG_ID, "3", "true", "Keys", "0", str(TIME), "cg-a"]) + F
    b = S.join(["SubAfter", "s", MSG_ID, "12", "false", "Keys", "4", str(TIME), "cg-b"]) + F
    views = trace_views(MSG_ID, trace_message(PUB + before + a + local + b + checked))
    # When printed, Then mqadmin's %-10s %-20s %-20s %-20s %-10s %-10s rows and blank lines
    t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(TIME / 1000))
    java = "%-10s %-20s %-20s %-20s %-10s %-10s"  # QueryMsgTraceByIdSubCommand's printf
    consumers = java % (
        "#Type",
        "#ConsumerGroup",
        "#ClientHost",
        "#ConsumerTime",
        "#CostTimes",
        "#Status",
    )
    assert trace_lines(views) == [
        java % ("#Type", "#ProducerGroup", "#ClientHost", "#SendTime", "#CostTimes", "#Status"),
        java % ("Pub", "PID-test", "10.0.0.9", t, "245ms", "success"),
        "",
        # (actormq's addition: mqadmin prints no EndTransaction)
        java % ("#Type", "#ProducerGroup", "#ClientHost", "#EndTime", "#State", "#FromCheck"),
        java % ("EndTx", "PID-test", "10.0.0.9", t, "UNKNOW", "false"),
        java % ("EndTx", "PID-test", "10.0.0.9", t, "COMMIT_MESSAGE", "true"),
        "",
        consumers,
        java % ("Sub", "cg-a", "10.0.0.9", t, "3ms", "success"),
        "",
        consumers,
        java % ("Sub", "cg-b", "10.0.0.9", t, "12ms", "failed"),
        "",
    ]
    assert trace_lines(views)[1].startswith("Pub        PID-test             10.0.0.9   ")
