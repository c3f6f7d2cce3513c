"""JSON bodies, the batch body and the properties string."""

from __future__ import annotations

import json
import struct

import pytest

from runtime.errors import ProtocolError
from runtime.remoting import (
    BatchEntry,
    BrokerData,
    ClusterInfo,
    ConsumerData,
    ConsumerListBody,
    DataVersion,
    HeartbeatData,
    LockBatchRequestBody,
    LockBatchResponseBody,
    MessageQueue,
    ProducerData,
    QueueData,
    RegisterBrokerBody,
    SubscriptionData,
    SubscriptionGroupConfig,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicList,
    TopicRouteData,
    UnlockBatchRequestBody,
    decode_batch,
    decode_body,
    decode_properties,
    encode_batch,
    encode_body,
    encode_properties,
    tag_hash,
    tags_of,
)
from runtime.remoting import properties as P
from runtime.remoting.bodies import CheckClientRequestBody
from runtime.remoting.codes import ConsumeFromWhere, ConsumeType, MessageModel, PermName

# ---------------------------------------------------------------------------------- route


def _route() -> TopicRouteData:
    return TopicRouteData(
        broker_datas=[
            BrokerData(
                broker_addrs={0: "127.0.0.1:10911", 1: "127.0.0.1:10921"},
                broker_name="broker-a",
                cluster="DefaultCluster",
            )
        ],
        queue_datas=[
            QueueData(broker_name="broker-a", perm=6, read_queue_nums=4, write_queue_nums=4)
        ],
    )


def test_route_shape() -> None:
    data = encode_body(_route())
    assert json.loads(data) == {
        "brokerDatas": [
            {
                "brokerAddrs": {"0": "127.0.0.1:10911", "1": "127.0.0.1:10921"},
                "brokerName": "broker-a",
                "cluster": "DefaultCluster",
            }
        ],
        "filterServerTable": {},
        "queueDatas": [
            {
                "brokerName": "broker-a",
                "perm": 6,
                "readQueueNums": 4,
                "topicSysFlag": 0,
                "writeQueueNums": 4,
            }
        ],
    }
    assert b'"0":"127.0.0.1:10911"' in data  # keys always quoted
    assert decode_body(TopicRouteData, data) == _route()


def test_route_decode_tolerant() -> None:
    text = (
        b' {"orderTopicConf":null,"brokerDatas":[{"brokerAddrs":{"0":"h:1"},"brokerName":"b",'
        b'"cluster":"c","enableActingMaster":false}],"queueDatas":[{"brokerName":"b",'
        b'"perm":"6","readQueueNums":4,"writeQueueNums":4,"topicSynFlag":0}]}\n'
    )
    route = decode_body(TopicRouteData, text)
    assert route.broker_datas[0].broker_addrs == {0: "h:1"}
    assert route.queue_datas[0].perm == PermName.READ | PermName.WRITE
    assert route.filter_server_table == {}


def test_cluster_info_topic_list_consumer_list() -> None:
    info = ClusterInfo(
        broker_addr_table={"broker-a": _route().broker_datas[0]},
        cluster_addr_table={"DefaultCluster": ["broker-a"]},
    )
    assert decode_body(ClusterInfo, encode_body(info)) == info
    assert json.loads(encode_body(info))["clusterAddrTable"] == {"DefaultCluster": ["broker-a"]}
    topics = TopicList(topic_list=["A", "B"])
    assert json.loads(encode_body(topics))["topicList"] == ["A", "B"]
    assert decode_body(TopicList, b'{"topicList":["A"]}').topic_list == ["A"]
    ids = ConsumerListBody(consumer_id_list=["c1", "c2"])
    assert encode_body(ids) == b'{"consumerIdList":["c1","c2"]}'
    assert decode_body(ConsumerListBody, b'{"consumerIdList":["x"]}') == ConsumerListBody(
        consumer_id_list=["x"]
    )


def test_register_broker_body() -> None:
    text = (
        b'{"topicConfigSerializeWrapper":{"topicConfigTable":{"TopicTest":{"topicName":'
        b'"TopicTest","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicFilterType":'
        b'"SINGLE_TAG","topicSysFlag":0,"order":false,"attributes":{}}},"dataVersion":'
        b'{"timestamp":1700000000000,"counter":3,"stateVersion":0}},"filterServerList":[]}'
    )
    body = decode_body(RegisterBrokerBody, text)
    wrapper = body.topic_config_serialize_wrapper
    assert wrapper.topic_config_table["TopicTest"] == TopicConfig(
        topic_name="TopicTest", read_queue_nums=4, write_queue_nums=4
    )
    assert wrapper.data_version == DataVersion(timestamp=1700000000000, counter=3)
    assert decode_body(RegisterBrokerBody, encode_body(body)) == body
    empty = RegisterBrokerBody()
    assert decode_body(RegisterBrokerBody, encode_body(empty)) == empty
    assert TopicConfigSerializeWrapper().topic_config_table == {}


