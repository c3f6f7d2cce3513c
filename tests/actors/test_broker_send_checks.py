"""The send path's checks as RocketMQ's ``AbstractSendMessageProcessor.msgCheck`` makes them
(actors/broker/send_handler.py), over a real socket to an in-process broker."""

from __future__ import annotations

import json
import pathlib
import re
import time
from typing import Any

import pytest

from actors.broker.store_adapter import StoreAdapter
from runtime.remoting.batch import BatchEntry, encode_batch
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import decode_properties
from runtime.store.record import decode_record
from runtime.store.topic_names import TOPIC_DELETED_MARKER
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2, send_v2_header

pytestmark = pytest.mark.timeout(30)


def create_topic(client: WireClient, topic: str, read: int, write: int) -> Any:
    ext = {"topic": topic, "readQueueNums": read, "writeQueueNums": write, "perm": 6}
    return client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext)


def max_offset(client: WireClient, topic: str, queue_id: int) -> int:
    got = client.call(RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": queue_id})
    assert got.code == ResponseCode.SUCCESS, got.remark
    return int(got.ext_fields["offset"])


def test_a_send_to_a_readable_queue_beyond_the_write_queues_is_stored(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a topic whose write queues were cut from 8 to 4 (its 8 queues stay readable)
        assert create_topic(client, "Shrunk", 8, 4).code == ResponseCode.SUCCESS
        # When a producer with the route of before the cut sends to queue 5
        got = client.call_command(send_v2("Shrunk", b"m", queue_id=5, born_ms=_now_ms()))
        # Then it is stored there, as RocketMQ takes any queue below max(write, read)
        assert got.code == ResponseCode.SUCCESS, got.remark
        assert got.ext_fields["queueId"] == "5"
        assert max_offset(client, "Shrunk", 5) == 1
        # And a queue beyond both counts is refused, naming them
        got = client.call_command(send_v2("Shrunk", b"m", queue_id=8, born_ms=_now_ms()))
        assert got.code == ResponseCode.SYSTEM_ERROR
        assert "queueId[8] is illegal" in got.remark and "readQueueNums: 8" in got.remark
        assert errors == []


def test_a_send_to_the_deletion_marker_topic_is_refused_without_a_traceback(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # When a client sends to the store's reserved deletion-marker topic (a legal name, and
        # the broker creates topics on first send)
        got = client.call_command(send_v2(TOPIC_DELETED_MARKER, b"m", born_ms=_now_ms()))
        # Then it is refused as a topic only the broker writes, and nothing is logged as a
        # failure (the auto-creation raised inside the TopicConfig: SYSTEM_ERROR, a traceback)
        assert got.code == ResponseCode.NO_PERMISSION, got.remark
        assert "reserved" in got.remark
        assert errors == []
        # And the broker goes on storing other sends
        got = client.call_command(send_v2("Other", b"m", born_ms=_now_ms()))
        assert got.code == ResponseCode.SUCCESS, got.remark


def test_an_auto_creation_keeps_a_topic_made_meanwhile(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a topic an admin made with 8 queues just after a producer's send looked it up
        # and found none (the send's lookup answers as before the admin's creation)
        assert create_topic(client, "Raced", 8, 8).code == ResponseCode.SUCCESS
        looked = StoreAdapter.topic
        misses = ["Raced"]

        def stale(self: StoreAdapter, topic: str) -> Any:
            if topic in misses:
                misses.remove(topic)
                return None
            return looked(self, topic)

        monkeypatch.setattr(StoreAdapter, "topic", stale)
        # When that send auto-creates the topic from TBW102 with the producer's 4 queues
        got = client.call_command(send_v2("Raced", b"m", born_ms=_now_ms(), d=4))
        assert got.code == ResponseCode.SUCCESS, got.remark
        # Then the admin's topic stays as made (RocketMQ creates under the table's lock, and
        # only when the topic is still missing): the send's config replaced it
        config = json.loads(client.call(RequestCode.GET_TOPIC_CONFIG, {"topic": "Raced"}).body)
        assert (config["readQueueNums"], config["writeQueueNums"]) == (8, 8)
        assert errors == []


def stored_properties(client: WireClient, topic: str, count: int) -> list[dict[str, str]]:
    """The properties of the first ``count`` messages of ``topic``'s queue 0, as pulled."""
    ext = {
        "consumerGroup": "checks-g",
        "topic": topic,
        "queueId": 0,
        "queueOffset": 0,
        "maxMsgNums": 32,
        "sysFlag": 4,  # SUBSCRIPTION: the subscription comes with the pull
        "commitOffset": 0,
        "suspendTimeoutMillis": 0,
        "subscription": "*",
        "subVersion": 0,
        "expressionType": "TAG",
    }
    got = client.call(RequestCode.PULL_MESSAGE, ext)
    assert got.code == ResponseCode.SUCCESS, got.remark
    out, pos = [], 0
    while pos < len(got.body):
        record = decode_record(got.body, pos)
        out.append(decode_properties(record.properties))
        pos += record.total_size
    assert len(out) == count
    return out


def test_every_stored_message_names_the_broker_cluster(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b", broker_cluster_name="East") as client:
        # Given a plain message, a request message of request-reply whose producer named
        # another cluster, and a batch of two
        plain = send_v2("Orders", b"a", born_ms=_now_ms(), properties="TAGS\x01t\x02")
        assert client.call_command(plain).code == ResponseCode.SUCCESS
        request = "CORRELATION_ID\x01c1\x02REPLY_TO_CLIENT\x01127.0.0.1@1\x02CLUSTER\x01West\x02"
        sent = client.call_command(send_v2("Orders", b"b", born_ms=_now_ms(), properties=request))
        assert sent.code == ResponseCode.SUCCESS, sent.remark
        batch = encode_batch([BatchEntry(0, b"c", "KEYS\x01k1\x02"), BatchEntry(0, b"d", "")])
        ext = send_v2_header("Orders", born_ms=_now_ms())
        got = client.call_command(
            RemotingCommand.request(RequestCode.SEND_BATCH_MESSAGE, ext, batch)
        )
        assert got.code == ResponseCode.SUCCESS, got.remark
        # When they are pulled
        stored = stored_properties(client, "Orders", 4)
        # Then each carries the broker's cluster, as RocketMQ's SendMessageProcessor puts it
        # (the request message's too: its responder replies to East_REPLY_TOPIC), once
        assert [p.get("CLUSTER") for p in stored] == ["East"] * 4
        assert (stored[0]["TAGS"], stored[1]["CORRELATION_ID"], stored[2]["KEYS"]) == (
            "t",
            "c1",
            "k1",
        )
        assert all(p["MSG_REGION"] == "DefaultRegion" for p in stored)


def test_a_message_sent_without_a_uniq_key_gets_one_of_the_brokers(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a message sent without UNIQ_KEY, one with an empty one, and one with its own
        sends = ["TAGS\x01t\x02", "UNIQ_KEY\x01\x02KEYS\x01k\x02", "UNIQ_KEY\x01MINE\x02"]
        answers = []
        for properties in sends:
            got = client.call_command(
                send_v2("Ids", b"m", born_ms=_now_ms(), properties=properties)
            )
            assert got.code == ResponseCode.SUCCESS, got.remark
            answers.append(got.ext_fields.get("transactionId"))
        # When they are pulled
        stored = stored_properties(client, "Ids", 3)
        # Then the first two carry a UNIQ_KEY of the broker's making, which the answer names as
        # its transactionId (RocketMQ 5's SendMessageProcessor sets one on every single message
        # it stores: the client's msgId and transactionId are never null); the third keeps its own
        assert [p.get("UNIQ_KEY") for p in stored] == answers
        assert all(re.fullmatch("[0-9A-F]{32}", a or "") for a in answers[:2])
        assert answers[0] != answers[1] and answers[2] == "MINE"
        assert (stored[0]["TAGS"], stored[1]["KEYS"]) == ("t", "k")
        assert errors == []


def _now_ms() -> int:
    return int(time.time() * 1000)
