"""``python -m runtime proxy`` (RocketMQ 5's gRPC API over a cluster) as its own process, driven
with raw gRPC calls built from actormq's ``messaging.proto``: the happy path of one message,
and bad input answered with RocketMQ's codes while the proxy keeps serving. RocketMQ 5's real
client against the proxy: tests/interop/test_grpc5_client.py."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from actors.client import Admin, ConsumeFrom, MessageQueue, PullConsumer
from actors.proxy.convert import encode_handle
from actors.proxy.proto import Code, FilterType, M, MessageType, Permission
from actors.proxy.server import SERVICE
from runtime.remoting.bodies import SubscriptionGroupConfig
from tests.client_support import wait_until
from tests.harness import REPO, RuntimeProcess

pytestmark = pytest.mark.timeout(90)

TOPIC = "ProxyOrders"
GROUP = "proxy-billing"


class Stub:
    """The MessagingService calls used here, over one insecure channel."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.address = address
        self.namesrv = ""

    def unary(self, method: str, request: Any, response_type: Any) -> Any:
        call = self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return call(request, timeout=10)

    def receive(self, request: Any) -> list[Any]:
        call = self.channel.unary_stream(
            f"/{SERVICE}/ReceiveMessage",
            request_serializer=M.ReceiveMessageRequest.SerializeToString,
            response_deserializer=M.ReceiveMessageResponse.FromString,
        )
        return list(call(request, timeout=15))

    def raw(self, method: str, payload: bytes) -> bytes:
        call = self.channel.unary_unary(f"/{SERVICE}/{method}")
        return call(payload, timeout=10)

    def route(self, topic: str) -> Any:
        request = M.QueryRouteRequest()
        request.topic.name = topic
        host, port = self.address.rsplit(":", 1)
        address = request.endpoints.addresses.add()
        address.host, address.port = host, int(port)
        request.endpoints.scheme = 1  # IPv4
        return self.unary("QueryRoute", request, M.QueryRouteResponse)


@pytest.fixture
def proxy(tmp_path: pathlib.Path) -> Iterator[tuple[Stub, RuntimeProcess]]:
    """A cluster (name server + one broker), then a proxy process over it."""
    cluster_args = ["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]
    with RuntimeProcess(cluster_args) as cluster:
        namesrv = cluster.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=4)
            wait_until(lambda: _routed(admin, TOPIC), what=f"{TOPIC} routed")
        args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports"]
        args += ["--consume-from", "first", "--invisible", "2", "--long-polling", "2"]
        args += ["--metrics-port", "0"]
        with RuntimeProcess(args) as process:
            address = process.wait_ready(timeout=30)["proxy"]
            stub = Stub(address)
            stub.namesrv = namesrv
            try:
                yield stub, process
            finally:
                stub.channel.close()


def _routed(admin: Admin, topic: str) -> bool:
    try:
        return bool(admin.topic_route(topic).queue_datas)
    except Exception:
        return False


def _message(body: bytes, msg_id: str, *, tag: str = "paid") -> Any:
    msg = M.Message()
    msg.topic.name = TOPIC
    msg.body = body
    msg.user_properties["region"] = "eu"
    system = msg.system_properties
    system.tag = tag
    system.keys.append("order-42")
    system.message_id = msg_id
    system.message_type = MessageType.NORMAL
    system.body_encoding = 1  # IDENTITY
    return msg


def _receive_request(*, invisible_s: int = 5, batch: int = 8, group: str = GROUP) -> Any:
    request = M.ReceiveMessageRequest()
    request.group.name = group
    request.message_queue.topic.name = TOPIC
    request.filter_expression.type = FilterType.TAG
    request.filter_expression.expression = "paid"
    request.batch_size = batch
    request.invisible_duration.seconds = invisible_s
    request.long_polling_timeout.seconds = 2
    return request


