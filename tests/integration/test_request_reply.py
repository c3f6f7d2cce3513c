"""Request-reply against a real process: ``Producer.request`` waits for the reply a push
consumer sends with ``Producer.reply`` (SEND_REPLY_MESSAGE_V2 -> PUSH_REPLY_MESSAGE_TO_CLIENT);
no responder is a timeout; a reply whose requester is gone is refused and still stored."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import (
    Admin,
    ClientStateError,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageExt,
    MessageInvalidError,
    Producer,
    PushConsumer,
    RequestTimeoutError,
    SendContext,
    SendFailedError,
    SendHook,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import decode_properties, encode_properties
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.integration.test_broker_wire import pull, records
from tests.wire import WireClient, send_v2

pytestmark = pytest.mark.timeout(90)
REPLY_TOPIC = "DefaultCluster_REPLY_TOPIC"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("rpc")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture(scope="module")
def responder(cluster: dict[str, str]) -> Iterator[Producer]:
    """A push consumer of topic Rpc that answers every request with ``pong:<body>``."""
    namesrv = cluster["namesrv"]
    with Admin(namesrv) as admin:  # the consumer finds the topic's route at once
        admin.create_topic("Rpc", queues=4)
    producer = Producer("rpc-responder", namesrv=namesrv).start()

    def answer(msg: MessageExt) -> ConsumeResult:
        producer.reply(msg, b"pong:" + msg.body, properties={"served-by": "test"})
        return ConsumeResult.CONSUME_SUCCESS

    consumer = PushConsumer("rpc-servers", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe("Rpc", "*")(answer)
    consumer.start()
    yield producer
    consumer.shutdown()
    producer.shutdown()


def test_a_request_gets_its_reply(cluster: dict[str, str], responder: Producer) -> None:
    # Given a responder consuming topic Rpc
    with Producer("rpc-requester", namesrv=cluster["namesrv"]) as requester:
        # When a request is sent, Then the reply comes back to this producer, with what the
        # responder put in it and the request's correlation id
        reply = requester.request(Message("Rpc", b"ping-0"), timeout=20)
        assert reply.body == b"pong:ping-0"
        assert reply.topic == REPLY_TOPIC
        assert reply.properties == {"served-by": "test"}
        assert reply.all_properties["MSG_TYPE"] == "reply"
        assert reply.all_properties["REPLY_TO_CLIENT"] == requester.client_id
        # And concurrent requests each get their own reply
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            bodies = [f"ping-{i}".encode() for i in range(1, 9)]
            got = list(pool.map(lambda b: requester.request(Message("Rpc", b), timeout=20), bodies))
        assert [r.body for r in got] == [b"pong:" + b for b in bodies]


def test_no_responder_is_a_timeout(cluster: dict[str, str]) -> None:
    with Producer("rpc-lonely", namesrv=cluster["namesrv"]) as requester:
        # Given a topic nobody consumes; When a request is sent with a short timeout
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            requester.request(Message("RpcNobody", b"hello?"), timeout=0.5)
        # Then it gives up at its timeout, not later
        assert time.monotonic() - started < 5


def test_a_reply_needs_a_request_and_a_live_requester(
    cluster: dict[str, str], responder: Producer
) -> None:
    # Given a received message that is not a request: reply refuses it
    plain = MessageExt("Rpc", b"x", "UNIQ_KEY\x01A\x02")
    with pytest.raises(MessageInvalidError):
        responder.reply(plain, b"nope")
    # Given a request whose requester has gone away
    gone = MessageExt(
        "Rpc",
        b"x",
        "CLUSTER\x01DefaultCluster\x02REPLY_TO_CLIENT\x0110.9.9.9@gone\x02"
        "CORRELATION_ID\x01c-gone\x02TTL\x013000\x02",
    )
    # When a reply is sent, Then the broker refuses it with the reason
    with pytest.raises(SendFailedError) as refused:
        responder.reply(gone, b"late", timeout=5)
    assert "not found" in str(refused.value)
    # And the reply is stored in the reply topic all the same (as RocketMQ stores it)
    client = WireClient(cluster["broker-a/0"])
    try:
        found = pull(client, REPLY_TOPIC, 0, 0, max_nums=1000)
        assert found.code == ResponseCode.SUCCESS
        stored: list[Any] = [r.body for r in records(found.body)]
        assert b"late" in stored
    finally:
        client.close()


def test_a_reply_reaches_a_requester_before_its_first_heartbeat(
    cluster: dict[str, str], responder: Producer
) -> None:
    # Given a requester whose first heartbeat has not reached the broker (RocketMQ's clients
    # send the next one 30 s later): it sends a request and never heartbeats
    client = WireClient(cluster["broker-a/0"])
    try:
        props = {"REPLY_TO_CLIENT": "10.9.9.9@early", "CORRELATION_ID": "c-early", "TTL": "9000"}
        sent = client.call_command(send_v2("Rpc", b"early", properties=encode_properties(props)))
        assert sent.code == ResponseCode.SUCCESS
        # When the responder replies, Then the broker pushes the reply on the request's connection
        push = client.wait_for_request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, 20)
        assert push.body == b"pong:early"
        assert decode_properties(push.ext_fields["properties"])["CORRELATION_ID"] == "c-early"
        client.send(RemotingCommand.response_to(push, ResponseCode.SUCCESS))
    finally:
        client.close()


class _Sends(SendHook):
    """Records every hooked send's context, once it ended."""

    def __init__(self) -> None:
        self.ended: list[SendContext] = []

    def after(self, ctx: SendContext) -> None:
        self.ended.append(ctx)


