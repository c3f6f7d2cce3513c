"""The broker's consume-queue and consumer-progress admin codes over the wire, in a real
``python -m runtime`` process: QUERY_CONSUME_QUEUE (321), QUERY_CONSUME_TIME_SPAN (303),
INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223), QUERY_SUBSCRIPTION_BY_CONSUMER (345),
CLEAN_EXPIRED_CONSUMEQUEUE (306), CLEAN_UNUSED_TOPIC (316), RESUME_CHECK_HALF_MESSAGE (323)."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from runtime.remoting.admin_bodies import format_timestamp
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import encode_properties, tag_hash
from runtime.remoting.queue_maps import parse_fastjson
from tests.harness import RuntimeProcess
from tests.integration.test_broker_transactions import producer, send_half
from tests.integration.test_broker_wire import props, pull, records, send
from tests.profiles import one_broker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)

PROFILE = one_broker(
    {"transactionTimeOut": 300, "transactionCheckInterval": 200, "transactionCheckMax": 3},
    description="admin codes test: fast transaction check-back",
)


def start(root: pathlib.Path) -> RuntimeProcess:
    profile = root / "admin.toml"
    profile.write_text(PROFILE)
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports", "--data-dir"]
    return RuntimeProcess([*args, str(root / "data")])


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start(tmp_path_factory.mktemp("admin-codes")) as node:
        yield node.wait_ready()["broker-a/0"]
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture
def admin(address: str) -> Iterator[WireClient]:
    client = WireClient(address)
    yield client
    client.close()


def consumer(address: str, client_id: str, group: str, topic: str, sub: str = "*") -> WireClient:
    """A consumer's connection: its heartbeat makes it a live member of ``group``."""
    client = WireClient(address)
    hb = {
        "clientID": client_id,
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": group,
                "consumeType": "CONSUME_PASSIVELY",
                "messageModel": "CLUSTERING",
                "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                "unitMode": False,
                "subscriptionDataSet": [{"topic": topic, "subString": sub}],
            }
        ],
    }
    assert client.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode()).code == 0
    return client


def create_topic(client: WireClient, topic: str, queues: int) -> None:
    ext = {
        "topic": topic,
        "defaultTopic": "TBW102",
        "readQueueNums": queues,
        "writeQueueNums": queues,
        "perm": 6,
        "topicFilterType": "SINGLE_TAG",
        "topicSysFlag": 0,
        "order": False,
    }
    assert client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext).code == 0


def stored(client: WireClient, topic: str, queue_id: int) -> list[Any]:
    got = pull(client, topic, queue_id, 0)
    assert got.code == ResponseCode.SUCCESS, got.remark
    return records(got.body)


def test_query_consume_queue_lists_the_entries_and_the_groups_view(
    admin: WireClient, address: str
) -> None:
    # Given three messages tagged A, B, A in queue 0 of a topic
    for i, tag in enumerate("ABA"):
        assert send(admin, "CqTopic", f"m{i}".encode(), properties=props(tag)).code == 0
    sent = stored(admin, "CqTopic", 0)
    # And a consumer of group cq-g online, subscribed to tag A
    member = consumer(address, "cq-1", "cq-g", "CqTopic", "A")
    # When mqadmin queryCq asks for ten entries from index 0 for the group
    q = {"topic": "CqTopic", "queueId": 0, "index": 0, "count": 10, "consumerGroup": "cq-g"}
    got = admin.call(RequestCode.QUERY_CONSUME_QUEUE, q)
    # Then it gets the queue's range and each entry's place, size and tags code
    assert got.code == ResponseCode.SUCCESS and got.remark is None
    body = json.loads(got.body)
    assert (body["minQueueIndex"], body["maxQueueIndex"]) == (0, 3)
    entries = [(e["physicOffset"], e["physicSize"], e["tagsCode"]) for e in body["queueData"]]
    expected = zip(sent, "ABA", strict=True)
    assert entries == [(r.physical_offset, r.total_size, tag_hash(t)) for r, t in expected]
    # And which of them the group's subscription selects, and the subscription itself
    assert [e["eval"] for e in body["queueData"]] == [True, False, True]
    assert body["subscriptionData"]["topic"] == "CqTopic"
    assert body["subscriptionData"]["subString"] == "A"
    assert body["filterData"] == "null"
    # When it asks from index 2 for a group nobody runs
    got = admin.call(RequestCode.QUERY_CONSUME_QUEUE, {**q, "index": 2, "consumerGroup": "nobody"})
    body = json.loads(got.body)
    # Then it gets the last entry and hears that the group is not online
    assert [e["physicOffset"] for e in body["queueData"]] == [sent[2].physical_offset]
    assert body["filterData"] == "nobody@CqTopic is not online!"
    assert body["subscriptionData"] is None
    # When it asks past the end: SUCCESS, no entries, RocketMQ's remark
    got = admin.call(RequestCode.QUERY_CONSUME_QUEUE, {**q, "index": 3})
    assert got.code == ResponseCode.SUCCESS
    assert got.remark == "Index 3 of 0@CqTopic is not exist!"
    assert json.loads(got.body)["queueData"] is None
    # When it asks about a queue that has no consume queue here: SYSTEM_ERROR
    got = admin.call(RequestCode.QUERY_CONSUME_QUEUE, {**q, "queueId": 7})
    assert (got.code, got.remark) == (ResponseCode.SYSTEM_ERROR, "7@CqTopic is not exist!")
    member.close()