def test_one_message_sent_received_and_acked(proxy: tuple[Stub, RuntimeProcess]) -> None:
    stub, process = proxy
    # Given the proxy's route of the topic: 4 queues, each naming the proxy as the broker
    route = stub.route(TOPIC)
    assert route.status.code == Code.OK
    assert len(route.message_queues) == 4
    assert {mq.permission for mq in route.message_queues} == {Permission.READ_WRITE}
    assert {
        f"{a.host}:{a.port}" for mq in route.message_queues for a in mq.broker.endpoints.addresses
    } == {stub.address}
    # When a message goes in through SendMessage
    request = M.SendMessageRequest()
    request.messages.append(_message(b"order 42 paid", "01ABCDEF0123456789ABCDEF0123456789"))
    request.messages[0].system_properties.born_host = "client-host-7"
    sent = stub.unary("SendMessage", request, M.SendMessageResponse)
    assert sent.status.code == Code.OK, sent
    assert [e.message_id for e in sent.entries] == ["01ABCDEF0123456789ABCDEF0123456789"]
    # Then ReceiveMessage streams a status, the message and a delivery timestamp
    items = stub.receive(_receive_request())
    kinds = [item.WhichOneof("content") for item in items]
    assert kinds == ["status", "message", "delivery_timestamp"], items
    assert items[0].status.code == Code.OK
    got = items[1].message
    assert got.body == b"order 42 paid"
    assert got.system_properties.message_id == "01ABCDEF0123456789ABCDEF0123456789"
    assert got.system_properties.tag == "paid"
    assert list(got.system_properties.keys) == ["order-42"]
    assert dict(got.user_properties) == {"region": "eu"}
    assert got.system_properties.born_host == "client-host-7"  # the sender's, not the proxy's
    assert got.system_properties.delivery_attempt == 1
    handle = got.system_properties.receipt_handle
    # And an ack of its handle succeeds once; a second ack is an invalid handle
    ack = M.AckMessageRequest()
    ack.group.name, ack.topic.name = GROUP, TOPIC
    entry = ack.entries.add()
    entry.message_id, entry.receipt_handle = got.system_properties.message_id, handle
    assert stub.unary("AckMessage", ack, M.AckMessageResponse).status.code == Code.OK
    again = stub.unary("AckMessage", ack, M.AckMessageResponse)
    assert again.status.code == Code.INVALID_RECEIPT_HANDLE
    # And nothing is left: the next receive finds no message
    empty = stub.receive(_receive_request())
    assert [i.status.code for i in empty] == [Code.MESSAGE_NOT_FOUND]
    # When the proxy gets SIGTERM, it stops cleanly
    process.signal(signal.SIGTERM)
    assert process.proc.wait(timeout=30) == 0


