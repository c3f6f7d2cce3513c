"""``message_kind``: RocketMQ 5's message type of a send, from its properties."""

from __future__ import annotations

import pytest

from actors.broker.send_handler import metrics_topic
from runtime.remoting.properties import message_kind


@pytest.mark.parametrize(
    ("props", "kind"),
    [
        ({}, "normal"),
        ({"TAGS": "paid", "KEYS": "k"}, "normal"),
        ({"__SHARDINGKEY": "order-7"}, "fifo"),
        ({"DELAY": "3"}, "delay"),
        ({"TIMER_DELIVER_MS": "1700000000000"}, "delay"),
        ({"TIMER_DELAY_SEC": "10"}, "delay"),
        ({"TIMER_DELAY_MS": "10"}, "delay"),
        ({"DELAY": "3", "__SHARDINGKEY": "k"}, "delay"),  # RocketMQ's order: delay first
        ({"TRAN_MSG": "true", "__SHARDINGKEY": "k"}, "transaction"),
        ({"TRAN_MSG": "false"}, "normal"),
    ],
)
def test_a_sends_properties_give_rocketmqs_message_type(props: dict[str, str], kind: str) -> None:
    # Given a send's properties, Then its type is RocketMQ 5's reading of them
    assert message_kind(props) == kind


def test_a_lite_topics_queue_is_counted_as_its_parent() -> None:
    # Given the queue topics of lite topics and other topics, Then the metrics name the parent
    # for a lite topic's (RocketMQ stores lite messages in their parent) and others as they are
    assert metrics_topic("%LMQ%$Chats$session-42") == "Chats"
    assert metrics_topic("%LMQ%$ns%Chats$s1") == "ns%Chats"
    assert metrics_topic("Orders") == "Orders"
    assert metrics_topic("%LMQ%plain") == "%LMQ%plain"
