"""Request/response headers: coercion, V2 short names, errors naming the field, encoding."""

from __future__ import annotations

import msgspec
import pytest

from runtime.errors import ProtocolError
from runtime.remoting import (
    REQUEST_HEADERS,
    CheckTransactionStateRequestHeader,
    ConsumerSendMsgBackRequestHeader,
    CreateTopicRequestHeader,
    EndTransactionRequestHeader,
    GetConsumerListByGroupRequestHeader,
    GetEarliestMsgStoretimeRequestHeader,
    GetMaxOffsetRequestHeader,
    GetMinOffsetRequestHeader,
    GetRouteInfoRequestHeader,
    Header,
    NotifyConsumerIdsChangedRequestHeader,
    PullMessageRequestHeader,
    PullMessageResponseHeader,
    QueryConsumerOffsetRequestHeader,
    QueryMessageRequestHeader,
    RegisterBrokerRequestHeader,
    RemotingCommand,
    RequestCode,
    ResponseCode,
    SearchOffsetRequestHeader,
    SendMessageRequestHeader,
    SendMessageResponseHeader,
    UnregisterBrokerRequestHeader,
    UnregisterClientRequestHeader,
    UpdateConsumerOffsetRequestHeader,
    ViewMessageRequestHeader,
    decode_frame,
    decode_header,
    decode_send_header,
    encode,
    encode_header,
    encode_send_header_v2,
)
from runtime.remoting.header_codec import SEND_V2_NAMES

V2_STRINGS = {
    "a": "GID_p",
    "b": "TopicTest",
    "c": "TBW102",
    "d": "4",
    "e": "2",
    "f": "4",
    "g": "1700000000000",
    "h": "0",
    "i": "TRAN_MSG\x01true\x02PGROUP\x01GID_p\x02",
    "j": "1",
    "k": "false",
    "l": "16",
    "n": "broker-a",
    "AccessKey": "ak",
    "Signature": "sig",
    "OnsChannel": "ALIYUN",
    "bname": "broker-a",
    "oway": "false",
    "lo": "true",
    "ns": "x",
}


def test_send_v2_strings() -> None:
    h = decode_send_header(RequestCode.SEND_MESSAGE_V2, V2_STRINGS)
    assert h == SendMessageRequestHeader(
        producer_group="GID_p",
        topic="TopicTest",
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=2,
        sys_flag=4,
        born_timestamp=1700000000000,
        flag=0,
        properties="TRAN_MSG\x01true\x02PGROUP\x01GID_p\x02",
        reconsume_times=1,
        unit_mode=False,
        batch=False,
        max_reconsume_times=16,
        broker_name="broker-a",
    )


def test_send_v1_long_names_equal_v2() -> None:
    long = {SEND_V2_NAMES[k]: v for k, v in V2_STRINGS.items() if k in SEND_V2_NAMES}
    assert decode_send_header(RequestCode.SEND_MESSAGE, long) == decode_send_header(
        RequestCode.SEND_MESSAGE_V2, V2_STRINGS
    )
    # long names under a V2 code are accepted too
    assert decode_send_header(RequestCode.SEND_MESSAGE_V2, long) == decode_send_header(
        RequestCode.SEND_MESSAGE, long
    )


def test_send_numbers_and_booleans() -> None:
    ext = {
        "a": "g",
        "b": "T",
        "c": "TBW102",
        "d": 4,
        "e": 1,
        "f": 0,
        "g": 17,
        "h": 3,
        "i": "",
        "j": 0,
        "k": True,
        "l": 3,
    }
    h = decode_send_header(RequestCode.SEND_MESSAGE_V2, ext)
    assert (h.queue_id, h.flag, h.unit_mode, h.max_reconsume_times, h.born_timestamp) == (
        1,
        3,
        True,
        3,
        17,
    )


@pytest.mark.parametrize("value", ["1", "true", "TRUE", True, 1])
def test_batch_flag_truthy_values(value: object) -> None:
    h = decode_send_header(RequestCode.SEND_MESSAGE_V2, {**V2_STRINGS, "m": value})
    assert h.batch is True


@pytest.mark.parametrize("value", ["0", "false", False, 0])
def test_batch_flag_falsy_values(value: object) -> None:
    h = decode_send_header(RequestCode.SEND_MESSAGE_V2, {**V2_STRINGS, "m": value})
    assert h.batch is False


def test_code_320_is_always_batch() -> None:
    assert decode_send_header(RequestCode.SEND_BATCH_MESSAGE, V2_STRINGS).batch is True
    ext = {**V2_STRINGS, "m": "false"}
    assert decode_send_header(RequestCode.SEND_BATCH_MESSAGE, ext).batch is True


def test_send_minimal_and_defaults() -> None:
    h = decode_send_header(RequestCode.SEND_MESSAGE_V2, {"a": "g", "b": "T", "e": "0"})
    assert h.default_topic == "TBW102" and h.default_topic_queue_nums == 4
    assert h.sys_flag == 0 and h.properties == "" and h.max_reconsume_times is None


