"""``message_kind``: RocketMQ 5's message type of a send, from its properties."""

from __future__ import annotations

import pytest

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
