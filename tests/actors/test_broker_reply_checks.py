"""SEND_REPLY_MESSAGE_V2 (actors/broker/reply_handler.py) answered as RocketMQ's
ReplyMessageProcessor answers it, over real sockets to an in-process broker: a push that cannot
be framed, a queue id out of range, and what the stored copy holds."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import MAX_FRAME, encode
from runtime.remoting.properties import decode_properties, encode_properties
from runtime.store.record import decode_record
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(60)

CLUSTER = "East"
REPLY_TOPIC = f"{CLUSTER}_REPLY_TOPIC"
REQUESTER = "10.0.0.7@requester"


def register_requester(client: WireClient) -> None:
    hb = {"clientID": REQUESTER, "producerDataSet": [{"groupName": "req-g"}]}
    got = client.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode())
    assert got.code == ResponseCode.SUCCESS, got.remark


def reply_command(body: bytes, queue_id: int = 0) -> RemotingCommand:
    props = encode_properties(
        {"CORRELATION_ID": "c1", "REPLY_TO_CLIENT": REQUESTER, "MSG_TYPE": "reply"}
    )
    ext = send_v2_header(REPLY_TOPIC, properties=props, queue_id=queue_id, born_ms=_now_ms())
    return RemotingCommand.request(RequestCode.SEND_REPLY_MESSAGE_V2, ext, body)


def stored_in(client: WireClient, queue_id: int = 0) -> list[tuple[bytes, dict[str, str]]]:
    """(body, properties) of the messages of the reply topic's queue, as pulled."""
    ext = {
        "consumerGroup": "reply-g",
        "topic": REPLY_TOPIC,
        "queueId": queue_id,
        "queueOffset": 0,
        "maxMsgNums": 32,
        "sysFlag": 4,
        "commitOffset": 0,
        "suspendTimeoutMillis": 0,
        "subscription": "*",
        "subVersion": 0,
        "expressionType": "TAG",
    }
    got = client.call(RequestCode.PULL_MESSAGE, ext)
    if got.code != ResponseCode.SUCCESS:
        return []
    out, pos = [], 0
    while pos < len(got.body):
        record = decode_record(got.body, pos)
        out.append((bytes(record.body), decode_properties(record.properties)))
        pos += record.total_size
    return out


def test_a_push_too_large_to_frame_is_answered_as_a_failed_push(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b", broker_cluster_name=CLUSTER) as responder:
        requester = WireClient(responder.sock.getpeername())
        try:
            register_requester(requester)
            # Given a reply whose send frame fits the 16 MiB limit, but whose push to the
            # requester (the same body under a longer header) does not
            empty = len(encode(reply_command(b""))) - 4
            body = b"r" * (MAX_FRAME - empty - 16)
            with no_errors_logged() as errors:
                # When the responder sends it
                got = responder.call_command(reply_command(body))
            # Then it is answered as RocketMQ answers a push that failed: SYSTEM_ERROR "push
            # reply message to <id>fail.", with the broker's region and trace switch (the error
            # escaped the handler: SYSTEM_ERROR with the exception's text, no MSG_REGION)
            assert got.code == ResponseCode.SYSTEM_ERROR
            assert got.remark == f"push reply message to {REQUESTER}fail."
            assert got.ext_fields["MSG_REGION"] == "DefaultRegion"
            assert got.ext_fields["TRACE_ON"] == "true"
            assert errors == []
            # And both connections go on
            assert responder.call(RequestCode.GET_BROKER_RUNTIME_INFO).code == ResponseCode.SUCCESS
            assert requester.call(RequestCode.GET_BROKER_RUNTIME_INFO).code == ResponseCode.SUCCESS
        finally:
            requester.close()


def test_a_reply_to_a_queue_beyond_the_topics_queues_is_refused(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b", broker_cluster_name=CLUSTER) as responder:
        requester = WireClient(responder.sock.getpeername())
        try:
            register_requester(requester)
            # When a responder sends a reply to queue 5 of the one-queue reply topic
            got = responder.call_command(reply_command(b"late", queue_id=5))
            # Then it is refused as RocketMQ's msgCheck refuses it (it was pushed, and stored
            # in queue 0, and answered SUCCESS)
            assert got.code == ResponseCode.SYSTEM_ERROR, got.remark
            assert "queueId[5] is illegal" in (got.remark or "")
            assert got.ext_fields["MSG_REGION"] == "DefaultRegion"
            # And nothing was pushed or stored
            with pytest.raises(AssertionError):
                requester.wait_for_request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, 0.5)
            assert stored_in(responder) == []
        finally:
            requester.close()


def test_the_pushed_copy_carries_the_push_time_and_the_stored_copy_does_not(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b", broker_cluster_name=CLUSTER) as responder:
        requester = WireClient(responder.sock.getpeername())
        try:
            register_requester(requester)
            # When a responder sends a reply and the requester takes the push
            sent = reply_command(b"answer")
            responder.send(sent)
            push = requester.wait_for_request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, 10)
            requester.send(RemotingCommand.response_to(push, ResponseCode.SUCCESS))
            got = responder.receive()
            assert got.opaque == sent.opaque and got.code == ResponseCode.SUCCESS, got.remark
            # Then the pushed copy carries PUSH_REPLY_TIME, and the stored copy does not: as
            # RocketMQ's ReplyMessageProcessor, whose store encodes the properties string set
            # before the push added it
            pushed = decode_properties(push.ext_fields["properties"])
            assert int(pushed["PUSH_REPLY_TIME"]) > 0
            [(body, stored)] = stored_in(responder)
            assert body == b"answer" and "PUSH_REPLY_TIME" not in stored
            assert stored["CORRELATION_ID"] == "c1" and stored["MSG_REGION"] == "DefaultRegion"
        finally:
            requester.close()


def _now_ms() -> int:
    return int(time.time() * 1000)
