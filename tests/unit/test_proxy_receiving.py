"""actors/proxy/receiving.py: ReceiveMessage over a PopGroup with a (fake) consumer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from actors.proxy.pop import PopGroup
from actors.proxy.proto import Code, M
from actors.proxy.receiving import (
    change_invisible_duration,
    forward_to_dead_letter_queue,
    receive_message,
)
from actors.proxy.settings import ProxySettings
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer
from tests.unit.test_proxy_pop_fifo import _msg, _offsets


class _Context:
    def __init__(self, client: str) -> None:
        self.client = client

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-mq-client-id", self.client)]

    def peer(self) -> str:
        return "ipv4:10.0.0.1:1"

    def time_remaining(self) -> float | None:
        return None

    def is_active(self) -> bool:
        return True

    def add_callback(self, callback: Any) -> bool:
        return True  # (never cancelled)


def _service(pop: PopGroup) -> Any:
    return SimpleNamespace(
        settings=ProxySettings(),
        groups={pop.group: pop},
        group=lambda name, lite=None, owner="": pop,
        topic_types=SimpleNamespace(of=lambda topic, strict=False: "FIFO"),
        touch=lambda context: context.client,
    )


def _request(batch: int, auto_renew: bool) -> Any:
    request = M.ReceiveMessageRequest()
    request.group.name = "G"
    request.message_queue.topic.name = "T"
    request.batch_size = batch
    request.auto_renew = auto_renew
    request.invisible_duration.seconds = 30
    request.long_polling_timeout.seconds = 0
    return request


def test_a_fifo_batch_cut_off_while_written_does_not_stall_its_message_group() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.queued.extend([_msg(0, "g1"), _msg(1, "g1")])
    alive = {"push-1"}
    pop = PopGroup("G", consumer, fifo=True, alive=lambda who: who in alive, clock=clock)  # type: ignore[arg-type]
    pop.subscribe("T")
    # Given a push consumer's receive (auto_renew) of g1's batch [0, 1] whose stream was cut
    # after the first message went out (grpcio asks for the next item once the one before is
    # written; the client is still alive: it calls on)
    stream = receive_message(_service(pop), _request(2, auto_renew=True), _Context("push-1"))
    assert next(stream).status.code == Code.OK
    assert next(stream).message.system_properties.queue_offset == 0
    assert next(stream).message.system_properties.queue_offset == 1
    stream.close()
    # When the client consumes and acks what it got
    (handle,) = [h for h, d in pop.in_flight.items() if d.msg.queue_offset == 0]
    assert pop.ack(handle)
    # Then the message that never went out comes again after its invisible duration (it is
    # not renewed for the live client, which never had it: g1 was stalled for 3 hours)
    clock.advance(31)
    pop.sweep()
    again = pop.receive("T", 2, 30_000, wait_s=0, holder="push-1")
    assert _offsets(again) == [1]


def _other_topics_call(call: Any, handle: str, topic: str) -> Any:
    call.group.name = "G"
    call.topic.name = topic
    call.receipt_handle = handle
    return call


def test_a_nack_or_dead_letter_naming_another_topic_is_refused() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.queued.append(_msg(0, None))  # a message of topic T
    pop = PopGroup("G", consumer, clock=clock)  # type: ignore[arg-type]
    pop.subscribe("T")
    service = _service(pop)
    (delivery,) = pop.receive("T", 1, 30_000, wait_s=0)
    # When a client (allowed topic U only, under the ACL) names T's handle with topic U
    nack = _other_topics_call(M.ChangeInvisibleDurationRequest(), delivery.handle, "U")
    nack.invisible_duration.seconds = 3600
    forward = _other_topics_call(M.ForwardMessageToDeadLetterQueueRequest(), delivery.handle, "U")
    context = _Context("other")
    answer = change_invisible_duration(service, nack, context)
    assert answer.status.code == Code.INVALID_RECEIPT_HANDLE
    answer = forward_to_dead_letter_queue(service, forward, context)
    assert answer.status.code == Code.INVALID_RECEIPT_HANDLE
    # Then the message is still out under its handle, neither hidden longer nor dead-lettered
    assert pop.in_flight[delivery.handle] is delivery and consumer.dead == []
    # And naming its own topic, each works
    nack.topic.name = "T"
    answer = change_invisible_duration(service, nack, context)
    assert answer.status.code == Code.OK
    forward.receipt_handle = answer.receipt_handle
    forward.topic.name = "T"
    answer = forward_to_dead_letter_queue(service, forward, context)
    assert answer.status.code == Code.OK and consumer.dead == [delivery.msg]


def _answer(stream: Any) -> list[Any]:
    """The messages of one receive's answer (all written: what the client would read)."""
    return [r.message for r in stream if r.WhichOneof("content") == "message"]


def test_a_retried_fifo_receive_gets_the_batch_its_lost_answer_carried() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.queued.extend([_msg(0, "g1"), _msg(1, "g1")])
    alive = {"push-1"}
    pop = PopGroup("G", consumer, fifo=True, alive=lambda who: who in alive, clock=clock)  # type: ignore[arg-type]
    pop.subscribe("T")
    service = _service(pop)
    # Given a push consumer's receive (attempt a1) whose answer was written but never reached
    # the client (its deadline passed, the connection dropped)
    request = _request(2, auto_renew=True)
    request.attempt_id = "a1"
    lost = _answer(receive_message(service, request, _Context("push-1")))
    assert [m.system_properties.queue_offset for m in lost] == [0, 1]
    consumer.queued.append(_msg(2, "g1"))
    # When it retries that receive (the same attempt id), it gets the same batch at once
    again = _answer(receive_message(service, request, _Context("push-1")))
    assert [m.system_properties.queue_offset for m in again] == [0, 1]
    assert [m.system_properties.delivery_attempt for m in again] == [1, 1]
    # (another client naming that attempt id gets none of it: g1 is out)
    assert _answer(receive_message(service, request, _Context("push-2"))) == []
    # And once it acks them, g1 goes on (before: g1 blocked while the client lived, 3 hours)
    for message in again:
        assert pop.ack(message.system_properties.receipt_handle)
    request.attempt_id = "a2"
    after = _answer(receive_message(service, request, _Context("push-1")))
    assert [m.system_properties.queue_offset for m in after] == [2]


class _Deadline(_Context):
    def __init__(self, client: str, remaining: float) -> None:
        super().__init__(client)
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


def _waited(asked_s: int, context: _Context) -> tuple[float, int]:
    """(fake seconds an empty receive asking ``asked_s`` waited, its status code)."""
    clock = FakeClock()
    pop = PopGroup("G", FakeConsumer(clock), clock=clock)  # type: ignore[arg-type]
    pop.subscribe("T")
    request = _request(1, auto_renew=False)
    request.long_polling_timeout.seconds = asked_s
    started = clock.now
    (answer,) = list(receive_message(_service(pop), request, context))
    return clock.now - started, answer.status.code


def test_a_receives_long_polling_time_is_clamped_as_rocketmqs_proxy_does() -> None:
    # A receive asking to wait 0 s waits 5 s (RocketMQ's minimum): before, it was answered at
    # once, and a client could spin against the proxy
    assert _waited(0, _Context("c")) == (5.0, Code.MESSAGE_NOT_FOUND)
    assert _waited(7, _Context("c")) == (7.0, Code.MESSAGE_NOT_FOUND)
    assert _waited(60, _Context("c")) == (20.0, Code.MESSAGE_NOT_FOUND)  # the maximum
    # ... and never past its deadline (a second before it)
    assert _waited(0, _Deadline("c", 4.0)) == (3.0, Code.MESSAGE_NOT_FOUND)