@pytest.mark.parametrize(
    ("ext", "fragment"),
    [
        ({"a": "g", "e": "0"}, "missing field topic (b)"),
        ({"b": "T", "e": "0"}, "missing field producerGroup (a)"),
        ({"a": "g", "b": "T"}, "missing field queueId (e)"),
        ({"a": "g", "b": "T", "e": "x"}, "field queueId (e)"),
        ({"a": "g", "b": "T", "e": "1", "k": "maybe"}, "field unitMode (k)"),
        ({"a": "g", "b": "T", "e": str(2**31)}, "field queueId (e)"),
        ({"a": "g", "b": "T", "e": "1", "g": str(2**63)}, "field bornTimestamp (g)"),
        ({"a": "g", "b": "T", "e": [1]}, "field queueId (e)"),
        ({"a": ["g"], "b": "T", "e": 1}, "field producerGroup (a)"),
    ],
)
def test_send_errors_name_the_field(ext: dict, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_send_header(RequestCode.SEND_MESSAGE_V2, ext, opaque=42)
    assert info.value.fatal is False and info.value.opaque == 42
    assert fragment in info.value.reason


def test_send_v1_errors_use_long_names() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_send_header(RequestCode.SEND_MESSAGE, {"producerGroup": "g", "queueId": "1"})
    assert "missing field topic" in info.value.reason and "(b)" not in info.value.reason


def test_not_a_mapping() -> None:
    for bad in ([1, 2], "x", None):
        with pytest.raises(ProtocolError):
            decode_send_header(310, bad)  # type: ignore[arg-type]
        with pytest.raises(ProtocolError):
            decode_header(PullMessageRequestHeader, bad)  # type: ignore[arg-type]


def test_lenient_coercions() -> None:
    h = decode_header(
        PullMessageRequestHeader,
        {
            "consumerGroup": 7,
            "topic": "T",
            "queueId": " 3 ",
            "queueOffset": 1.0,
            "subVersion": "",
            "subscription": None,
            "maxMsgNums": "1e1",
        },
    )
    assert h.consumer_group == "7" and h.queue_id == 3 and h.queue_offset == 1
    assert h.sub_version == 0 and h.subscription is None and h.max_msg_nums == 10


def test_bool_into_string_field() -> None:
    h = decode_header(UnregisterClientRequestHeader, {"clientID": True, "producerGroup": 5})
    assert h.client_id == "true" and h.producer_group == "5"


CASES: list[tuple[type[Header], dict[str, object], dict[str, object]]] = [
    (
        PullMessageRequestHeader,
        {
            "consumerGroup": "g",
            "topic": "T",
            "queueId": "1",
            "queueOffset": "100",
            "maxMsgNums": "32",
            "sysFlag": "6",
            "commitOffset": "0",
            "suspendTimeoutMillis": "15000",
            "subscription": "*",
            "subVersion": "0",
            "expressionType": "TAG",
            "maxMsgBytes": "1024",
        },
        {
            "queue_offset": 100,
            "sys_flag": 6,
            "suspend_timeout_millis": 15000,
            "max_msg_bytes": 1024,
        },
    ),
    (
        QueryConsumerOffsetRequestHeader,
        {"consumerGroup": "g", "topic": "T", "queueId": 0},
        {"queue_id": 0, "set_zero_if_not_found": None},
    ),
    (
        UpdateConsumerOffsetRequestHeader,
        {"consumerGroup": "g", "topic": "T", "queueId": "1", "commitOffset": "-1"},
        {"commit_offset": -1},
    ),
    (GetMaxOffsetRequestHeader, {"topic": "T", "queueId": "2"}, {"committed": True}),
    (GetMinOffsetRequestHeader, {"topic": "T", "queueId": "2"}, {"queue_id": 2}),
    (
        SearchOffsetRequestHeader,
        {"topic": "T", "queueId": "2", "timestamp": "1700000000000"},
        {"timestamp": 1700000000000},
    ),
    (GetEarliestMsgStoretimeRequestHeader, {"topic": "T", "queueId": "0"}, {"topic": "T"}),
    (ViewMessageRequestHeader, {"offset": "123456"}, {"offset": 123456, "topic": None}),
    (
        QueryMessageRequestHeader,
        {"topic": "T", "key": "k1", "maxNum": "32", "beginTimestamp": "0", "endTimestamp": "9"},
        {"max_num": 32, "end_timestamp": 9},
    ),
    (GetConsumerListByGroupRequestHeader, {"consumerGroup": "g"}, {"consumer_group": "g"}),
    (
        UnregisterClientRequestHeader,
        {"clientID": "c1", "producerGroup": "p"},
        {"client_id": "c1", "consumer_group": None},
    ),
    (
        ConsumerSendMsgBackRequestHeader,
        {
            "offset": "10",
            "group": "g",
            "delayLevel": "0",
            "originMsgId": "ID",
            "originTopic": "T",
            "unitMode": "false",
            "maxReconsumeTimes": "16",
        },
        {"delay_level": 0, "max_reconsume_times": 16, "origin_msg_id": "ID"},
    ),
    (
        EndTransactionRequestHeader,
        {
            "producerGroup": "p",
            "tranStateTableOffset": "3",
            "commitLogOffset": "400",
            "commitOrRollback": "8",
            "fromTransactionCheck": "true",
            "msgId": "M",
            "transactionId": "X",
        },
        {"commit_or_rollback": 8, "from_transaction_check": True},
    ),
    (
        CheckTransactionStateRequestHeader,
        {
            "tranStateTableOffset": "3",
            "commitLogOffset": "400",
            "msgId": "M",
            "offsetMsgId": "O",
            "transactionId": "X",
            "topic": "T",
        },
        {"offset_msg_id": "O"},
    ),
    (NotifyConsumerIdsChangedRequestHeader, {"consumerGroup": "g"}, {"consumer_group": "g"}),
    (
        RegisterBrokerRequestHeader,
        {
            "brokerName": "broker-a",
            "brokerAddr": "127.0.0.1:10911",
            "clusterName": "C",
            "haServerAddr": "127.0.0.1:10912",
            "brokerId": "0",
            "compressed": "false",
            "bodyCrc32": "-5",
        },
        {"broker_id": 0, "body_crc32": -5, "compressed": False},
    ),
    (
        UnregisterBrokerRequestHeader,
        {"brokerName": "b", "brokerAddr": "a", "clusterName": "C", "brokerId": "1"},
        {"broker_id": 1},
    ),
    (GetRouteInfoRequestHeader, {"topic": "%RETRY%g"}, {"topic": "%RETRY%g"}),
    (
        CreateTopicRequestHeader,
        {
            "topic": "T",
            "defaultTopic": "TBW102",
            "readQueueNums": 8,
            "writeQueueNums": 8,
            "perm": 6,
            "topicFilterType": "SINGLE_TAG",
            "topicSysFlag": 0,
            "order": False,
        },
        {"read_queue_nums": 8, "order": False},
    ),
]


@pytest.mark.parametrize(("cls", "ext", "want"), CASES, ids=[c[0].__name__ for c in CASES])
def test_request_headers(cls: type[Header], ext: dict[str, object], want: dict) -> None:
    h = decode_header(cls, {**ext, "AccessKey": "x", "Signature": "y", "lo": "1"})
    for key, value in want.items():
        assert getattr(h, key) == value, key
    # encode -> all strings, camelCase -> decodes back equal
    enc = encode_header(h)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in enc.items())
    assert decode_header(cls, enc) == h
    # every required field missing is reported by name
    for field in msgspec.structs.fields(cls):
        if field.required:
            reduced = {k: v for k, v in ext.items() if k != field.encode_name}
            with pytest.raises(ProtocolError) as info:
                decode_header(cls, reduced, opaque=5)
            assert field.encode_name in info.value.reason
            assert info.value.opaque == 5 and not info.value.fatal


