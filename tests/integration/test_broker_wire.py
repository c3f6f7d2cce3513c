"""The broker over the wire, in a real ``python -m runtime`` process: sends, pulls, long polls,
offsets, lookups, topic admin, and bad input that must not disturb anyone else."""

from __future__ import annotations

import json
import pathlib
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.remoting.batch import BatchEntry, encode_batch
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import encode
from runtime.remoting.properties import encode_properties
from runtime.remoting.queue_maps import parse_fastjson
from runtime.store.record import StoredRecord, decode_record
from tests.harness import RuntimeProcess
from tests.profiles import one_broker
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("broker-wire")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        addresses = node.wait_ready()
        yield addresses
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture
def broker(cluster: dict[str, str]) -> Iterator[WireClient]:
    client = WireClient(cluster["broker-a/0"])
    yield client
    client.close()


def props(tags: str | None = None, keys: str | None = None, **extra: str) -> str:
    d = dict(extra)
    if tags:
        d["TAGS"] = tags
    if keys:
        d["KEYS"] = keys
    return encode_properties(d)


def send(
    client: WireClient,
    topic: str,
    body: bytes,
    *,
    queue_id: int = 0,
    properties: str = "",
    code: int = RequestCode.SEND_MESSAGE_V2,
) -> Any:
    ext = send_v2_header(
        topic,
        group="test-pg",
        queue_id=queue_id,
        properties=properties,
        born_ms=int(time.time() * 1000),
    )
    if code == RequestCode.SEND_MESSAGE:
        ext = {
            "producerGroup": "test-pg",
            "topic": topic,
            "defaultTopic": "TBW102",
            "defaultTopicQueueNums": 4,
            "queueId": queue_id,
            "sysFlag": 0,
            "bornTimestamp": 0,
            "flag": 0,
            "properties": properties,
            "reconsumeTimes": 0,
        }
    return client.call(code, ext, body)


def pull_request(
    topic: str,
    queue_id: int,
    offset: int,
    *,
    group: str = "g",
    subscription: str = "*",
    suspend_ms: int = 0,
    max_nums: int = 32,
    commit_offset: int = 0,
) -> RemotingCommand:
    sys_flag = 4 | (2 if suspend_ms else 0) | (1 if commit_offset else 0)
    return RemotingCommand.request(
        RequestCode.PULL_MESSAGE,
        {
            "consumerGroup": group,
            "topic": topic,
            "queueId": queue_id,
            "queueOffset": offset,
            "maxMsgNums": max_nums,
            "sysFlag": sys_flag,
            "commitOffset": commit_offset,
            "suspendTimeoutMillis": suspend_ms,
            "subscription": subscription,
            "subVersion": 0,
            "expressionType": "TAG",
        },
    )


def pull(client: WireClient, topic: str, queue_id: int, offset: int, **options: Any) -> Any:
    request = pull_request(topic, queue_id, offset, **options)
    client.send(request)
    while True:
        reply = client.receive()
        if reply.is_response and reply.opaque == request.opaque:
            return reply


def records(body: bytes) -> list[StoredRecord]:
    out, pos = [], 0
    while pos < len(body):
        record = decode_record(body, pos)
        out.append(record)
        pos += record.total_size
    return out


def test_send_then_pull_returns_the_stored_record(broker: WireClient) -> None:
    # Given a message sent to an auto-created topic
    reply = send(broker, "WireA", b"hello", properties=props("paid", "order-1", UNIQ_KEY="U1"))
    assert reply.code == ResponseCode.SUCCESS, reply.remark
    assert reply.ext_fields["queueId"] == "0" and reply.ext_fields["queueOffset"] == "0"
    assert len(reply.ext_fields["msgId"]) == 32
    # When it is pulled
    got = pull(broker, "WireA", 0, 0)
    assert got.code == ResponseCode.SUCCESS
    [record] = records(got.body)
    # Then every field made the trip and offsets are strings
    assert (record.topic, record.body, record.queue_offset) == ("WireA", b"hello", 0)
    assert "TAGS\x01paid" in record.properties and "KEYS\x01order-1" in record.properties
    # with the broker's default region and trace switch, named in the answer too
    assert "MSG_REGION\x01DefaultRegion\x02TRACE_ON\x01true\x02" in record.properties
    assert (reply.ext_fields["MSG_REGION"], reply.ext_fields["TRACE_ON"]) == (
        "DefaultRegion",
        "true",
    )
    assert record.msg_id == reply.ext_fields["msgId"]
    assert got.ext_fields["nextBeginOffset"] == "1"
    assert got.ext_fields["maxOffset"] == "1" and got.ext_fields["minOffset"] == "0"


