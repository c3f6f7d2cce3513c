"""Send hooks (RocketMQ's SendMessageHook) against an in-memory cluster over loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from loguru import logger

from actors.client import (
    BrokerError,
    ClientError,
    CommunicationMode,
    LocalTransactionState,
    Message,
    MessageQueue,
    MessageTooLargeError,
    MessageType,
    Producer,
    SendContext,
    SendHook,
    SendStatus,
    TransactionProducer,
)
from actors.client.hooks import FailureLog
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from runtime.remoting.codes import ResponseCode

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a", "broker-b"), topics=("Orders",)) as fc:
        yield fc


@pytest.fixture
def producer(cluster: FakeCluster) -> Iterator[Producer]:
    with Producer("orders-producer", namesrv=cluster.namesrv) as p:
        yield p


class Recorder(SendHook):
    """Records each call: (method, the context, the thread it ran on); ``after`` also copies
    what the context said at that moment, and sets ``ended``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, SendContext, threading.Thread]] = []
        self.outcomes: list[tuple[object, object, object, object]] = []
        self.ended = threading.Event()

    def before(self, ctx: SendContext) -> None:
        self.calls.append(("before", ctx, threading.current_thread()))

    def after(self, ctx: SendContext) -> None:
        self.calls.append(("after", ctx, threading.current_thread()))
        self.outcomes.append((ctx.send_result, ctx.exception, ctx.mq, ctx.broker_addr))
        self.ended.set()

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.calls]


def fail_everywhere(cluster: FakeCluster, code: int) -> None:
    for name in ("broker-a", "broker-b"):
        cluster.run(lambda n=name: cluster.broker(n).fail_sends.append(code))


