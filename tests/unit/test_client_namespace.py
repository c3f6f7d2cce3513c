"""Namespaces (RocketMQ's NamespaceUtil): names wrapped for the wire, unwrapped for the program.
The expected strings are NamespaceUtil's documented examples."""

from __future__ import annotations

import pytest

from actors.client import ClientError, MessageQueue
from actors.client.namespace import (
    Namespace,
    plain_name,
    plain_queue,
    wire_name,
    wire_queue,
    without_namespace,
)


@pytest.mark.parametrize(
    ("plain", "wire"),
    [
        ("Topic_XXX", "MQ_INST_XX%Topic_XXX"),
        ("GID_XXX", "MQ_INST_XX%GID_XXX"),
        ("%RETRY%GID_XXX", "%RETRY%MQ_INST_XX%GID_XXX"),
        ("%DLQ%GID_XXX", "%DLQ%MQ_INST_XX%GID_XXX"),
    ],
)
def test_wrap_and_unwrap_are_inverse(plain: str, wire: str) -> None:
    ns = Namespace("MQ_INST_XX")
    assert ns.wrap(plain) == wire
    assert ns.unwrap(wire) == plain


@pytest.mark.parametrize(
    "name",
    [
        "TBW102",
        "RMQ_SYS_TRACE_TOPIC",
        "SCHEDULE_TOPIC_XXXX",
        "rmq_sys_wheel_timer",
        "CID_RMQ_SYS_X",
    ],
)
def test_system_topics_and_groups_are_never_wrapped(name: str) -> None:
    ns = Namespace("ns")
    assert ns.wrap(name) == name
    assert ns.unwrap(name) == name


def test_wrapping_twice_is_wrapping_once() -> None:
    ns = Namespace("ns")
    assert ns.wrap(ns.wrap("Orders")) == "ns%Orders"
    assert ns.wrap("%RETRY%ns%g") == "%RETRY%ns%g"


def test_names_of_another_namespace_or_none_are_left_alone() -> None:
    ns = Namespace("MQ_INST_XX1")
    # NamespaceUtil.withoutNamespace(resource, namespace)'s examples (2) and (4)
    assert ns.unwrap("MQ_INST_XX2%Topic_XXX2") == "MQ_INST_XX2%Topic_XXX2"
    assert ns.unwrap("%RETRY%MQ_INST_XX2%GID_XXX2") == "%RETRY%MQ_INST_XX2%GID_XXX2"
    assert ns.unwrap("Orders") == "Orders"
    # a topic that merely starts with the namespace's letters is not in it
    assert ns.unwrap("MQ_INST_XX1Orders") == "MQ_INST_XX1Orders"


def test_queues_keep_broker_and_id() -> None:
    ns = Namespace("ns")
    mq = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=3)
    wired = wire_queue(ns, mq)
    assert wired == MessageQueue(topic="ns%Orders", broker_name="broker-a", queue_id=3)
    assert plain_queue(ns, wired) == mq
    assert wire_queue(None, mq) is mq and plain_queue(None, wired) is wired
    assert wire_name(None, "Orders") == "Orders" and plain_name(None, "ns%x") == "ns%x"


@pytest.mark.parametrize("bad", ["a%b", "a b", "ünï", "x|y"])
def test_a_namespace_with_other_characters_is_refused(bad: str) -> None:
    with pytest.raises(ClientError, match="namespace"):
        Namespace(bad)


def test_no_namespace_for_none_or_empty() -> None:
    assert Namespace.of(None) is None
    assert Namespace.of("") is None
    assert Namespace.of("ns") is not None


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("MQ_INST_XX%Topic_XXX", "Topic_XXX"),
        ("%RETRY%MQ_INST_XX%GID_XXX", "%RETRY%GID_XXX"),
        ("%DLQ%MQ_INST_XX%GID_XXX", "%DLQ%GID_XXX"),
        ("Orders", "Orders"),
        ("%RETRY%GID_XXX", "%RETRY%GID_XXX"),
        ("RMQ_SYS_TRACE_TOPIC", "RMQ_SYS_TRACE_TOPIC"),
        ("", ""),
    ],
)
def test_without_namespace_strips_whatever_namespace_a_name_carries(
    resource: str, expected: str
) -> None:
    assert without_namespace(resource) == expected
