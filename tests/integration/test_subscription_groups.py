"""Subscription-group configs (``mqadmin updateSubGroup``) over the wire against a real process:
persisted across a restart, listed, deleted, and applied (consumeEnable, retryMaxTimes)."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from tests.harness import RuntimeProcess
from tests.integration.test_broker_semantics import phys_offset, wait_for_pull
from tests.integration.test_broker_wire import pull, records, send
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)


def update_group(client: WireClient, name: str, **fields: Any) -> Any:
    body = json.dumps({"groupName": name, **fields}).encode()
    return client.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body)


def all_groups(client: WireClient) -> dict[str, Any]:
    reply = client.call(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
    assert reply.code == ResponseCode.SUCCESS, reply.remark
    return json.loads(reply.body)["subscriptionGroupTable"]


def test_a_group_config_is_kept_across_a_restart_listed_and_deleted(
    tmp_path: pathlib.Path,
) -> None:
    args = ["--ephemeral-ports", "--data-dir", str(tmp_path)]
    # Given a group configured with updateSubGroup
    with RuntimeProcess(args) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        assert update_group(client, "billing", retryMaxTimes=3, consumeEnable=True).code == 0
        assert all_groups(client)["billing"]["retryMaxTimes"] == 3
        client.close()
        assert node.terminate() == 0
    # When the broker restarts, Then the config is still there, one by one and in the list
    with RuntimeProcess(args) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        assert all_groups(client)["billing"]["retryMaxTimes"] == 3
        one = client.call(RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG, {"group": "billing"})
        assert one.code == ResponseCode.SUCCESS and json.loads(one.body)["groupName"] == "billing"
        # When it is deleted, Then it is gone
        gone = client.call(RequestCode.DELETE_SUBSCRIPTIONGROUP, {"groupName": "billing"})
        assert gone.code == ResponseCode.SUCCESS
        assert "billing" not in all_groups(client)
        missing = client.call(RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG, {"group": "billing"})
        assert missing.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
        # And a config without a group name is refused
        assert update_group(client, "").code == ResponseCode.SYSTEM_ERROR
        client.close()
        assert node.terminate() == 0


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("groups")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()["broker-a/0"]
        assert node.terminate() == 0, node.stderr_text()


def test_consume_enable_false_refuses_the_groups_pulls_until_enabled(address: str) -> None:
    client = WireClient(address)
    assert send(client, "Paused", b"held").code == 0
    # Given a group whose consumption is switched off
    assert update_group(client, "paused-group", consumeEnable=False).code == 0
    # Then its pulls get NO_PERMISSION, while other groups read on
    refused = pull(client, "Paused", 0, 0, group="paused-group")
    assert refused.code == ResponseCode.NO_PERMISSION
    assert "paused-group" in refused.remark
    assert pull(client, "Paused", 0, 0, group="other").code == ResponseCode.SUCCESS
    # When it is switched on again, Then it reads the message
    assert update_group(client, "paused-group", consumeEnable=True).code == 0
    got = pull(client, "Paused", 0, 0, group="paused-group")
    assert got.code == ResponseCode.SUCCESS
    assert [r.body for r in records(got.body)] == [b"held"]
    client.close()


def test_retry_max_times_of_the_group_sends_to_the_dead_letter_queue(address: str) -> None:
    client = WireClient(address)
    # Given a group whose messages may be retried once
    assert update_group(client, "once", retryMaxTimes=1).code == 0
    sent = send(client, "RetryOnce", b"fragile")
    offset = phys_offset(sent.ext_fields["msgId"])
    # When the message is sent back without maxReconsumeTimes (first consumption failed)
    back = client.call(
        RequestCode.CONSUMER_SEND_MSG_BACK, {"offset": offset, "group": "once", "delayLevel": 1}
    )
    assert back.code == ResponseCode.SUCCESS, back.remark
    # Then it is retried once (delay level 1: 1 s)
    [retried] = records(wait_for_pull(client, "%RETRY%once").body)
    assert retried.body == b"fragile" and retried.reconsume_times == 1
    # When the retry fails too, Then the group's limit sends it to the dead-letter queue
    back = client.call(
        RequestCode.CONSUMER_SEND_MSG_BACK,
        {"offset": retried.physical_offset, "group": "once", "delayLevel": 1},
    )
    assert back.code == ResponseCode.SUCCESS, back.remark
    [dead] = records(wait_for_pull(client, "%DLQ%once").body)
    assert dead.body == b"fragile"
    client.close()


def test_a_group_closed_to_broadcasting_refuses_broadcast_consumers(address: str) -> None:
    client = WireClient(address)
    assert send(client, "Bcast", b"b").code == 0
    # Given a group that may not consume by broadcasting, joined by a broadcasting consumer
    assert update_group(client, "bcast", consumeBroadcastEnable=False).code == 0
    heartbeat = {
        "clientID": "bcast-client",
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": "bcast",
                "consumeType": "CONSUME_PASSIVELY",
                "messageModel": "BROADCASTING",
                "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
                "subscriptionDataSet": [
                    {"topic": "Bcast", "subString": "*", "expressionType": "TAG"}
                ],
                "unitMode": False,
            }
        ],
    }
    hb = client.call(RequestCode.HEART_BEAT, body=json.dumps(heartbeat).encode())
    assert hb.code == ResponseCode.SUCCESS, hb.remark
    # Then its pulls are refused
    refused = pull(client, "Bcast", 0, 0, group="bcast")
    assert refused.code == ResponseCode.NO_PERMISSION
    assert "broadcast" in refused.remark
    # And a clustering group with the same config reads
    assert update_group(client, "cluster-g", consumeBroadcastEnable=False).code == 0
    assert pull(client, "Bcast", 0, 0, group="cluster-g").code == ResponseCode.SUCCESS
    client.close()


def consumer_heartbeat(client: WireClient, group: str, client_id: str) -> None:
    body = {
        "clientID": client_id,
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": group,
                "consumeType": "CONSUME_PASSIVELY",
                "messageModel": "CLUSTERING",
                "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                "subscriptionDataSet": [{"topic": "Members", "subString": "*"}],
                "unitMode": False,
            }
        ],
    }
    reply = client.call(RequestCode.HEART_BEAT, body=json.dumps(body).encode())
    assert reply.code == ResponseCode.SUCCESS, reply.remark


def pushed_before_reply(client: WireClient) -> list[int]:
    """Codes of the requests the broker pushed to ``client`` before the answer to a probe (a
    push caused earlier is written to the socket before that answer)."""
    probe = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
    client.send(probe)
    codes = []
    while True:
        cmd = client.receive()
        if cmd.is_response and cmd.opaque == probe.opaque:
            return codes
        if not cmd.is_response:
            codes.append(cmd.code)


def test_notify_consumer_ids_changed_enable_false_keeps_members_unnotified(address: str) -> None:
    admin = WireClient(address)
    # Given a group that asked not to be notified and one with the default config
    assert update_group(admin, "quiet", notifyConsumerIdsChangedEnable=False).code == 0
    first = {group: WireClient(address) for group in ("quiet", "chatty")}
    for group, client in first.items():
        consumer_heartbeat(client, group, f"{group}-1")
        assert pushed_before_reply(client) == []
    # When a second consumer joins each group
    for group in first:
        joiner = WireClient(address)
        consumer_heartbeat(joiner, group, f"{group}-2")
        # ... and when it unregisters again
        gone = joiner.call(
            RequestCode.UNREGISTER_CLIENT, {"clientID": f"{group}-2", "consumerGroup": group}
        )
        assert gone.code == ResponseCode.SUCCESS
        joiner.close()
    # Then the default group's first member was told twice, the quiet group's never
    notify = RequestCode.NOTIFY_CONSUMER_IDS_CHANGED
    assert pushed_before_reply(first["chatty"]) == [notify, notify]
    assert pushed_before_reply(first["quiet"]) == []
    for client in (admin, *first.values()):
        client.close()


def test_retry_queue_nums_of_the_group_sizes_its_retry_topic(address: str) -> None:
    client = WireClient(address)
    # Given a group with four retry queues, joined by a clustering consumer
    assert update_group(client, "wide", retryQueueNums=4).code == 0
    heartbeat = {
        "clientID": "wide-client",
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": "wide",
                "consumeType": "CONSUME_PASSIVELY",
                "messageModel": "CLUSTERING",
                "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
                "subscriptionDataSet": [{"topic": "Wide", "subString": "*"}],
                "unitMode": False,
            }
        ],
    }
    assert client.call(RequestCode.HEART_BEAT, body=json.dumps(heartbeat).encode()).code == 0
    # Then its retry topic has four queues
    topics = json.loads(client.call(RequestCode.GET_ALL_TOPIC_CONFIG).body)["topicConfigTable"]
    assert topics["%RETRY%wide"]["writeQueueNums"] == 4
    # When messages are sent back, Then they spread over those queues (1 s delay level)
    for i in range(12):
        sent = send(client, "Wide", b"w%d" % i)
        back = client.call(
            RequestCode.CONSUMER_SEND_MSG_BACK,
            {"offset": phys_offset(sent.ext_fields["msgId"]), "group": "wide", "delayLevel": 1},
        )
        assert back.code == ResponseCode.SUCCESS, back.remark
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 20
    while sum(seen.values()) < 12 and time.monotonic() < deadline:
        for queue_id in range(4):
            got = pull(client, "%RETRY%wide", queue_id, seen.get(queue_id, 0), suspend_ms=100)
            if got.code == ResponseCode.SUCCESS:
                seen[queue_id] = seen.get(queue_id, 0) + len(records(got.body))
    assert sum(seen.values()) == 12 and len(seen) > 1, seen
    client.close()
