"""A topic's queue count stays within the broker's ``maxTopicQueueNums`` on every path that
sizes one (actors/broker/queue_limits.py): UPDATE_AND_CREATE_TOPIC, a group's retryQueueNums,
auto-creation on send, retry topics."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(30)

INT32_MAX = 2**31 - 1


def create_topic(
    client: WireClient, topic: str, read: int, write: int | None = None, perm: int = 6
) -> Any:
    ext = {
        "topic": topic,
        "readQueueNums": read,
        "writeQueueNums": read if write is None else write,
        "perm": perm,
    }
    return client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext)


def queue_nums(client: WireClient, topic: str) -> tuple[int, int] | None:
    got = client.call(RequestCode.GET_TOPIC_CONFIG, {"topic": topic})
    if got.code == ResponseCode.TOPIC_NOT_EXIST:
        return None
    config = json.loads(got.body)
    return config["readQueueNums"], config["writeQueueNums"]


def create_group(client: WireClient, group: str, retry_queue_nums: int) -> Any:
    body = json.dumps({"groupName": group, "retryQueueNums": retry_queue_nums}).encode()
    return client.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body)


def test_a_topic_of_2_pow_31_queues_is_refused_and_stats_stay_prompt(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # When an admin asks for a topic of 2^31 - 1 read and write queues
        got = create_topic(client, "Huge", INT32_MAX)
        # Then it is refused, naming the limit, and no topic is made
        assert got.code == ResponseCode.INVALID_PARAMETER
        assert "at most 1024" in got.remark and "maxTopicQueueNums" in got.remark
        assert queue_nums(client, "Huge") is None
        # And a stats request of that name is answered at once (it walked 2^31 queues before)
        began = time.monotonic()
        stats = client.call(RequestCode.GET_TOPIC_STATS_INFO, {"topic": "Huge"})
        assert stats.code == ResponseCode.TOPIC_NOT_EXIST
        assert time.monotonic() - began < 5
        # And one queue count beyond the limit is refused too, the limit itself taken
        assert create_topic(client, "Wide", 1024, 1025).code == ResponseCode.INVALID_PARAMETER
        assert create_topic(client, "Wide", 1024).code == ResponseCode.SUCCESS
        assert queue_nums(client, "Wide") == (1024, 1024)
        # And a group whose retry topic would be that wide is refused
        got = create_group(client, "wide-g", INT32_MAX)
        assert got.code == ResponseCode.INVALID_PARAMETER and "retryQueueNums" in got.remark
        assert errors == []


def test_auto_created_and_retry_topics_are_cut_to_the_limit(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "b"
    # Given a topic of 64 queues that new topics may inherit from (perm 7) and a group asking
    # for 64 retry queues, made under a limit of 64
    with lone_broker(data, max_topic_queue_nums=64) as client:
        assert create_topic(client, "Wide", 64, perm=7).code == ResponseCode.SUCCESS
        assert create_group(client, "wide-g", 64).code == ResponseCode.SUCCESS
    # When the broker restarts with a limit of 8
    with lone_broker(data, max_topic_queue_nums=8) as client, no_errors_logged() as errors:
        # And a producer sends to a new topic with "Wide" as its default topic, asking 1,000
        ext = send_v2_header("Fresh", born_ms=int(time.time() * 1000), c="Wide", d=1000)
        assert client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m").code == ResponseCode.SUCCESS
        # Then the topic gets 8 queues
        assert queue_nums(client, "Fresh") == (8, 8)
        # And the group's retry topic, made by its first heartbeat, gets 8 too
        heartbeat = {
            "clientID": "c1",
            "producerDataSet": [],
            "consumerDataSet": [
                {
                    "groupName": "wide-g",
                    "consumeType": "CONSUME_PASSIVELY",
                    "messageModel": "CLUSTERING",
                    "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                    "unitMode": False,
                    "subscriptionDataSet": [{"topic": "Fresh", "subString": "*"}],
                }
            ],
        }
        body = json.dumps(heartbeat).encode()
        assert client.call(RequestCode.HEART_BEAT, body=body).code == ResponseCode.SUCCESS
        assert queue_nums(client, "%RETRY%wide-g") == (8, 8)
        assert errors == []


def test_only_a_topic_with_the_inherit_permission_is_a_default_topic(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given an ordinary topic of 16 queues (perm 6: no inherit)
        assert create_topic(client, "Plain", 16).code == ResponseCode.SUCCESS
        # When a producer names it as the default topic of a new one
        ext = send_v2_header("Borrowed", born_ms=int(time.time() * 1000), c="Plain", d=16)
        got = client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m")
        # Then nothing is made from it (RocketMQ: "the default topic has no perm")
        assert got.code == ResponseCode.TOPIC_NOT_EXIST
        assert queue_nums(client, "Borrowed") is None
        # And TBW102 (inherit) still makes a new topic
        ext = send_v2_header("Fresh", born_ms=int(time.time() * 1000), c="TBW102", d=4)
        assert client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m").code == ResponseCode.SUCCESS
        assert queue_nums(client, "Fresh") == (4, 4)
        assert errors == []