def test_v1_send_and_batch_under_any_code(broker: WireClient) -> None:
    assert send(broker, "WireB", b"v1", code=RequestCode.SEND_MESSAGE).code == 0
    batch = encode_batch(
        [
            BatchEntry(flag=0, body=f"m{i}".encode(), properties=props("t", f"k{i}"))
            for i in range(3)
        ]
    )
    r320 = send(broker, "WireB", batch, code=RequestCode.SEND_BATCH_MESSAGE)
    assert r320.code == 0 and r320.ext_fields["queueOffset"] == "1"
    assert len(r320.ext_fields["msgId"].split(",")) == 3
    # C++ 2.1 sends batches as code 310 with m:"1"
    ext = send_v2_header("WireB", m="1")
    r310 = broker.call(RequestCode.SEND_MESSAGE_V2, ext, batch)
    assert r310.code == 0 and r310.ext_fields["queueOffset"] == "4"
    bodies = [r.body for r in records(pull(broker, "WireB", 0, 0).body)]
    assert bodies == [b"v1", b"m0", b"m1", b"m2", b"m0", b"m1", b"m2"]


def test_tag_filtered_pull_skips_other_tags(broker: WireClient) -> None:
    for tag in ("a", "b", "a", "c"):
        assert send(broker, "WireTags", tag.encode(), properties=props(tag)).code == 0
    got = pull(broker, "WireTags", 0, 0, subscription="a || c")
    assert [r.body for r in records(got.body)] == [b"a", b"a", b"c"]


def test_long_poll_answers_when_a_message_arrives(
    broker: WireClient, cluster: dict[str, str]
) -> None:
    assert send(broker, "WirePoll", b"first").code == 0
    result: dict[str, Any] = {}
    sent = threading.Event()

    def poller() -> None:
        poller_client = WireClient(cluster["broker-a/0"])  # gevent sockets stay in one thread
        started = time.monotonic()
        request = pull_request("WirePoll", 0, 1, suspend_ms=15000)
        poller_client.send(request)
        sent.set()
        result["reply"] = poller_client.receive()
        result["waited"] = time.monotonic() - started

    thread = threading.Thread(target=poller)
    thread.start()
    # When a message arrives after the pull went out (another connection)
    assert sent.wait(5)
    assert send(WireClient(cluster["broker-a/0"]), "WirePoll", b"second").code == 0
    thread.join(10)
    # Then the pull answers with it long before its 15 s suspend timeout
    assert result["reply"].code == ResponseCode.SUCCESS
    assert [r.body for r in records(result["reply"].body)] == [b"second"]
    assert result["waited"] < 5


def test_long_poll_times_out_with_pull_not_found(broker: WireClient) -> None:
    assert send(broker, "WireQuiet", b"x").code == 0
    started = time.monotonic()
    got = pull(broker, "WireQuiet", 0, 1, suspend_ms=300)
    assert got.code == ResponseCode.PULL_NOT_FOUND
    assert got.ext_fields["nextBeginOffset"] == "1"
    assert time.monotonic() - started >= 0.25


