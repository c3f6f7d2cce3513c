"""CONSUMER_SEND_MSG_BACK (36) with a bad group, originMsgId or offset is answered as RocketMQ 5
answers it (SUBSCRIPTION_GROUP_NOT_EXIST, SYSTEM_ERROR "look message by offset failed"), or
INVALID_PARAMETER where RocketMQ would store something our store refuses; never a traceback."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(30)


def send_back(client: WireClient, group: str, offset: int = 0, **extra: Any) -> Any:
    ext = {"offset": offset, "group": group, "delayLevel": 0, "originMsgId": "", **extra}
    return client.call(RequestCode.CONSUMER_SEND_MSG_BACK, ext)


def test_bad_send_backs_get_typed_answers_and_no_traceback(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a message stored at commit-log offset 0
        ext = send_v2_header("T", born_ms=int(time.time() * 1000))
        assert client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m").code == ResponseCode.SUCCESS
        # When it is sent back for an empty, an illegal or an overlong group
        for group in ["", "bad group!", "g" * 256]:
            got = send_back(client, group)
            # Then the group does not exist, as RocketMQ 5 answers
            assert got.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, (group, got.remark)
            assert "subscription group not exist" in got.remark
        # And no retry topic was made for them
        got = client.call(RequestCode.GET_TOPIC_CONFIG, {"topic": "%RETRY%"})
        assert got.code == ResponseCode.TOPIC_NOT_EXIST
        # When a legal group's retry topic cannot be (past 127 characters)
        got = send_back(client, "g" * 200)
        assert got.code == ResponseCode.INVALID_PARAMETER and "retry topic" in got.remark
        # When the originMsgId holds a property separator
        got = send_back(client, "g", originMsgId="id\x01x\x02")
        assert got.code == ResponseCode.INVALID_PARAMETER and "originMsgId" in got.remark
        # When the offset names no message (negative, inside the record, past the log)
        for offset in [-1, 1, 2**62]:
            got = send_back(client, "g", offset)
            assert got.code == ResponseCode.SYSTEM_ERROR
            assert got.remark == f"look message by offset failed, {offset}"
        # And a good send-back is still taken
        assert send_back(client, "g", originMsgId="0A").code == ResponseCode.SUCCESS
        assert errors == []