def test_a_sync_send_calls_before_and_after_in_the_caller_s_thread(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given a producer with a hook
    hook = Recorder()
    producer.register_send_hook(hook)
    msg = Message("Orders", b"hooked")
    # When a message is sent
    result = producer.send(msg)
    # Then before and after ran once each, with one context, in the sending thread
    assert hook.methods() == ["before", "after"]
    [(_, ctx, t1), (_, ctx2, t2)] = hook.calls
    assert ctx is ctx2 and t1 is t2 is threading.current_thread()
    # And the context names the send and its outcome
    assert ctx.group == "orders-producer" and ctx.message is msg
    assert ctx.mode is CommunicationMode.SYNC and ctx.msg_type is MessageType.NORMAL
    assert ctx.born_host == producer.config.client_ip
    assert ctx.send_result is result and ctx.exception is None
    assert ctx.mq == result.queue
    assert ctx.broker_addr == cluster.broker(result.queue.broker_name).address
    assert ctx.time_spent > 0


def test_before_may_add_a_property_that_is_sent(cluster: FakeCluster, producer: Producer) -> None:
    # Given a tracing hook that stamps a trace id on every message
    class Tracing(SendHook):
        def before(self, ctx: SendContext) -> None:
            assert isinstance(ctx.message, Message)
            ctx.message.properties = {**ctx.message.properties, "traceId": "t-1"}

    producer.register_send_hook(Tracing())
    # When a message is sent
    producer.send(Message("Orders", b"traced", properties={"r": "eu"}))
    # Then the broker stored it with the trace id
    [stored] = [decode_messages(s.record, "?")[0] for s in cluster.stored("Orders")]
    assert stored.properties == {"r": "eu", "traceId": "t-1"}


def test_a_failed_sync_send_gives_after_the_error_the_caller_gets(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given every broker refuses the next send with an error that is not retried
    producer.send(Message("Orders", b"warm-up"))
    fail_everywhere(cluster, ResponseCode.MESSAGE_ILLEGAL)
    hook = Recorder()
    producer.register_send_hook(hook)
    # When a message is sent
    with pytest.raises(BrokerError) as raised:
        producer.send(Message("Orders", b"refused"))
    # Then after saw that very error, no result, and the broker that refused it
    assert hook.methods() == ["before", "after"]
    [(result, error, mq, address)] = hook.outcomes
    assert result is None and error is raised.value
    assert mq is not None and address == cluster.broker(mq.broker_name).address


def test_after_sees_the_retried_send_once_with_its_final_queue(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given broker-a answers the next send with SYSTEM_BUSY (retried on broker-b)
    producer.send(Message("Orders", b"warm-up"))
    cluster.run(lambda: cluster.broker("broker-a").fail_sends.append(ResponseCode.SYSTEM_BUSY))
    hook = Recorder()
    producer.register_send_hook(hook)
    # When the next send goes to broker-a first
    result = producer.send(Message("Orders", b"retried"))
    # Then the hooks saw one send, ending on broker-b
    assert hook.methods() == ["before", "after"]
    assert result.queue.broker_name == "broker-b"
    assert hook.outcomes == [(result, None, result.queue, cluster.broker("broker-b").address)]


def test_an_async_send_calls_after_on_the_callback_thread_before_the_callback(
    producer: Producer,
) -> None:
    # Given a producer with a hook, and a callback that records when it ran
    hook = Recorder()
    producer.register_send_hook(hook)
    called = threading.Event()

    def callback(_result: object, _error: object) -> None:
        hook.calls.append(("callback", None, threading.current_thread()))  # type: ignore[arg-type]
        called.set()

    # When a message is sent asynchronously
    future = producer.send_async(Message("Orders", b"async"), callback)
    result = future.result(timeout=5)
    assert called.wait(5)
    # Then before ran in the caller's thread; after on the callback thread, before the callback
    assert hook.methods() == ["before", "after", "callback"]
    (_, ctx, caller), (_, _, finisher), _ = hook.calls
    assert caller is threading.current_thread()
    assert finisher.name.startswith("actormq-callback")
    assert ctx.mode is CommunicationMode.ASYNC
    assert ctx.send_result is result and ctx.exception is None and ctx.mq == result.queue


def test_a_failed_async_send_gives_after_the_error(
    cluster: FakeCluster, producer: Producer
) -> None:
    # Given every broker refuses the next send
    producer.send(Message("Orders", b"warm-up"))
    fail_everywhere(cluster, ResponseCode.MESSAGE_ILLEGAL)
    hook = Recorder()
    producer.register_send_hook(hook)
    # When a message is sent asynchronously
    future = producer.send_async(Message("Orders", b"refused"))
    # Then the future fails, and after (which ran before it failed) saw the same error
    error = future.exception(timeout=5)
    assert isinstance(error, BrokerError)
    assert hook.ended.is_set()
    assert hook.outcomes[0][:2] == (None, error)


def test_a_oneway_send_calls_after_once_written(cluster: FakeCluster, producer: Producer) -> None:
    # Given a producer with a hook
    hook = Recorder()
    producer.register_send_hook(hook)
    mq = MessageQueue(topic="Orders", broker_name="broker-b", queue_id=1)
    # When a message is sent one way to a given queue
    producer.send_oneway(Message("Orders", b"oneway"), queue=mq)
    # Then before already knew the queue; after has no result (there is no answer) and no error
    assert hook.methods() == ["before", "after"]
    ctx = hook.calls[0][1]
    assert ctx.mode is CommunicationMode.ONEWAY
    assert hook.outcomes == [(None, None, mq, cluster.broker("broker-b").address)]


def test_a_batch_and_a_delayed_message_say_what_they_are(producer: Producer) -> None:
    # Given a producer with a hook
    hook = Recorder()
    producer.register_send_hook(hook)
    batch = [Message("Orders", b"b%d" % i) for i in range(3)]
    # When a batch and a delayed message are sent
    batch_result = producer.send_batch(batch)
    producer.send(Message("Orders", b"later", delay_level=2))
    # Then the batch's context holds the list, and the delayed one says DELAY
    first, second = hook.calls[0][1], hook.calls[2][1]
    assert first.message == batch and first.send_result is batch_result
    assert first.msg_type is MessageType.NORMAL
    assert second.msg_type is MessageType.DELAY


def test_a_message_refused_by_the_client_still_gets_its_after(producer: Producer) -> None:
    # Given a producer with a hook and a limit of 10 bytes
    producer.max_message_size = 10
    hook = Recorder()
    producer.register_send_hook(hook)
    # When a larger message is sent
    with pytest.raises(MessageTooLargeError) as raised:
        producer.send(Message("Orders", b"x" * 11))
    # Then after ran with that error (every before has its after)
    assert hook.methods() == ["before", "after"]
    assert hook.outcomes == [(None, raised.value, None, None)]


def test_a_raising_hook_is_logged_and_the_send_goes_on(producer: Producer) -> None:
    # Given a hook that raises in both methods, registered before a recording one
    class Broken(SendHook):
        def before(self, ctx: SendContext) -> None:
            raise RuntimeError("before broke")

        def after(self, ctx: SendContext) -> None:
            raise RuntimeError("after broke")

    broken, hook = Broken(), Recorder()
    producer.register_send_hook(broken)
    producer.register_send_hook(hook)
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(str(m)), level="WARNING", format="{message}")
    try:
        # When messages are sent, sync and async
        result = producer.send(Message("Orders", b"still sent"))
        async_result = producer.send_async(Message("Orders", b"also sent")).result(5)
    finally:
        logger.remove(sink)
    # Then both were stored, the other hook saw both sends
    assert result.status is SendStatus.SEND_OK and async_result.status is SendStatus.SEND_OK
    assert hook.methods() == ["before", "after", "before", "after"]
    # And each failing method was logged (once: the second failure is within the minute)
    assert sum("before broke" in line for line in logged) == 1
    assert sum("after broke" in line for line in logged) == 1


def test_failures_are_logged_once_a_minute_per_hook_and_method() -> None:
    # Given a failure log
    failures = FailureLog(interval=60.0)
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(str(m)), level="WARNING", format="{message}")
    hook_a, hook_b = object(), object()
    try:
        # When one hook's before fails three times, its after once, another hook's before once
        for _ in range(3):
            failures.failed(hook_a, "before", RuntimeError("a"))
        failures.failed(hook_a, "after", RuntimeError("a"))
        failures.failed(hook_b, "before", RuntimeError("b"))
        # And the minute has passed for hook_a's before
        failures._last[(id(hook_a), "before")] -= 61.0
        failures.failed(hook_a, "before", RuntimeError("a"))
    finally:
        logger.remove(sink)
    # Then four lines: one per hook and method, and the next one counts the two unlogged
    assert len(logged) == 4
    assert "2 more failures not logged" in logged[-1]


def test_unregistered_hooks_and_objects_that_are_no_hooks(producer: Producer) -> None:
    # Given a hook registered then unregistered
    hook = Recorder()
    producer.register_send_hook(hook)
    producer.unregister_send_hook(hook)
    # When a message is sent, Then it is not called
    producer.send(Message("Orders", b"plain"))
    assert hook.calls == []
    # And an object without before/after is refused
    with pytest.raises(TypeError):
        producer.register_send_hook(object())  # type: ignore[arg-type]


def test_a_transaction_s_half_message_is_hooked(cluster: FakeCluster) -> None:
    # Given a transaction producer with a hook
    hook = Recorder()
    committed: list[bytes] = []

    def execute(msg: Message, _arg: object) -> LocalTransactionState:
        committed.append(msg.body_bytes())
        return LocalTransactionState.COMMIT_MESSAGE

    with TransactionProducer(
        "tx", namesrv=cluster.namesrv, execute=execute, check=lambda _m: None
    ) as producer:
        producer.register_send_hook(hook)
        # When a message is sent in a transaction
        result = producer.send_message_in_transaction(Message("Orders", b"half"))
    # Then the hooks saw the half message's send, before the local transaction ran
    assert committed == [b"half"]
    assert hook.methods() == ["before", "after"]
    ctx = hook.calls[0][1]
    assert ctx.msg_type is MessageType.TRANSACTION_HALF and ctx.mode is CommunicationMode.SYNC
    assert ctx.send_result is not None and ctx.send_result.msg_id == result.msg_id


def test_an_async_send_refused_for_want_of_room_gets_its_after(cluster: FakeCluster) -> None:
    # Given a producer that allows one async send in flight, and brokers that do not answer
    with Producer("p", namesrv=cluster.namesrv, max_async_sends=1) as producer:
        producer.send(Message("Orders", b"warm-up"))
        for b in cluster.brokers.values():
            cluster.run(lambda b=b: setattr(b, "silent_sends", 1))
        hook = Recorder()
        producer.register_send_hook(hook)
        first = producer.send_async(Message("Orders", b"unanswered"), timeout=0.5)
        # When a second one finds no room within its timeout
        second = producer.send_async(Message("Orders", b"no room"), timeout=0.05)
        error = second.exception(timeout=5)
        # Then its after ran (on the callback thread) with that error, before the future failed
        assert isinstance(error, ClientError) and "no room" in str(error)
        refused = [o for o in hook.outcomes if o[1] is error]
        assert len(refused) == 1
        assert first.exception(timeout=5) is not None
