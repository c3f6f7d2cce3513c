"""A gRPC client's message checked as RocketMQ's proxy checks it: each failure its code (a system
topic too: ILLEGAL_TOPIC)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from actors.proxy.convert import ConvertError, outgoing
from actors.proxy.proto import Code, M


def _message(change: Callable[[Any], None]) -> Any:
    msg = M.Message()
    msg.topic.name, msg.body = "T", b"x"
    msg.system_properties.message_id = "01ID"
    change(msg)
    return msg


def _deliver_in(seconds: int) -> Callable[[Any], None]:
    def change(msg: Any) -> None:
        msg.system_properties.delivery_timestamp.seconds = int(time.time()) + seconds

    return change


CASES: list[tuple[str, Callable[[Any], None], int]] = [
    (
        "a tag with '|'",
        lambda m: setattr(m.system_properties, "tag", "a||b"),
        Code.ILLEGAL_MESSAGE_TAG,
    ),
    ("a blank tag", lambda m: setattr(m.system_properties, "tag", "  "), Code.ILLEGAL_MESSAGE_TAG),
    ("a blank key", lambda m: m.system_properties.keys.append(" "), Code.ILLEGAL_MESSAGE_KEY),
    (
        "a key with a tab",
        lambda m: m.system_properties.keys.append("a\tb"),
        Code.ILLEGAL_MESSAGE_KEY,
    ),
    (
        "a message group of 65",
        lambda m: setattr(m.system_properties, "message_group", "g" * 65),
        Code.ILLEGAL_MESSAGE_GROUP,
    ),
    (
        "RocketMQ's own property",
        lambda m: m.user_properties.__setitem__("TAGS", "x"),
        Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
    ),
    (
        "129 properties",
        lambda m: m.user_properties.update({f"p{i}": "v" for i in range(129)}),
        Code.MESSAGE_PROPERTIES_TOO_LARGE,
    ),
    (
        "17 KiB of properties",
        lambda m: m.user_properties.__setitem__("big", "v" * 17 * 1024),
        Code.MESSAGE_PROPERTIES_TOO_LARGE,
    ),
    ("a delivery 4 days ahead", _deliver_in(4 * 24 * 3600), Code.ILLEGAL_DELIVERY_TIME),
]


@pytest.mark.parametrize(("what", "change", "code"), CASES, ids=[c[0] for c in CASES])
def test_a_message_rocketmq_refuses_gets_its_code(
    what: str, change: Callable[[Any], None], code: int
) -> None:
    # Given a message with something RocketMQ's proxy refuses, Then it is refused with its code
    with pytest.raises(ConvertError) as refused:
        outgoing(_message(change), Code.BAD_REQUEST)
    assert refused.value.code == code, what


def test_what_rocketmq_takes_passes() -> None:
    # Given a message with a tag, keys, a group of 64, 128 small properties, a delivery 2 days on
    def change(msg: Any) -> None:
        system = msg.system_properties
        system.tag, system.message_group = "paid", "g" * 64
        system.keys.extend(["order-42", "customer-7"])
        msg.user_properties.update({f"p{i}": "v" for i in range(128)})
        _deliver_in(2 * 24 * 3600)(msg)

    message, msg_id, group = outgoing(_message(change), Code.BAD_REQUEST)
    # Then it is taken
    assert (message.tags, msg_id, group) == ("paid", "01ID", "g" * 64)


def _to(topic: str, namespace: str = "") -> Callable[[Any], None]:
    def change(msg: Any) -> None:
        msg.topic.name, msg.topic.resource_namespace = topic, namespace

    return change


SYSTEM_TOPICS = [
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "TBW102",
    "RMQ_SYS_TRACE_TOPIC",
    "BenchmarkTest",
    "rmq_sys_wheel_timer",
    "rmq_sys_anything",
]


@pytest.mark.parametrize("namespace", ["", "ns"])
@pytest.mark.parametrize("topic", SYSTEM_TOPICS)
def test_a_message_to_a_system_topic_is_refused_as_rocketmqs_proxy_does(
    topic: str, namespace: str
) -> None:
    # When a gRPC producer sends to one of RocketMQ's system topics (a hostile-input probe's
    # messages to SCHEDULE_TOPIC_XXXX without REAL_TOPIC were put back there every second),
    # in a namespace or not (RocketMQ never wraps a system topic's name in one)
    with pytest.raises(ConvertError) as refused:
        outgoing(_message(_to(topic, namespace)), Code.BAD_REQUEST)
    # Then it is ILLEGAL_TOPIC "cannot access system topic", as RocketMQ 5's GrpcValidator says
    assert refused.value.code == Code.ILLEGAL_TOPIC
    assert str(refused.value) == "cannot access system topic"


@pytest.mark.parametrize(
    ("topic", "namespace"),
    [("Orders", ""), ("%RETRY%grp", ""), ("%DLQ%grp", ""), ("Orders", "ns")],
)
def test_other_topics_pass(topic: str, namespace: str) -> None:
    # Retry and dead-letter topics are no system topics (RocketMQ's proxy lets them through)
    message, _msg_id, _group = outgoing(_message(_to(topic, namespace)), Code.BAD_REQUEST)
    assert message.topic == (f"{namespace}%{topic}" if namespace else topic)