def test_pull_without_subscription_uses_the_groups_heartbeat(broker: WireClient) -> None:
    for tag in ("a", "b"):
        assert send(broker, "WireSubs", tag.encode(), properties=props(tag)).code == 0

    def bare_pull(group: str) -> Any:
        ext = dict(pull_request("WireSubs", 0, 0, group=group).ext_fields)
        ext["sysFlag"] = "0"  # no SUBSCRIPTION flag, as Java's push consumer sends by default
        del ext["subscription"]
        return broker.call(RequestCode.PULL_MESSAGE, ext)

    # Given a group the broker has never heard of, Then RocketMQ's answer, not everything
    unknown = bare_pull("nobody")
    assert unknown.code == ResponseCode.SUBSCRIPTION_NOT_EXIST and "nobody" in unknown.remark
    # When the group heartbeats a tag subscription, Then the pull is filtered by it
    hb = {
        "clientID": "c-subs",
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": "subs-g",
                "consumeType": 1,
                "messageModel": 1,
                "consumeFromWhere": 0,
                "unitMode": False,
                "subscriptionDataSet": [{"topic": "WireSubs", "subString": "b"}],
            }
        ],
    }
    assert broker.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode()).code == 0
    got = bare_pull("subs-g")
    assert got.code == ResponseCode.SUCCESS
    assert [r.body for r in records(got.body)] == [b"b"]


def test_a_pull_newer_than_the_groups_subscription_is_not_latest(broker: WireClient) -> None:
    for tag in ("a", "b"):
        assert send(broker, "WireSubV", tag.encode(), properties=props(tag)).code == 0

    def heartbeat(client_id: str, tag: str, version: int) -> None:
        sub = {"topic": "WireSubV", "subString": tag, "subVersion": version}
        consumer = {
            "groupName": "subv-g",
            "consumeType": 1,
            "messageModel": 1,
            "consumeFromWhere": 0,
            "unitMode": False,
            "subscriptionDataSet": [sub],
        }
        hb = {"clientID": client_id, "producerDataSet": [], "consumerDataSet": [consumer]}
        assert broker.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode()).code == 0

    def bare_pull(version: int) -> Any:
        ext = dict(pull_request("WireSubV", 0, 0, group="subv-g").ext_fields)
        ext["sysFlag"] = "0"  # no SUBSCRIPTION flag, as Java's push consumer sends by default
        ext["subVersion"] = str(version)
        del ext["subscription"]
        return broker.call(RequestCode.PULL_MESSAGE, ext)

    # Given the group's heartbeat of tag a at subVersion 100
    heartbeat("c1", "a", 100)
    # When a member that subscribed tag b since (subVersion 200) pulls before its heartbeat
    stale = bare_pull(200)
    # Then RocketMQ's answer, not a pull filtered by tag a (which would skip b for good)
    assert stale.code == ResponseCode.SUBSCRIPTION_NOT_LATEST, (stale.code, stale.remark)
    # And once its heartbeat came, the pull is filtered by b
    heartbeat("c1", "b", 200)
    got = bare_pull(200)
    assert got.code == ResponseCode.SUCCESS
    assert [r.body for r in records(got.body)] == [b"b"]
    # And another member's heartbeat with the older subscription does not undo it
    heartbeat("c2", "a", 100)
    again = bare_pull(200)
    assert [r.body for r in records(again.body)] == [b"b"]


def test_offset_out_of_range_is_offset_moved(broker: WireClient) -> None:
    assert send(broker, "WireRange", b"x").code == 0
    got = pull(broker, "WireRange", 0, 50)
    # RocketMQ's correction: past the end of a queue that still starts at 0 -> back to 0
    assert got.code == ResponseCode.PULL_OFFSET_MOVED
    assert got.ext_fields["nextBeginOffset"] == "0"
    assert got.ext_fields["maxOffset"] == "1"


