"""Topics with a message type through ``python -m runtime proxy``, driven with raw gRPC calls:
lite topics (RocketMQ 5.5's LiteTopic: a LITE parent topic, lite messages stored in their own
one-queue topics, a client receiving only the lite topics it subscribed, in order) and
priority messages (a PRIORITY topic: the priority is the queue), and the codes for what is
refused. RocketMQ 5's Node.js LitePushConsumer against it: tests/interop/test_node5_client.py."""

from __future__ import annotations

import pathlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import Admin
from actors.client.errors import ClientError
from actors.proxy.lite import LiteTopics, TopicTypes, lmq_name
from actors.proxy.lite_expiry import LiteExpiry
from actors.proxy.proto import ClientType, Code, M, MessageType
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.integration.test_proxy import Stub, _routed

pytestmark = pytest.mark.timeout(120)

PARENT = "LiteChats"
PLAIN = "PlainOrders"
URGENT = "Tickets"
GROUP = "lite-agents"


@pytest.fixture
def proxy(tmp_path: pathlib.Path) -> Iterator[tuple[Stub, Admin]]:
    cluster_args = ["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]
    with RuntimeProcess(cluster_args) as cluster:
        namesrv = cluster.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(PARENT, queues=2, attributes="+message.type=LITE")
            admin.create_topic(PLAIN, queues=2)
            admin.create_topic(URGENT, queues=4, attributes="+message.type=PRIORITY")
            for topic in (PARENT, PLAIN, URGENT):
                wait_until(lambda t=topic: _routed(admin, t), what=f"{topic} routed")
            args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports"]
            args += ["--invisible", "2", "--long-polling", "8", "--max-lite-topics", "4"]
            args += ["--consume-from", "first"]
            with RuntimeProcess(args) as process:
                stub = Stub(process.wait_ready(timeout=30)["proxy"])
                try:
                    yield stub, admin
                finally:
                    stub.channel.close()


def _as(client: str) -> tuple[tuple[str, str], ...]:
    return (("x-mq-client-id", client),)


def _call(stub: Stub, method: str, request: Any, response_type: Any, client: str) -> Any:
    call = stub.channel.unary_unary(
        f"/apache.rocketmq.v2.MessagingService/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_type.FromString,
    )
    return call(request, timeout=15, metadata=_as(client))


def _lite_message(body: bytes, lite: str | None, topic: str = PARENT) -> Any:
    msg = M.Message()
    msg.topic.name = topic
    msg.body = body
    system = msg.system_properties
    system.message_id = uuid.uuid4().hex.upper()
    system.body_encoding = 1
    system.message_type = MessageType.LITE if lite is not None else MessageType.NORMAL
    if lite is not None:
        system.lite_topic = lite
    return msg


def _send(stub: Stub, msg: Any) -> Any:
    request = M.SendMessageRequest()
    request.messages.append(msg)
    return stub.unary("SendMessage", request, M.SendMessageResponse)


def _settings(stub: Stub, client: str, kind: int = ClientType.LITE_PUSH_CONSUMER) -> Any:
    """The client's telemetry Settings (a LITE_PUSH_CONSUMER's); the proxy's answer."""
    command = M.TelemetryCommand()
    settings = command.settings
    settings.client_type = kind
    settings.subscription.group.name = GROUP
    entry = settings.subscription.subscriptions.add()
    entry.topic.name = PARENT
    entry.expression.expression = "*"
    call = stub.channel.stream_stream(
        "/apache.rocketmq.v2.MessagingService/Telemetry",
        request_serializer=M.TelemetryCommand.SerializeToString,
        response_deserializer=M.TelemetryCommand.FromString,
    )
    stream = call(iter([command]), timeout=5, metadata=_as(client))
    try:
        return next(stream)
    finally:
        stream.cancel()


def _sync(stub: Stub, client: str, action: int, lites: list[str], **offset: int) -> Any:
    request = M.SyncLiteSubscriptionRequest(action=action, lite_topic_set=lites)
    request.topic.name = PARENT
    request.group.name = GROUP
    for name, value in offset.items():
        setattr(request.offset_option, name, value)
    return _call(stub, "SyncLiteSubscription", request, M.SyncLiteSubscriptionResponse, client)


def _receive(stub: Stub, client: str, batch: int = 16, wait_s: int = 2) -> list[Any]:
    request = M.ReceiveMessageRequest(batch_size=batch, auto_renew=False)
    request.group.name = GROUP
    request.message_queue.topic.name = PARENT
    request.invisible_duration.seconds = 30
    request.long_polling_timeout.seconds = wait_s
    call = stub.channel.unary_stream(
        "/apache.rocketmq.v2.MessagingService/ReceiveMessage",
        request_serializer=M.ReceiveMessageRequest.SerializeToString,
        response_deserializer=M.ReceiveMessageResponse.FromString,
    )
    out = call(request, timeout=15, metadata=_as(client))
    return [r.message for r in out if r.WhichOneof("content") == "message"]


def _ack(stub: Stub, client: str, messages: list[Any]) -> None:
    request = M.AckMessageRequest()
    request.group.name = GROUP
    request.topic.name = PARENT
    for msg in messages:
        entry = request.entries.add()
        entry.message_id = msg.system_properties.message_id
        entry.receipt_handle = msg.system_properties.receipt_handle
        entry.lite_topic = msg.system_properties.lite_topic
    response = _call(stub, "AckMessage", request, M.AckMessageResponse, "acker")
    assert response.status.code == Code.OK


def _receive_until(stub: Stub, client: str, count: int) -> list[Any]:
    got: list[Any] = []
    for _ in range(20):
        batch = _receive(stub, client)
        got.extend(batch)
        if batch:
            _ack(stub, client, batch)
        if len(got) >= count:
            break
    return got


def test_a_client_gets_only_its_lite_topics_in_order(proxy: tuple[Stub, Admin]) -> None:
    stub, admin = proxy
    # Given: the LITE parent's route says it takes lite messages only
    route = stub.route(PARENT)
    assert route.status.code == Code.OK
    assert set(route.message_queues[0].accept_message_types) == {MessageType.LITE}
    assert MessageType.LITE not in stub.route(PLAIN).message_queues[0].accept_message_types
    # and two lite push consumers subscribed to one lite topic each
    for client in ("agent-1", "agent-2"):
        answer = _settings(stub, client)
        assert answer.settings.subscription.fifo is True
        assert answer.settings.subscription.lite_subscription_quota > 0
        assert answer.settings.subscription.max_lite_topic_size == 64
    assert _sync(stub, "agent-1", 0, ["session-1"]).status.code == Code.OK
    assert _sync(stub, "agent-2", 2, ["session-2"]).status.code == Code.OK
    # When: a producer sends to both lite topics and to one nobody subscribed
    for i in range(5):
        for lite in ("session-1", "session-2", "session-3"):
            sent = _send(stub, _lite_message(f"{lite}:{i}".encode(), lite))
            assert sent.status.code == Code.OK, sent.status.message
    # Then: each lite topic is a one-queue topic of its own
    assert len(admin.topic_route(lmq_name(PARENT, "session-1")).queue_datas) == 1
    # and each client receives its own lite topic's messages, in order, marked with it
    for client, lite in (("agent-1", "session-1"), ("agent-2", "session-2")):
        got = _receive_until(stub, client, 5)
        assert [m.body for m in got] == [f"{lite}:{i}".encode() for i in range(5)]
        assert {m.system_properties.lite_topic for m in got} == {lite}
        assert {m.system_properties.message_type for m in got} == {MessageType.LITE}
        assert {m.topic.name for m in got} == {PARENT}
    # When: agent-1 also subscribes session-3 from its first message (MIN)
    assert _sync(stub, "agent-1", 0, ["session-3"], policy=1).status.code == Code.OK
    # Then: it gets session-3's backlog
    got = _receive_until(stub, "agent-1", 5)
    assert [m.body for m in got] == [f"session-3:{i}".encode() for i in range(5)]


def test_a_lite_topics_messages_go_out_as_one_batch_at_a_time(proxy: tuple[Stub, Admin]) -> None:
    stub, _ = proxy
    # Given a lite consumer of one lite topic with three messages in it
    _settings(stub, "agent-9")
    assert _sync(stub, "agent-9", 0, ["session-9"]).status.code == Code.OK
    for i in range(3):
        assert _send(stub, _lite_message(f"m{i}".encode(), "session-9")).status.code == Code.OK
    # When it receives without acking: a batch, in order (all three, or those pulled so far)
    first: list[Any] = []
    for _ in range(10):
        first = _receive(stub, "agent-9")
        if first:
            break
    bodies = [m.body for m in first]
    assert bodies == [b"m0", b"m1", b"m2"][: len(bodies)]
    # Then nothing more of the lite topic goes out while that batch is out (FIFO per lite
    # topic), however many messages wait
    assert _send(stub, _lite_message(b"m3", "session-9")).status.code == Code.OK
    assert _receive(stub, "agent-9") == []
    # And once it is acked, the rest follow in order
    _ack(stub, "agent-9", first)
    rest = [m.body for m in _receive_until(stub, "agent-9", 4 - len(bodies))]
    assert bodies + rest == [b"m0", b"m1", b"m2", b"m3"]


def test_what_the_proxy_refuses(proxy: tuple[Stub, Admin]) -> None:
    stub, _ = proxy
    conflict = Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    # a lite message to a topic that is not LITE, a plain message to a LITE topic
    assert _send(stub, _lite_message(b"x", "s1", topic=PLAIN)).status.code == conflict
    assert _send(stub, _lite_message(b"x", None)).status.code == conflict
    # lite topic names RocketMQ refuses
    for bad in ("has$dollar", "a" * 65, "spa ce"):
        assert _send(stub, _lite_message(b"x", bad)).status.code == Code.ILLEGAL_LITE_TOPIC
    # a lite subscription to a topic that is not LITE; a bad name
    _settings(stub, "agent-x")
    request = M.SyncLiteSubscriptionRequest(action=0, lite_topic_set=["s1"])
    request.topic.name = PLAIN
    request.group.name = GROUP
    response = _call(stub, "SyncLiteSubscription", request, M.SyncLiteSubscriptionResponse, "x")
    assert response.status.code == Code.ILLEGAL_TOPIC
    request.topic.name = "NoSuchParent"  # ... and to a topic that does not exist
    response = _call(stub, "SyncLiteSubscription", request, M.SyncLiteSubscriptionResponse, "x")
    assert response.status.code == Code.TOPIC_NOT_FOUND
    # a client type RocketMQ does not know
    assert _settings(stub, "odd-1", 99).status.code == Code.UNRECOGNIZED_CLIENT_TYPE
    assert _sync(stub, "agent-x", 0, ["bad%name"]).status.code == Code.ILLEGAL_LITE_TOPIC
    # the lite group joined by a plain push consumer
    refused = _settings(stub, "plain-1", ClientType.PUSH_CONSUMER)
    assert refused.status.code == Code.ILLEGAL_CONSUMER_GROUP
    # and the proxy keeps serving: four lite topics are made (its quota here), not a fifth
    for lite in ("s1", "s2", "s3", "s4"):
        assert _send(stub, _lite_message(b"ok", lite)).status.code == Code.OK
    over = _send(stub, _lite_message(b"over", "s5"))
    assert over.status.code == Code.LITE_TOPIC_QUOTA_EXCEEDED, over.status.message
    assert _send(stub, _lite_message(b"again", "s1")).status.code == Code.OK


def _priority_message(body: bytes, priority: int | None, topic: str = URGENT) -> Any:
    msg = _lite_message(body, None, topic)
    if priority is not None:
        msg.system_properties.message_type = MessageType.PRIORITY
        msg.system_properties.priority = priority
    return msg


def test_a_priority_is_the_queue_and_comes_back_with_the_message(
    proxy: tuple[Stub, Admin],
) -> None:
    stub, admin = proxy
    # Given a PRIORITY topic of four queues, its route taking priority messages only
    route = stub.route(URGENT)
    accepted = set(route.message_queues[0].accept_message_types)
    assert accepted == {MessageType.PRIORITY, MessageType.NORMAL}
    # When messages of priorities 0, 2, 9 and a plain one are sent
    sent = {}
    for body, priority in ((b"p0", 0), (b"p2", 2), (b"p9", 9), (b"plain", None)):
        answer = _send(stub, _priority_message(body, priority))
        assert answer.status.code == Code.OK, answer.status.message
        sent[body] = answer.entries[0].message_id
    # Then each priority is stored in its queue (9 in the last one), and kept
    stored = {}
    for mq in admin.fetch_queues(URGENT):
        for offset in range(admin.max_offset(mq)):
            found = admin.message_at(mq, offset)
            assert found is not None
            stored[found.body] = (mq.queue_id, found.properties.get("_SYS_MSG_PRIORITY_"))
    assert stored[b"p0"] == (0, "0") and stored[b"p2"] == (2, "2") and stored[b"p9"] == (3, "9")
    assert stored[b"plain"][1] is None
    # And a consumer gets the priority back on each message, not as a user property
    got: dict[bytes, Any] = {}
    for _ in range(10):
        request = M.ReceiveMessageRequest(batch_size=8, auto_renew=False)
        request.group.name = "ticket-desk"
        request.message_queue.topic.name = URGENT
        request.invisible_duration.seconds = 30
        replies = stub.receive(request)
        got.update({r.message.body: r.message for r in replies if r.HasField("message")})
        if len(got) >= 4:
            break
    assert sorted(got) == [b"p0", b"p2", b"p9", b"plain"]
    assert {body: m.system_properties.priority for body, m in got.items()} == {
        b"p0": 0,
        b"p2": 2,
        b"p9": 9,
        b"plain": 0,
    }
    assert got[b"p9"].system_properties.message_type == MessageType.PRIORITY
    assert not got[b"plain"].system_properties.HasField("priority")
    assert all("_SYS_MSG_PRIORITY_" not in m.user_properties for m in got.values())
    assert got[b"p2"].system_properties.message_id == sent[b"p2"]


def test_priority_messages_the_topic_does_not_take(proxy: tuple[Stub, Admin]) -> None:
    stub, _ = proxy
    conflict = Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    assert _send(stub, _priority_message(b"x", 1, topic=PLAIN)).status.code == conflict
    assert _send(stub, _priority_message(b"x", 1, topic=PARENT)).status.code == conflict
    negative = _send(stub, _priority_message(b"x", -1))
    assert negative.status.code == Code.BAD_REQUEST
    grouped = _priority_message(b"x", 1)
    grouped.system_properties.message_group = "g"
    assert _send(stub, grouped).status.code == conflict


def test_an_idle_lite_topic_expires_and_a_later_send_makes_it_again(
    proxy: tuple[Stub, Admin],
) -> None:
    stub, admin = proxy
    # Given a LITE topic whose lite topics expire after a minute idle, and one lite topic
    admin.create_topic(PARENT, queues=2, attributes="+lite.topic.expiration=1")
    assert _send(stub, _lite_message(b"first", "old-session")).status.code == Code.OK
    name = lmq_name(PARENT, "old-session")
    assert admin.topic_route(name).queue_datas
    # When an expiry check runs two minutes later (its clock moved on)
    later = int(time.time() * 1000) + 2 * 60_000
    check = LiteExpiry(
        admin, TopicTypes(admin), LiteTopics(admin), lambda _name: False, now_ms=lambda: later
    )
    # Then the lite topic is deleted (its route and messages gone)
    assert check.run() == [name]
    with pytest.raises(ClientError):
        admin.topic_route(name)
    # And the proxy, which made it, makes it again at the next send: one queue, as before
    again = _send(stub, _lite_message(b"second", "old-session"))
    assert again.status.code == Code.OK, again.status.message
    route = admin.topic_route(name)
    assert [q.write_queue_nums for q in route.queue_datas] == [1]


def test_a_receive_before_the_clients_settings_keeps_the_group_lite(
    proxy: tuple[Stub, Admin],
) -> None:
    stub, _ = proxy
    # Given a lite consumer whose first receive reaches the proxy before its settings (after a
    # proxy restart, the client's receive retry and its settings race)
    assert _receive(stub, "agent-early", wait_s=1) == []
    # When its settings and subscription follow
    answer = _settings(stub, "agent-early")
    assert answer.status.code == Code.OK and answer.settings.subscription.fifo is True
    assert _sync(stub, "agent-early", 0, ["early"]).status.code == Code.OK
    assert _send(stub, _lite_message(b"e0", "early")).status.code == Code.OK
    # Then the group is a lite group all the same: the message comes
    assert [m.body for m in _receive_until(stub, "agent-early", 1)] == [b"e0"]


def test_a_lite_topic_subscribed_while_a_receive_waits_is_served_by_it(
    proxy: tuple[Stub, Admin],
) -> None:
    stub, _ = proxy
    # Given a lite consumer of one lite topic, its receive waiting (up to 8 s) for a message
    _settings(stub, "agent-w")
    assert _sync(stub, "agent-w", 0, ["w1"]).status.code == Code.OK
    got: list[Any] = []
    waiting = threading.Thread(target=lambda: got.extend(_receive(stub, "agent-w", wait_s=8)))
    began = time.monotonic()
    waiting.start()
    # When it subscribes a second lite topic and a message is sent to that one
    assert _sync(stub, "agent-w", 0, ["w2"]).status.code == Code.OK
    assert _send(stub, _lite_message(b"w2-0", "w2")).status.code == Code.OK
    waiting.join(timeout=15)
    # Then the waiting receive hands it out, well before its long poll ends
    assert [m.body for m in got] == [b"w2-0"]
    assert time.monotonic() - began < 6


def test_an_unknown_subscription_action_or_policy_is_a_bad_request(
    proxy: tuple[Stub, Admin],
) -> None:
    stub, _ = proxy
    _settings(stub, "agent-b")
    assert _sync(stub, "agent-b", 0, ["b1"]).status.code == Code.OK
    assert _sync(stub, "agent-b", 7, ["b1"]).status.code == Code.BAD_REQUEST
    assert _sync(stub, "agent-b", 0, ["b2"], policy=9).status.code == Code.BAD_REQUEST
    assert _sync(stub, "agent-b", 0, ["b2"], tail_n=-1).status.code == Code.BAD_REQUEST
    # and nothing of the client's set was lost
    assert _send(stub, _lite_message(b"b1-0", "b1")).status.code == Code.OK
    assert [m.body for m in _receive_until(stub, "agent-b", 1)] == [b"b1-0"]


def test_two_proxies_serve_one_lite_group_each_its_clients_lite_topics(
    proxy: tuple[Stub, Admin],
) -> None:
    stub, admin = proxy
    namesrv = admin.config.namesrv[0]
    args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports", "--long-polling", "2"]
    with RuntimeProcess(args) as other_process:
        other = Stub(other_process.wait_ready(timeout=30)["proxy"])
        try:
            # Given one lite group whose clients use two proxies: each client its lite topics
            mine = {"near-1": (stub, "n1"), "far-1": (other, "f1"), "near-2": (stub, "n2")}
            for client, (through, lite) in mine.items():
                _settings(through, client)
                assert _sync(through, client, 0, [lite]).status.code == Code.OK
            # When a message is sent to each lite topic
            for _client, (_through, lite) in mine.items():
                sent = _send(stub, _lite_message(f"{lite}-0".encode(), lite))
                assert sent.status.code == Code.OK
            # Then each client gets its own through its own proxy (a lite topic's queue is
            # pulled by the proxy whose clients subscribed it, never left to the other)
            for client, (through, lite) in mine.items():
                got = _receive_until(through, client, 1)
                assert [m.body for m in got] == [f"{lite}-0".encode()], client
        finally:
            other.channel.close()