def test_requests_and_replies_call_the_send_hooks(
    cluster: dict[str, str], responder: Producer
) -> None:
    # Given send hooks on the requester and on the responder
    asked, answered = _Sends(), _Sends()
    responder.register_send_hook(answered)
    try:
        with Producer("rpc-hooked", namesrv=cluster["namesrv"]) as requester:
            requester.register_send_hook(asked)
            # When a request is answered
            reply = requester.request(Message("Rpc", b"hooked"), timeout=20)
            # (the reply can reach the requester before its send's answer reaches the
            # responder, whose hook runs then)
            wait_until(
                lambda: any(
                    isinstance(c.message, Message) and c.message.topic == REPLY_TOPIC
                    for c in answered.ended
                ),
                timeout=10,
                what="the responder's hook",
            )
    finally:
        responder.unregister_send_hook(answered)
    # Then the requester's hook saw the request's send, the responder's the reply's
    assert reply.body == b"pong:hooked"
    [request] = asked.ended
    assert isinstance(request.message, Message) and request.message.body == b"hooked"
    assert request.send_result is not None and request.exception is None
    [(ctx, sent)] = [
        (c, c.message)
        for c in answered.ended
        if isinstance(c.message, Message) and c.message.topic == REPLY_TOPIC
    ]
    assert sent.properties == {"served-by": "test"}
    assert ctx.send_result is not None and ctx.broker_addr


def test_async_requests_get_their_replies_or_time_out(
    cluster: dict[str, str], responder: Producer
) -> None:
    # Given a responder consuming topic Rpc, and a requester with a send hook
    asked = _Sends()
    with Producer("rpc-async", namesrv=cluster["namesrv"]) as requester:
        requester.register_send_hook(asked)
        called: list[tuple[bytes | None, type | None]] = []
        all_called = threading.Event()

        def callback(reply: MessageExt | None, error: BaseException | None) -> None:
            called.append((reply.body if reply else None, type(error) if error else None))
            if len(called) == 9:
                all_called.set()

        # When eight requests are sent without waiting, and one to a topic nobody consumes
        futures = [
            requester.request_async(Message("Rpc", b"a%d" % i), callback, timeout=20)
            for i in range(8)
        ]
        lonely = requester.request_async(Message("RpcNobody", b"hello?"), callback, timeout=0.5)
        # Then each future gets its own reply, the lonely one a timeout, each callback ran once
        replies = [f.result(30) for f in futures]
        assert [r.body for r in replies] == [b"pong:a%d" % i for i in range(8)]
        assert isinstance(lonely.exception(10), RequestTimeoutError)
        assert all_called.wait(10)
        assert sorted(called, key=repr) == sorted(
            [(b"pong:a%d" % i, None) for i in range(8)] + [(None, RequestTimeoutError)], key=repr
        )
        # And the send hook saw the nine requests' sends, each answered
        assert len(asked.ended) == 9 and all(c.send_result for c in asked.ended)


def test_a_shutdown_fails_the_requests_still_waiting(cluster: dict[str, str]) -> None:
    # Given an async request to a topic nobody consumes, with a long timeout
    requester = Producer("rpc-leaving", namesrv=cluster["namesrv"]).start()
    waiting = requester.request_async(Message("RpcNobody", b"anyone?"), timeout=60)
    # When the producer shuts down, Then the request fails at once instead of never completing
    requester.shutdown()
    error = waiting.exception(5)
    assert isinstance(error, ClientStateError) and "shut down" in str(error)