def test_consumer_offsets_commit_and_query(broker: WireClient) -> None:
    for _ in range(3):
        send(broker, "WireOff", b"x")
    q = {"consumerGroup": "og", "topic": "WireOff", "queueId": 0}
    assert broker.call(RequestCode.QUERY_CONSUMER_OFFSET, q).ext_fields["offset"] == "0"
    # A client that asks not to get 0 for an unknown group decides by its consume-from policy
    strict = broker.call(RequestCode.QUERY_CONSUMER_OFFSET, {**q, "setZeroIfNotFound": False})
    assert strict.code == ResponseCode.QUERY_NOT_FOUND
    assert broker.call(RequestCode.UPDATE_CONSUMER_OFFSET, {**q, "commitOffset": 2}).code == 0
    assert broker.call(RequestCode.QUERY_CONSUMER_OFFSET, q).ext_fields["offset"] == "2"
    # A pull with the commit-offset flag stores the offset too
    pull(broker, "WireOff", 0, 2, group="og", commit_offset=3)
    assert broker.call(RequestCode.QUERY_CONSUMER_OFFSET, q).ext_fields["offset"] == "3"
    # Negative commits are ignored
    broker.call(RequestCode.UPDATE_CONSUMER_OFFSET, {**q, "commitOffset": -1})
    assert broker.call(RequestCode.QUERY_CONSUMER_OFFSET, q).ext_fields["offset"] == "3"


def test_min_max_search_and_earliest(broker: WireClient) -> None:
    before = int(time.time() * 1000) - 1
    for _ in range(2):
        send(broker, "WireMinMax", b"x")
    q = {"topic": "WireMinMax", "queueId": 0}
    assert broker.call(RequestCode.GET_MAX_OFFSET, q).ext_fields["offset"] == "2"
    assert broker.call(RequestCode.GET_MIN_OFFSET, q).ext_fields["offset"] == "0"
    found = broker.call(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, {**q, "timestamp": before})
    assert found.ext_fields["offset"] == "0"
    earliest = broker.call(RequestCode.GET_EARLIEST_MSG_STORETIME, q)
    assert int(earliest.ext_fields["timestamp"]) >= before


def test_query_by_key_and_view_by_id(broker: WireClient) -> None:
    sent = send(broker, "WireKeys", b"needle", properties=props("t", "k-1 k-2"))
    now = int(time.time() * 1000)
    found = broker.call(
        RequestCode.QUERY_MESSAGE,
        {
            "topic": "WireKeys",
            "key": "k-2",
            "maxNum": 10,
            "beginTimestamp": now - 60_000,
            "endTimestamp": now + 60_000,
        },
    )
    assert found.code == 0 and [r.body for r in records(found.body)] == [b"needle"]
    phys = int(sent.ext_fields["msgId"][16:], 16)
    viewed = broker.call(RequestCode.VIEW_MESSAGE_BY_ID, {"offset": phys})
    assert viewed.code == 0 and records(viewed.body)[0].body == b"needle"
    missing = broker.call(
        RequestCode.QUERY_MESSAGE,
        {
            "topic": "WireKeys",
            "key": "nope",
            "maxNum": 10,
            "beginTimestamp": 0,
            "endTimestamp": now + 60_000,
        },
    )
    assert missing.code == ResponseCode.QUERY_NOT_FOUND


def test_topic_admin_and_permissions(broker: WireClient) -> None:
    created = broker.call(
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        {
            "topic": "WireRO",
            "defaultTopic": "TBW102",
            "readQueueNums": 2,
            "writeQueueNums": 2,
            "perm": 4,
            "topicFilterType": "SINGLE_TAG",
            "topicSysFlag": 0,
            "order": False,
        },
    )
    assert created.code == 0
    table = json.loads(broker.call(RequestCode.GET_ALL_TOPIC_CONFIG).body)
    assert table["topicConfigTable"]["WireRO"]["perm"] == 4
    # A read-only topic refuses sends; a queue id beyond the count is illegal
    assert send(broker, "WireRO", b"x").code == ResponseCode.NO_PERMISSION
    assert send(broker, "WireA2", b"x", queue_id=0).code == 0
    assert send(broker, "WireA2", b"x", queue_id=99).code == ResponseCode.SYSTEM_ERROR


def test_illegal_messages_are_refused_before_anything_is_written(broker: WireClient) -> None:
    assert send(broker, "WireBig", b"seed").code == 0
    big = send(broker, "WireBig", b"x" * (4 * 1024 * 1024 + 1))
    assert big.code == ResponseCode.MESSAGE_ILLEGAL
    bad_topic = send(broker, "bad topic!", b"x")
    assert bad_topic.code == ResponseCode.MESSAGE_ILLEGAL
    q = {"topic": "WireBig", "queueId": 0}
    assert broker.call(RequestCode.GET_MAX_OFFSET, q).ext_fields["offset"] == "1"


