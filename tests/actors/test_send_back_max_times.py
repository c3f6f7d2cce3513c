"""CONSUMER_SEND_MSG_BACK (36) without maxReconsumeTimes, for a group without a config, reads the
message's MAX_RECONSUME_TIMES: a value there that is no integer (any producer may set it) made
every send-back of the message a SYSTEM_ERROR with a traceback, so it never reached its retry
topic nor the dead-letter queue. It now counts as absent (16)."""

from __future__ import annotations

import pathlib
import time

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import MAX_RECONSUME_TIMES, encode_properties
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import send_v2_header

pytestmark = pytest.mark.timeout(30)


def test_a_message_whose_max_reconsume_times_is_no_integer_is_sent_back(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a message whose MAX_RECONSUME_TIMES is no integer, stored at offset 0
        props = encode_properties({MAX_RECONSUME_TIMES: "many"})
        ext = send_v2_header("T", born_ms=int(time.time() * 1000), properties=props)
        assert client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m").code == ResponseCode.SUCCESS
        # When a consumer of a group without a config sends it back, naming no maximum
        back = {"offset": 0, "group": "g", "delayLevel": 0, "originMsgId": ""}
        got = client.call(RequestCode.CONSUMER_SEND_MSG_BACK, back)
        # Then it is taken (into the group's retry topic), and nothing failed
        assert got.code == ResponseCode.SUCCESS, got.remark
        topic = client.call(RequestCode.GET_TOPIC_CONFIG, {"topic": "%RETRY%g"})
        assert topic.code == ResponseCode.SUCCESS
        assert errors == []


def test_a_message_sent_straight_to_a_retry_topic_with_such_a_value_is_stored(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a retry of group g sent straight to %RETRY%g (a client whose send-back
        # failed), its MAX_RECONSUME_TIMES no integer, no maxReconsumeTimes in the header
        props = encode_properties({MAX_RECONSUME_TIMES: "many"})
        ext = send_v2_header("%RETRY%g", born_ms=int(time.time() * 1000), properties=props, j=1)
        # When it is sent
        got = client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m")
        # Then it is stored (the value counts as absent: 16), and nothing failed
        assert got.code == ResponseCode.SUCCESS, got.remark
        assert errors == []