def test_subscription_group_config() -> None:
    cfg = decode_body(SubscriptionGroupConfig, b'{"groupName":"g","retryMaxTimes":3}')
    assert cfg.retry_max_times == 3 and cfg.consume_enable is True
    assert json.loads(encode_body(cfg))["whichBrokerWhenConsumeSlowly"] == 1


# ------------------------------------------------------------------------------ heartbeat


def _hb(consumer: dict) -> bytes:
    return json.dumps({"clientID": "c@1", "consumerDataSet": [consumer]}).encode()


@pytest.mark.parametrize(
    ("sent", "want"),
    [
        ((0, 0, 0), ("CONSUME_ACTIVELY", "BROADCASTING", "CONSUME_FROM_LAST_OFFSET")),
        (
            (1, 1, 1),
            (
                "CONSUME_PASSIVELY",
                "CLUSTERING",
                "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
            ),
        ),
        ((1, 1, 2), ("CONSUME_PASSIVELY", "CLUSTERING", "CONSUME_FROM_MIN_OFFSET")),
        ((1, 1, 3), ("CONSUME_PASSIVELY", "CLUSTERING", "CONSUME_FROM_MAX_OFFSET")),
        ((1, 1, 4), ("CONSUME_PASSIVELY", "CLUSTERING", "CONSUME_FROM_FIRST_OFFSET")),
        ((1, 1, 5), ("CONSUME_PASSIVELY", "CLUSTERING", "CONSUME_FROM_TIMESTAMP")),
        (("1", "0", "4"), ("CONSUME_PASSIVELY", "BROADCASTING", "CONSUME_FROM_FIRST_OFFSET")),
        (
            ("CONSUME_ACTIVELY", "CLUSTERING", "CONSUME_FROM_TIMESTAMP"),
            ("CONSUME_ACTIVELY", "CLUSTERING", "CONSUME_FROM_TIMESTAMP"),
        ),
        (
            ("PUSH", "clustering", " CONSUME_FROM_FIRST_OFFSET "),
            ("CONSUME_PASSIVELY", "CLUSTERING", "CONSUME_FROM_FIRST_OFFSET"),
        ),
        (
            ("PULL", "BROADCASTING", "CONSUME_FROM_MAX_OFFSET"),
            ("CONSUME_ACTIVELY", "BROADCASTING", "CONSUME_FROM_MAX_OFFSET"),
        ),
    ],
)
def test_heartbeat_enums_normalised(sent: tuple, want: tuple) -> None:
    consumer = {
        "groupName": "g",
        "consumeType": sent[0],
        "messageModel": sent[1],
        "consumeFromWhere": sent[2],
        "subscriptionDataSet": [],
    }
    [c] = decode_body(HeartbeatData, _hb(consumer)).consumer_data_set
    assert (c.consume_type, c.message_model, c.consume_from_where) == want


def test_enum_ordinals_match_java() -> None:
    assert [m.name for m in sorted(ConsumeFromWhere)] == [
        "CONSUME_FROM_LAST_OFFSET",
        "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
        "CONSUME_FROM_MIN_OFFSET",
        "CONSUME_FROM_MAX_OFFSET",
        "CONSUME_FROM_FIRST_OFFSET",
        "CONSUME_FROM_TIMESTAMP",
    ]
    assert (ConsumeType.CONSUME_ACTIVELY, ConsumeType.CONSUME_PASSIVELY) == (0, 1)
    assert (MessageModel.BROADCASTING, MessageModel.CLUSTERING) == (0, 1)


@pytest.mark.parametrize(
    "consumer",
    [
        {"groupName": "g", "consumeType": 9},
        {"groupName": "g", "messageModel": "SIDEWAYS"},
        {"groupName": "g", "consumeFromWhere": True},
        {"groupName": "g", "consumeFromWhere": -1},
        {"groupName": "g", "consumeFromWhere": [0]},
        {"consumeType": 1},
    ],
)
def test_heartbeat_bad_enums(consumer: dict) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_body(HeartbeatData, _hb(consumer), opaque=8)
    assert info.value.fatal is False and info.value.opaque == 8


