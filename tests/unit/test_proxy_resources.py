"""The names a gRPC call carries, checked as RocketMQ's GrpcValidator checks them."""

from __future__ import annotations

from actors.proxy.proto import Code, M
from actors.proxy.resources import group_problem, resource_refusal, settings_refusal


def test_calls_with_illegal_topic_or_group_names_are_refused() -> None:
    # Given calls naming a topic past 127 characters, a group with a space, a group of 300
    route = M.QueryRouteRequest()
    route.topic.name = "T" * 70_000
    receive = M.ReceiveMessageRequest()
    receive.group.name, receive.message_queue.topic.name = "billing team", "Orders"
    send = M.SendMessageRequest()
    send.messages.add().topic.name = "Orders"
    send.messages.add().topic.name = "Or ders"
    ack = M.AckMessageRequest()
    ack.group.name, ack.topic.name = "g" * 300, "Orders"
    # Then each gets RocketMQ's code, its reason short
    code, reason = resource_refusal(route)  # type: ignore[misc]
    assert code == Code.ILLEGAL_TOPIC and "127" in reason and len(reason) < 400
    assert resource_refusal(receive)[0] == Code.ILLEGAL_CONSUMER_GROUP  # type: ignore[index]
    assert resource_refusal(send)[0] == Code.ILLEGAL_TOPIC  # type: ignore[index]
    assert resource_refusal(ack)[0] == Code.ILLEGAL_CONSUMER_GROUP  # type: ignore[index]


def test_legal_names_namespaces_lite_queues_and_empty_names_pass() -> None:
    # Given calls with legal names, a namespaced one, a lite topic's queue, none at all
    receive = M.ReceiveMessageRequest()
    receive.group.name, receive.message_queue.topic.name = "billing-g_1", "%LMQ%$Chats$s-1"
    namespaced = M.QueryRouteRequest()
    namespaced.topic.resource_namespace, namespaced.topic.name = "prod", "Orders"
    heartbeat = M.HeartbeatRequest()  # a producer's: no group
    # Then none is refused
    assert resource_refusal(receive) is None
    assert resource_refusal(namespaced) is None
    assert resource_refusal(heartbeat) is None
    assert group_problem("g" * 255) is None and group_problem("g" * 256) is not None


def test_a_clients_settings_with_an_illegal_name_are_refused() -> None:
    # Given a push consumer's settings naming an illegal topic, and a producer's a legal one
    consumer = M.Settings()
    consumer.subscription.group.name = "billing"
    consumer.subscription.subscriptions.add().topic.name = "x" * 200
    producer = M.Settings()
    producer.publishing.topics.add().name = "Orders"
    # Then the consumer's are refused (ILLEGAL_TOPIC), the producer's pass
    assert settings_refusal(consumer)[0] == Code.ILLEGAL_TOPIC  # type: ignore[index]
    assert settings_refusal(producer) is None
