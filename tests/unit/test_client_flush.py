"""Producer.flush and a shutdown that waits for the async sends in flight (Kafka's ``flush`` and
``close``), against an in-memory cluster whose sends are answered late (``send_delay``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import ClientError, ClientStateError, Message, Producer, SendStatus
from actors.client.testing import FakeCluster
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc


class Outcomes:
    """What the send callbacks saw, by outcome; ``slow`` seconds spent in each callback."""

    def __init__(self, slow: float = 0.0) -> None:
        self.slow = slow
        self.ok = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def __call__(self, result: Any, error: BaseException | None) -> None:
        if self.slow:
            time.sleep(self.slow)
        with self._lock:
            if error is None:
                assert result.status is SendStatus.SEND_OK
                self.ok += 1
            else:
                self.errors.append(error)


def test_shutdown_waits_for_the_async_sends_in_flight(cluster: FakeCluster) -> None:
    # Given a broker that answers each send 0.2 s after storing it
    cluster.broker().send_delay = 0.2
    outcomes = Outcomes()
    # When a program sends 50 messages asynchronously and leaves the producer's block at once
    with Producer("closing", namesrv=cluster.namesrv) as producer:
        futures = [producer.send_async(Message("Orders", b"m%d" % i), outcomes) for i in range(50)]
    # Then every send was answered SEND_OK and its callback ran before the block ended
    assert outcomes.ok == 50 and outcomes.errors == []
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(cluster.stored("Orders")) == 50


def test_a_shutdown_stops_waiting_after_its_timeout(cluster: FakeCluster) -> None:
    # Given sends that would be answered only after 3 s
    cluster.broker().send_delay = 3.0
    outcomes = Outcomes()
    producer = Producer("impatient", namesrv=cluster.namesrv).start()
    futures = [producer.send_async(Message("Orders", b"m%d" % i), outcomes) for i in range(5)]
    # When the producer shuts down with a 0.3 s timeout
    started = time.monotonic()
    producer.shutdown(timeout=0.3)
    # Then it returned without waiting for the answers, and every send failed (the client is
    # stopping; not retried) before it returned: no future is left pending for good
    assert time.monotonic() - started < 2.5
    errors = [f.exception(timeout=0) for f in futures]
    assert all(isinstance(e, ClientStateError) and "stopping" in str(e) for e in errors), errors
    assert outcomes.ok == 0 and len(outcomes.errors) == 5


def test_flush_returns_once_every_answer_and_callback_completed(cluster: FakeCluster) -> None:
    # Given answers 0.1 s late and callbacks that take 10 ms each
    cluster.broker().send_delay = 0.1
    outcomes = Outcomes(slow=0.01)
    with Producer("flushing", namesrv=cluster.namesrv) as producer:
        for i in range(20):
            producer.send_async(Message("Orders", b"m%d" % i), outcomes)
        # When the program flushes
        flushed = producer.flush()
        # Then every callback had run by then (not only every answer arrived)
        assert flushed and outcomes.ok == 20
        assert producer.async_window is not None and producer.async_window.unfinished == 0


def test_flush_says_when_its_timeout_passed_first(cluster: FakeCluster) -> None:
    # Given an answer 1 s late
    cluster.broker().send_delay = 1.0
    with Producer("timed-flush", namesrv=cluster.namesrv) as producer:
        future = producer.send_async(Message("Orders", b"late"))
        # When the program flushes for 0.1 s, Then the flush reports it did not complete
        assert producer.flush(0.1) is False and not future.done()
        # And a flush without a limit waits for it
        assert producer.flush() is True and future.result().status is SendStatus.SEND_OK


def test_flush_sends_what_auto_batching_holds_at_once(cluster: FakeCluster) -> None:
    # Given an auto-batching producer that would hold small messages for 20 s
    with Producer("batched", namesrv=cluster.namesrv, auto_batch=True, batch_max_delay=20) as p:
        futures = [p.send_async(Message("Orders", b"s%d" % i)) for i in range(10)]
        assert not any(f.done() for f in futures)
        # When it flushes, Then they go now, in one batch, and are answered
        assert p.flush(5) is True
        assert all(f.result().status is SendStatus.SEND_OK for f in futures)
        assert len(cluster.stored("Orders")) == 10


def test_flush_from_a_send_callback_is_refused(cluster: FakeCluster) -> None:
    refusals: list[BaseException] = []
    done = threading.Event()
    with Producer("reentrant", namesrv=cluster.namesrv) as producer:

        def callback(_result: Any, _error: BaseException | None) -> None:
            # a flush here would wait for this very callback to return
            try:
                producer.flush(1)
            except ClientError as exc:
                refusals.append(exc)
            done.set()

        producer.send_async(Message("Orders", b"x"), callback)
        assert done.wait(5)
    assert len(refusals) == 1 and "callback" in str(refusals[0])


def test_flush_before_start_is_a_state_error(cluster: FakeCluster) -> None:
    with pytest.raises(ClientStateError):
        Producer("idle", namesrv=cluster.namesrv).flush()


def test_a_sync_send_in_another_thread_fails_promptly_when_the_producer_shuts_down(
    cluster: FakeCluster,
) -> None:
    # Given a sync send waiting in another thread for an answer 5 s away
    producer = Producer("sync-closing", namesrv=cluster.namesrv).start()
    producer.send(Message("Orders", b"warm"))  # route and connection
    cluster.broker().send_delay = 5.0
    outcome: list[BaseException] = []
    sent = threading.Event()

    def sender() -> None:
        sent.set()
        try:
            producer.send(Message("Orders", b"m"))
        except ClientError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    assert sent.wait(5)
    wait_until(lambda: cluster.broker().codes().count(310) == 2, what="the send reached the broker")
    # When the producer shuts down
    started = time.monotonic()
    producer.shutdown(timeout=1)
    thread.join(5)
    # Then the send failed ("client is stopping", not retried) well before its 3 s timeout
    assert not thread.is_alive() and time.monotonic() - started < 2.5
    assert len(outcome) == 1 and isinstance(outcome[0], ClientStateError)
    assert "stopping" in str(outcome[0])


def test_a_send_callback_may_shut_its_producer_down(cluster: FakeCluster) -> None:
    # Given answers 0.1 s late, and a first send whose callback shuts the producer down
    cluster.broker().send_delay = 0.1
    producer = Producer("self-closing", namesrv=cluster.namesrv).start()
    took: list[float] = []
    errors: list[BaseException] = []

    def closing(_result: Any, _error: BaseException | None) -> None:
        started = time.monotonic()
        try:
            producer.shutdown()
        except BaseException as exc:
            errors.append(exc)
        took.append(time.monotonic() - started)

    first = producer.send_async(Message("Orders", b"first"), closing)
    others = [producer.send_async(Message("Orders", b"o%d" % i)) for i in range(5)]
    # When the first answer comes, Then the shutdown in its callback neither waits for itself
    # (nor for the other callbacks, which run on the same thread after it) nor fails
    first.result(timeout=5)
    wait_until(lambda: took != [], what="the callback's shutdown returned")
    assert errors == [] and took[0] < 2.0
    # And every other send completes (answered, or failed as the client stopped), none pending
    outcomes = [f.exception(timeout=5) for f in others]
    assert all(e is None or isinstance(e, ClientError) for e in outcomes), outcomes


def test_a_request_callback_may_flush_or_shut_its_producer_down(cluster: FakeCluster) -> None:
    # Given a request nobody answers (its reply times out after 0.2 s), whose callback first
    # flushes, then shuts the producer down
    producer = Producer("self-closing-requester", namesrv=cluster.namesrv).start()
    seen: list[BaseException] = []
    took: list[float] = []

    def closing(_reply: Any, _error: BaseException | None) -> None:
        started = time.monotonic()
        try:
            producer.flush(5)
        except ClientError as exc:  # it would wait for this very callback
            seen.append(exc)
        try:
            producer.shutdown()
        except BaseException as exc:
            seen.append(exc)
        took.append(time.monotonic() - started)

    producer.request_async(Message("Orders", b"anyone?"), closing, timeout=0.2)
    # When the request times out, Then the flush is refused at once and the shutdown neither
    # waits for the callback itself nor fails
    wait_until(lambda: took != [], what="the callback returned")
    assert len(seen) == 1 and isinstance(seen[0], ClientError), seen
    assert "callback" in str(seen[0]) and took[0] < 2.0


def test_a_callback_may_flush_another_producer(cluster: FakeCluster) -> None:
    # Given two producers, the second with a send answered 0.2 s late
    cluster.broker().send_delay = 0.2
    with (
        Producer("first", namesrv=cluster.namesrv) as first,
        Producer("second", namesrv=cluster.namesrv) as second,
    ):
        flushed: list[bool] = []
        late = second.send_async(Message("Orders", b"late"))

        def callback(_result: Any, _error: BaseException | None) -> None:
            flushed.append(second.flush(5))

        # When a send callback of the first producer flushes the second
        first.send_async(Message("Orders", b"x"), callback).result(timeout=5)
        wait_until(lambda: flushed != [], what="the callback's flush returned")
        # Then that flush waited for the second's send (only its own producer's are refused)
        assert flushed == [True] and late.done() and late.exception() is None


def test_a_shutdown_timeout_bounds_the_flush_and_the_unregistering_together(
    cluster: FakeCluster,
) -> None:
    # Given a send answered only after 5 s, and a broker that answers UNREGISTER_CLIENT after 30 s
    broker = cluster.broker()
    broker.send_delay, broker.unregister_delay = 5.0, 30.0
    producer = Producer("slow-goodbye", namesrv=cluster.namesrv).start()
    future = producer.send_async(Message("Orders", b"m"))
    # When the producer shuts down with a 0.5 s timeout
    started = time.monotonic()
    producer.shutdown(timeout=0.5)
    took = time.monotonic() - started
    # Then the flush's wait and the unregistering shared the 0.5 s (the unregistering gets at
    # least 1 s): before, each had its own limit (3.5 s in all here)
    assert took < 0.5 + 1.0 + 1.2, took  # 1.5 s measured
    assert isinstance(future.exception(timeout=1), ClientStateError)
