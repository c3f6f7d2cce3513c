"""Failed messages against the in-memory cluster: what a push consumer sends back, when it
retries locally instead, what broadcasting does; orderly queue locks; message validation of
delays and filters."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

from actors.client import (
    ClientError,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageInvalidError,
    MessageModel,
    MessageQueue,
    PushConsumer,
    TransactionProducer,
)
from actors.client.outgoing import prepare, prepare_batch
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from runtime.remoting import properties as P
from runtime.remoting.codes import RequestCode
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(40)

_live: list[PushConsumer] = []


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc
        while _live:
            _live.pop().shutdown()


def consumer(cluster: FakeCluster, group: str, **options) -> PushConsumer:
    options.setdefault("consume_from", ConsumeFrom.FIRST)
    options.setdefault("rebalance_interval", 60.0)
    c = PushConsumer(group, namesrv=cluster.namesrv, **options)
    _live.append(c)
    return c


class Attempts:
    def __init__(self, fail: Callable[[object], bool]) -> None:
        self.fail = fail
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, msg) -> ConsumeResult:
        with self.lock:
            self.seen.append(msg.reconsume_times)
        return ConsumeResult.RECONSUME_LATER if self.fail(msg) else ConsumeResult.CONSUME_SUCCESS


def send_backs(cluster: FakeCluster) -> list[dict[str, str]]:
    return [
        ext
        for code, ext in list(cluster.broker().requests)
        if code == RequestCode.CONSUMER_SEND_MSG_BACK
    ]


def test_an_accepted_send_back_moves_the_offset_past_the_message(cluster: FakeCluster) -> None:
    # Given a broker that accepts send-backs and a message the listener refuses
    cluster.broker().accept_send_back = True
    cluster.put("Orders", b"refused", queue_id=0, properties="UNIQ_KEY\x01ID-1\x02")
    attempts = Attempts(lambda _m: True)
    c = consumer(cluster, "sb-ok", max_reconsume_times=5, commit_interval=0.05)
    c.subscribe("Orders", "*", attempts)
    # When it is consumed
    c.start()
    wait_until(lambda: send_backs(cluster), what="a send-back")
    # Then it went back with RocketMQ's header: commit-log offset, group, delay level 0 (the
    # broker decides), the message's id and topic, the consumer's max reconsume times
    [ext] = send_backs(cluster)
    assert ext["group"] == "sb-ok" and ext["delayLevel"] == "0"
    assert ext["originMsgId"] == "ID-1" and ext["originTopic"] == "Orders"
    assert ext["maxReconsumeTimes"] == "5" and int(ext["offset"]) >= 0
    # And the offset moves past it; it is not redelivered locally
    wait_until(lambda: cluster.committed("sb-ok", "Orders", 0) == 1, what="the commit")
    assert attempts.seen == [0]
    # And the consumer subscribed to its retry topic
    assert any(
        ext.get("topic") == "%RETRY%sb-ok"
        for code, ext in cluster.broker().requests
        if code == RequestCode.PULL_MESSAGE
    )


def test_a_refused_send_back_falls_back_to_local_retry(cluster: FakeCluster) -> None:
    # Given a broker that refuses send-backs (REQUEST_CODE_NOT_SUPPORTED)
    cluster.put("Orders", b"twice", queue_id=0)
    attempts = Attempts(lambda _m: len(attempts.seen) < 3)
    c = consumer(cluster, "sb-refused", reconsume_delay=0.05, commit_interval=0.05)
    c.subscribe("Orders", "*", attempts)
    # When the listener refuses it twice
    c.start()
    wait_until(lambda: len(attempts.seen) == 3, what="three attempts")
    # Then each failure tried a send-back, then redelivered locally with reconsume_times raised
    assert len(send_backs(cluster)) == 2
    assert attempts.seen == [0, 1, 2]
    wait_until(lambda: cluster.committed("sb-refused", "Orders", 0) == 1, what="the commit")


def test_a_refused_send_back_goes_to_the_retry_topic_when_a_broker_takes_it(
    cluster: FakeCluster,
) -> None:
    # Given a broker that refuses send-backs but stores sends to %RETRY% topics (RocketMQ's
    # consumer then re-sends through its internal producer)
    cluster.broker().accept_retry_sends = True
    cluster.put("Orders", b"resent", queue_id=0, properties="UNIQ_KEY\x01ID-9\x02TAGS\x01t\x02")
    first = threading.Event()
    again = threading.Event()

    def listener(msg: Any) -> ConsumeResult:
        if msg.reconsume_times == 0:
            first.set()
            return ConsumeResult.RECONSUME_LATER
        again.set()  # the copy, from the retry topic (this fake delivers it without delay)
        return ConsumeResult.CONSUME_SUCCESS

    c = consumer(cluster, "sb-copy", commit_interval=0.05)
    c.subscribe("Orders", "*", listener)
    # When the listener refuses the message
    c.start()
    assert first.wait(10)
    wait_until(lambda: cluster.stored("%RETRY%sb-copy"), what="the copy in the retry topic")
    # Then a copy went to the group's retry topic: the original topic and id kept, one more
    # reconsume time, delay level 3, and the queue's offset moved past the message
    [copy] = [decode_messages(s.record, "?")[0] for s in cluster.stored("%RETRY%sb-copy")]
    props = copy.all_properties
    assert copy.body == b"resent" and copy.reconsume_times == 1
    assert (props[P.RETRY_TOPIC], props[P.UNIQ_KEY], props[P.DELAY]) == ("Orders", "ID-9", "3")
    assert props[P.TAGS] == "t"
    wait_until(lambda: cluster.committed("sb-copy", "Orders", 0) == 1, what="the commit")
    # And the consumer, subscribed to its retry topic, gets the copy
    assert again.wait(10)


def test_broadcasting_retries_locally_then_drops_and_never_sends_back(
    cluster: FakeCluster, tmp_path
) -> None:
    # Given a broadcasting consumer whose listener always fails
    cluster.broker().accept_send_back = True
    cluster.put("Orders", b"hopeless", queue_id=2)
    attempts = Attempts(lambda _m: True)
    c = consumer(
        cluster,
        "bc-drop",
        model=MessageModel.BROADCASTING,
        max_reconsume_times=2,
        reconsume_delay=0.02,
        offset_store_dir=tmp_path,
    )
    c.subscribe("Orders", "*", attempts)
    c.start()
    # When it failed 1 + max_reconsume_times times
    wait_until(lambda: len(attempts.seen) == 3, what="three attempts")
    # Then it is dropped: the offset moves on, nothing went to the broker
    mq = next(q for q in c.assignment() if q.queue_id == 2 and q.topic == "Orders")
    wait_until(lambda: c.committed(mq) == 1, what="the offset past the dropped message")
    assert attempts.seen == [0, 1, 2]
    assert send_backs(cluster) == []


def test_delays_and_timers_are_properties_and_only_one_is_allowed() -> None:
    # Given messages with each kind of delay, Then each is its RocketMQ property
    def props(msg: Message) -> dict[str, str]:
        return P.decode_properties(prepare(msg).properties)

    assert props(Message("T", "x", delay_level=3))[P.DELAY] == "3"
    assert props(Message("T", "x", deliver_at_ms=1_700_000_000_000))[P.TIMER_DELIVER_MS] == (
        "1700000000000"
    )
    assert props(Message("T", "x", delay_ms=1500))[P.TIMER_DELAY_MS] == "1500"
    # And two kinds at once, a negative delay or a delayed batch are refused before sending
    for bad in (
        Message("T", "x", delay_level=1, deliver_at_ms=5),
        Message("T", "x", delay_ms=-1),
        Message("T", "x", delay_level=19),
    ):
        with pytest.raises(MessageInvalidError):
            prepare(bad)
    with pytest.raises(MessageInvalidError):
        prepare_batch([Message("T", "x", delay_ms=10)])


def test_sql_subscriptions_are_checked_at_subscribe(cluster: FakeCluster) -> None:
    c = PushConsumer("sql-check", namesrv=cluster.namesrv)
    # Given a valid expression, Then the heartbeat will carry it as SQL92
    c.subscribe("Orders", sql="a BETWEEN 1 AND 3 AND b IS NOT NULL", listener=print)
    [sub] = [s for s in c.consumer_data().subscription_data_set if s.topic == "Orders"]
    assert sub.expression_type == "SQL92" and sub.sub_string.startswith("a BETWEEN")
    # And an invalid one, or both a tag expression and SQL, raise ClientError
    with pytest.raises(ClientError, match="column"):
        c.subscribe("Other", sql="a IN (")
    with pytest.raises(ClientError):
        c.subscribe("Other", "TagA", sql="a > 1")


def test_a_transaction_producer_needs_both_callbacks() -> None:
    # Given only an execute callback, Then the producer is refused at construction
    with pytest.raises(ClientError):
        TransactionProducer("tx", "127.0.0.1:1", execute=lambda m, a: None)

    # Given a listener object instead, Then its two methods are the callbacks

    class Listener:
        def execute_local_transaction(self, msg, arg):
            return None

        def check_local_transaction(self, msg):
            return None

    tp = TransactionProducer("tx", "127.0.0.1:1", listener=Listener())
    assert tp.execute is not None and tp.check is not None


def lock_requests(cluster: FakeCluster) -> int:
    return sum(
        1 for code, _ in list(cluster.broker().requests) if code == RequestCode.LOCK_BATCH_MQ
    )


def test_an_orderly_queue_is_consumed_only_while_its_lock_is_held(cluster: FakeCluster) -> None:
    # Given queue 0 locked by another consumer of the group (say, one about to hand it over)
    mq0, mq1 = (MessageQueue(topic="Orders", broker_name="broker-a", queue_id=q) for q in (0, 1))
    cluster.lock_owner("ord-lock", mq0, "other@1")
    cluster.put("Orders", b"q0-a", queue_id=0)
    cluster.put("Orders", b"q1-a", queue_id=1)
    got: list[bytes] = []
    c = consumer(cluster, "ord-lock", orderly=True, relock_interval=0.05)
    c.subscribe("Orders", "*", lambda m: got.append(m.body))
    # When an orderly consumer starts
    c.start()
    # Then it consumes the queues it could lock, not queue 0
    wait_until(lambda: b"q1-a" in got, what="queue 1")
    assert mq0 not in c.assignment() and b"q0-a" not in got
    # And once the other consumer lets go, it locks queue 0 (retrying by itself) and consumes it
    cluster.lock_owner("ord-lock", mq0, "")
    wait_until(lambda: b"q0-a" in got, what="queue 0 after the lock was freed")
    assert cluster.lock_owner("ord-lock", mq0) == c.client_id

    # When its lock is taken away (as when it expired at the broker) and renewals are refused
    cluster.lock_owner("ord-lock", mq0, "other@1")
    seen = lock_requests(cluster)
    wait_until(lambda: lock_requests(cluster) >= seen + 2, what="two renewals")
    cluster.put("Orders", b"q0-b", queue_id=0)
    cluster.put("Orders", b"q1-b", queue_id=1)
    # Then queue 0 is not consumed (queue 1 is), even after more renewals
    wait_until(lambda: b"q1-b" in got, what="queue 1 again")
    seen = lock_requests(cluster)
    wait_until(lambda: lock_requests(cluster) >= seen + 2, what="two more renewals")
    assert b"q0-b" not in got
    # And when the lock is granted again, it goes on where it stopped
    cluster.lock_owner("ord-lock", mq0, "")
    wait_until(lambda: b"q0-b" in got, what="queue 0 after the lock came back")
    assert [b for b in got if b.startswith(b"q0")] == [b"q0-a", b"q0-b"]
    # And at shutdown it unlocks its queues
    c.shutdown()
    assert cluster.lock_owner("ord-lock", mq0) is None
    assert cluster.lock_owner("ord-lock", mq1) is None


def test_a_message_held_past_the_consume_timeout_is_sent_back_and_the_offset_moves_on(
    cluster: FakeCluster,
) -> None:
    # Given a broker that accepts send-backs and a listener stuck on the first of 3 messages
    cluster.broker().accept_send_back = True
    for body in (b"stuck", b"b", b"c"):
        cluster.put("Orders", body, queue_id=0)
    release = threading.Event()
    finished: list[bytes] = []

    def listener(msg: Any) -> ConsumeResult:
        if msg.body == b"stuck":
            release.wait(20)
        finished.append(msg.body)
        return ConsumeResult.RECONSUME_LATER if msg.body == b"stuck" else None

    # (4 threads: each message a task of its own, so the two after it are not queued behind it)
    c = consumer(cluster, "slow", consume_timeout=0.3, commit_interval=0.05, consume_threads=4)
    c.subscribe("Orders", "*", listener)
    c.start()
    try:
        # When its listener call outlasts the consume timeout
        wait_until(lambda: send_backs(cluster), what="the stuck message sent back")
        # Then it went back with delay level 3 (RocketMQ's cleanExpiredMsg), and the queue's
        # offset moves past it while its listener call still runs
        [ext] = send_backs(cluster)
        assert ext["delayLevel"] == "3"
        wait_until(lambda: cluster.committed("slow", "Orders", 0) == 3, what="the commit")
        assert sorted(finished) == [b"b", b"c"]
    finally:
        release.set()
    # When the stuck call ends asking for a retry, Then nothing more is sent back for it
    wait_until(lambda: b"stuck" in finished, what="the stuck call to end")
    c.shutdown()
    assert len(send_backs(cluster)) == 1


def test_without_a_consume_timeout_a_stuck_message_holds_the_offset(cluster: FakeCluster) -> None:
    cluster.put("Orders", b"stuck", queue_id=0)
    cluster.put("Orders", b"next", queue_id=0)
    release, done = threading.Event(), threading.Event()

    def listener(msg: Any) -> None:
        if msg.body == b"stuck":
            release.wait(20)
        else:
            done.set()

    c = consumer(cluster, "patient", consume_timeout=0, commit_interval=0.05, consume_threads=4)
    c.subscribe("Orders", "*", listener)
    c.start()
    try:
        assert done.wait(10)
        wait_until(lambda: cluster.committed("patient", "Orders", 0) == 0, what="a commit")
        assert not send_backs(cluster)
    finally:
        release.set()
    wait_until(lambda: cluster.committed("patient", "Orders", 0) == 2, what="the final commit")


def test_a_listener_raising_a_gevent_timeout_is_sent_back_and_the_offset_moves_on(
    cluster: FakeCluster,
) -> None:
    # Given a broker that accepts send-backs and a listener that lets a gevent.Timeout escape
    # (a BaseException, not an Exception) for the first of two messages
    cluster.broker().accept_send_back = True
    cluster.put("Orders", b"slow", queue_id=0)
    cluster.put("Orders", b"fine", queue_id=0)
    seen: list[bytes] = []

    def listener(msg) -> ConsumeResult:
        seen.append(msg.body)
        if msg.body == b"slow":
            raise gevent.Timeout(1)
        return ConsumeResult.CONSUME_SUCCESS

    c = consumer(cluster, "sb-timeout", commit_interval=0.05)
    c.subscribe("Orders", "*", listener)
    # When it is consumed
    c.start()
    # Then it counts as RECONSUME_LATER: sent back, and the offset moves past both
    wait_until(lambda: send_backs(cluster), what="a send-back")
    wait_until(lambda: cluster.committed("sb-timeout", "Orders", 0) == 2, what="the commit")
    assert sorted(seen) == [b"fine", b"slow"]
