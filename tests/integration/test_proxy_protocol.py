"""The PROXY protocol against a real process: a broker with ``enableProxyProtocol`` and a proxy
with ``--proxy-protocol`` take a connection that begins with a load balancer's header as coming
from the client it names; a name server without the key closes such a connection, its log
naming the key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from actors.client import Admin, ClientError
from actors.proxy.proto import Code, M, MessageType
from actors.proxy.server import SERVICE
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from tests.balancer import Balancer, v1_header, v2_header
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.profiles import one_broker
from tests.wire import WireClient, parse_address, send_v2

pytestmark = pytest.mark.timeout(90)

ACL = """\
globalWhiteRemoteAddresses:
  - 203.0.113.*
accounts:
  - accessKey: someone
    secretKey: someone-secret
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RuntimeProcess, Any]]:
    root = tmp_path_factory.mktemp("proxy-protocol")
    acl = root / "plain_acl.yml"
    acl.write_text(ACL)
    profile = root / "balanced.toml"
    profile.write_text(one_broker({"enableProxyProtocol": True}))
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports", "--proxy"]
    args += ["--proxy-protocol", "--acl-file", str(acl), "--data-dir", str(root / "data")]
    with RuntimeProcess(args) as node:
        addresses = node.wait_ready(timeout=30)
        with Admin(addresses["namesrv"]) as admin:
            admin.create_topic("Balanced", queues=1)
            wait_until(lambda: _routed(admin, "Balanced"), what="routed")
        yield node, addresses
        assert node.terminate() == 0, node.stderr_text()


def _routed(admin: Admin, topic: str) -> bool:
    try:
        return bool(admin.topic_route(topic).queue_datas)
    except ClientError:  # (not registered yet: TOPIC_NOT_EXIST)
        return False


def _born_host(client: WireClient, admin: Admin) -> str:
    """Where the broker says a message sent on ``client`` was born."""
    answer = client.call_command(send_v2("Balanced", b"from-behind-a-balancer"))
    assert answer.code == ResponseCode.SUCCESS, answer.remark
    return admin.view_message(answer.ext_fields["msgId"]).born_host


def test_a_broker_takes_the_client_a_header_names(cluster: tuple[RuntimeProcess, Any]) -> None:
    _, addresses = cluster
    broker = addresses["broker-a/0"]
    with Admin(addresses["namesrv"]) as admin:
        # Given connections that begin with a v1 header, a v2 header, a v2 LOCAL header, none
        for header, born in (
            (v1_header("203.0.113.7", 4242), "203.0.113.7:4242"),
            (v2_header("198.51.100.20", 5151), "198.51.100.20:5151"),
            (v2_header(None), "127.0.0.1:"),
            (b"", "127.0.0.1:"),
        ):
            client = WireClient(broker)
            try:
                client.send_raw(header)
                # When a message is sent on it, Then the broker records the header's client as
                # its born host (the connection's own address without one, or with LOCAL)
                assert _born_host(client, admin).startswith(born), header
            finally:
                client.close()


def test_a_malformed_header_closes_only_its_connection(
    cluster: tuple[RuntimeProcess, Any],
) -> None:
    node, addresses = cluster
    broker = addresses["broker-a/0"]
    # Given a connection whose header is malformed
    bad = WireClient(broker)
    try:
        bad.send_raw(b"PROXY TCP4 203.0.113.7 somewhere 1 2\r\n")
        # Then the broker closes it, saying why
        wait_until(bad.is_closed, timeout=10, what="the connection closed")
    finally:
        bad.close()
    wait_until(lambda: "bad address 'somewhere'" in node.stderr_text(), what="the reason logged")
    # And goes on serving others
    with Admin(addresses["namesrv"]) as admin:
        good = WireClient(broker)
        try:
            assert _born_host(good, admin).startswith("127.0.0.1:")
        finally:
            good.close()


def test_a_listener_without_the_key_names_it_when_a_header_comes(
    cluster: tuple[RuntimeProcess, Any],
) -> None:
    node, addresses = cluster
    # Given the name server, not told to read PROXY headers, and a balancer that sends them
    with Balancer(parse_address(addresses["namesrv"]), v1_header("203.0.113.7", 1)) as lb:
        client = WireClient(lb.address)
        try:
            # When a client asks for a route through it, Then its connection is closed
            client.send(_route_request("Balanced"))
            wait_until(client.is_closed, timeout=10, what="the connection closed")
        finally:
            client.close()
    # And the log says what to set
    wait_until(lambda: "set enableProxyProtocol=true" in node.stderr_text(), what="the log's hint")


