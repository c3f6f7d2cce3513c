"""CONSUMER_SEND_MSG_BACK (36) for a group whose config has retryQueueNums 0 (a group an admin
made take no retries): SUCCESS and nothing stored, neither a retry nor a dead letter, as
RocketMQ answers (its consumerSendMsgBack returns SUCCESS before it looks the message up). The
retry was stored anyway, into a one-queue retry topic the broker made for it."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(30)


def send_back(client: WireClient, group: str, delay_level: int) -> object:
    ext = {"offset": 0, "group": group, "delayLevel": delay_level, "originMsgId": ""}
    return client.call(RequestCode.CONSUMER_SEND_MSG_BACK, ext)


def topic_exists(client: WireClient, topic: str) -> bool:
    got = client.call(RequestCode.GET_TOPIC_CONFIG, {"topic": topic})
    return got.code == ResponseCode.SUCCESS


def test_a_group_without_retry_queues_takes_no_retries(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a stored message and a group whose config has retryQueueNums 0
        ext = send_v2_header("T", born_ms=int(time.time() * 1000))
        assert client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m").code == ResponseCode.SUCCESS
        body = json.dumps({"groupName": "noretry", "retryQueueNums": 0}).encode()
        got = client.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body)
        assert got.code == ResponseCode.SUCCESS, got.remark
        # When a consumer of it sends the message back, for a retry and for the DLQ
        for level in (0, -1):
            got = send_back(client, "noretry", level)
            # Then it is answered SUCCESS, as RocketMQ answers it
            assert got.code == ResponseCode.SUCCESS, got.remark
        # And nothing was stored: no retry topic, no dead-letter topic, nothing scheduled
        assert not topic_exists(client, "%RETRY%noretry")
        assert not topic_exists(client, "%DLQ%noretry")
        level_3 = {"topic": "SCHEDULE_TOPIC_XXXX", "queueId": 2}
        got = client.call(RequestCode.GET_MAX_OFFSET, level_3)
        assert got.code != ResponseCode.SUCCESS or int(got.ext_fields["offset"]) == 0
        assert errors == []
