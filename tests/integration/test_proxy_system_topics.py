"""A gRPC client's call naming a system topic is refused by the proxy as RocketMQ 5's proxy
refuses it (ILLEGAL_TOPIC "cannot access system topic"): a send stores nothing (a hostile-input
probe sent 1,000 messages to SCHEDULE_TOPIC_XXXX without REAL_TOPIC through the proxy: each was
put back into that topic every second, forever), and a consumer cannot read the brokers' own
topics (a receive from SCHEDULE_TOPIC_XXXX handed out the delayed messages waiting there).
``%RETRY%`` and ``%DLQ%`` topics stay served."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import Admin, Message, Producer
from actors.proxy.proto import ClientType, Code, FilterType, M
from runtime.remoting.codes import RequestCode
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.integration.test_proxy import TOPIC, Stub, _message, _receive_request, _routed
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)

SYSTEM_TOPICS = (
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TBW102",
    "rmq_sys_wheel_timer",
)
REFUSED = (Code.ILLEGAL_TOPIC, "cannot access system topic")


@pytest.fixture
def proxy(tmp_path: pathlib.Path) -> Iterator[tuple[Stub, WireClient]]:
    """A cluster (name server + one broker), a proxy process over it, and a remoting client
    of the broker."""
    cluster_args = ["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]
    with RuntimeProcess(cluster_args) as cluster:
        addresses = cluster.wait_ready(timeout=30)
        namesrv = addresses["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=4)
            wait_until(lambda: _routed(admin, TOPIC), what=f"{TOPIC} routed")
        args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports"]
        args += ["--consume-from", "first", "--long-polling", "2"]
        with RuntimeProcess(args) as process:
            stub = Stub(process.wait_ready(timeout=30)["proxy"])
            stub.namesrv = namesrv
            broker = WireClient(addresses["broker-a/0"])
            try:
                yield stub, broker
            finally:
                broker.close()
                stub.channel.close()


def _stored(broker: WireClient, topic: str, queues: int) -> int:
    total = 0
    for queue_id in range(queues):
        got = broker.call(RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": queue_id})
        total += int(got.ext_fields.get("offset", 0)) if got.code == 0 else 0
    return total


def test_a_send_to_a_system_topic_is_refused_and_nothing_is_stored(
    proxy: tuple[Stub, WireClient],
) -> None:
    stub, broker = proxy
    for topic in (
        "SCHEDULE_TOPIC_XXXX",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "TBW102",
        "rmq_sys_wheel_timer",
    ):
        # When a gRPC producer sends 50 messages to a system topic in one request
        request = M.SendMessageRequest()
        for i in range(50):
            request.messages.append(_message(b"loop", f"{i:016X}"))
            request.messages[-1].topic.name = topic
        got = stub.unary("SendMessage", request, M.SendMessageResponse)
        # Then each is refused as RocketMQ 5's proxy refuses it
        assert got.status.code == Code.ILLEGAL_TOPIC, (topic, got.status.message)
        assert got.status.message == "cannot access system topic"
        assert {e.status.code for e in got.entries} == {Code.ILLEGAL_TOPIC}
    # And nothing reached the broker's own topics, nor comes round again
    time.sleep(1.5)
    assert _stored(broker, "SCHEDULE_TOPIC_XXXX", 18) == 0
    assert _stored(broker, "rmq_sys_wheel_timer", 1) == 0
    assert _stored(broker, "TBW102", 8) == 0
    # And an ordinary send is served
    ok = M.SendMessageRequest()
    ok.messages.append(_message(b"fine", "01FF"))
    assert stub.unary("SendMessage", ok, M.SendMessageResponse).status.code == Code.OK


def _status(got: Any) -> tuple[int, str]:
    return got.status.code, got.status.message


def _receive(stub: Stub, topic: str, group: str, namespace: str = "") -> list[Any]:
    request = M.ReceiveMessageRequest()
    request.group.name = group
    request.message_queue.topic.name = topic
    request.message_queue.topic.resource_namespace = namespace
    request.filter_expression.type = FilterType.TAG
    request.filter_expression.expression = "*"
    request.batch_size = 16
    request.invisible_duration.seconds = 30
    request.long_polling_timeout.seconds = 2
    return stub.receive(request)


def _settings_answer(stub: Stub, settings: Any) -> Any:
    """The proxy's answer to a client's telemetry Settings."""
    command = M.TelemetryCommand()
    command.settings.CopyFrom(settings)
    call = stub.channel.stream_stream(
        "/apache.rocketmq.v2.MessagingService/Telemetry",
        request_serializer=M.TelemetryCommand.SerializeToString,
        response_deserializer=M.TelemetryCommand.FromString,
    )
    stream = call(iter([command]), timeout=10, metadata=(("x-mq-client-id", "snoop-client"),))
    try:
        return next(stream)
    finally:
        stream.cancel()


def _consumer_calls(stub: Stub, topic: str) -> dict[str, Any]:
    """Every unary consumer call naming ``topic``, answered."""
    assignment = M.QueryAssignmentRequest()
    assignment.topic.name, assignment.group.name = topic, "snoop"
    ack = M.AckMessageRequest()
    ack.topic.name, ack.group.name = topic, "snoop"
    ack.entries.add(message_id="01AA", receipt_handle="handle")
    change = M.ChangeInvisibleDurationRequest(receipt_handle="handle", message_id="01AA")
    change.topic.name, change.group.name = topic, "snoop"
    change.invisible_duration.seconds = 1
    forward = M.ForwardMessageToDeadLetterQueueRequest(receipt_handle="handle", message_id="01AA")
    forward.topic.name, forward.group.name = topic, "snoop"
    return {
        "QueryRoute": stub.route(topic),
        "QueryAssignment": stub.unary("QueryAssignment", assignment, M.QueryAssignmentResponse),
        "AckMessage": stub.unary("AckMessage", ack, M.AckMessageResponse),
        "ChangeInvisibleDuration": stub.unary(
            "ChangeInvisibleDuration", change, M.ChangeInvisibleDurationResponse
        ),
        "ForwardMessageToDeadLetterQueue": stub.unary(
            "ForwardMessageToDeadLetterQueue", forward, M.ForwardMessageToDeadLetterQueueResponse
        ),
    }


def test_a_consumer_cannot_reach_the_brokers_own_topics_through_the_proxy(
    proxy: tuple[Stub, WireClient],
) -> None:
    stub, broker = proxy
    # Given a delayed message waiting in SCHEDULE_TOPIC_XXXX, sent by a remoting producer
    # (a receive from that topic handed it out before its time)
    with Producer("sys-delayed", stub.namesrv) as producer:
        producer.send(Message(TOPIC, b"delayed", delay_level=5))  # (1 minute)
    assert _stored(broker, "SCHEDULE_TOPIC_XXXX", 18) == 1
    for topic in SYSTEM_TOPICS:
        # When a gRPC consumer receives from the topic (plain, and in a namespace)
        for namespace in ("", "prod"):
            got = _receive(stub, topic, "snoop", namespace)
            # Then it gets RocketMQ 5's refusal alone, no message
            assert [_status(r) for r in got] == [REFUSED], (topic, namespace, got)
        # And every other call naming it is refused the same way
        for method, answer in _consumer_calls(stub, topic).items():
            assert _status(answer) == REFUSED, (topic, method)
        # And so are a consumer's settings subscribing it and a producer's publishing to it
        consumer = M.Settings(client_type=ClientType.PUSH_CONSUMER)
        consumer.subscription.group.name = "snoop"
        entry = consumer.subscription.subscriptions.add()
        entry.topic.name, entry.expression.expression = topic, "*"
        producer_settings = M.Settings(client_type=ClientType.PRODUCER)
        producer_settings.publishing.topics.add().name = topic
        for settings in (consumer, producer_settings):
            assert _status(_settings_answer(stub, settings)) == REFUSED, topic
    # And the proxy keeps serving the user's topic
    assert stub.route(TOPIC).status.code == Code.OK


def test_retry_and_dead_letter_topics_stay_served(proxy: tuple[Stub, WireClient]) -> None:
    stub, _broker = proxy
    # Given a message received by a group and sent to its DLQ by the client
    request = M.SendMessageRequest()
    request.messages.append(_message(b"poison", "01DE"))
    assert stub.unary("SendMessage", request, M.SendMessageResponse).status.code == Code.OK
    items = stub.receive(_receive_request(invisible_s=30, group="sys-billing"))
    (message,) = [i.message for i in items if i.WhichOneof("content") == "message"]
    forward = M.ForwardMessageToDeadLetterQueueRequest(
        receipt_handle=message.system_properties.receipt_handle,
        message_id=message.system_properties.message_id,
        delivery_attempt=1,
        max_delivery_attempts=17,
    )
    forward.topic.name, forward.group.name = TOPIC, "sys-billing"
    answer = stub.unary(
        "ForwardMessageToDeadLetterQueue", forward, M.ForwardMessageToDeadLetterQueueResponse
    )
    assert answer.status.code == Code.OK, answer.status.message
    # When the group's %RETRY% and %DLQ% topics are asked for through the proxy
    with Admin(stub.namesrv) as admin:
        wait_until(lambda: _routed(admin, "%DLQ%sys-billing"), timeout=20, what="DLQ routed")
    # Then they are served as RocketMQ serves them: routed, and the dead letter received
    assert stub.route("%RETRY%sys-billing").status.code == Code.OK
    assert stub.route("%DLQ%sys-billing").status.code == Code.OK
    got: list[Any] = []

    def dead_letters() -> list[Any]:
        got.extend(
            i.message.body
            for i in _receive(stub, "%DLQ%sys-billing", "sys-dlq-reader")
            if i.WhichOneof("content") == "message"
        )
        return got

    wait_until(dead_letters, timeout=30, what="the dead letter received through the proxy")
    assert got == [b"poison"]


GROUP_REFUSED = (Code.ILLEGAL_CONSUMER_GROUP, "cannot use system consumer group")


def _group_calls(stub: Stub, group: str) -> dict[str, Any]:
    """Every unary call naming consumer group ``group`` (and the user's topic), answered."""
    requests: dict[str, tuple[Any, Any]] = {
        "QueryAssignment": (M.QueryAssignmentRequest(), M.QueryAssignmentResponse),
        "AckMessage": (M.AckMessageRequest(), M.AckMessageResponse),
        "ChangeInvisibleDuration": (
            M.ChangeInvisibleDurationRequest(receipt_handle="handle", message_id="01AA"),
            M.ChangeInvisibleDurationResponse,
        ),
        "ForwardMessageToDeadLetterQueue": (
            M.ForwardMessageToDeadLetterQueueRequest(receipt_handle="handle", message_id="01AA"),
            M.ForwardMessageToDeadLetterQueueResponse,
        ),
        "Heartbeat": (M.HeartbeatRequest(), M.HeartbeatResponse),
        "NotifyClientTermination": (
            M.NotifyClientTerminationRequest(),
            M.NotifyClientTerminationResponse,
        ),
    }
    answers = {}
    for method, (request, response_type) in requests.items():
        request.group.name = group
        if "topic" in request.DESCRIPTOR.fields_by_name:
            request.topic.name = TOPIC
        if method == "AckMessage":
            request.entries.add(message_id="01AA", receipt_handle="handle")
        if method == "ChangeInvisibleDuration":
            request.invisible_duration.seconds = 1
        answers[method] = stub.unary(method, request, response_type)
    return answers


def test_a_system_consumer_group_cannot_be_used_through_the_proxy(
    proxy: tuple[Stub, WireClient],
) -> None:
    stub, _broker = proxy
    # Given a message waiting in the user's topic
    request = M.SendMessageRequest()
    request.messages.append(_message(b"for-users", "01C1"))
    assert stub.unary("SendMessage", request, M.SendMessageResponse).status.code == Code.OK
    for namespace in ("", "prod"):
        # When a gRPC consumer receives it as the brokers' transaction check group (the broker
        # creates CID_RMQ_SYS_TRANS at start; a receive as it was served)
        got = _receive(stub, TOPIC, "CID_RMQ_SYS_TRANS", namespace)
        # Then it gets RocketMQ 5's refusal alone, no message
        assert [_status(r) for r in got] == [GROUP_REFUSED], (namespace, got)
    # And every other call naming a system group is refused the same way
    for method, answer in _group_calls(stub, "CID_RMQ_SYS_TRANS").items():
        assert _status(answer) == GROUP_REFUSED, method
    # And so is a consumer's Settings in that group
    consumer = M.Settings(client_type=ClientType.SIMPLE_CONSUMER)
    consumer.subscription.group.name = "CID_RMQ_SYS_x"
    entry = consumer.subscription.subscriptions.add()
    entry.topic.name, entry.expression.expression = TOPIC, "*"
    assert _status(_settings_answer(stub, consumer)) == GROUP_REFUSED
    # And a user's group still receives the message through the proxy
    bodies: list[bytes] = []

    def received() -> list[bytes]:
        bodies.extend(
            i.message.body
            for i in _receive(stub, TOPIC, "sys-users")
            if i.WhichOneof("content") == "message"
        )
        return bodies

    wait_until(received, timeout=30, what="the message received by a user's group")
    assert bodies == [b"for-users"]
