"""Message traces against a real process (``traceTopicEnable=true``, ``regionId=HZ``, fast
transaction check-backs): a traced producer, push consumer, lite pull consumer and transaction
producer send their Pub, Sub and EndTransaction records to RMQ_SYS_TRACE_TOPIC, where
``Admin.query_msg_trace`` and ``queryMsgTraceById`` find them by the message's msgId."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator

import pytest

from actors.client import (
    Admin,
    ConsumeFrom,
    LocalTransactionState,
    Message,
    MessageExt,
    Producer,
    PullConsumer,
    PushConsumer,
    SendStatus,
    TransactionProducer,
)
from actors.client.trace_data import RMQ_SYS_TRACE_TOPIC
from actors.client.trace_view import TraceView
from tests.client_support import Collector, wait_until
from tests.harness import RuntimeProcess
from tests.integration.test_admin import mqadmin
from tests.profiles import one_broker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root: pathlib.Path = tmp_path_factory.mktemp("trace")
    profile = root / "trace.toml"
    keys = {
        "traceTopicEnable": True,
        "regionId": "HZ",
        "transactionTimeOut": 300,
        "transactionCheckInterval": 300,
    }
    profile.write_text(one_broker(keys))
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


def traced(
    admin: Admin, msg_id: str, kinds: set[str], topic: str = RMQ_SYS_TRACE_TOPIC
) -> list[TraceView]:
    """The message's trace records in ``topic`` once every kind in ``kinds`` is among them
    (polled: trace messages are sent asynchronously, and indexed after they are stored)."""
    views: list[TraceView] = []

    def complete() -> bool:
        views[:] = admin.query_msg_trace(msg_id, topic)
        return kinds <= {v.msg_type for v in views}

    wait_until(complete, timeout=30, what=f"trace records {kinds} of {msg_id}", interval=0.2)
    return views


def test_a_traced_send_and_consumption_show_in_query_msg_trace_by_id(
    cluster: dict[str, str],
) -> None:
    namesrv = cluster["namesrv"]
    with Admin(namesrv) as admin:
        admin.create_topic("TracedOrders", queues=2)
        # Given a traced producer and a traced push consumer of the topic
        got = Collector(1)
        consumer = PushConsumer(
            "traced-billing", namesrv, consume_from=ConsumeFrom.FIRST, enable_msg_trace=True
        )
        consumer.subscribe("TracedOrders", "*", got)
        consumer.start()
        try:
            with Producer("traced-orders", namesrv, enable_msg_trace=True) as producer:
                # When the producer sends a message and the consumer consumes it
                sent = producer.send(
                    Message("TracedOrders", b"paid 42", tags="paid", keys=["order-42"])
                )
                assert sent.status is SendStatus.SEND_OK
            assert got.done.wait(30), "the message was not consumed"
        finally:
            consumer.shutdown()
        # Then the trace topic holds its Pub, SubBefore and SubAfter records
        views = traced(admin, sent.msg_id, {"Pub", "SubBefore", "SubAfter"})
    [pub] = [v for v in views if v.msg_type == "Pub"]
    assert (pub.group, pub.topic, pub.tags, pub.keys) == (
        "traced-orders",
        "TracedOrders",
        "paid",
        "order-42",
    )
    assert (pub.status, pub.offset_msg_id) == ("success", sent.offset_msg_id)
    # in the broker's region (its answer's MSG_REGION; the consumer's from the stored message)
    assert sent.region_id == "HZ"
    assert {v.region_id for v in views if v.msg_type != "SubAfter"} == {"HZ"}
    [after] = [v for v in views if v.msg_type == "SubAfter"]
    assert (after.group, after.status) == ("traced-billing", "success")
    # And queryMsgTraceById prints them as mqadmin does: the Pub, then the consumer group's Sub
    done = mqadmin(namesrv, "queryMsgTraceById", "-i", sent.msg_id)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
    assert rows[0] == [
        "#Type",
        "#ProducerGroup",
        "#ClientHost",
        "#SendTime",
        "#CostTimes",
        "#Status",
    ]
    assert (rows[1][0], rows[1][1], rows[1][-1]) == ("Pub", "traced-orders", "success")
    assert rows[2] == [
        "#Type", "#ConsumerGroup", "#ClientHost", "#ConsumerTime", "#CostTimes", "#Status",
    ]  # fmt: skip
    assert (rows[3][0], rows[3][1], rows[3][-1]) == ("Sub", "traced-billing", "success")
    assert len(rows) == 4


def test_a_customized_trace_topic_holds_the_traces_and_untraced_clients_send_none(
    cluster: dict[str, str],
) -> None:
    namesrv = cluster["namesrv"]
    with Admin(namesrv) as admin:
        admin.create_topic("MyTraces", queues=1)
        admin.create_topic("TracedNotes", queues=1)
        # Given a producer tracing to its own topic and one not tracing
        with Producer("custom-trace", namesrv, enable_msg_trace=True, trace_topic="MyTraces") as p:
            traced_id = p.send(Message("TracedNotes", b"a")).msg_id
        with Producer("untraced", namesrv) as p:
            untraced_id = p.send(Message("TracedNotes", b"b")).msg_id
        # When the traces are queried, Then the first send's Pub is in MyTraces
        [pub] = traced(admin, traced_id, {"Pub"}, "MyTraces")
        assert pub.group == "custom-trace"
        # And the second send left no trace in either topic
        assert admin.query_msg_trace(untraced_id, "MyTraces") == []
        assert admin.query_msg_trace(untraced_id) == []


def test_a_transaction_s_end_and_its_check_back_answer_are_traced(
    cluster: dict[str, str],
) -> None:
    namesrv = cluster["namesrv"]
    checked = threading.Event()

    def check(_msg: MessageExt) -> LocalTransactionState:
        checked.set()
        return LocalTransactionState.COMMIT_MESSAGE

    with Admin(namesrv) as admin:
        admin.create_topic("TracedTx", queues=1)
        # Given a traced transaction producer whose local transaction cannot decide
        with TransactionProducer(
            "traced-tx",
            namesrv,
            execute=lambda _m, _a: LocalTransactionState.UNKNOW,
            check=check,
            enable_msg_trace=True,
        ) as producer:
            r = producer.send_message_in_transaction(Message("TracedTx", b"tx", keys=["tx-1"]))
            # When the broker checks back and the producer commits
            assert checked.wait(30), "no check-back came"
            views = traced(admin, r.msg_id, {"Pub", "EndTransaction"})
            wait_until(
                lambda: len(ends(admin, r.msg_id)) >= 2,
                timeout=30,
                what="the check-back's EndTransaction",
                interval=0.2,
            )
            local, from_check = ends(admin, r.msg_id)[:2]
    # Then the half message's Pub, the local UNKNOW and the check-back's COMMIT are traced
    assert [v.msg_type for v in views if v.msg_type == "Pub"] == ["Pub"]
    assert (local.transaction_state, local.from_transaction_check) == ("UNKNOW", False)
    assert (from_check.transaction_state, from_check.from_transaction_check) == (
        "COMMIT_MESSAGE",
        True,
    )
    for end in (local, from_check):
        assert (end.group, end.topic, end.keys) == ("traced-tx", "TracedTx", "tx-1")
        assert end.transaction_id == r.msg_id and end.store_host
    # in the stored message's region after the check-back; the caller's message names none
    # (RocketMQ's EndTransactionTraceHookImpl reads the message's MSG_REGION)
    assert (local.region_id, from_check.region_id) == ("DefaultRegion", "HZ")
    # And queryMsgTraceById prints both after the Pub (mqadmin prints no EndTransaction)
    done = mqadmin(namesrv, "queryMsgTraceById", "-i", r.msg_id)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
    assert rows[2] == ["#Type", "#ProducerGroup", "#ClientHost", "#EndTime", "#State", "#FromCheck"]
    assert [(row[0], row[1], row[-2], row[-1]) for row in rows[3:5]] == [
        ("EndTx", "traced-tx", "UNKNOW", "false"),
        ("EndTx", "traced-tx", "COMMIT_MESSAGE", "true"),
    ]


def ends(admin: Admin, msg_id: str) -> list[TraceView]:
    return [v for v in admin.query_msg_trace(msg_id) if v.msg_type == "EndTransaction"]


def test_a_traced_lite_pull_consumer_s_polls_are_traced(cluster: dict[str, str]) -> None:
    namesrv = cluster["namesrv"]
    with Admin(namesrv) as admin:
        admin.create_topic("TracedPolls", queues=1)
        with Producer("poll-source", namesrv) as producer:
            sent = producer.send(Message("TracedPolls", b"polled"))
        # Given a traced lite pull consumer (RocketMQ's DefaultLitePullConsumer enableMsgTrace)
        consumer = PullConsumer(
            "traced-poller", namesrv, consume_from=ConsumeFrom.FIRST, enable_msg_trace=True
        )
        consumer.subscribe("TracedPolls", "*")
        consumer.start()
        try:
            # When it polls the message
            polled: list[MessageExt] = []
            wait_until(lambda: bool(polled.extend(consumer.poll(0.2)) or polled), timeout=30)
            assert [m.msg_id for m in polled] == [sent.msg_id]
        finally:
            consumer.shutdown()
        # Then its SubBefore and SubAfter are in the trace topic
        views = traced(admin, sent.msg_id, {"SubBefore", "SubAfter"})
    assert {(v.msg_type, v.group) for v in views} == {
        ("SubBefore", "traced-poller"),
        ("SubAfter", "traced-poller"),
    }
