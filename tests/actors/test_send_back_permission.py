"""CONSUMER_SEND_MSG_BACK (36) on a broker without write permission (brokerPermission 4, how
an operator drains a broker), or into a retry topic an admin made read-only: NO_PERMISSION,
nothing stored, as RocketMQ answers (its consumer then sends the retry through its producer,
to a writable broker). The send-back was stored anyway, so retries kept landing on a broker
being drained."""

from __future__ import annotations

import pathlib
import time

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(30)


def send_back(client: WireClient, group: str) -> object:
    ext = {"offset": 0, "group": group, "delayLevel": 0, "originMsgId": "", "maxReconsumeTimes": 16}
    return client.call(RequestCode.CONSUMER_SEND_MSG_BACK, ext)


def max_offset(client: WireClient) -> int:
    got = client.call(RequestCode.GET_MAX_OFFSET, {"topic": "SCHEDULE_TOPIC_XXXX", "queueId": 2})
    return int(got.ext_fields["offset"]) if got.code == ResponseCode.SUCCESS else 0


def test_a_send_back_needs_write_permission(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a stored message
        ext = send_v2_header("T", born_ms=int(time.time() * 1000))
        assert client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m").code == ResponseCode.SUCCESS
        # And a group whose retry topic an admin made read-only
        assert send_back(client, "ro").code == ResponseCode.SUCCESS
        stored = max_offset(client)
        topic = {"topic": "%RETRY%ro", "readQueueNums": 1, "writeQueueNums": 1, "perm": 4}
        got = client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, topic)
        assert got.code == ResponseCode.SUCCESS, got.remark
        # When a consumer of it sends the message back
        got = send_back(client, "ro")
        # Then it is refused, as RocketMQ refuses it, and nothing is stored
        assert got.code == ResponseCode.NO_PERMISSION, got.remark
        assert "%RETRY%ro" in got.remark
        # When the broker is made read-only (drained)
        body = b"brokerPermission=4\n"
        got = client.call(RequestCode.UPDATE_BROKER_CONFIG, body=body)
        assert got.code == ResponseCode.SUCCESS, got.remark
        # Then a send-back of any group is refused too
        got = send_back(client, "g")
        assert got.code == ResponseCode.NO_PERMISSION, got.remark
        assert "sending message is forbidden" in got.remark
        assert max_offset(client) == stored
        assert errors == []