def test_tags_derived_when_absent() -> None:
    consumer = {
        "groupName": "g",
        "subscriptionDataSet": [
            {"topic": "A", "subString": "TagA || TagB ||  || TagA"},
            {"topic": "B", "subString": "*"},
            {"topic": "C", "subString": ""},
            {"topic": "D", "subString": "a > 5", "expressionType": "SQL92"},
            {"topic": "E", "subString": "x||y", "tagsSet": ["x"], "codeSet": [1]},
        ],
    }
    subs = decode_body(HeartbeatData, _hb(consumer)).consumer_data_set[0].subscription_data_set
    assert subs[0].tags_set == ["TagA", "TagB"]
    assert subs[0].code_set == [tag_hash("TagA"), tag_hash("TagB")] == [2598919, 2598920]
    assert subs[1].tags_set == [] and subs[1].code_set == []
    assert subs[2].tags_set == []
    assert subs[3].tags_set is None and subs[3].code_set is None
    assert subs[4].tags_set == ["x"] and subs[4].code_set == [1]


def test_tags_of() -> None:
    assert tags_of(None) == []
    assert tags_of(" * ") == []
    assert tags_of("a||b") == ["a", "b"]


def test_heartbeat_round_trip_and_defaults() -> None:
    hb = HeartbeatData(
        client_id="10.0.0.1@1",
        producer_data_set=[ProducerData(group_name="P")],
        consumer_data_set=[
            ConsumerData(
                group_name="G",
                consume_type=0,
                subscription_data_set=[SubscriptionData(topic="T", sub_string="a || b")],
            )
        ],
    )
    assert hb.consumer_data_set[0].consume_type == "CONSUME_ACTIVELY"  # normalised at build
    data = encode_body(hb)
    assert json.loads(data)["clientID"] == "10.0.0.1@1"
    assert decode_body(HeartbeatData, data) == hb
    bare = decode_body(HeartbeatData, b'{"clientID":"x"}')
    assert bare.producer_data_set == [] and bare.consumer_data_set == []


# --------------------------------------------------------------------------------- locks


def test_lock_bodies() -> None:
    req = LockBatchRequestBody(
        consumer_group="g",
        client_id="c",
        mq_set=[MessageQueue(topic="T", broker_name="b", queue_id=1)],
    )
    data = json.loads(encode_body(req))
    assert set(data) == {"consumerGroup", "clientId", "mqSet", "onlyThisBroker"}
    assert data["mqSet"] == [{"topic": "T", "brokerName": "b", "queueId": 1}]
    assert decode_body(LockBatchRequestBody, encode_body(req)) == req
    resp = LockBatchResponseBody(lock_ok_mq_set=req.mq_set)
    assert json.loads(encode_body(resp)) == {"lockOKMQSet": data["mqSet"]}
    assert decode_body(LockBatchResponseBody, encode_body(resp)) == resp
    un = decode_body(UnlockBatchRequestBody, encode_body(req))
    assert un.mq_set == req.mq_set


def test_message_queue_order_and_hash() -> None:
    a = MessageQueue(topic="T", broker_name="b", queue_id=2)
    b = MessageQueue(topic="T", broker_name="a", queue_id=3)
    c = MessageQueue(topic="S", broker_name="z", queue_id=9)
    assert sorted([a, b, c]) == [c, b, a]
    assert len({a, MessageQueue(topic="T", broker_name="b", queue_id=2)}) == 1


