"""actors/proxy/pop.py: PopGroup's in-flight deliveries over a (fake) manual-ack consumer."""

from __future__ import annotations

from collections import deque
from typing import Any

from actors.client.errors import ClientError
from actors.client.message import MessageExt
from actors.proxy.pop import RECHECK_S, PopGroup
from runtime.remoting.properties import UNIQ_KEY, encode_properties


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Spinning(Exception):
    """The fake consumer was polled far more often than any receive needs."""


class FakeConsumer:
    """Stands in for a PullConsumer(manual_ack=True): poll never blocks; an empty poll moves
    the fake clock on by its timeout, as a real one would have waited."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.subscribed: list[tuple[str, str, str | None]] = []
        self.starts = 0
        self.queued: deque[MessageExt] = deque()
        self.timeouts: list[float] = []
        self.asked: list[int] = []
        self.acked: list[MessageExt] = []
        self.dead: list[MessageExt] = []
        self.dlq_fails = False
        self.shutdowns = 0
        self.wakeups = 0
        self.moved_away: set[int] = set()
        """Queue ids a rebalance gave to another member."""

    def subscribe(self, topic: str, expression: str, sql: str | None = None) -> None:
        self.subscribed.append((topic, expression, sql))

    def start(self) -> None:
        self.starts += 1

    def wakeup(self) -> None:
        self.wakeups += 1

    def change_topics(self, add: list[str], remove: list[str]) -> None:
        for topic in add:
            self.subscribe(topic, "*")
        for topic in remove:
            self.unsubscribe(topic)

    def unsubscribe(self, topic: str) -> None:
        self.subscribed.append((topic, "", "unsubscribed"))

    def poll(self, timeout: float, max_messages: int) -> list[MessageExt]:
        self.timeouts.append(timeout)
        self.asked.append(max_messages)
        if len(self.timeouts) > 50:
            raise Spinning(f"polled {len(self.timeouts)} times: {self.timeouts[:8]}...")
        out: list[MessageExt] = []
        while self.queued and len(out) < max_messages:
            out.append(self.queued.popleft())
        if not out:
            self.clock.advance(timeout)
        return out

    def ack(self, msgs: list[MessageExt]) -> int:
        self.acked.extend(msgs)
        return len(msgs)

    def send_to_dead_letter_queue(self, msg: MessageExt) -> None:
        if self.dlq_fails:
            raise ClientError("dead-letter send failed")
        self.dead.append(msg)

    def shutdown(self) -> None:
        self.shutdowns += 1

    def still_owned(self, msg: MessageExt) -> bool:
        return msg.queue_id not in self.moved_away


def _msg(offset: int, topic: str = "T") -> MessageExt:
    props = encode_properties({UNIQ_KEY: f"ID{offset}"})
    return MessageExt(topic, b"body%d" % offset, props, broker_name="b", queue_offset=offset)


def _group(max_attempts: int = 17) -> tuple[PopGroup, FakeConsumer, FakeClock]:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    pop = PopGroup("G", consumer, max_attempts=max_attempts, clock=clock)  # type: ignore[arg-type]
    return pop, consumer, clock


def test_subscribe_starts_once_and_resubscribes_only_on_a_changed_filter() -> None:
    pop, consumer, _ = _group()
    pop.subscribe("T", "TagA")
    pop.subscribe("T", "TagA")
    assert consumer.subscribed == [("T", "TagA", None)]
    assert consumer.starts == 1
    pop.subscribe("U")
    pop.subscribe("T", "TagB")
    pop.subscribe("T", "*", sql="a > 1")
    pop.subscribe("T", "*", sql="a > 1")
    assert consumer.subscribed == [
        ("T", "TagA", None),
        ("U", "*", None),
        ("T", "TagB", None),
        ("T", "*", "a > 1"),
    ]
    assert consumer.starts == 1
    assert pop.expressions == {"T": ("*", "a > 1"), "U": ("*", None)}


def test_shutdown_stops_only_a_started_consumer() -> None:
    pop, consumer, _ = _group()
    pop.shutdown()
    assert consumer.shutdowns == 0
    pop.subscribe("T")
    pop.shutdown()
    assert consumer.shutdowns == 1


def test_receive_hands_out_new_messages_with_attempt_one_and_unique_handles() -> None:
    pop, consumer, clock = _group()
    consumer.queued.extend([_msg(0), _msg(1), _msg(2)])
    got = pop.receive("T", 5, 30_000, wait_s=10)
    assert [d.msg.queue_offset for d in got] == [0, 1, 2]
    assert [d.attempt for d in got] == [1, 1, 1]
    assert len({d.handle for d in got}) == 3
    assert all(d.topic == "T" and d.deadline == clock.now + 30.0 for d in got)
    assert set(pop.in_flight) == {d.handle for d in got}
    assert consumer.timeouts == [RECHECK_S]  # a receive's wait is sliced: see below
    assert consumer.asked == [5]


def test_receive_returns_at_most_max_messages() -> None:
    pop, consumer, _ = _group()
    consumer.queued.extend(_msg(i) for i in range(5))
    first = pop.receive("T", 2, 30_000, wait_s=0)
    second = pop.receive("T", 2, 30_000, wait_s=0)
    assert [d.msg.queue_offset for d in first + second] == [0, 1, 2, 3]
    assert consumer.asked == [2, 2]


def test_receive_with_nothing_waits_up_to_wait_s_and_returns_empty() -> None:
    pop, consumer, clock = _group()
    start = clock.now
    assert pop.receive("T", 4, 30_000, wait_s=7.5) == []
    # in slices of RECHECK_S (a nack meanwhile is seen within one), 7.5 s in all
    assert consumer.timeouts == [1.0] * 7 + [0.5]
    assert clock.now == start + 7.5


def test_ack_acks_on_the_consumer_once() -> None:
    pop, consumer, _ = _group()
    consumer.queued.append(_msg(0))
    (delivery,) = pop.receive("T", 1, 30_000, wait_s=0)
    assert pop.ack(delivery.handle) is True
    assert consumer.acked == [delivery.msg]
    assert pop.ack(delivery.handle) is False
    assert pop.ack("no-such-handle") is False
    assert consumer.acked == [delivery.msg]
    assert pop.in_flight == {}


def test_an_ack_naming_another_topic_than_its_message_is_refused() -> None:
    # Given a delivery of a message of topic T
    pop, consumer, _ = _group()
    consumer.queued.append(_msg(0))
    (delivery,) = pop.receive("T", 1, 30_000, wait_s=0)
    # When it is acked naming another topic, Then it is refused and stays out
    assert pop.ack(delivery.handle, "Other") is False
    assert consumer.acked == [] and delivery.handle in pop.in_flight
    # And acked naming its own, it is acked
    assert pop.ack(delivery.handle, "T") is True and consumer.acked == [delivery.msg]


def test_a_lite_topics_message_is_acked_naming_its_parent() -> None:
    from actors.proxy.pop import _of_topic

    msg = _msg(0)
    msg.topic = "%LMQ%$Chats$s-1"
    assert _of_topic(msg, "Chats") and _of_topic(msg, "%LMQ%$Chats$s-1")
    assert not _of_topic(msg, "Other")


def test_an_unacked_message_comes_back_after_its_invisible_duration() -> None:
    pop, consumer, clock = _group()
    consumer.queued.append(_msg(0))
    (first,) = pop.receive("T", 1, 30_000, wait_s=0)
    clock.advance(29.9)
    assert pop.receive("T", 1, 30_000, wait_s=0) == []
    clock.advance(0.1)
    (again,) = pop.receive("T", 1, 30_000, wait_s=0)
    assert again.msg == first.msg
    assert again.attempt == 2
    assert again.handle != first.handle
    assert pop.ack(first.handle) is False
    assert pop.ack(again.handle) is True
    assert consumer.acked == [first.msg]


def test_a_waiting_receive_wakes_when_an_in_flight_delivery_falls_due() -> None:
    pop, consumer, clock = _group()
    consumer.queued.append(_msg(0))
    pop.receive("T", 1, 5_000, wait_s=0)
    consumer.timeouts.clear()
    start = clock.now
    (again,) = pop.receive("T", 1, 5_000, wait_s=20)
    # the polls waited only until the delivery's deadline, not the whole 20 s
    assert consumer.timeouts == [1.0] * 5
    assert clock.now == start + 5.0
    assert again.attempt == 2


def test_change_invisible_gives_a_new_handle_and_keeps_the_attempt() -> None:
    pop, consumer, clock = _group()
    consumer.queued.append(_msg(0))
    (first,) = pop.receive("T", 1, 10_000, wait_s=0)
    clock.advance(5)
    handle = pop.change_invisible(first.handle, 60_000)
    assert handle is not None and handle != first.handle
    assert pop.in_flight[handle].attempt == 1
    assert pop.ack(first.handle) is False
    assert pop.change_invisible(first.handle, 1_000) is None
    clock.advance(10)  # past the first duration, not the new one
    assert pop.receive("T", 1, 10_000, wait_s=0) == []
    clock.advance(50)
    (again,) = pop.receive("T", 1, 10_000, wait_s=0)
    assert again.attempt == 2
    assert pop.ack(handle) is False


def test_messages_polled_for_another_topic_wait_for_that_topics_receive() -> None:
    pop, consumer, _ = _group()
    consumer.queued.extend([_msg(0, "U"), _msg(1, "T"), _msg(2, "U")])
    got = pop.receive("T", 3, 30_000, wait_s=0)
    assert [(d.topic, d.msg.queue_offset) for d in got] == [("T", 1)]
    assert not consumer.queued
    polls = len(consumer.timeouts)
    for_u = pop.receive("U", 3, 30_000, wait_s=0)
    assert [(d.topic, d.msg.queue_offset, d.attempt) for d in for_u] == [
        ("U", 0, 1),
        ("U", 2, 1),
    ]
    # two of three from the ones kept: a poll for more that does not wait
    assert consumer.timeouts[polls:] == [0.0]


def test_an_expired_last_attempt_met_by_a_receive_is_left_to_the_sweep() -> None:
    pop, consumer, clock = _group(max_attempts=2)
    consumer.queued.append(_msg(0))
    (first,) = pop.receive("T", 1, 1_000, wait_s=0)
    clock.advance(1)
    (second,) = pop.receive("T", 1, 1_000, wait_s=0)
    assert second.attempt == 2
    assert consumer.dead == []
    clock.advance(1)
    # a receive neither hands it out again nor waits on a dead-letter send
    assert pop.receive("T", 1, 1_000, wait_s=0) == []
    assert consumer.dead == [] and pop.in_flight == {}
    assert pop.sweep() == 1
    assert consumer.dead == [first.msg]
    assert consumer.acked == [first.msg]


def test_sweep_dead_letters_expired_last_attempts_only() -> None:
    pop, consumer, clock = _group(max_attempts=1)
    consumer.queued.extend([_msg(0), _msg(1)])
    pop.subscribe("T")
    first, second = pop.receive("T", 2, 1_000, wait_s=0)
    assert pop.sweep() == 0
    assert pop.ack(second.handle) is True
    clock.advance(1)
    assert pop.sweep() == 1
    assert consumer.dead == [first.msg]
    assert consumer.acked == [second.msg, first.msg]
    assert pop.in_flight == {}
    assert pop.sweep() == 0


def test_sweep_leaves_expired_deliveries_with_attempts_left() -> None:
    pop, consumer, clock = _group(max_attempts=3)
    consumer.queued.append(_msg(0))
    pop.receive("T", 1, 1_000, wait_s=0)
    clock.advance(2)
    assert pop.sweep() == 0
    assert consumer.dead == []
    (again,) = pop.receive("T", 1, 1_000, wait_s=0)
    assert again.attempt == 2


def test_a_failing_dead_letter_send_keeps_the_delivery_and_is_tried_again() -> None:
    pop, consumer, clock = _group(max_attempts=1)
    consumer.queued.append(_msg(0))
    (delivery,) = pop.receive("T", 1, 1_000, wait_s=0)
    clock.advance(1)
    consumer.dlq_fails = True
    assert pop.sweep() == 0
    assert consumer.dead == [] and consumer.acked == []
    assert delivery.handle in pop.in_flight
    assert pop.sweep() == 0  # due again only a second later: not tried at once
    clock.advance(1)
    assert pop.receive("T", 1, 1_000, wait_s=0) == []  # not handed out again either
    assert pop.sweep() == 0  # tried again: fails again
    assert delivery.handle in pop.in_flight
    consumer.dlq_fails = False
    clock.advance(1)
    assert pop.sweep() == 1
    assert consumer.dead == [delivery.msg]
    assert consumer.acked == [delivery.msg]
    assert pop.in_flight == {}


def test_dead_letter_moves_a_delivery_now() -> None:
    pop, consumer, _ = _group()
    consumer.queued.extend([_msg(0), _msg(1)])
    first, second = pop.receive("T", 2, 30_000, wait_s=0)
    assert pop.dead_letter(first.handle) is True
    assert consumer.dead == [first.msg]
    assert consumer.acked == [first.msg]
    assert pop.dead_letter(first.handle) is None  # unknown now
    assert pop.ack(first.handle) is False
    assert pop.dead_letter("no-such-handle") is None
    consumer.dlq_fails = True
    assert pop.dead_letter(second.handle) is False
    assert pop.ack(second.handle) is True  # still in flight under its handle
    assert consumer.dead == [first.msg]


def test_another_topics_due_delivery_does_not_make_a_receive_spin() -> None:
    pop, consumer, _ = _group()
    consumer.queued.append(_msg(0, "A"))
    pop.receive("A", 1, 1_000, wait_s=0)  # in flight for 1 s
    consumer.timeouts.clear()
    got: list[Any] = pop.receive("B", 1, 1_000, wait_s=5)
    assert got == []
    assert len(consumer.timeouts) <= 6  # one per RECHECK_S, no spinning at 0


def test_a_failed_dead_letter_send_stops_the_sweeps_batch_and_keeps_the_rest() -> None:
    pop, consumer, clock = _group(max_attempts=1)
    consumer.queued.extend([_msg(0), _msg(1), _msg(2)])
    got = pop.receive("T", 3, 1_000, wait_s=0)
    clock.advance(1)
    consumer.dlq_fails = True
    # When the first send fails, the others are not tried (the broker may be down)
    assert pop.sweep() == 0
    assert set(pop.in_flight) == {d.handle for d in got}
    # Then the next sweeps, once sends work, take all three
    consumer.dlq_fails = False
    clock.advance(1)
    assert pop.sweep() == 3
    assert sorted(m.queue_offset for m in consumer.dead) == [0, 1, 2]


def test_a_receive_ends_at_its_wait_though_other_topics_keep_arriving() -> None:
    pop, consumer, clock = _group()

    def poll(timeout: float, max_messages: int) -> list[MessageExt]:
        clock.advance(timeout)
        return [_msg(len(consumer.timeouts), "U")]  # another topic's message, every time

    consumer.poll = poll  # type: ignore[method-assign]
    consumer.timeouts.append(0)
    start = clock.now
    assert pop.receive("T", 1, 1_000, wait_s=2) == []
    assert clock.now - start <= 2 + 1  # the wait, and at most one recheck slice more


def test_messages_of_a_queue_rebalanced_away_are_no_longer_handed_out() -> None:
    pop, consumer, clock = _group()
    consumer.queued.extend([_msg(0), _msg(1)])
    (out,) = pop.receive("T", 1, 1_000, wait_s=0)  # the other one waits in ready
    # When the queue goes to another member (the fake's messages are all of queue 0)
    consumer.moved_away.add(0)
    # Then the waiting message is not handed out, nor the one out once it is due again
    assert pop.receive("T", 1, 1_000, wait_s=0) == []
    clock.advance(2)
    assert pop.receive("T", 1, 1_000, wait_s=0) == []
    assert out.handle not in pop.in_flight


def test_the_sweep_forgets_deliveries_of_a_queue_rebalanced_away() -> None:
    pop, consumer, _ = _group()
    consumer.queued.append(_msg(0))
    (out,) = pop.receive("T", 1, 60_000, wait_s=0)
    consumer.moved_away.add(0)
    pop.sweep()
    assert pop.in_flight == {} and pop.ack(out.handle) is False
