"""Where message traces come from besides sends and push listeners, and what the broker's
answers change: the region and trace switch of a send answer (MSG_REGION, TRACE_ON), the
EndTransaction record of a check-back's answer, and the lite pull consumer's polls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.client import (
    ConsumeFrom,
    LocalTransactionState,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    SendResult,
    SendStatus,
    TransactionProducer,
)
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from actors.client.trace_data import TraceContext, TraceType, decode, encode
from actors.client.trace_hooks import SendTraceHook, end_transaction
from tests.unit.test_client_trace import Appended, send_through

pytestmark = pytest.mark.timeout(40)
MQ = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=1)


def answered(region: str = "DefaultRegion", trace_on: bool = True) -> SendResult:
    return SendResult(
        status=SendStatus.SEND_OK,
        msg_id="UNIQ1",
        offset_msg_id="OFF1",
        queue=MQ,
        queue_offset=3,
        region_id=region,
        trace_on=trace_on,
    )


def test_a_pub_carries_the_answer_s_region_and_none_is_made_when_its_switch_is_off() -> None:
    events = Appended()
    hook = SendTraceHook(events)  # type: ignore[arg-type]
    # Given a send answered by a broker of region HZ, and one by a broker with traceOn=false
    send_through(hook, Message("Orders", b"a"), answered("HZ"))
    send_through(hook, Message("Orders", b"b"), answered("HZ", trace_on=False))
    # Then one Pub, in the broker's region (RocketMQ's SendMessageTraceHookImpl)
    assert [(e.trace_type, e.region_id) for e in events.events] == [(TraceType.Pub, "HZ")]


def test_the_end_of_a_check_back_is_traced_from_the_stored_message() -> None:
    events = Appended()
    # Given the stored half message a broker of region HZ sent with its check-back
    stored = MessageExt(
        "Orders", b"x", "UNIQ_KEY\x01TX1\x02TAGS\x01paid\x02KEYS\x01k1 k2\x02MSG_REGION\x01HZ\x02"
    )
    # When the producer answers COMMIT_MESSAGE and traces it
    end_transaction(
        events,  # type: ignore[arg-type]
        "txg",
        stored,
        msg_id="TX1",
        transaction_id="TX1",
        broker_addr="10.0.0.2:10911",
        state=LocalTransactionState.COMMIT_MESSAGE,
        from_check=True,
    )
    # Then one EndTransaction with the stored message's tags, keys and region, from the check-back
    [ctx] = events.events
    bean = ctx.beans[0]
    assert (ctx.trace_type, ctx.group, ctx.region_id) == (TraceType.EndTransaction, "txg", "HZ")
    assert (bean.tags, bean.keys, bean.store_host) == ("paid", "k1 k2", "10.0.0.2:10911")
    assert (bean.transaction_state, bean.from_transaction_check) == ("COMMIT_MESSAGE", True)
    # And it is written in RocketMQ's 13-field layout, indexed by msgId and keys
    transfer = encode(ctx)
    fields = transfer.data.rstrip("\x02").split("\x01")
    assert fields[0] == "EndTransaction" and fields[2:] == [
        "HZ", "txg", "Orders", "TX1", "paid", "k1 k2", "10.0.0.2:10911", "2", "TX1",
        "COMMIT_MESSAGE", "true",
    ]  # fmt: skip
    assert transfer.keys == ("TX1", "k1", "k2")
    # (a message of the trace topic itself is never traced)
    end_transaction(
        events,  # type: ignore[arg-type]
        "txg",
        Message("RMQ_SYS_TRACE_TOPIC", b"t"),
        msg_id="T",
        transaction_id="T",
        broker_addr=None,
        state=LocalTransactionState.UNKNOW,
        from_check=False,
    )
    assert len(events.events) == 1


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc


def records(cluster: FakeCluster, topic: str = "RMQ_SYS_TRACE_TOPIC") -> list[TraceContext]:
    out: list[TraceContext] = []
    for stored in cluster.stored(topic):
        [msg] = decode_messages(stored.record, "broker-a")
        out.extend(decode(msg.body.decode()))
    return out


def test_a_producer_reads_the_broker_s_region_and_switch_from_its_answers(
    cluster: FakeCluster,
) -> None:
    # Given a broker of region HZ answering sends
    cluster.run(lambda: cluster.broker().send_ext_fields.update({"MSG_REGION": "HZ"}))
    with Producer("pg", cluster.namesrv, enable_msg_trace=True) as producer:
        # When a traced producer sends, Then the result names the region, tracing on
        traced = producer.send(Message("Orders", b"a"))
        assert (traced.region_id, traced.trace_on) == ("HZ", True)
        # and after the broker turned its switch off, the result says so
        off = {"MSG_REGION": "", "TRACE_ON": "false"}
        cluster.run(lambda: cluster.broker().send_ext_fields.update(off))
        untraced = producer.send(Message("Orders", b"b"))
        assert (untraced.region_id, untraced.trace_on) == ("DefaultRegion", False)
    # Then only the first send is traced, in region HZ
    assert [(r.beans[0].msg_id, r.region_id) for r in records(cluster)] == [(traced.msg_id, "HZ")]


def test_a_local_end_is_traced_in_the_message_s_region_whatever_the_broker_s_switch(
    cluster: FakeCluster,
) -> None:
    # Given a broker of region HZ with its trace switch off
    off = {"MSG_REGION": "HZ", "TRACE_ON": "false"}
    cluster.run(lambda: cluster.broker().send_ext_fields.update(off))
    with TransactionProducer(
        "txg",
        cluster.namesrv,
        execute=lambda _m, _a: LocalTransactionState.COMMIT_MESSAGE,
        check=lambda _m: LocalTransactionState.COMMIT_MESSAGE,
        enable_msg_trace=True,
    ) as producer:
        # When a traced transaction producer commits a transaction
        r = producer.send_message_in_transaction(Message("Orders", b"tx"))
    # Then the half message has no Pub (the switch), but its END has an EndTransaction (as
    # RocketMQ's EndTransactionTraceHookImpl, which reads neither the switch nor the answer's
    # region: the caller's message names no region, so DefaultRegion)
    [end] = records(cluster)
    assert (end.trace_type, end.region_id) == (TraceType.EndTransaction, "DefaultRegion")
    assert (end.beans[0].msg_id, end.beans[0].transaction_state) == (r.msg_id, "COMMIT_MESSAGE")
    assert (end.beans[0].tags, end.beans[0].keys) == ("null", "null")  # as Java writes None


def test_a_traced_lite_pull_consumer_traces_what_each_poll_returns(cluster: FakeCluster) -> None:
    # Given two stored messages, one from a broker with its trace switch off
    cluster.put("Orders", b"a", properties="UNIQ_KEY\x01M-A\x02MSG_REGION\x01HZ\x02")
    cluster.put("Orders", b"b", properties="UNIQ_KEY\x01M-B\x02TRACE_ON\x01false\x02")
    consumer = PullConsumer(
        "lite-cg", cluster.namesrv, consume_from=ConsumeFrom.FIRST, enable_msg_trace=True
    )
    consumer.subscribe("Orders", "*")
    consumer.start()
    # When it polls both (RocketMQ's DefaultLitePullConsumer with enableMsgTrace)
    try:
        polled: list[MessageExt] = []
        for _ in range(40):
            polled += consumer.poll(0.5)
            if len(polled) == 2:
                break
        assert sorted(m.msg_id for m in polled) == ["M-A", "M-B"]
    finally:
        consumer.shutdown()
    # Then the traced one has a SubBefore and a SubAfter (a success, return type SUCCESS) in
    # the message's region (a SubAfter's layout has none), and the one with TRACE_ON=false none
    got = sorted((r.trace_type.value, r.beans[0].msg_id, r.region_id) for r in records(cluster))
    assert got == [("SubAfter", "M-A", ""), ("SubBefore", "M-A", "HZ")]
    after = next(r for r in records(cluster) if r.trace_type is TraceType.SubAfter)
    assert (after.group, after.success, after.context_code) == ("lite-cg", True, 0)
    assert consumer.trace_dispatcher is not None


def test_a_lite_pull_consumer_without_enable_msg_trace_traces_nothing(
    cluster: FakeCluster,
) -> None:
    cluster.put("Orders", b"a", properties="UNIQ_KEY\x01M-A\x02")
    consumer = PullConsumer("lite-cg", cluster.namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe("Orders", "*")
    consumer.start()
    try:
        polled: list[MessageExt] = []
        for _ in range(40):
            polled += consumer.poll(0.5)
            if polled:
                break
        assert [m.msg_id for m in polled] == ["M-A"]
        assert consumer.trace_dispatcher is None and consumer._consume_hooks is None
    finally:
        consumer.shutdown()
    assert records(cluster) == []