def test_bad_input_gets_rocketmq_codes_and_the_proxy_keeps_serving(
    proxy: tuple[Stub, RuntimeProcess],
) -> None:
    stub, _process = proxy
    # Given the running proxy
    # When requests are wrong, each gets its code
    assert stub.route("NoSuchTopic").status.code == Code.TOPIC_NOT_FOUND
    empty = stub.unary("SendMessage", M.SendMessageRequest(), M.SendMessageResponse)
    assert empty.status.code == Code.BAD_REQUEST
    huge = M.SendMessageRequest()
    huge.messages.append(_message(b"x" * (4 * 1024 * 1024 + 1), "01AA"))
    assert stub.unary("SendMessage", huge, M.SendMessageResponse).status.code == (
        Code.MESSAGE_BODY_TOO_LARGE
    )
    transactional = M.SendMessageRequest()
    transactional.messages.append(_message(b"half", "01BB"))
    transactional.messages[0].system_properties.message_type = MessageType.TRANSACTION
    transactional.messages[0].system_properties.message_group = "g"
    assert stub.unary("SendMessage", transactional, M.SendMessageResponse).status.code == (
        Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    )
    # ... a message group past RocketMQ's 64 characters: refused (one of 70,000 cut the
    # proxy's broker connection, which every client shares, with a header past the limit)
    grouped = M.SendMessageRequest()
    grouped.messages.append(_message(b"long group", "01DD"))
    grouped.messages[0].system_properties.message_group = "g" * 70_000
    grouped.messages[0].system_properties.message_type = MessageType.FIFO
    assert stub.unary("SendMessage", grouped, M.SendMessageResponse).status.code == (
        Code.ILLEGAL_MESSAGE_GROUP
    )
    # ... one request with messages for two topics
    mixed = M.SendMessageRequest()
    mixed.messages.append(_message(b"one", "01DF"))
    mixed.messages.append(_message(b"two", "01DG"))
    mixed.messages[1].topic.name = "OtherTopic"
    assert stub.unary("SendMessage", mixed, M.SendMessageResponse).status.code == (
        Code.MESSAGE_CORRUPTED
    )
    ok = M.SendMessageRequest()
    ok.messages.append(_message(b"after the long group", "01DE", tag="kept-apart"))
    ok.messages[0].system_properties.born_host = "h" * 70_000  # too long: the caller's kept
    assert stub.unary("SendMessage", ok, M.SendMessageResponse).status.code == Code.OK
    end = M.EndTransactionRequest(message_id="01CC", transaction_id="01CC", resolution=1)
    end.topic.name = TOPIC
    assert stub.unary("EndTransaction", end, M.EndTransactionResponse).status.code == (
        Code.INVALID_TRANSACTION_ID
    )
    zero = stub.receive(_receive_request(invisible_s=0))
    assert [i.status.code for i in zero] == [Code.ILLEGAL_INVISIBLE_TIME]
    days = stub.receive(_receive_request(invisible_s=13 * 3600))  # past RocketMQ's 12 hours
    assert [i.status.code for i in days] == [Code.ILLEGAL_INVISIBLE_TIME]
    nowhere = _receive_request()
    nowhere.message_queue.topic.name = "NoSuchTopic"
    assert [i.status.code for i in stub.receive(nowhere)] == [Code.TOPIC_NOT_FOUND]
    sql = _receive_request(group="proxy-sql")  # brokers without enablePropertyFilter
    sql.filter_expression.type, sql.filter_expression.expression = FilterType.SQL, "a > 1"
    assert [i.status.code for i in stub.receive(sql)] == [Code.ILLEGAL_FILTER_EXPRESSION]
    for kind, expression in ((FilterType.SQL, "(((("), (FilterType.TAG, "||||")):
        unreadable = _receive_request(group="proxy-bad-filter")
        unreadable.filter_expression.type, unreadable.filter_expression.expression = (
            kind,
            expression,
        )
        assert [i.status.code for i in stub.receive(unreadable)] == [Code.ILLEGAL_FILTER_EXPRESSION]
    tagged = stub.receive(_receive_request(group="proxy-sql"))  # the group is served again
    assert [i.status.code for i in tagged] == [Code.MESSAGE_NOT_FOUND]
    change = M.ChangeInvisibleDurationRequest()
    change.group.name, change.topic.name = GROUP, TOPIC
    change.receipt_handle = "no-such-handle"
    change.invisible_duration.seconds = 5
    changed = stub.unary("ChangeInvisibleDuration", change, M.ChangeInvisibleDurationResponse)
    assert changed.status.code == Code.INVALID_RECEIPT_HANDLE
    garbage = M.RecallMessageRequest(recall_handle="not-a-handle")
    garbage.topic.name = TOPIC
    assert stub.unary("RecallMessage", garbage, M.RecallMessageResponse).status.code == (
        Code.BAD_REQUEST
    )
    queue = MessageQueue(topic=TOPIC, broker_name="broker-a", queue_id=0)
    late = M.RecallMessageRequest(recall_handle=encode_handle(queue, "01EE", 1_000))
    late.topic.name = TOPIC
    assert stub.unary("RecallMessage", late, M.RecallMessageResponse).status.code == (
        Code.PRECONDITION_FAILED
    )
    # ... bytes that are no protobuf message: gRPC's own error, that call only
    with pytest.raises(grpc.RpcError) as caught:
        stub.raw("SendMessage", b"\xff\xff\xff")
    assert caught.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    with pytest.raises(grpc.RpcError) as unknown:
        stub.raw("PullMessage", b"")
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # Then the proxy still serves
    assert stub.route(TOPIC).status.code == Code.OK