def test_consume_time_span_tells_how_far_behind_a_group_is(admin: WireClient) -> None:
    # Given a two-queue topic: two messages in queue 0, one in queue 1
    create_topic(admin, "SpanTopic", 2)
    for queue_id, body in ((0, b"a"), (0, b"b"), (1, b"c")):
        assert send(admin, "SpanTopic", body, queue_id=queue_id).code == 0
    q0, q1 = stored(admin, "SpanTopic", 0), stored(admin, "SpanTopic", 1)
    # And group span-g consumed the first message of queue 0 and nothing of queue 1
    commit = {"consumerGroup": "span-g", "topic": "SpanTopic", "queueId": 0, "commitOffset": 1}
    assert admin.call(RequestCode.UPDATE_CONSUMER_OFFSET, commit).code == 0
    # When the dashboard asks for the group's consume time span
    before_ms = int(time.time() * 1000)
    got = admin.call(RequestCode.QUERY_CONSUME_TIME_SPAN, {"topic": "SpanTopic", "group": "span-g"})
    after_ms = int(time.time() * 1000) + 1
    # Then each queue has its first and last store time and the group's position
    assert got.code == ResponseCode.SUCCESS
    spans = json.loads(got.body)["consumeTimeSpanSet"]
    assert [s["messageQueue"] for s in spans] == [
        {"brokerName": "broker-a", "queueId": i, "topic": "SpanTopic"} for i in (0, 1)
    ]
    first, second = spans
    assert first["minTimeStamp"] == q0[0].store_timestamp
    assert first["maxTimeStamp"] == q0[1].store_timestamp
    assert first["consumeTimeStamp"] == q0[0].store_timestamp
    # And the delay is how long the next unconsumed message (b) has waited
    assert before_ms - q0[1].store_timestamp <= first["delayTime"]
    assert first["delayTime"] <= after_ms - q0[1].store_timestamp
    # And a queue the group never committed reads from its first message, delayed since it
    assert second["minTimeStamp"] == second["maxTimeStamp"] == q1[0].store_timestamp
    assert second["consumeTimeStamp"] == q1[0].store_timestamp
    assert second["delayTime"] >= before_ms - q1[0].store_timestamp
    # And the times are also written as RocketMQ's getters write them
    assert first["minTimeStampStr"] == format_timestamp(q0[0].store_timestamp)
    assert "#" in first["maxTimeStampStr"]
    # When the group catches up on queue 0, Then its delay there is 0
    assert admin.call(RequestCode.UPDATE_CONSUMER_OFFSET, {**commit, "commitOffset": 2}).code == 0
    got = admin.call(RequestCode.QUERY_CONSUME_TIME_SPAN, {"topic": "SpanTopic", "group": "span-g"})
    caught_up = json.loads(got.body)["consumeTimeSpanSet"][0]
    assert (caught_up["delayTime"], caught_up["consumeTimeStamp"]) == (0, q0[1].store_timestamp)
    # When the topic is unknown: TOPIC_NOT_EXIST
    got = admin.call(RequestCode.QUERY_CONSUME_TIME_SPAN, {"topic": "NoSpan", "group": "span-g"})
    assert got.code == ResponseCode.TOPIC_NOT_EXIST


