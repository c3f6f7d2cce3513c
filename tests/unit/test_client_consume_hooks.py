"""Consume hooks (RocketMQ's ConsumeMessageHook) on push and lite pull consumers, against an
in-memory cluster over loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from actors.client import (
    ConsumeContext,
    ConsumeFrom,
    ConsumeHook,
    ConsumeHookContext,
    ConsumeOrderlyStatus,
    ConsumeResult,
    MessageExt,
    MessageQueue,
    PullConsumer,
    PushConsumer,
)
from actors.client.testing import FakeCluster

pytestmark = pytest.mark.timeout(40)

_live: list[PushConsumer | PullConsumer] = []


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc
        while _live:
            _live.pop().shutdown()


def push(cluster: FakeCluster, group: str, **options) -> PushConsumer:
    options.setdefault("consume_from", ConsumeFrom.FIRST)
    options.setdefault("rebalance_interval", 60.0)
    options.setdefault("reconsume_delay", 0.05)
    consumer = PushConsumer(group, namesrv=cluster.namesrv, **options)
    _live.append(consumer)
    return consumer


class Recorder(ConsumeHook):
    """Records each call (method, context, thread and what ``after`` saw); ``wanted`` is set
    once ``after`` saw ``until(ctx)`` hold."""

    def __init__(self, until: Callable[[ConsumeHookContext], bool] = lambda _ctx: True) -> None:
        self.calls: list[tuple[str, ConsumeHookContext, int]] = []
        self.seen: list[tuple[object, bool, int, object]] = []
        """What ``after`` saw: (status, success, acked, exception)."""
        self.lock = threading.Lock()
        self.until = until
        self.wanted = threading.Event()

    def before(self, ctx: ConsumeHookContext) -> None:
        with self.lock:
            self.calls.append(("before", ctx, threading.get_ident()))

    def after(self, ctx: ConsumeHookContext) -> None:
        with self.lock:
            self.calls.append(("after", ctx, threading.get_ident()))
            self.seen.append((ctx.status, ctx.success, ctx.acked, ctx.exception))
        if self.until(ctx):
            self.wanted.set()


def test_hooks_wrap_each_listener_call_on_its_thread_with_its_outcome(
    cluster: FakeCluster,
) -> None:
    # Given one message, a listener that refuses it once and then accepts it, and a hook
    cluster.put("Orders", b"tricky", queue_id=2)
    listener_threads: list[int] = []

    def listener(msg: MessageExt) -> ConsumeResult:
        listener_threads.append(threading.get_ident())
        if msg.reconsume_times == 0:
            return ConsumeResult.RECONSUME_LATER
        return ConsumeResult.CONSUME_SUCCESS

    hook = Recorder(until=lambda ctx: ctx.success)
    consumer = push(cluster, "hooked")
    consumer.subscribe("Orders", "*", listener)
    consumer.register_consume_hook(hook)
    # When the consumer runs until the message was accepted
    consumer.start()
    assert hook.wanted.wait(10)
    # Then each listener call had a before and an after, on the listener's own thread
    assert [m for m, _, _ in hook.calls] == ["before", "after", "before", "after"]
    assert [t for _, _, t in hook.calls] == [t for t in listener_threads for _ in (1, 2)]
    # And the first saw RECONSUME_LATER, the second CONSUME_SUCCESS
    assert hook.seen == [
        (ConsumeResult.RECONSUME_LATER, False, 0, None),
        (ConsumeResult.CONSUME_SUCCESS, True, 1, None),
    ]
    first, last = hook.calls[0][1], hook.calls[-1][1]
    assert first.props["ConsumeContextType"] == "FAILED"
    assert last.props["ConsumeContextType"] == "SUCCESS"
    # And the context names the group, the queue, the message and the consumer's settings
    assert last.group == "hooked" and not last.orderly
    assert last.mq == MessageQueue(topic="Orders", broker_name="broker-a", queue_id=2)
    assert [m.body for m in last.messages] == [b"tricky"]
    assert last.properties["consumerGroup"] == "hooked"
    assert last.time_spent >= 0


def test_a_listener_exception_reaches_after(cluster: FakeCluster) -> None:
    # Given a listener that raises once
    cluster.put("Orders", b"boom", queue_id=0)
    calls: list[int] = []

    def listener(_msg: MessageExt) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("listener bug")

    hook = Recorder(until=lambda ctx: ctx.success)
    consumer = push(cluster, "exc")
    consumer.subscribe("Orders", "*", listener)
    consumer.register_consume_hook(hook)
    # When it runs until the message was accepted
    consumer.start()
    assert hook.wanted.wait(10)
    # Then after saw the exception, as a failure (EXCEPTION), then the success
    (status, success, acked, error), second = hook.seen
    assert status is ConsumeResult.RECONSUME_LATER and not success and acked == 0
    assert isinstance(error, RuntimeError) and str(error) == "listener bug"
    assert hook.calls[1][1].props["ConsumeContextType"] == "EXCEPTION"
    assert second == (ConsumeResult.CONSUME_SUCCESS, True, 1, None)


def test_a_batch_listener_s_call_is_one_hooked_call(cluster: FakeCluster) -> None:
    # Given three messages and a batch listener that accepts only the first two of its list
    for i in range(3):
        cluster.put("Orders", b"m%d" % i, queue_id=0)

    def on_batch(msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        if len(msgs) == 3:
            context.ack_index = 1
        return ConsumeResult.CONSUME_SUCCESS

    hook = Recorder(until=lambda ctx: ctx.messages[-1].reconsume_times > 0)
    consumer = push(cluster, "batch", consume_batch_size=3, pull_batch_size=3, consume_threads=1)
    consumer.subscribe("Orders", "*", on_batch, batch=True)
    consumer.register_consume_hook(hook)
    # When it runs until the refused one came again
    consumer.start()
    assert hook.wanted.wait(10)
    # Then the first call's hooks saw the list of three, a success acknowledging two
    first = hook.calls[0][1]
    assert [m.body for m in first.messages] == [b"m0", b"m1", b"m2"]
    assert hook.seen[0] == (ConsumeResult.CONSUME_SUCCESS, True, 2, None)
    # And the redelivery of the third was a call of its own
    assert [m.body for m in hook.calls[-1][1].messages] == [b"m2"]


def test_orderly_calls_report_orderly_statuses(cluster: FakeCluster) -> None:
    # Given an orderly consumer whose listener suspends its queue once
    cluster.put("Orders", b"first", queue_id=1)
    calls: list[int] = []

    def listener(_msg: MessageExt) -> ConsumeOrderlyStatus:
        calls.append(1)
        if len(calls) == 1:
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        return ConsumeOrderlyStatus.SUCCESS

    hook = Recorder(until=lambda ctx: ctx.success)
    consumer = push(cluster, "ordered", orderly=True, suspend_delay=0.05)
    consumer.subscribe("Orders", "*", listener)
    consumer.register_consume_hook(hook)
    # When it runs until the message was accepted
    consumer.start()
    assert hook.wanted.wait(10)
    # Then the hooks saw the orderly statuses
    assert hook.seen == [
        (ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT, False, 0, None),
        (ConsumeOrderlyStatus.SUCCESS, True, 1, None),
    ]
    assert hook.calls[0][1].orderly


def test_a_raising_consume_hook_does_not_stop_consumption(cluster: FakeCluster) -> None:
    # Given a hook that raises in both methods, registered before a recording one
    class Broken(ConsumeHook):
        def before(self, ctx: ConsumeHookContext) -> None:
            raise RuntimeError("before broke")

        def after(self, ctx: ConsumeHookContext) -> None:
            raise RuntimeError("after broke")

    cluster.put("Orders", b"fine", queue_id=3)
    got = threading.Event()
    hook = Recorder()
    consumer = push(cluster, "broken")
    consumer.subscribe("Orders", "*", lambda _m: got.set())
    consumer.register_consume_hook(Broken())
    consumer.register_consume_hook(hook)
    # When it runs
    consumer.start()
    # Then the listener got the message, accepted, and the other hook saw it
    assert got.wait(10) and hook.wanted.wait(10)
    assert hook.seen == [(ConsumeResult.CONSUME_SUCCESS, True, 1, None)]


def test_lite_poll_runs_both_hooks_in_the_polling_thread(cluster: FakeCluster) -> None:
    # Given four messages on two queues and a lite consumer with a hook
    for i in range(4):
        cluster.put("Orders", b"%d" % i, queue_id=i % 2)
    consumer = PullConsumer("lite", namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST)
    _live.append(consumer)
    consumer.subscribe("Orders", "*")
    hook = Recorder()
    consumer.register_consume_hook(hook)
    consumer.start()
    # When it polls everything
    got: list[MessageExt] = []
    while len(got) < 4:
        got.extend(consumer.poll(5))
    # Then each queue's messages had a before and an after, in this thread, as consumed
    assert hook.calls and all(t == threading.get_ident() for _, _, t in hook.calls)
    afters = [ctx for method, ctx, _ in hook.calls if method == "after"]
    assert sorted(m.body for ctx in afters for m in ctx.messages) == [b"0", b"1", b"2", b"3"]
    assert all(len({m.queue_id for m in ctx.messages}) == 1 for ctx in afters)
    assert all(ctx.mq is not None and ctx.mq.queue_id == ctx.messages[0].queue_id for ctx in afters)
    assert {s[:2] for s in hook.seen} == {(ConsumeResult.CONSUME_SUCCESS, True)}
