"""actors/proxy/pop.py: a FIFO group's message groups, one message out at a time."""

from __future__ import annotations

from actors.client.message import MessageExt
from actors.proxy.pop import PopGroup
from runtime.remoting.properties import SHARDING_KEY, UNIQ_KEY, encode_properties
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer


def _msg(offset: int, group: str | None) -> MessageExt:
    props = {UNIQ_KEY: f"ID{offset}"}
    if group is not None:
        props[SHARDING_KEY] = group
    return MessageExt("T", b"body%d" % offset, encode_properties(props), queue_offset=offset)


def _fifo(*msgs: MessageExt, max_attempts: int = 17) -> tuple[PopGroup, FakeConsumer, FakeClock]:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.queued.extend(msgs)
    pop = PopGroup("G", consumer, max_attempts=max_attempts, fifo=True, clock=clock)  # type: ignore[arg-type]
    return pop, consumer, clock


def _offsets(deliveries: list) -> list[int]:
    return [d.msg.queue_offset for d in deliveries]


def test_one_message_of_a_message_group_is_out_at_a_time() -> None:
    # Given g1's messages 0, 1, 3, g2's 2 and an ungrouped 4
    pop, _consumer, _ = _fifo(
        _msg(0, "g1"), _msg(1, "g1"), _msg(2, "g2"), _msg(3, "g1"), _msg(4, None)
    )
    # When a receive asks for everything
    first = pop.receive("T", 10, 30_000, wait_s=0)
    # Then it gets the head of each message group and the ungrouped one only
    assert _offsets(first) == [0, 2, 4]
    # When g1's head is acked, g1's next one is the next receive's, then the one after it
    assert pop.ack(first[0].handle)
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == [1]
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == []


def test_a_redelivered_head_keeps_its_message_group_waiting() -> None:
    pop, _consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"))
    [head] = pop.receive("T", 10, 1_000, wait_s=0)
    # When its invisible duration passes unacked, it comes again (attempt 2), before message 1
    clock.advance(2)
    again = pop.receive("T", 10, 1_000, wait_s=0)
    assert [(d.msg.queue_offset, d.attempt) for d in again] == [(0, 2)]
    # And message 1 follows only once it is acked
    assert pop.ack(again[0].handle) and not pop.ack(head.handle)
    assert _offsets(pop.receive("T", 10, 1_000, wait_s=0)) == [1]


def test_a_dead_lettered_head_lets_its_message_group_go_on() -> None:
    pop, consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"), max_attempts=1)
    pop.receive("T", 10, 1_000, wait_s=0)
    clock.advance(2)
    # When the head ran out of attempts, the sweep dead-letters it
    assert pop.sweep() == 1
    assert [m.queue_offset for m in consumer.dead] == [0]
    # Then the group's next message is handed out
    assert _offsets(pop.receive("T", 10, 1_000, wait_s=0)) == [1]


def test_a_group_that_is_not_fifo_hands_out_everything() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.queued.extend([_msg(0, "g1"), _msg(1, "g1")])
    pop = PopGroup("G", consumer, clock=clock)  # type: ignore[arg-type]
    assert _offsets(pop.receive("T", 10, 1_000, wait_s=0)) == [0, 1]