def test_proxy_without_a_name_server_says_so() -> None:
    # Given no --namesrv-addr and no $NAMESRV_ADDR
    env = {k: v for k, v in os.environ.items() if k != "NAMESRV_ADDR"}
    # When the proxy starts
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "proxy", "--ephemeral-ports"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it exits 2 naming what is missing
    assert done.returncode == 2
    assert "--namesrv-addr or $NAMESRV_ADDR" in done.stderr


def test_a_groups_retry_max_times_decides_when_it_is_dead_lettered(
    proxy: tuple[Stub, RuntimeProcess],
) -> None:
    stub, _process = proxy
    namesrv = stub.namesrv
    # Given a group whose config allows 1 retry (2 deliveries), and a message for it
    with Admin(namesrv) as admin:
        admin.update_subscription_group(
            SubscriptionGroupConfig(group_name="proxy-retry-once", retry_max_times=1)
        )
    request = M.SendMessageRequest()
    request.messages.append(_message(b"poison", "01DD"))
    assert stub.unary("SendMessage", request, M.SendMessageResponse).status.code == Code.OK
    # When it is received twice (2 s invisible each) and never acked
    attempts = []
    while len(attempts) < 2:
        items = stub.receive(_receive_request(invisible_s=2, group="proxy-retry-once"))
        attempts += [
            i.message.system_properties.delivery_attempt
            for i in items
            if i.WhichOneof("content") == "message"
        ]
    assert attempts == [1, 2]
    # Then, its second invisible duration over, it is in %DLQ%<group>, not handed out again
    consumer = PullConsumer("proxy-dlq-reader", namesrv, consume_from=ConsumeFrom.FIRST)
    wait_until(lambda: _routed_admin(namesrv, "%DLQ%proxy-retry-once"), timeout=20, what="DLQ")
    consumer.subscribe("%DLQ%proxy-retry-once")
    got: list[Any] = []
    with consumer:
        wait_until(lambda: got.extend(consumer.poll(timeout=0.5)) or got, timeout=20, what="DLQ")
    assert [m.body for m in got] == [b"poison"]
    again = stub.receive(_receive_request(invisible_s=2, group="proxy-retry-once"))
    assert [i.status.code for i in again] == [Code.MESSAGE_NOT_FOUND]


def _routed_admin(namesrv: str, topic: str) -> bool:
    with Admin(namesrv) as admin:
        return _routed(admin, topic)


def test_the_proxy_exports_its_calls_and_deliveries(proxy: tuple[Stub, RuntimeProcess]) -> None:
    stub, process = proxy
    metrics = process.addresses["proxy-metrics"]
    # Given one message sent and received, not acked
    request = M.SendMessageRequest()
    request.messages.append(_message(b"counted", "01FF"))
    assert stub.unary("SendMessage", request, M.SendMessageResponse).status.code == Code.OK
    items = stub.receive(_receive_request())
    assert [i.WhichOneof("content") for i in items] == ["status", "message", "delivery_timestamp"]
    # When Prometheus scrapes the proxy
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    # Then it counts the calls by method and code, and the delivery out for the group
    assert 'actormq_proxy_calls_total{method="SendMessage",code="OK"} 1' in text
    assert 'actormq_proxy_calls_total{method="ReceiveMessage",code="OK"} 1' in text
    assert f'actormq_proxy_in_flight{{consumer_group="{GROUP}"}} 1' in text
    assert "actormq_proxy_groups 1" in text
    # And the send is in the latency histogram, RocketMQ 5's proxy's rocketmq_rpc_latency
    send = 'protocol_type="grpc",action="SendMessage",result="OK"'
    assert f'rocketmq_rpc_latency_bucket{{{send},le="+Inf"}} 1' in text
    assert f"rocketmq_rpc_latency_count{{{send}}} 1" in text
    # And anything but /metrics is a 404
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://{metrics}/other", timeout=10)
    assert missing.value.code == 404