def answer_status(member: WireClient, code: int, body: bytes, asked: list[RemotingCommand]) -> None:
    """Serve GET_CONSUMER_STATUS_FROM_CLIENT on a member's connection (one request)."""
    request = member.receive()
    while request.code != RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT or request.is_response:
        request = member.receive()
    asked.append(request)
    member.send(RemotingCommand.response_to(request, code, body=body))


def test_consumer_status_gathers_each_members_offsets(admin: WireClient, address: str) -> None:
    # Given two live members of group st-g: one holds queue 0 at offset 5, one refuses
    one = consumer(address, "st-1", "st-g", "StTopic")
    two = consumer(address, "st-2", "st-g", "StTopic")
    table = b'{"messageQueueTable":{{"brokerName":"broker-a","queueId":0,"topic":"StTopic"}:5}}'
    asked: list[RemotingCommand] = []
    serving = [
        gevent.spawn(answer_status, one, ResponseCode.SUCCESS, table, asked),
        gevent.spawn(answer_status, two, ResponseCode.SYSTEM_ERROR, b"", asked),
    ]
    # When mqadmin getConsumerStatus asks the broker about the group and topic
    got = admin.call(
        RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, {"topic": "StTopic", "group": "st-g"}
    )
    gevent.joinall(serving, timeout=10, raise_error=True)
    # Then the broker asked each member, with the topic and group
    assert len(asked) == 2
    assert all(a.ext_fields == {"topic": "StTopic", "group": "st-g"} for a in asked)
    # And answers the offsets of the member that gave them, by client id
    assert got.code == ResponseCode.SUCCESS
    status = parse_fastjson(got.body)
    [(mq, offset)] = status["consumerTable"]["st-1"]
    assert (mq, offset) == ({"brokerName": "broker-a", "queueId": 0, "topic": "StTopic"}, 5)
    assert list(status["consumerTable"]) == ["st-1"]
    # When it names one member (clientAddr), Then only that one is asked
    serving = [gevent.spawn(answer_status, one, ResponseCode.SUCCESS, table, asked)]
    got = admin.call(
        RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS,
        {"topic": "StTopic", "group": "st-g", "clientAddr": "st-1"},
    )
    gevent.joinall(serving, timeout=10, raise_error=True)
    assert list(parse_fastjson(got.body)["consumerTable"]) == ["st-1"] and len(asked) == 3
    # When the group has no live member: SYSTEM_ERROR in RocketMQ's words
    got = admin.call(
        RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, {"topic": "StTopic", "group": "none"}
    )
    assert got.code == ResponseCode.SYSTEM_ERROR
    assert got.remark == "No Any Consumer online in the consumer group: [none]"
    one.close()
    two.close()


def test_subscription_by_consumer(admin: WireClient, address: str) -> None:
    # Given a member of sub-g subscribed to tags x || y of SubTopic
    member = consumer(address, "sub-1", "sub-g", "SubTopic", "x || y")
    # When an admin asks for the group's subscription, Then it gets it
    ask = {"group": "sub-g", "topic": "SubTopic"}
    got = admin.call(RequestCode.QUERY_SUBSCRIPTION_BY_CONSUMER, ask)
    body = json.loads(got.body)
    assert (got.code, body["group"], body["topic"]) == (0, "sub-g", "SubTopic")
    assert body["subscriptionData"]["tagsSet"] == ["x", "y"]
    # And for a topic the group does not subscribe to: SUCCESS with no subscription
    got = admin.call(RequestCode.QUERY_SUBSCRIPTION_BY_CONSUMER, {**ask, "topic": "Other"})
    assert got.code == 0 and json.loads(got.body)["subscriptionData"] is None
    member.close()


def test_clean_expired_consume_queue_keeps_live_data(admin: WireClient) -> None:
    # Given a queue with two messages, all of them still in the commit log
    for body in (b"1", b"2"):
        assert send(admin, "CleanCq", body).code == 0
    # When mqadmin cleanExpiredCQ runs, Then it succeeds and nothing live is lost
    assert admin.call(RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE).code == ResponseCode.SUCCESS
    q = {"topic": "CleanCq", "queueId": 0}
    assert admin.call(RequestCode.GET_MIN_OFFSET, q).ext_fields["offset"] == "0"
    assert [r.body for r in stored(admin, "CleanCq", 0)] == [b"1", b"2"]


