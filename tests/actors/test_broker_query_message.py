"""QUERY_MESSAGE (12) answers at most 64 messages whatever its maxNum, and 32 for a query by
unique key, as RocketMQ's broker cuts it (maxMsgsNumBatch, defaultQueryMaxNum)."""

from __future__ import annotations

import pathlib
import time

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import encode_properties
from runtime.store.record import decode_record
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import send_v2_header

pytestmark = pytest.mark.timeout(30)


def count_records(body: bytes) -> int:
    pos = count = 0
    while pos < len(body):
        pos += decode_record(body, pos).total_size
        count += 1
    return count


def test_a_query_by_key_answers_at_most_64_messages(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given 70 messages stored under key k
        now = int(time.time() * 1000)
        props = encode_properties({"KEYS": "k"})
        for i in range(70):
            ext = send_v2_header("Keyed", born_ms=now, properties=props)
            assert client.call(RequestCode.SEND_MESSAGE_V2, ext, b"m%d" % i).code == 0
        query = {"topic": "Keyed", "key": "k", "beginTimestamp": 0, "endTimestamp": 2**62}
        # When a client asks for 2^31 - 1 of them
        got = client.call(RequestCode.QUERY_MESSAGE, {**query, "maxNum": 2**31 - 1})
        # Then it gets 64
        assert got.code == ResponseCode.SUCCESS
        assert count_records(got.body) == 64
        # And a query by unique key gets 32, whatever it asked
        unique = {**query, "maxNum": 1000, "_UNIQUE_KEY_QUERY": "true"}
        assert count_records(client.call(RequestCode.QUERY_MESSAGE, unique).body) == 32
        # And a query for fewer gets what it asked
        assert (
            count_records(client.call(RequestCode.QUERY_MESSAGE, {**query, "maxNum": 3}).body) == 3
        )
        assert errors == []