def _route_request(topic: str) -> RemotingCommand:
    return RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})


def _query_route(address: str) -> Any:
    request = M.QueryRouteRequest()
    request.topic.name = "Balanced"
    request.endpoints.addresses.add(host="127.0.0.1", port=int(address.rpartition(":")[2]))
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/QueryRoute",
            request_serializer=M.QueryRouteRequest.SerializeToString,
            response_deserializer=M.QueryRouteResponse.FromString,
        )
        return call(request, timeout=10)


def test_a_proxys_acl_whitelist_sees_the_client_a_header_names(
    cluster: tuple[RuntimeProcess, Any],
) -> None:
    _, addresses = cluster
    proxy = parse_address(addresses["proxy"])
    # Given an ACL whose whitelist takes 203.0.113.* unsigned, and two balancers before the
    # proxy: one for a whitelisted client, one for another
    with (
        Balancer(proxy, v2_header("203.0.113.50", 40000)) as inside,
        Balancer(proxy, v1_header("192.0.2.77", 40001)) as outside,
    ):
        # When each asks for a route unsigned, Then only the whitelisted client is served
        assert _query_route(inside.address).status.code == Code.OK
        assert _query_route(outside.address).status.code == Code.UNAUTHORIZED
    # And so is a client reaching the proxy directly (127.0.0.1: not whitelisted)
    assert _query_route(addresses["proxy"]).status.code == Code.UNAUTHORIZED


def test_a_message_sent_through_a_balancer_was_born_at_the_client_it_names(
    cluster: tuple[RuntimeProcess, Any],
) -> None:
    _, addresses = cluster
    # Given a client behind a balancer (whitelisted: unsigned calls are served), sending a
    # message that names no born host of its own
    balancer = Balancer(parse_address(addresses["proxy"]), v2_header("203.0.113.50", 40000))
    with balancer as lb, grpc.insecure_channel(lb.address) as channel:
        receive = M.ReceiveMessageRequest(batch_size=4)
        receive.group.name, receive.message_queue.topic.name = "balanced-group", "Balanced"
        receive.filter_expression.expression = "*"
        receive.invisible_duration.seconds, receive.long_polling_timeout.seconds = 30, 1
        _receive(channel, receive)  # (the group, new, starts at the end: before the send)
        request = M.SendMessageRequest()
        msg = request.messages.add()
        msg.topic.name, msg.body = "Balanced", b"born-behind-a-balancer"
        msg.system_properties.message_id = "01BALANCED0000000000000000000001"
        msg.system_properties.message_type = MessageType.NORMAL
        msg.system_properties.body_encoding = 1
        sent = _unary(channel, "SendMessage", request, M.SendMessageResponse)
        assert sent.status.code == Code.OK, sent
        # When a consumer of the group receives it
        got = _received(channel, receive, "01BALANCED0000000000000000000001")
    # Then its born host is the client's address the header named (RocketMQ's __BORNHOST)
    assert got.system_properties.born_host == "203.0.113.50:40000"


def _unary(channel: grpc.Channel, method: str, request: Any, response_type: Any) -> Any:
    call = channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_type.FromString,
    )
    return call(request, timeout=10)


def _receive(channel: grpc.Channel, request: Any) -> list[Any]:
    """The messages one ReceiveMessage call streams."""
    call = channel.unary_stream(
        f"/{SERVICE}/ReceiveMessage",
        request_serializer=M.ReceiveMessageRequest.SerializeToString,
        response_deserializer=M.ReceiveMessageResponse.FromString,
    )
    return [item.message for item in call(request, timeout=15) if item.HasField("message")]


def _received(channel: grpc.Channel, request: Any, msg_id: str) -> Any:
    """The message ``msg_id``, from receives of ``request`` until it comes."""
    found: list[Any] = []

    def look() -> bool:
        got = _receive(channel, request)
        found.extend(m for m in got if m.system_properties.message_id == msg_id)
        return bool(found)

    wait_until(look, timeout=40, what=f"message {msg_id} received")
    return found[0]