def test_resume_check_half_message_restarts_the_checks(admin: WireClient, address: str) -> None:
    # Given a half message whose producer never decides: after 3 checks it is discarded
    tx = producer(address, "rs-g")
    offset = send_half(tx, "RsTopic", "rs-g", b"undecided", "U-RS")
    offset_msg_id = f"{offset_msg_id_host(admin)}{offset:016X}"
    assert checks(tx, within_s=2.5) == 3
    # When mqadmin resumeCheckHalfMessage names it
    got = admin.call(RequestCode.RESUME_CHECK_HALF_MESSAGE, {"msgId": offset_msg_id})
    # Then the broker checks it back again
    assert got.code == ResponseCode.SUCCESS, got.remark
    assert checks(tx, within_s=1.0) >= 1
    # Given another half message the producer rolled back at once
    rolled = send_half(tx, "RsTopic", "rs-g", b"rolled-back", "U-RS2")
    rolled_id = f"{offset_msg_id_host(admin)}{rolled:016X}"
    rollback = {
        "producerGroup": "rs-g",
        "tranStateTableOffset": rolled,
        "commitLogOffset": rolled,
        "commitOrRollback": 12,
        "fromTransactionCheck": False,
        "msgId": rolled_id,
    }
    assert tx.call(RequestCode.END_TRANSACTION, rollback).code == ResponseCode.SUCCESS
    # When it is named, Then it cannot be resumed
    got = admin.call(RequestCode.RESUME_CHECK_HALF_MESSAGE, {"msgId": rolled_id})
    assert got.code == ResponseCode.SYSTEM_ERROR
    assert got.remark == f"the half message {rolled_id} is already committed or rolled back"
    # And an id of a plain message, or no id at all, is refused
    assert send(admin, "RsPlain", b"plain").code == 0
    plain = stored(admin, "RsPlain", 0)[0].msg_id
    got = admin.call(RequestCode.RESUME_CHECK_HALF_MESSAGE, {"msgId": plain})
    assert (got.code, got.remark) == (
        ResponseCode.SYSTEM_ERROR,
        f"no half message with msgId {plain} here",
    )
    assert admin.call(RequestCode.RESUME_CHECK_HALF_MESSAGE, {"msgId": "zz"}).code == 1
    tx.close()


def offset_msg_id_host(client: WireClient) -> str:
    """The store-host half (address and port, 16 hex digits) of this broker's offset ids."""
    assert send(client, "RsHost", b"h").code == 0
    return stored(client, "RsHost", 0)[0].msg_id[:16]


def checks(client: WireClient, within_s: float) -> int:
    """CHECK_TRANSACTION_STATE requests the producer gets within ``within_s`` seconds."""
    seen = 0
    deadline = time.monotonic() + within_s
    client.sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            cmd = client.receive()
        except TimeoutError:
            continue
        seen += cmd.code == RequestCode.CHECK_TRANSACTION_STATE and not cmd.is_response
    client.sock.settimeout(10.0)
    return seen


def test_clean_unused_topic_deletes_queues_without_a_config(tmp_path: pathlib.Path) -> None:
    # Given a broker that stored messages in Orphan and Kept, then stopped
    with start(tmp_path) as node:
        address = node.wait_ready()["broker-a/0"]
        client = WireClient(address)
        for topic in ("Orphan", "Kept"):
            assert send(client, topic, b"x", properties=encode_properties({})).code == 0
        client.close()
        assert node.terminate() == 0, node.stderr_text()
    # And Orphan's config was removed from its topics.json while it was down
    [topics_json] = (tmp_path / "data").rglob("topics.json")
    doc = json.loads(topics_json.read_text())
    del doc["topicConfigTable"]["Orphan"]
    topics_json.write_text(json.dumps(doc))
    with start(tmp_path) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        q = {"topic": "Orphan", "queueId": 0}
        assert client.call(RequestCode.GET_MAX_OFFSET, q).ext_fields["offset"] == "1"
        # When mqadmin cleanUnusedTopic runs
        assert client.call(RequestCode.CLEAN_UNUSED_TOPIC).code == ResponseCode.SUCCESS
        # Then Orphan's queue is gone and Kept's is untouched
        assert client.call(RequestCode.GET_MAX_OFFSET, q).ext_fields["offset"] == "0"
        assert [r.body for r in stored(client, "Kept", 0)] == [b"x"]
        client.close()
        assert node.terminate() == 0, node.stderr_text()