def test_heartbeat_consumer_list_and_unknown_code(broker: WireClient) -> None:
    hb = {
        "clientID": "c-1",
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": "hbg",
                "consumeType": 1,
                "messageModel": 1,
                "consumeFromWhere": 0,
                "unitMode": False,
                "subscriptionDataSet": [{"topic": "WireA", "subString": "*"}],
            }
        ],
    }
    assert broker.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode()).code == 0
    listed = broker.call(RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "hbg"})
    assert json.loads(listed.body)["consumerIdList"] == ["c-1"]
    assert (
        broker.call(RequestCode.UNREGISTER_CLIENT, {"clientID": "c-1", "consumerGroup": "hbg"}).code
        == 0
    )
    assert broker.call(9999).code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED


def test_hostile_clients_do_not_stop_a_well_behaved_one(cluster: dict[str, str]) -> None:
    address = cluster["broker-a/0"]
    good = WireClient(address)
    assert send(good, "WireGood", b"before").code == 0
    # Garbage, absurd lengths, negative lengths, truncated frames, wrong fields, bad JSON
    hostile: list[bytes] = [
        b"\xff" * 64,
        struct.pack(">i", 2**31 - 1) + b"ab",
        struct.pack(">i", -5),
        struct.pack(">ii", 100, 90) + b'{"code":',
        struct.pack(">ii", 8, 4) + b"null",
    ]
    for payload in hostile:
        bad = WireClient(address)
        bad.send_raw(payload)
        bad.close()
    wrong = WireClient(address)
    r = wrong.call(RequestCode.SEND_MESSAGE_V2, {"a": "pg", "b": "WireGood", "e": "zero"}, b"x")
    assert r.code == ResponseCode.SYSTEM_ERROR and r.remark
    r = wrong.call(RequestCode.PULL_MESSAGE, {"topic": "WireGood"})
    assert r.code == ResponseCode.SYSTEM_ERROR and r.remark
    r = wrong.call(RequestCode.HEART_BEAT, body=b"{{{")
    assert r.code == ResponseCode.SYSTEM_ERROR
    # Then the good client is still served and nothing stored was lost
    assert send(good, "WireGood", b"after").code == 0
    bodies = [r.body for r in records(pull(good, "WireGood", 0, 0).body)]
    assert bodies == [b"before", b"after"]


def test_data_survives_restart(tmp_path: pathlib.Path) -> None:
    args = ["--ephemeral-ports", "--data-dir", str(tmp_path)]
    with RuntimeProcess(args) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        for i in range(5):
            assert send(client, "Durable", f"m{i}".encode()).code == 0
        assert node.terminate() == 0
    with RuntimeProcess(args) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        assert [r.body for r in records(pull(client, "Durable", 0, 0).body)] == [
            f"m{i}".encode() for i in range(5)
        ]
        assert send(client, "Durable", b"m5").ext_fields["queueOffset"] == "5"
        assert node.terminate() == 0


def test_the_system_topic_list_names_the_brokers_own_topics(broker: WireClient) -> None:
    # Given a broker of DefaultCluster; When an admin asks for its system topics (305)
    got = broker.call(RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER)
    # Then they are its own topics, and no user topic
    assert got.code == ResponseCode.SUCCESS
    topics = set(json.loads(got.body)["topicList"])
    assert {"TBW102", "SCHEDULE_TOPIC_XXXX", "DefaultCluster", "broker-a"} <= topics
    assert "DefaultCluster_REPLY_TOPIC" in topics and "WireA" not in topics