def test_request_headers_table() -> None:
    assert REQUEST_HEADERS[RequestCode.PULL_MESSAGE] is PullMessageRequestHeader
    assert REQUEST_HEADERS[RequestCode.SEND_BATCH_MESSAGE] is SendMessageRequestHeader
    assert all(issubclass(cls, Header) for cls in REQUEST_HEADERS.values())


def test_encode_send_header_v2_round_trip() -> None:
    h = decode_send_header(RequestCode.SEND_MESSAGE_V2, V2_STRINGS)
    short = encode_send_header_v2(h)
    assert set(short) <= set(SEND_V2_NAMES)
    assert short["e"] == "2" and short["k"] == "false" and short["m"] == "false"
    assert decode_send_header(RequestCode.SEND_MESSAGE_V2, short) == h
    long = encode_header(h)
    assert long["queueId"] == "2" and "brokerName" in long
    assert decode_send_header(RequestCode.SEND_MESSAGE, long) == h


def test_response_headers_through_a_frame() -> None:
    req = RemotingCommand.request(RequestCode.PULL_MESSAGE, {}, opaque=3)
    resp = RemotingCommand.response_to(
        req,
        ResponseCode.PULL_NOT_FOUND,
        ext_fields=encode_header(
            PullMessageResponseHeader(next_begin_offset=5, min_offset=0, max_offset=5)
        ),
    )
    got = decode_frame(encode(resp))
    assert got.ext_fields == {
        "suggestWhichBrokerId": "0",
        "nextBeginOffset": "5",
        "minOffset": "0",
        "maxOffset": "5",
    }
    assert decode_header(PullMessageResponseHeader, got.ext_fields).next_begin_offset == 5
    send = SendMessageResponseHeader(msg_id="AB", queue_id=1, queue_offset=9)
    assert encode_header(send) == {"msgId": "AB", "queueId": "1", "queueOffset": "9"}


@pytest.mark.parametrize(
    "value",
    [10**5000, "9" * 5000, "x" * 10_000, object(), b"1"],
    ids=["huge-int", "huge-digits", "long-str", "object", "bytes"],
)
def test_hostile_values_give_short_errors(value: object) -> None:
    for field in ("topic", "queueId"):
        try:
            decode_header(GetMinOffsetRequestHeader, {"topic": "T", "queueId": 1, field: value})
        except ProtocolError as exc:
            assert not exc.fatal and len(exc.reason) < 400
