"""A batch sent to a retry topic is refused MESSAGE_ILLEGAL, nothing stored, as RocketMQ's
broker refuses it ("batch request does not support retry group"): a retry topic takes one
message at a time (its reconsume count and dead-letter rule are per message)."""

from __future__ import annotations

import pathlib

import pytest

from runtime.remoting.batch import BatchEntry, encode_batch
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import send_v2_header

pytestmark = pytest.mark.timeout(30)


def test_a_batch_to_a_retry_topic_is_refused(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a batch of two messages
        batch = encode_batch([BatchEntry(0, b"one"), BatchEntry(0, b"two")])
        # When it is sent to group g's retry topic
        header = send_v2_header("%RETRY%g")
        got = client.call(RequestCode.SEND_BATCH_MESSAGE, header, batch)
        # Then it is refused, saying why, and nothing is stored
        assert got.code == ResponseCode.MESSAGE_ILLEGAL
        assert got.remark == "batch request does not support retry group %RETRY%g"
        stored = client.call(RequestCode.GET_MAX_OFFSET, {"topic": "%RETRY%g", "queueId": 0})
        assert stored.code != ResponseCode.SUCCESS or stored.ext_fields["offset"] in (0, "0")
        # And a batch to a plain topic is still taken
        got = client.call(RequestCode.SEND_BATCH_MESSAGE, send_v2_header("Plain"), batch)
        assert got.code == ResponseCode.SUCCESS, got.remark
        assert errors == []
