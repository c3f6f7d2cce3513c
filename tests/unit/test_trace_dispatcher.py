"""The trace dispatcher (RocketMQ's AsyncTraceDispatcher) with a stand-in internal producer:
batching, the bounded queue, flushing at shutdown, failures that are logged and not raised."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import pytest

from actors.client.errors import ClientError
from actors.client.message import Message
from actors.client.trace_data import TraceBean, TraceContext, TraceType, decode
from actors.client.trace_dispatcher import BATCH_CHARS, TraceDispatcher
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(30)


class FakeProducer:
    """Records each ``send_async``; ``answer`` decides the future: "ok", "fail", "raise" (the
    call itself raises) or "never" (no answer)."""

    def __init__(self, answer: str = "ok") -> None:
        self.answer = answer
        self.sent: list[Message] = []
        self.threads: list[threading.Thread] = []
        self.group = ""
        self.started = self.stopped = False

    def __call__(self, group: str) -> FakeProducer:
        self.group = group
        return self

    def start(self) -> FakeProducer:
        self.started = True
        return self

    def shutdown(self) -> None:
        self.stopped = True

    def send_async(self, msg: Message, timeout: float | None = None) -> Any:
        self.threads.append(threading.current_thread())
        if self.answer == "raise":
            raise ClientError("no room")
        self.sent.append(msg)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self.answer == "ok":
            future.set_result(object())
        elif self.answer == "fail":
            future.set_exception(ClientError("broker down"))
        return future


def pub(msg_id: str, keys: str | None = "k", topic: str = "Orders") -> TraceContext:
    bean = TraceBean(topic=topic, msg_id=msg_id, keys=keys, offset_msg_id="X", store_host="h")
    return TraceContext(trace_type=TraceType.Pub, group="pg", region_id="R", beans=[bean])


def dispatcher(producer: FakeProducer, **options: Any) -> TraceDispatcher:
    return TraceDispatcher("pg", "PRODUCE", producer_factory=producer, **options)


def test_events_go_out_together_as_one_trace_message_keyed_by_msg_ids() -> None:
    # Given a started dispatcher
    producer = FakeProducer()
    d = dispatcher(producer).start()
    try:
        assert producer.started and producer.group.startswith("_INNER_TRACE_PRODUCER-pg-PRODUCE-")
        # When three events are appended at once
        for i in range(3):
            assert d.append(pub(f"ID{i}"))
        # Then one trace message carries them (sent off the caller's thread), keyed by the
        # msgIds and the message keys, to RMQ_SYS_TRACE_TOPIC
        wait_until(lambda: d.sent == 1, what="the trace message")
    finally:
        d.shutdown()
    [msg] = producer.sent
    assert msg.topic == "RMQ_SYS_TRACE_TOPIC"
    assert msg.keys == ["ID0", "k", "ID1", "ID2"]
    assert [c.beans[0].msg_id for c in decode(msg.body_bytes().decode())] == ["ID0", "ID1", "ID2"]
    assert threading.current_thread() not in producer.threads
    assert producer.stopped


def test_a_trace_message_is_sent_once_its_records_reach_the_size_limit() -> None:
    # Given events of about 1,000 characters each, more than a message holds
    producer = FakeProducer()
    d = dispatcher(producer).start()
    try:
        n = BATCH_CHARS // 1000 + 20
        for i in range(n):
            d.append(pub(f"ID{i}", keys=None, topic="T" * 900))
        # When they are sent, Then the first message stops at the limit and the rest follows
        wait_until(lambda: d.sent == 2, what="two trace messages")
    finally:
        d.shutdown()
    first, second = (m.body_bytes() for m in producer.sent)
    assert BATCH_CHARS <= len(first) < BATCH_CHARS + 1100
    assert len(decode(first.decode())) + len(decode(second.decode())) == n


def test_a_full_queue_drops_and_counts_events_without_blocking() -> None:
    # Given a dispatcher whose worker has not started, with room for two events
    d = dispatcher(FakeProducer(), queue_size=2)
    # When three are appended, Then the third is dropped and counted
    assert [d.append(pub(f"ID{i}")) for i in range(3)] == [True, True, False]
    assert d.discarded == 1


def test_shutdown_sends_what_is_queued_at_once() -> None:
    # Given a dispatcher with events queued (their 500 ms not yet passed)
    producer = FakeProducer()
    d = dispatcher(producer).start()
    d.append(pub("ID1"))
    d.append(pub("ID2"))
    # When it shuts down, Then they were sent before shutdown returned
    d.shutdown()
    assert d.sent == 1
    assert len(decode(producer.sent[0].body_bytes().decode())) == 2
    # And events appended afterwards are refused
    assert not d.append(pub("ID3"))


@pytest.mark.parametrize("answer", ["fail", "raise"])
def test_send_failures_are_counted_and_logged_never_raised(answer: str) -> None:
    # Given an internal producer that fails every send
    d = dispatcher(FakeProducer(answer)).start()
    # When events are traced, Then the failure is counted, and nothing raises
    d.append(pub("ID1"))
    wait_until(lambda: d.failed == 1, what="the failed send")
    d.shutdown()
    assert d.sent == 0


def test_shutdown_waits_for_unanswered_sends_only_as_long_as_its_flush_timeout() -> None:
    # Given a producer that never answers and a flush timeout of 0.3 s
    d = dispatcher(FakeProducer("never"), flush_timeout=0.3).start()
    d.append(pub("ID1"))
    # When the dispatcher shuts down, Then it returns after about the flush timeout
    began = time.monotonic()
    d.shutdown()
    assert time.monotonic() - began < 1.5
