"""The proxy under RocketMQ's plain ACL: ``--acl-file`` checks each client's signature and
permissions; ``--access-key`` / ``--secret-key`` sign the proxy's own requests to brokers that
enforce the same file."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from actors.proxy.proto import Code, M, MessageType
from actors.proxy.server import SERVICE
from tests.integration.proxy_acl_support import proxy_under_acl, signed

pytestmark = pytest.mark.timeout(90)

ACL = """\
accounts:
  - accessKey: proxy-admin
    secretKey: proxy-secret
    admin: true
  - accessKey: app-account
    secretKey: app-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - Allowed=PUB|SUB
"""


@pytest.fixture
def proxy(tmp_path: pathlib.Path) -> Iterator[str]:
    with proxy_under_acl(tmp_path, ACL, ("Allowed", "Forbidden"), queues=2) as address:
        yield address


def _send(address: str, topic: str, metadata: list[tuple[str, str]]) -> Any:
    request = M.SendMessageRequest()
    msg = request.messages.add()
    msg.topic.name, msg.body = topic, b"acl"
    msg.system_properties.message_id = "01ACL"
    msg.system_properties.message_type = MessageType.NORMAL
    msg.system_properties.body_encoding = 1
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/SendMessage",
            request_serializer=M.SendMessageRequest.SerializeToString,
            response_deserializer=M.SendMessageResponse.FromString,
        )
        return call(request, timeout=10, metadata=metadata)


def test_signatures_and_permissions_are_checked(proxy: str) -> None:
    # Given the app account (PUB|SUB on Allowed only) and a proxy enforcing the file
    app = signed("app-account", "app-secret")
    # When it sends to Allowed, Then the proxy stores it with its own account's signature
    assert _send(proxy, "Allowed", app).status.code == Code.OK
    # When it sends to a topic it has no permission on: FORBIDDEN, naming the topic
    refused = _send(proxy, "Forbidden", app)
    assert refused.status.code == Code.FORBIDDEN
    assert "topic:Forbidden" in refused.status.message
    # When the signature is wrong, or there is none, or the key is unknown: UNAUTHORIZED
    assert _send(proxy, "Allowed", signed("app-account", "wrong")).status.code == Code.UNAUTHORIZED
    assert _send(proxy, "Allowed", []).status.code == Code.UNAUTHORIZED
    assert _send(proxy, "Allowed", signed("nobody-at-all", "x")).status.code == Code.UNAUTHORIZED


def test_a_receive_needs_sub_on_the_topic(proxy: str) -> None:
    # Given the app account: SUB on every group, on topic Allowed only
    app = signed("app-account", "app-secret")

    def receive(topic: str) -> list[Any]:
        request = M.ReceiveMessageRequest(batch_size=1)
        request.group.name, request.message_queue.topic.name = "acl-group", topic
        request.invisible_duration.seconds, request.long_polling_timeout.seconds = 5, 1
        with grpc.insecure_channel(proxy) as channel:
            call = channel.unary_stream(
                f"/{SERVICE}/ReceiveMessage",
                request_serializer=M.ReceiveMessageRequest.SerializeToString,
                response_deserializer=M.ReceiveMessageResponse.FromString,
            )
            return list(call(request, timeout=10, metadata=app))

    # When it receives from Forbidden, Then FORBIDDEN; from Allowed, it is served (nothing yet)
    assert [i.status.code for i in receive("Forbidden")] == [Code.FORBIDDEN]
    assert [i.status.code for i in receive("Allowed")] == [Code.MESSAGE_NOT_FOUND]


def test_a_consumers_settings_need_sub_on_its_topics(proxy: str) -> None:
    # Given the app account's settings for a group on a topic it may not read
    app = signed("app-account", "app-secret")

    def settings_answer(topic: str) -> Any:
        command = M.TelemetryCommand()
        command.settings.client_type = 3  # SIMPLE_CONSUMER
        command.settings.subscription.group.name = "acl-group"
        entry = command.settings.subscription.subscriptions.add()
        entry.topic.name, entry.expression.expression = topic, "*"
        with grpc.insecure_channel(proxy) as channel:
            call = channel.stream_stream(
                f"/{SERVICE}/Telemetry",
                request_serializer=M.TelemetryCommand.SerializeToString,
                response_deserializer=M.TelemetryCommand.FromString,
            )
            answers = call(iter([command]), timeout=10, metadata=app)
            first = next(answers)
            answers.cancel()
            return first

    # When it writes them on its telemetry stream, Then FORBIDDEN (the proxy joins nothing)
    refused = settings_answer("Forbidden")
    assert refused.status.code == Code.FORBIDDEN and "topic:Forbidden" in refused.status.message
    # And for a topic it may read, the settings are answered
    assert settings_answer("Allowed").status.code == Code.OK
