"""Message traces of producers and push consumers (``enable_msg_trace=True``): the trace hooks
on their own, and whole clients against an in-memory cluster over loopback, whose trace topic
then holds RocketMQ's records."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from actors.client import (
    CommunicationMode,
    ConsumeFrom,
    ConsumeHookContext,
    ConsumeResult,
    LocalTransactionState,
    Message,
    MessageExt,
    MessageQueue,
    MessageType,
    Producer,
    PushConsumer,
    SendContext,
    SendResult,
    SendStatus,
    TransactionProducer,
)
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from actors.client.trace_data import TraceContext, TraceType, decode
from actors.client.trace_hooks import ConsumeTraceHook, SendTraceHook
from runtime.remoting.codes import ResponseCode
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(40)
REPO = pathlib.Path(__file__).resolve().parents[2]
MQ = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=1)


class Appended:
    """A stand-in dispatcher: keeps what the hooks append."""

    trace_topic = "RMQ_SYS_TRACE_TOPIC"

    def __init__(self) -> None:
        self.events: list[TraceContext] = []

    def append(self, ctx: TraceContext) -> bool:
        self.events.append(ctx)
        return True


def sent(status: SendStatus = SendStatus.SEND_OK) -> SendResult:
    return SendResult(status=status, msg_id="UNIQ1", offset_msg_id="OFF1", queue=MQ, queue_offset=3)


def send_through(hook: SendTraceHook, msg: object, result: SendResult | None, **kw) -> None:
    ctx = SendContext("pg", msg, CommunicationMode.SYNC, "10.0.0.1", **kw)  # type: ignore[arg-type]
    hook.before(ctx)
    ctx.send_result, ctx.broker_addr = result, "10.0.0.2:10911"
    hook.after(ctx)


def test_the_send_hook_records_a_pub_as_rocketmq_does() -> None:
    events = Appended()
    hook = SendTraceHook(events)  # type: ignore[arg-type]
    # Given sends: stored, stored without its flush, failed, to the trace topic, a half message
    send_through(hook, Message("Orders", b"abc", tags="paid", keys=["k1", "k2"]), sent())
    send_through(hook, Message("Orders", b"x"), sent(SendStatus.FLUSH_DISK_TIMEOUT))
    send_through(hook, Message("Orders", b"x"), None)
    send_through(hook, Message("RMQ_SYS_TRACE_TOPIC", b"x"), sent())
    send_through(hook, Message("Orders", b"x"), sent(), msg_type=MessageType.TRANSACTION_HALF)
    # Then Pubs of the answered sends only: SEND_OK a success, FLUSH_DISK_TIMEOUT a failure
    assert [(e.trace_type, e.success) for e in events.events] == [
        (TraceType.Pub, True),
        (TraceType.Pub, False),
        (TraceType.Pub, True),
    ]
    first = events.events[0]
    bean = first.beans[0]
    assert (first.group, first.region_id) == ("pg", "DefaultRegion")
    assert (bean.topic, bean.tags, bean.keys, bean.body_length) == ("Orders", "paid", "k1 k2", 3)
    assert (bean.msg_id, bean.offset_msg_id, bean.store_host) == (
        "UNIQ1",
        "OFF1",
        "10.0.0.2:10911",
    )
    assert events.events[1].beans[0].tags is None
    assert events.events[2].beans[0].msg_type == "Trans_Msg_Half"


def test_the_consume_hook_records_sub_before_and_sub_after_per_message() -> None:
    events = Appended()
    hook = ConsumeTraceHook(events)  # type: ignore[arg-type]
    # Given a listener call of two messages, one with TRACE_ON=false, that raised
    traced = MessageExt("Orders", b"a", "UNIQ_KEY\x01M1\x02KEYS\x01k\x02", reconsume_times=2)
    off = MessageExt("Orders", b"b", "UNIQ_KEY\x01M2\x02TRACE_ON\x01false\x02")
    ctx = ConsumeHookContext("cg", MQ, [traced, off], {})
    hook.before(ctx)
    ctx.success, ctx.props["ConsumeContextType"] = False, "EXCEPTION"
    hook.after(ctx)
    # Then a SubBefore and a SubAfter of the traced message, sharing a request id
    before, after = events.events
    assert (before.trace_type, after.trace_type) == (TraceType.SubBefore, TraceType.SubAfter)
    assert before.request_id == after.request_id
    assert [(b.msg_id, b.keys, b.retry_times) for b in before.beans] == [("M1", "k", 2)]
    assert (after.group, after.success, after.context_code) == ("cg", False, 2)


def test_trace_records_name_topics_and_groups_without_their_namespace() -> None:
    events = Appended()
    send_hook = SendTraceHook(events)  # type: ignore[arg-type]
    consume_hook = ConsumeTraceHook(events)  # type: ignore[arg-type]
    # Given a namespaced producer's send (its wire group) and a consumer's call (wire group,
    # a message whose topic still carries the namespace, as a hook of another client sees it)
    ctx = SendContext("tenantA%pg", Message("Orders", b"x"), CommunicationMode.SYNC, "10.0.0.1")
    send_hook.before(ctx)
    ctx.send_result, ctx.broker_addr = sent(), "10.0.0.2:10911"
    send_hook.after(ctx)
    wired = MessageExt("tenantA%Orders", b"a", "UNIQ_KEY\x01M1\x02")
    consume_hook.before(ConsumeHookContext("tenantA%cg", MQ, [wired], {}))
    # Then the records name them as RocketMQ's trace hooks do (NamespaceUtil.withoutNamespace)
    pub, sub = events.events
    assert (pub.group, pub.beans[0].topic) == ("pg", "Orders")
    assert (sub.group, sub.beans[0].topic) == ("cg", "Orders")


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        fc.broker().accept_send_back = True
        yield fc


def records(cluster: FakeCluster, topic: str = "RMQ_SYS_TRACE_TOPIC") -> list[TraceContext]:
    out: list[TraceContext] = []
    for stored in cluster.stored(topic):
        [msg] = decode_messages(stored.record, "broker-a")
        out.extend(decode(msg.body.decode()))
    return out


def test_a_traced_producer_s_sends_are_in_the_trace_topic_when_it_shut_down(
    cluster: FakeCluster,
) -> None:
    # Given a traced producer
    with Producer("pg", cluster.namesrv, enable_msg_trace=True) as producer:
        assert producer.trace_dispatcher is not None
        # When it sends sync, async, oneway and a batch
        a = producer.send(Message("Orders", b"a", keys="order-1"))
        b = producer.send_async(Message("Orders", b"b")).result(10)
        producer.send_oneway(Message("Orders", b"c"))
        batch = producer.send_batch([Message("Orders", b"d"), Message("Orders", b"e")])
    # Then, once it shut down, a Pub of each answered send is stored (oneway: none)
    pubs = [r for r in records(cluster) if r.trace_type is TraceType.Pub]
    assert sorted(p.beans[0].msg_id for p in pubs) == sorted([a.msg_id, b.msg_id, batch.msg_id])
    assert all(p.success and p.group == "pg" for p in pubs)


def test_a_traced_transaction_producer_traces_its_half_message_and_its_end(
    cluster: FakeCluster,
) -> None:
    # Given a traced transaction producer
    with TransactionProducer(
        "txg",
        cluster.namesrv,
        execute=lambda _m, _a: LocalTransactionState.ROLLBACK_MESSAGE,
        check=lambda _m: LocalTransactionState.ROLLBACK_MESSAGE,
        enable_msg_trace=True,
    ) as producer:
        # When it sends a message in a transaction
        r = producer.send_message_in_transaction(Message("Orders", b"tx", tags="t", keys="k"))
    # Then the half message's Pub is traced with its type, then the END_TRANSACTION it sent
    # (RocketMQ's EndTransactionTraceHookImpl: Trans_msg_Commit whatever the state)
    pub, end = records(cluster)
    assert (pub.beans[0].msg_id, pub.beans[0].msg_type) == (r.msg_id, "Trans_Msg_Half")
    assert (end.trace_type, end.group, end.region_id) == (
        TraceType.EndTransaction,
        "txg",
        "DefaultRegion",
    )
    bean = end.beans[0]
    assert (bean.msg_id, bean.transaction_id, bean.topic, bean.tags, bean.keys) == (
        r.msg_id,
        r.msg_id,
        "Orders",
        "t",
        "k",
    )
    assert (bean.transaction_state, bean.from_transaction_check) == ("ROLLBACK_MESSAGE", False)
    assert (bean.msg_type, bean.store_host) == ("Trans_msg_Commit", cluster.broker().address)


def test_a_failed_send_is_not_traced_and_tracing_does_not_change_its_error(
    cluster: FakeCluster,
) -> None:
    # Given a traced producer and a broker refusing the next send (not retried)
    cluster.run(lambda: cluster.broker().fail_sends.append(ResponseCode.MESSAGE_ILLEGAL))
    with Producer("pg", cluster.namesrv, enable_msg_trace=True) as producer:
        # When it sends, Then the caller gets the broker's error
        with pytest.raises(Exception, match="injected"):
            producer.send(Message("Orders", b"a"))
        ok = producer.send(Message("Orders", b"b"))
    # And only the stored send is traced
    assert [r.beans[0].msg_id for r in records(cluster)] == [ok.msg_id]


def test_a_traced_push_consumer_traces_each_listener_call(cluster: FakeCluster) -> None:
    # Given two messages, and a traced consumer that accepts the first and fails the second
    first = cluster.put("Orders", b"ok", properties="UNIQ_KEY\x01M-OK\x02")
    cluster.put("Orders", b"bad", properties="UNIQ_KEY\x01M-BAD\x02", queue_id=1)
    seen = threading.Event()

    def listener(msg: MessageExt) -> ConsumeResult:
        if msg.msg_id == "M-BAD":
            seen.set()
            return ConsumeResult.RECONSUME_LATER
        return ConsumeResult.CONSUME_SUCCESS

    consumer = PushConsumer(
        "cg",
        cluster.namesrv,
        consume_from=ConsumeFrom.FIRST,
        enable_msg_trace=True,
        commit_interval=0.2,
    )
    consumer.subscribe("Orders", "*", listener)
    consumer.start()
    # When both were consumed and the consumer shut down
    try:
        wait_until(lambda: seen.is_set() and cluster.committed("cg", "Orders", 0) > first)
    finally:
        consumer.shutdown()
    # Then each got a SubBefore and a SubAfter, the failure with FAILED's code (4)
    after = {
        r.beans[0].msg_id: (r.success, r.context_code, r.group)
        for r in records(cluster)
        if r.trace_type is TraceType.SubAfter
    }
    assert after == {"M-OK": (True, 0, "cg"), "M-BAD": (False, 4, "cg")}
    befores = [r.beans[0].msg_id for r in records(cluster) if r.trace_type is TraceType.SubBefore]
    assert sorted(befores) == ["M-BAD", "M-OK"]


def test_without_enable_msg_trace_nothing_is_registered_or_started(cluster: FakeCluster) -> None:
    # Given a producer and a consumer without tracing
    with Producer("pg", cluster.namesrv) as producer:
        # Then no hook is registered and no trace thread runs
        producer.send(Message("Orders", b"a"))
        assert producer._send_hooks == () and producer.trace_dispatcher is None
    consumer = PushConsumer("cg", cluster.namesrv)
    consumer.subscribe("Orders", "*", lambda _m: ConsumeResult.CONSUME_SUCCESS)
    consumer.start()
    try:
        assert consumer._consume_hooks is None or consumer._consume_hooks.hooks == ()
    finally:
        consumer.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("actormq-trace-")]
    assert records(cluster) == []


PATCHED_PROGRAM = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()

    import sys, threading
    import gevent.event
    from actors.client import ConsumeFrom, ConsumeResult, Message, Producer, PushConsumer

    ns = sys.argv[1]
    done = gevent.event.Event()
    consumer = PushConsumer("patched-cg", namesrv=ns, consume_from=ConsumeFrom.FIRST,
                            enable_msg_trace=True)
    consumer.subscribe("Orders", "*", lambda m: (done.set(), ConsumeResult.CONSUME_SUCCESS)[1])
    consumer.start()
    with Producer("patched-pg", namesrv=ns, enable_msg_trace=True) as producer:
        print(producer.send(Message("Orders", b"traced")).msg_id)
    assert done.wait(20)
    consumer.shutdown()
    print("OK", len([t for t in threading.enumerate() if t.name == "actormq-client-hub"]))
    """
)


def test_traces_inside_a_monkey_patched_gevent_program(cluster: FakeCluster) -> None:
    # Given a program that monkey-patches first thing (the dispatcher's worker: a greenlet)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # When a traced producer sends and a traced consumer consumes
    proc = subprocess.run(
        [sys.executable, "-c", PATCHED_PROGRAM, cluster.namesrv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it completes, and the trace topic holds the message's Pub, SubBefore and SubAfter
    assert proc.returncode == 0, proc.stderr[-3000:]
    msg_id, ok = proc.stdout.strip().splitlines()[-2:]
    assert ok == "OK 0"
    kinds = sorted(r.trace_type.value for r in records(cluster) if r.beans[0].msg_id == msg_id)
    assert kinds == ["Pub", "SubAfter", "SubBefore"]