def test_lite_pull_message_is_served_like_pull_message(broker: WireClient) -> None:
    # Given a stored message
    assert send(broker, "WireLite", b"lite", properties=props("t")).code == 0
    # When Java's lite pull consumer asks with LITE_PULL_MESSAGE (361) and the lite flag (16)
    request = pull_request("WireLite", 0, 0, group="lite-group")
    lite = RemotingCommand.request(
        RequestCode.LITE_PULL_MESSAGE,
        {**request.ext_fields, "sysFlag": int(request.ext_fields["sysFlag"]) | 16},
    )
    broker.send(lite)
    reply = broker.receive()
    while not (reply.is_response and reply.opaque == lite.opaque):
        reply = broker.receive()
    # Then it gets the message, as from PULL_MESSAGE
    assert reply.code == ResponseCode.SUCCESS, reply.remark
    assert [r.body for r in records(reply.body)] == [b"lite"]


def test_get_topic_config_answers_one_topic_or_topic_not_exist(broker: WireClient) -> None:
    # Given a topic the broker created on its first send
    assert send(broker, "WireConf", b"x", properties=props("t")).code == 0
    # When an admin asks for its config (GET_TOPIC_CONFIG, RocketMQ 5's examineTopicConfig)
    found = broker.call(RequestCode.GET_TOPIC_CONFIG, {"topic": "WireConf"})
    # Then the body is the topic's config as JSON
    assert found.code == ResponseCode.SUCCESS, found.remark
    config = json.loads(found.body)
    assert config["topicName"] == "WireConf" and config["writeQueueNums"] >= 1
    # and a topic the broker does not have is TOPIC_NOT_EXIST
    missing = broker.call(RequestCode.GET_TOPIC_CONFIG, {"topic": "WireNoSuch"})
    assert missing.code == ResponseCode.TOPIC_NOT_EXIST and "WireNoSuch" in missing.remark


def test_view_broker_stats_data_counts_puts_and_refuses_unknown_stats(broker: WireClient) -> None:
    # Given messages put since the broker started
    for i in range(3):
        assert send(broker, "WireStats", f"s{i}".encode(), properties=props("t")).code == 0
    # When the dashboard asks for BROKER_PUT_NUMS (VIEW_BROKER_STATS_DATA)
    ext = {"statsName": "BROKER_PUT_NUMS", "statsKey": "DefaultCluster"}
    found = broker.call(RequestCode.VIEW_BROKER_STATS_DATA, ext)
    # Then each window counts them (the broker is younger than a minute: every put so far)
    assert found.code == ResponseCode.SUCCESS, found.remark
    data = json.loads(found.body)
    assert data["statsMinute"]["sum"] >= 3 and data["statsDay"]["sum"] >= 3
    assert data["statsMinute"]["tps"] > 0
    # and TOPIC_PUT_NUMS counts the topic's (mqadmin statsAll's InTPS / InMsg24Hour)
    ext = {"statsName": "TOPIC_PUT_NUMS", "statsKey": "WireStats"}
    topic = broker.call(RequestCode.VIEW_BROKER_STATS_DATA, ext)
    assert topic.code == ResponseCode.SUCCESS, topic.remark
    assert json.loads(topic.body)["statsDay"]["sum"] == 3
    # and an item with no traffic, or statistics this broker does not keep, are refused as
    # RocketMQ refuses unknown items
    for name, key in (("TOPIC_PUT_NUMS", "WireNeverSent"), ("SNDBCK_PUT_NUMS", "WireStats")):
        ext = {"statsName": name, "statsKey": key}
        missing = broker.call(RequestCode.VIEW_BROKER_STATS_DATA, ext)
        assert missing.code == ResponseCode.SYSTEM_ERROR
        assert missing.remark == f"The stats <{name}> <{key}> not exist"


