"""Broker keys that change what clients get, against a real ``python -m runtime cluster`` with
a profile that sets them: ``maxTransferCountOnMessageInMemory`` and
``maxTransferBytesOnMessageInMemory`` cap a pull,
``autoCreateSubscriptionGroup=false`` refuses groups nobody created, ``timerWheelEnable=false``
refuses timer messages, ``regionId`` and ``traceOn=false`` are named in send answers and stored
messages (MSG_REGION, TRACE_ON)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.remoting.batch import BatchEntry, encode_batch
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import decode_properties
from tests.harness import RuntimeProcess
from tests.integration.test_broker_wire import props, pull, records, send
from tests.profiles import one_broker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)

PROFILE = one_broker(
    {
        "maxTransferCountOnMessageInMemory": 4,
        "maxTransferBytesOnMessageInMemory": 8192,
        "autoCreateSubscriptionGroup": False,
        "timerWheelEnable": False,
        "regionId": "HZ",
        "traceOn": False,
    },
    description="test: broker keys set away from their defaults",
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireClient]:
    data = tmp_path_factory.mktemp("config-keys")
    profile = data / "profile.toml"
    profile.write_text(PROFILE)
    argv = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    with RuntimeProcess([*argv, "--data-dir", str(data / "data")]) as node:
        addresses = node.wait_ready()
        client = WireClient(addresses["broker-a/0"])
        yield client
        client.close()
        assert node.terminate() == 0, node.stderr_text()


def _create_group(client: WireClient, group: str) -> None:
    body = f'{{"groupName":"{group}","consumeEnable":true}}'.encode()
    reply = client.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body)
    assert reply.code == ResponseCode.SUCCESS, reply.remark


def test_a_pull_gets_at_most_max_transfer_count_messages(broker: WireClient) -> None:
    # Given 10 messages in a queue and a group that exists
    for i in range(10):
        assert send(broker, "Capped", f"m{i}".encode(), properties=props("t")).code == 0
    _create_group(broker, "capped-group")
    # When a consumer asks for 32, Then it gets 4 (maxTransferCountOnMessageInMemory)
    reply = pull(broker, "Capped", 0, 0, group="capped-group", max_nums=32)
    assert reply.code == ResponseCode.SUCCESS
    assert [r.body for r in records(reply.body)] == [b"m0", b"m1", b"m2", b"m3"]


def test_a_group_nobody_created_is_refused_and_a_created_one_is_served(
    broker: WireClient,
) -> None:
    assert send(broker, "Groups", b"x", properties=props("t")).code == 0
    # When a group without a config pulls, Then SUBSCRIPTION_GROUP_NOT_EXIST with the reason
    reply = pull(broker, "Groups", 0, 0, group="never-created")
    assert reply.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
    assert "never-created" in reply.remark and "autoCreateSubscriptionGroup" in reply.remark
    # and mqadmin's TOOLS_CONSUMER, a system group, is served
    assert pull(broker, "Groups", 0, 0, group="TOOLS_CONSUMER").code == ResponseCode.SUCCESS
    # When the group is created (updateSubGroup), Then its pulls are served
    _create_group(broker, "created-group")
    assert pull(broker, "Groups", 0, 0, group="created-group").code == ResponseCode.SUCCESS


def test_a_timer_message_is_refused_when_the_timer_wheel_is_off(broker: WireClient) -> None:
    # When a message with TIMER_DELAY_SEC is sent, Then MESSAGE_ILLEGAL names the key
    reply = send(broker, "Timers", b"later", properties=props("t", TIMER_DELAY_SEC="5"))
    assert reply.code == ResponseCode.MESSAGE_ILLEGAL
    assert "timerWheelEnable" in reply.remark
    # and a plain message to the same topic is stored
    assert send(broker, "Timers", b"now", properties=props("t")).code == ResponseCode.SUCCESS


def test_a_pull_gets_at_most_max_transfer_bytes_but_a_larger_message_whole(
    broker: WireClient,
) -> None:
    # Given three 3,000-byte messages and then one of 10,000 bytes
    for i in range(3):
        body = bytes([65 + i]) * 3000
        assert send(broker, "Bytes", body, properties=props("t")).code == 0
    assert send(broker, "Bytes", b"Z" * 10_000, properties=props("t")).code == 0
    _create_group(broker, "bytes-group")
    # When a RocketMQ 4 client pulls (no maxMsgBytes), Then 8,192 bytes hold two records
    first = pull(broker, "Bytes", 0, 0, group="bytes-group", max_nums=32)
    assert [len(r.body) for r in records(first.body)] == [3000, 3000]
    # and a record larger than the cap comes alone and whole
    last = pull(broker, "Bytes", 0, 3, group="bytes-group", max_nums=32)
    assert [len(r.body) for r in records(last.body)] == [10_000]


def test_region_and_trace_switch_are_in_send_answers_and_stored_messages(
    broker: WireClient,
) -> None:
    # Given a message whose producer named a region and switch of its own, and a batch
    own = props("t", MSG_REGION="Elsewhere", TRACE_ON="true")
    single = send(broker, "Regions", b"one", properties=own)
    batch = encode_batch([BatchEntry(0, b"b%d" % i, props("t")) for i in range(2)])
    batched = send(broker, "Regions", batch, code=RequestCode.SEND_BATCH_MESSAGE)
    # Then every answer names the broker's region and switch, as RocketMQ's extFields
    for reply in (single, batched):
        assert reply.code == ResponseCode.SUCCESS, reply.remark
        assert (reply.ext_fields["MSG_REGION"], reply.ext_fields["TRACE_ON"]) == ("HZ", "false")
    # an error answer too (RocketMQ adds them before its first check)
    refused = send(broker, "Regions", b"later", properties=props("t", TIMER_DELAY_SEC="5"))
    assert refused.code == ResponseCode.MESSAGE_ILLEGAL
    assert refused.ext_fields["MSG_REGION"] == "HZ"
    # And every stored message carries them, replacing the producer's
    stored = records(pull(broker, "Regions", 0, 0, group="TOOLS_CONSUMER").body)
    assert [r.body for r in stored] == [b"one", b"b0", b"b1"]
    for r in stored:
        p = decode_properties(r.properties)
        assert (p["MSG_REGION"], p["TRACE_ON"], p["TAGS"]) == ("HZ", "false", "t")
