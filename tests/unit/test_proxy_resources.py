"""The names a gRPC call carries, checked as RocketMQ's GrpcValidator checks them."""

from __future__ import annotations

from typing import Any

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


SYSTEM_REFUSAL = (Code.ILLEGAL_TOPIC, "cannot access system topic")


def _calls_naming(topic: str, namespace: str = "") -> list[object]:
    """One request of each call that names a topic, naming ``topic``."""
    calls: list[object] = []
    for request in (
        M.QueryRouteRequest(),
        M.QueryAssignmentRequest(),
        M.AckMessageRequest(),
        M.ChangeInvisibleDurationRequest(),
        M.ForwardMessageToDeadLetterQueueRequest(),
        M.EndTransactionRequest(),
        M.RecallMessageRequest(),
        M.SyncLiteSubscriptionRequest(),
    ):
        request.topic.name, request.topic.resource_namespace = topic, namespace
        calls.append(request)
    receive = M.ReceiveMessageRequest()
    receive.group.name = "billing"
    receive.message_queue.topic.name = topic
    receive.message_queue.topic.resource_namespace = namespace
    calls.append(receive)
    return calls


def test_calls_naming_a_system_topic_are_refused_as_rocketmq_refuses_them() -> None:
    # Given each call naming the broker's own topics, plain and in a namespace
    for topic in ("SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC", "TBW102", "rmq_sys_x"):
        for namespace in ("", "prod"):
            for request in _calls_naming(topic, namespace):
                # Then each is refused with RocketMQ 5's proxy's code and words
                got = resource_refusal(request)
                assert got == SYSTEM_REFUSAL, (type(request).__name__, topic, namespace)


def test_retry_dlq_and_user_topics_pass_the_system_topic_check() -> None:
    # Given calls naming a group's retry and dead-letter topics, and a user's topic
    for topic in ("%RETRY%billing", "%DLQ%billing", "Orders", "SCHEDULE_TOPIC_XXXY"):
        for request in _calls_naming(topic):
            # Then none is refused
            assert resource_refusal(request) is None, (type(request).__name__, topic)


def test_a_sends_system_topic_is_left_to_the_per_message_check() -> None:
    # Given a send of one message to SCHEDULE_TOPIC_XXXX (refused per message, with entries)
    send = M.SendMessageRequest()
    send.messages.add().topic.name = "SCHEDULE_TOPIC_XXXX"
    # Then the call as a whole passes the names' check
    assert resource_refusal(send) is None


def test_settings_publishing_or_subscribing_a_system_topic_are_refused() -> None:
    # Given a producer publishing to the transaction half topic, a consumer subscribing the
    # delay topic beside a legal one, and one subscribing its group's retry topic
    producer = M.Settings()
    producer.publishing.topics.add().name = "RMQ_SYS_TRANS_HALF_TOPIC"
    consumer = M.Settings()
    consumer.subscription.group.name = "billing"
    consumer.subscription.subscriptions.add().topic.name = "Orders"
    consumer.subscription.subscriptions.add().topic.name = "SCHEDULE_TOPIC_XXXX"
    retry = M.Settings()
    retry.subscription.group.name = "billing"
    retry.subscription.subscriptions.add().topic.name = "%RETRY%billing"
    # Then the first two are refused, the retry topic's passes
    assert settings_refusal(producer) == SYSTEM_REFUSAL
    assert settings_refusal(consumer) == SYSTEM_REFUSAL
    assert settings_refusal(retry) is None


GROUP_REFUSAL = (Code.ILLEGAL_CONSUMER_GROUP, "cannot use system consumer group")


def _calls_with_group(group: str, namespace: str = "") -> list[Any]:
    """One request of each call that names a consumer group, naming ``group`` (and a user's
    topic where the call names one)."""
    calls: list[Any] = []
    for request in (
        M.QueryAssignmentRequest(),
        M.AckMessageRequest(),
        M.ChangeInvisibleDurationRequest(),
        M.ForwardMessageToDeadLetterQueueRequest(),
        M.SyncLiteSubscriptionRequest(),
    ):
        request.topic.name = "Orders"
        calls.append(request)
    receive = M.ReceiveMessageRequest()
    receive.message_queue.topic.name = "Orders"
    calls += [receive, M.HeartbeatRequest(), M.NotifyClientTerminationRequest()]
    for request in calls:
        request.group.name, request.group.resource_namespace = group, namespace
    return calls


def test_calls_naming_a_system_group_are_refused_as_rocketmq_refuses_them() -> None:
    # Given each call naming the brokers' transaction check group or another CID_RMQ_SYS_
    # group, plain and in a namespace
    for group in ("CID_RMQ_SYS_TRANS", "CID_RMQ_SYS_anything"):
        for namespace in ("", "prod"):
            for request in _calls_with_group(group, namespace):
                # Then each is refused with RocketMQ 5's proxy's code and words
                got = resource_refusal(request)
                assert got == GROUP_REFUSAL, (type(request).__name__, group, namespace)
    # And a namespace that makes the wrapped name one is refused too (RocketMQ checks that)
    for request in _calls_with_group("billing", "CID_RMQ_SYS_x"):
        assert resource_refusal(request) == GROUP_REFUSAL, type(request).__name__


def test_mixalls_other_named_groups_and_user_groups_pass_the_system_group_check() -> None:
    # Given calls naming MixAll's named groups that isSysConsumerGroup does not cover, a
    # group merely containing the prefix, and a user's group
    for group in (
        "TOOLS_CONSUMER",
        "CID_ONSAPI_PULL",
        "SELF_TEST_C_GROUP",
        "x_CID_RMQ_SYS_",
        "billing",
    ):
        for request in _calls_with_group(group):
            # Then none is refused (as in RocketMQ 5's proxy)
            assert resource_refusal(request) is None, (type(request).__name__, group)


def test_settings_of_a_system_group_are_refused() -> None:
    # Given a push consumer's settings with the transaction check group, a user topic only
    consumer = M.Settings()
    consumer.subscription.group.name = "CID_RMQ_SYS_TRANS"
    consumer.subscription.subscriptions.add().topic.name = "Orders"
    namespaced = M.Settings()
    namespaced.subscription.group.resource_namespace = "prod"
    namespaced.subscription.group.name = "CID_RMQ_SYS_TRANS"
    # Then they are refused as RocketMQ's telemetry refuses them
    assert settings_refusal(consumer) == GROUP_REFUSAL
    assert settings_refusal(namespaced) == GROUP_REFUSAL