# ------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"null",
        b"[]",
        b"{",
        b'{"clientID":5}',
        b'{"clientID":"x","consumerDataSet":{}}',
        b"\xff\xfe",
        b'{"clientID":"x","producerDataSet":[' * 3000,
    ],
)
def test_bad_bodies(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_body(HeartbeatData, data, opaque=1)
    assert info.value.fatal is False and info.value.opaque == 1


# ---------------------------------------------------------------------------------- batch


def test_batch_round_trip() -> None:
    entries = [
        BatchEntry(0, b"a", "TAGS\x01x\x02"),
        BatchEntry(7, b"", ""),
        BatchEntry(-1, b"\x00" * 300, "K\x01\u00e9\x02"),
    ]
    data = encode_batch(entries)
    assert decode_batch(data) == entries
    assert encode_batch(decode_batch(data)) == data
    assert decode_batch(b"") == []


def test_batch_layout() -> None:
    data = encode_batch([BatchEntry(3, b"xyz", "A\x01b\x02")])
    total, magic, crc, flag, body_len = struct.unpack_from(">iiiii", data)
    assert (total, magic, crc, flag, body_len) == (22 + 3 + 4, 0, 0, 3, 3)
    assert len(data) == total
    assert struct.unpack_from(">h", data, 23)[0] == 4


def _entry(total: int, body_len: int, body: bytes, props_len: int, props: bytes) -> bytes:
    return (
        struct.pack(">iiiii", total, 0, 0, 0, body_len)
        + body
        + struct.pack(">h", props_len)
        + props
    )


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 10,  # shorter than an entry
        _entry(10, 0, b"", 0, b""),  # totalSize below 22
        _entry(2**31 - 1, 0, b"", 0, b""),  # totalSize beyond the bytes left
        _entry(-5, 0, b"", 0, b""),
        _entry(25, -1, b"abc", 0, b""),  # negative bodyLen
        _entry(25, 2**31 - 1, b"abc", 0, b""),  # bodyLen beyond totalSize
        _entry(25, 3, b"abc", 1, b""),  # propsLen inconsistent with totalSize
        _entry(26, 3, b"abc", -1, b"x"),  # negative propsLen
        _entry(24, 0, b"", 2, b"\xff\xfe"),  # properties not UTF-8
        encode_batch([BatchEntry(0, b"a", "")]) + b"\x00",  # trailing garbage
        encode_batch([BatchEntry(0, b"abcdef", "P\x01v\x02")])[:-1],  # truncated
    ],
)
def test_batch_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_batch(data, opaque=4)
    assert info.value.fatal is False and info.value.opaque == 4


def test_batch_encode_rejects_oversize_properties() -> None:
    with pytest.raises(ValueError):
        encode_batch([BatchEntry(0, b"", "x" * 40000)])


# ----------------------------------------------------------------------------- properties


def test_properties_decode() -> None:
    assert decode_properties("") == {}
    assert decode_properties("A\x011\x02B\x012\x02") == {"A": "1", "B": "2"}
    assert decode_properties("A\x011\x02B\x012") == {"A": "1", "B": "2"}  # no trailing \x02
    assert decode_properties("A\x01\x02\x02junk\x02B\x01x\x01y") == {"A": "", "B": "x\x01y"}
    assert decode_properties("A\x011\x02A\x012\x02") == {"A": "2"}


def test_properties_encode() -> None:
    props = {P.UNIQ_KEY: "ID", P.WAIT: "true", P.TAGS: "TagA", P.KEYS: "k1 k2"}
    text = encode_properties(props)
    assert text == "UNIQ_KEY\x01ID\x02WAIT\x01true\x02TAGS\x01TagA\x02KEYS\x01k1 k2\x02"
    assert decode_properties(text) == props
    assert encode_properties({}) == ""
    for bad in ({"a\x01": "v"}, {"a": "v\x02"}):
        with pytest.raises(ValueError):
            encode_properties(bad)


def test_property_keys() -> None:
    assert P.SHARDING_KEY == "__SHARDINGKEY"
    assert (P.REAL_TOPIC, P.REAL_QID, P.TRAN_MSG, P.PGROUP) == (
        "REAL_TOPIC",
        "REAL_QID",
        "TRAN_MSG",
        "PGROUP",
    )
    assert (P.DELAY, P.RETRY_TOPIC, P.MAX_RECONSUME_TIMES, P.CONSUME_START_TIME) == (
        "DELAY",
        "RETRY_TOPIC",
        "MAX_RECONSUME_TIMES",
        "CONSUME_START_TIME",
    )
    assert len(P.DELAY_LEVELS.split()) == 18


def test_tag_hash_is_java_string_hash() -> None:
    assert tag_hash("") == 0
    assert tag_hash("TagA") == 2598919
    assert tag_hash("\u4e2d\u6587") == 646394
    assert tag_hash("polygenelubricants") == -2147483648  # Integer.MIN_VALUE
    assert tag_hash("\U0001f600") == (0xD83D * 31 + 0xDE00)  # surrogate pair, 2 units


def test_check_client_request_body() -> None:
    # Given the body a Java push consumer sends, and one without a subscription
    raw = (
        b'{"clientId":"10.0.0.1@7","group":"g","subscriptionData":{"topic":"T",'
        b'"subString":"a > 1","tagsSet":[],"codeSet":[],"subVersion":5,'
        b'"expressionType":"SQL92","classFilterMode":false}}'
    )
    body = decode_body(CheckClientRequestBody, raw)
    # Then the subscription's expression and type come through, and nothing is required
    assert body.client_id == "10.0.0.1@7" and body.group == "g"
    assert body.subscription_data is not None
    assert (body.subscription_data.expression_type, body.subscription_data.sub_string) == (
        "SQL92",
        "a > 1",
    )
    assert decode_body(CheckClientRequestBody, b"{}").subscription_data is None
