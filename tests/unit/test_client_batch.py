"""Batch listeners (RocketMQ's consumeMessageBatchMaxSize) against the in-memory cluster: list
sizes, ``ack_index``, RECONSUME_LATER and exceptions of a whole batch, broadcasting, orderly
batches in order, suspended and dead-lettered."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from actors.client import (
    ClientError,
    ConsumeContext,
    ConsumeFrom,
    ConsumeOrderlyStatus,
    ConsumeResult,
    MessageExt,
    MessageModel,
    MessageQueue,
    PushConsumer,
)
from actors.client.consume import BatchListener, ConsumeService
from actors.client.testing import FakeCluster
from runtime.remoting.codes import RequestCode
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(40)

_live: list[PushConsumer] = []


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders", "Refunds")) as fc:
        yield fc
        while _live:
            _live.pop().shutdown()


def consumer(cluster: FakeCluster, group: str, **options) -> PushConsumer:
    options.setdefault("consume_from", ConsumeFrom.FIRST)
    options.setdefault("rebalance_interval", 60.0)
    options.setdefault("commit_interval", 0.05)
    c = PushConsumer(group, namesrv=cluster.namesrv, **options)
    _live.append(c)
    return c


Verdict = ConsumeResult | ConsumeOrderlyStatus | None


class Batches:
    """A batch listener that records every call (bodies, reconsume times, the context's queue)
    and answers with ``decide(call_number, msgs, context)``."""

    def __init__(
        self, decide: Callable[[int, list[MessageExt], ConsumeContext], Verdict] | None = None
    ) -> None:
        self.decide = decide or (lambda _n, _m, _c: ConsumeResult.CONSUME_SUCCESS)
        self.calls: list[list[MessageExt]] = []
        self.times: list[list[int]] = []
        """Each call's reconsume_times, as they were at the call."""
        self.queues: list[MessageQueue | None] = []
        self.lock = threading.Lock()

    def __call__(self, msgs: list[MessageExt], context: ConsumeContext) -> Verdict:
        assert isinstance(msgs, list)
        with self.lock:
            self.calls.append(list(msgs))
            self.times.append([m.reconsume_times for m in msgs])
            self.queues.append(context.mq)
            n = len(self.calls)
        return self.decide(n, msgs, context)

    def bodies(self) -> list[list[bytes]]:
        with self.lock:
            return [[m.body for m in call] for call in self.calls]

    def count(self) -> int:
        with self.lock:
            return sum(len(call) for call in self.calls)


def put_many(cluster: FakeCluster, n: int, queue_id: int = 0, topic: str = "Orders") -> None:
    for i in range(n):
        cluster.put(topic, b"m%d" % i, queue_id=queue_id)


def send_backs(cluster: FakeCluster) -> list[dict[str, str]]:
    return [
        ext
        for code, ext in list(cluster.broker().requests)
        if code == RequestCode.CONSUMER_SEND_MSG_BACK
    ]


def test_consume_batch_size_is_rocketmq_s_range() -> None:
    # Given a batch size outside RocketMQ's [1, 1024], Then the consumer is refused
    for bad in (0, 1025):
        with pytest.raises(ClientError, match="consume_batch_size"):
            PushConsumer("g", "127.0.0.1:1", consume_batch_size=bad)
    # And the setting is reported under RocketMQ's name
    c = PushConsumer("g", "127.0.0.1:1", consume_batch_size=1024)
    assert c._settings()["consumeMessageBatchMaxSize"] == "1024"


def test_a_batch_listener_gets_lists_of_at_most_the_batch_size(cluster: FakeCluster) -> None:
    # Given 25 messages on queue 0 and 6 on queue 1, and a batch size of 4
    put_many(cluster, 25, queue_id=0)
    put_many(cluster, 6, queue_id=1)
    got = Batches()
    c = consumer(cluster, "batch-sizes", consume_batch_size=4)
    c.subscribe("Orders", "*", batch=True)(got)
    # When the consumer runs
    c.start()
    wait_until(lambda: got.count() == 31, what="all 31 messages")
    # Then every call got a list of 1 to 4 messages of one queue, in offset order, with the
    # queue in the context, and full lists of 4 were offered
    for call, mq in zip(got.calls, got.queues, strict=True):
        assert 1 <= len(call) <= 4
        assert mq is not None and {m.queue_id for m in call} == {mq.queue_id}
        offsets = [m.queue_offset for m in call]
        assert offsets == list(range(offsets[0], offsets[0] + len(call)))
    assert max(len(call) for call in got.calls) == 4
    # And each message came once, and the offsets were committed to the end
    offsets = sorted((m.queue_id, m.queue_offset) for call in got.calls for m in call)
    assert offsets == [(0, i) for i in range(25)] + [(1, i) for i in range(6)]
    wait_until(lambda: committed(cluster, "batch-sizes", 2) == [25, 6], what="the commits")


def committed(cluster: FakeCluster, group: str, queues: int) -> list[int]:
    return [cluster.committed(group, "Orders", q) for q in range(queues)]


def test_plain_listeners_still_get_one_message_per_call(cluster: FakeCluster) -> None:
    # Given a consumer with a batch size of 8, a batch listener for Orders and a plain one for
    # Refunds
    put_many(cluster, 5, topic="Orders")
    put_many(cluster, 5, topic="Refunds")
    batches = Batches()
    singles: list[MessageExt] = []
    c = consumer(cluster, "batch-mixed", consume_batch_size=8)
    c.subscribe("Orders", "*", batches, batch=True)

    @c.subscribe("Refunds")
    def on_refund(msg: MessageExt) -> None:
        singles.append(msg)

    # When it runs
    c.start()
    wait_until(lambda: batches.count() == 5 and len(singles) == 5, what="both topics")
    # Then the plain listener got MessageExt objects, the batch listener one list of all five
    assert all(isinstance(m, MessageExt) for m in singles)
    assert batches.bodies() == [[b"m%d" % i for i in range(5)]]


def test_ack_index_sends_back_only_the_messages_after_it(cluster: FakeCluster) -> None:
    # Given a broker that accepts send-backs, six messages, and a listener that reports only
    # the first three as consumed (ack_index 2)
    cluster.broker().accept_send_back = True
    put_many(cluster, 6)

    def decide(_n: int, _msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        context.ack_index = 2
        return ConsumeResult.CONSUME_SUCCESS

    got = Batches(decide)
    c = consumer(cluster, "batch-ack", consume_batch_size=6)
    c.subscribe("Orders", "*", got, batch=True)
    # When they are consumed as one batch
    c.start()
    wait_until(lambda: len(send_backs(cluster)) == 3, what="three send-backs")
    # Then exactly the last three went back to the broker
    [call] = got.calls
    assert [int(ext["offset"]) for ext in send_backs(cluster)] == [
        m.commit_log_offset for m in call[3:]
    ]
    # And, the broker having taken them, the offset moves past all six
    wait_until(lambda: committed(cluster, "batch-ack", 1) == [6], what="the commit")
    assert got.count() == 6


def test_ack_index_remainder_is_retried_locally_when_send_back_fails(
    cluster: FakeCluster,
) -> None:
    # Given a broker that refuses send-backs, and a listener that acknowledges only the first
    # of four messages the first time
    put_many(cluster, 4)

    def decide(n: int, _msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        if n == 1:
            context.ack_index = 0
        return ConsumeResult.CONSUME_SUCCESS

    got = Batches(decide)
    c = consumer(cluster, "batch-ack-local", consume_batch_size=4, reconsume_delay=0.05)
    c.subscribe("Orders", "*", got, batch=True)
    # When they are consumed
    c.start()
    wait_until(lambda: got.count() == 7, what="the batch and its redelivered rest")
    # Then the three unacknowledged ones came again, together, with reconsume_times raised
    assert got.bodies() == [[b"m0", b"m1", b"m2", b"m3"], [b"m1", b"m2", b"m3"]]
    assert got.times == [[0, 0, 0, 0], [1, 1, 1]]
    wait_until(lambda: committed(cluster, "batch-ack-local", 1) == [4], what="the commit")


def test_reconsume_later_sends_back_every_message_of_the_batch(cluster: FakeCluster) -> None:
    # Given a broker that accepts send-backs and a listener that refuses a batch of three
    # (ack_index is ignored with RECONSUME_LATER)
    cluster.broker().accept_send_back = True
    put_many(cluster, 3)

    def decide(_n: int, _msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        context.ack_index = 1
        return ConsumeResult.RECONSUME_LATER

    got = Batches(decide)
    c = consumer(cluster, "batch-later", consume_batch_size=3)
    c.subscribe("Orders", "*", got, batch=True)
    # When it is consumed
    c.start()
    # Then each message went back, one request each, and the offset moved past them
    wait_until(lambda: len(send_backs(cluster)) == 3, what="three send-backs")
    assert [int(ext["offset"]) for ext in send_backs(cluster)] == [
        m.commit_log_offset for m in got.calls[0]
    ]
    assert {ext["delayLevel"] for ext in send_backs(cluster)} == {"0"}
    wait_until(lambda: committed(cluster, "batch-later", 1) == [3], what="the commit")


def test_the_context_chooses_the_send_back_delay_level(cluster: FakeCluster) -> None:
    # Given a listener that acknowledges the first of three and asks for delay level 5
    cluster.broker().accept_send_back = True
    put_many(cluster, 3)

    def decide(_n: int, _msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        context.ack_index = 0
        context.delay_level = 5
        return ConsumeResult.CONSUME_SUCCESS

    got = Batches(decide)
    c = consumer(cluster, "batch-delay", consume_batch_size=3)
    c.subscribe("Orders", "*", got, batch=True)
    # When it is consumed
    c.start()
    # Then the two others went back at level 5, and the offset moved past all three
    wait_until(lambda: len(send_backs(cluster)) == 2, what="two send-backs")
    assert [ext["delayLevel"] for ext in send_backs(cluster)] == ["5", "5"]
    wait_until(lambda: committed(cluster, "batch-delay", 1) == [3], what="the commit")


def test_an_exception_redelivers_the_whole_batch(cluster: FakeCluster) -> None:
    # Given a broker that refuses send-backs, and a listener that raises on its first batch
    put_many(cluster, 3)

    def decide(n: int, _msgs: list[MessageExt], _context: ConsumeContext) -> ConsumeResult:
        if n == 1:
            raise RuntimeError("database down")
        return ConsumeResult.CONSUME_SUCCESS

    got = Batches(decide)
    c = consumer(cluster, "batch-raise", consume_batch_size=3, reconsume_delay=0.05)
    c.subscribe("Orders", "*", got, batch=True)
    # When it is consumed
    c.start()
    wait_until(lambda: len(got.calls) == 2, what="the redelivery")
    # Then the exception counted as RECONSUME_LATER for all three: each was offered to the
    # broker, then the batch came again locally, and the offset held until it succeeded
    assert got.bodies() == [[b"m0", b"m1", b"m2"]] * 2
    assert got.times == [[0, 0, 0], [1, 1, 1]]
    assert len(send_backs(cluster)) == 3
    wait_until(lambda: committed(cluster, "batch-raise", 1) == [3], what="the commit")


def test_broadcasting_retries_the_rest_locally_then_drops_it(
    cluster: FakeCluster, tmp_path
) -> None:
    # Given a broadcasting consumer whose listener acknowledges only the first message of
    # every batch, with one local retry allowed
    cluster.broker().accept_send_back = True
    put_many(cluster, 3)

    def decide(_n: int, _msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        context.ack_index = 0
        return ConsumeResult.CONSUME_SUCCESS

    got = Batches(decide)
    c = consumer(
        cluster,
        "batch-bc",
        model=MessageModel.BROADCASTING,
        consume_batch_size=3,
        max_reconsume_times=1,
        reconsume_delay=0.02,
        offset_store_dir=tmp_path,
    )
    c.subscribe("Orders", "*", got, batch=True)
    # When it runs
    c.start()
    mq = next(q for q in c.assignment() if q.queue_id == 0 and q.topic == "Orders")
    wait_until(lambda: c.committed(mq) == 3, what="the offset past the dropped messages")
    # Then m1 and m2 came once more, together (m1 then succeeded), and m2, having failed
    # 1 + max_reconsume_times times, was dropped; nothing went to the broker
    assert got.bodies() == [[b"m0", b"m1", b"m2"], [b"m1", b"m2"]]
    assert got.times == [[0, 0, 0], [1, 1]]
    assert send_backs(cluster) == []


def test_orderly_batches_come_in_queue_order(cluster: FakeCluster) -> None:
    # Given ten messages on queue 0 and an orderly consumer with a batch size of 3, whose
    # listener sets ack_index -1 (which orderly consumers ignore, as RocketMQ's have none)
    put_many(cluster, 10)

    def decide(_n: int, _msgs: list[MessageExt], context: ConsumeContext) -> Verdict:
        context.ack_index = -1
        return ConsumeOrderlyStatus.SUCCESS

    got = Batches(decide)
    c = consumer(cluster, "batch-ord", orderly=True, consume_batch_size=3)
    c.subscribe("Orders", "*", got, batch=True)
    # When it runs
    c.start()
    wait_until(lambda: got.count() == 10, what="all ten")
    # Then the lists hold at most three messages and, joined, are the queue in order, each
    # message once
    assert all(1 <= len(call) <= 3 for call in got.calls)
    assert [b for call in got.bodies() for b in call] == [b"m%d" % i for i in range(10)]
    wait_until(lambda: committed(cluster, "batch-ord", 1) == [10], what="the commit")


def test_an_orderly_exception_suspends_and_retries_the_whole_batch(cluster: FakeCluster) -> None:
    # Given four messages and an orderly listener (batch size 2) that raises on its first call
    put_many(cluster, 4)

    def decide(n: int, _msgs: list[MessageExt], _context: ConsumeContext) -> Verdict:
        if n == 1:
            raise RuntimeError("ledger locked")
        return None

    got = Batches(decide)
    c = consumer(cluster, "batch-ord-raise", orderly=True, consume_batch_size=2, suspend_delay=0.05)
    c.subscribe("Orders", "*", got, batch=True)
    # When it runs
    c.start()
    wait_until(lambda: committed(cluster, "batch-ord-raise", 1) == [4], what="the commit")
    # Then the failed list came again, whole and first, with reconsume_times raised, and
    # nothing behind it was offered before it succeeded
    assert got.bodies() == [[b"m0", b"m1"], [b"m0", b"m1"], [b"m2", b"m3"]]
    assert got.times == [[0, 0], [1, 1], [0, 0]]


def test_an_orderly_listener_chooses_how_long_its_queue_waits(cluster: FakeCluster) -> None:
    # Given an orderly consumer whose default suspension is a minute, and a listener that
    # suspends its first list asking for 50 ms
    put_many(cluster, 2)

    def decide(n: int, _msgs: list[MessageExt], context: ConsumeContext) -> Verdict:
        if n == 1:
            context.suspend_delay = 0.05
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        return None

    got = Batches(decide)
    c = consumer(cluster, "batch-ord-wait", orderly=True, consume_batch_size=2, suspend_delay=60)
    c.subscribe("Orders", "*", got, batch=True)
    # When it runs, Then the list comes again after the listener's wait, not the minute
    c.start()
    wait_until(lambda: committed(cluster, "batch-ord-wait", 1) == [2], what="the commit")
    assert got.bodies() == [[b"m0", b"m1"], [b"m0", b"m1"]]


def test_orderly_suspend_retries_the_whole_batch_then_dead_letters_it(
    cluster: FakeCluster,
) -> None:
    # Given a broker that accepts send-backs, two messages and then a third, and an orderly
    # listener that suspends every batch holding m0, with one retry allowed
    cluster.broker().accept_send_back = True
    put_many(cluster, 2)

    def decide(_n: int, msgs: list[MessageExt], context: ConsumeContext) -> Verdict:
        context.ack_index = 0  # orderly consumers ignore it
        if msgs[0].body == b"m0":
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        return ConsumeOrderlyStatus.SUCCESS

    got = Batches(decide)
    c = consumer(
        cluster,
        "batch-ord-dlq",
        orderly=True,
        consume_batch_size=2,
        max_reconsume_times=1,
        suspend_delay=0.05,
    )
    c.subscribe("Orders", "*", got, batch=True)
    c.start()
    # When the batch fails twice
    wait_until(lambda: len(send_backs(cluster)) == 2, what="the dead-letter sends")
    # Then it was offered again as a whole after the suspension, reconsume_times raised
    assert got.bodies() == [[b"m0", b"m1"], [b"m0", b"m1"]]
    assert got.times == [[0, 0], [1, 1]]
    # And both messages went to the dead-letter queue (delay level -1); the queue moved on
    assert {ext["delayLevel"] for ext in send_backs(cluster)} == {"-1"}
    wait_until(lambda: committed(cluster, "batch-ord-dlq", 1) == [2], what="the commit")
    cluster.put("Orders", b"m2", queue_id=0)
    wait_until(lambda: got.count() == 5, what="the next message")
    assert got.bodies()[-1] == [b"m2"]


def test_a_call_holds_consecutive_messages_of_one_batch_listener() -> None:
    # Given batch listeners for A and C, a plain one for B, a batch size of 2, and messages of
    # one retry queue whose original topics alternate (as %RETRY%<group> mixes topics)
    def batch_a(msgs: list[MessageExt], context: ConsumeContext) -> None: ...

    def batch_c(msgs: list[MessageExt], context: ConsumeContext) -> None: ...

    def plain_b(msg: MessageExt) -> None: ...

    listeners = {"A": BatchListener(batch_a), "B": plain_b, "C": BatchListener(batch_c)}
    service = ConsumeService(SimpleNamespace(patched=True), listeners, consume_batch_size=2)  # type: ignore[arg-type]
    topics = ["A", "A", "A", "B", "B", "A", "C", "C", "A"]
    msgs = [
        MessageExt("%RETRY%g", b"", f"RETRY_TOPIC\x01{t}\x02", queue_offset=i)
        for i, t in enumerate(topics)
    ]
    # When the service cuts them into listener calls
    calls = [(listener, [m.queue_offset for m in call]) for listener, call in service._calls(msgs)]
    # Then each call is one listener's run of consecutive messages, at most 2 long, in order,
    # and the plain listener gets one message per call
    assert calls == [
        (listeners["A"], [0, 1]),
        (listeners["A"], [2]),
        (plain_b, [3]),
        (plain_b, [4]),
        (listeners["A"], [5]),
        (listeners["C"], [6, 7]),
        (listeners["A"], [8]),
    ]
    # And each message has its original topic back
    assert [m.topic for m in msgs] == topics


def test_a_context_listener_gets_one_message_and_chooses_its_delay_level(
    cluster: FakeCluster,
) -> None:
    # Given a plain listener that takes a context (subscribe(..., context=True)), a batch size
    # of 3, and a listener that sends m1 back at delay level 7
    cluster.broker().accept_send_back = True
    put_many(cluster, 3)
    seen: list[tuple[bytes, MessageQueue | None]] = []

    def on_message(msg: MessageExt, context: ConsumeContext) -> ConsumeResult:
        seen.append((msg.body, context.mq))
        if msg.body == b"m1":
            context.delay_level = 7
            return ConsumeResult.RECONSUME_LATER
        return ConsumeResult.CONSUME_SUCCESS

    c = consumer(cluster, "context-delay", consume_batch_size=3)
    c.subscribe("Orders", "*", on_message, context=True)
    # When it is consumed
    c.start()
    # Then it was called once per message, with the queue in its context, and m1 went back at 7
    wait_until(lambda: len(send_backs(cluster)) == 1, what="the send-back")
    assert [ext["delayLevel"] for ext in send_backs(cluster)] == ["7"]
    wait_until(lambda: committed(cluster, "context-delay", 1) == [3], what="the commit")
    assert sorted(body for body, _mq in seen) == [b"m0", b"m1", b"m2"]
    assert {mq.queue_id for _body, mq in seen if mq is not None} == {0}


def test_an_orderly_context_listener_chooses_how_long_its_queue_waits(
    cluster: FakeCluster,
) -> None:
    # Given an orderly consumer whose default suspension is a minute, and a context listener
    # that suspends the first message asking for 50 ms
    put_many(cluster, 2)
    calls: list[bytes] = []

    def on_message(msg: MessageExt, context: ConsumeContext) -> Verdict:
        calls.append(msg.body)
        if len(calls) == 1:
            context.suspend_delay = 0.05
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        return None

    c = consumer(cluster, "context-ord-wait", orderly=True, suspend_delay=60)
    c.subscribe("Orders", "*", on_message, context=True)
    # When it runs, Then m0 comes again after the listener's wait, not the minute
    c.start()
    wait_until(lambda: committed(cluster, "context-ord-wait", 1) == [2], what="the commit")
    assert calls == [b"m0", b"m0", b"m1"]