def test_a_heartbeat_of_a_group_whose_retry_topic_cannot_be_is_refused(
    broker: WireClient,
) -> None:
    # Given a consumer heartbeat naming a group of 200 characters (%RETRY%<group>: past 127)
    hb = {
        "clientID": "c-long",
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": "g" * 200,
                "consumeType": 1,
                "messageModel": 1,
                "consumeFromWhere": 0,
                "unitMode": False,
                "subscriptionDataSet": [{"topic": "WireSubs", "subString": "*"}],
            }
        ],
    }
    # When it is sent, Then it is refused, saying why, and nothing is registered
    r = broker.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode())
    assert r.code == ResponseCode.INVALID_PARAMETER
    assert "retry topic" in r.remark and "127" in r.remark
    listed = broker.call(RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "g" * 200})
    assert b"c-long" not in listed.body
    # And the connection goes on serving
    assert broker.call(RequestCode.GET_MAX_OFFSET, {"topic": "WireSubs", "queueId": 0}).code == 0


def test_broker_consume_stats_lists_every_group_with_its_lag(broker: WireClient) -> None:
    # Given a group that committed offset 1 of a queue holding 3 messages
    for i in range(3):
        assert send(broker, "WireBcs", f"b{i}".encode(), properties=props("t")).code == 0
    ext = {"consumerGroup": "bcs-group", "topic": "WireBcs", "queueId": 0, "commitOffset": 1}
    assert broker.call(RequestCode.UPDATE_CONSUMER_OFFSET, ext).code == ResponseCode.SUCCESS
    # When mqadmin brokerConsumeStats asks (GET_BROKER_CONSUME_STATS)
    found = broker.call(RequestCode.GET_BROKER_CONSUME_STATS, {"isOrder": "false"})
    assert found.code == ResponseCode.SUCCESS, found.remark
    # Then the group's ConsumeStats of the topic shows the lag (bodies keyed by queue objects)
    body = parse_fastjson(found.body)
    groups = {g: stats for entry in body["consumeStatsList"] for g, stats in entry.items()}
    (stats,) = groups["bcs-group"]
    lag = {q["queueId"]: w["brokerOffset"] - w["consumerOffset"] for q, w in stats["offsetTable"]}
    assert lag[0] == 2
    assert body["totalDiff"] >= 2 and body["brokerAddr"]


@pytest.fixture(scope="module")
def patient_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker whose sends may wait 10 s in its queue before SYSTEM_BUSY (200 ms by default:
    201 pipelined sends behind a topic's creation can take longer on a loaded CI machine)."""
    root = tmp_path_factory.mktemp("patient")
    profile = root / "patient.toml"
    profile.write_text(one_broker({"waitTimeMillsInSendQueue": 10000}, description="patient"))
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports", "--data-dir", str(root)]
    with RuntimeProcess(args) as node:
        yield node.wait_ready()["broker-a/0"]
        assert node.terminate() == 0, node.stderr_text()


def test_pipelined_sends_of_one_connection_are_stored_in_arrival_order(
    patient_broker: str,
) -> None:
    client = WireClient(patient_broker)
    stamp = time.monotonic_ns()
    known, new = f"Pipelined{stamp}", f"PipelinedNew{stamp}"
    assert send(client, known, b"create").code == ResponseCode.SUCCESS
    # Given one connection that writes, in one write and without waiting for replies, a send
    # to a topic that does not exist yet (its handler waits while the topic is auto-created)
    # and then 200 sends to a topic the broker knows (their handlers need not wait)
    requests = [
        RemotingCommand.request(
            RequestCode.SEND_MESSAGE_V2,
            send_v2_header(topic, group="test-pg", queue_id=0, born_ms=int(time.time() * 1000)),
            f"m{i}".encode(),
        )
        for i, topic in enumerate([new] + [known] * 200)
    ]
    client.send_raw(b"".join(encode(r) for r in requests))
    # When every reply has arrived
    positions: dict[int, int] = {}
    while len(positions) < len(requests):
        response = client.receive()
        assert response.code == ResponseCode.SUCCESS, response.remark
        # the message id ends with the record's CommitLog offset (16 hex digits)
        positions[response.opaque] = int(response.ext_fields["msgId"][-16:], 16)
    client.close()
    # Then the CommitLog holds them in the order they were written (as RocketMQ's single send
    # thread stores them), the new topic's message first
    in_arrival_order = [positions[r.opaque] for r in requests]
    assert in_arrival_order == sorted(in_arrival_order)
