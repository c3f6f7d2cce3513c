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


def test_a_message_groups_messages_go_out_as_one_receives_batch() -> None:
    # Given g1's messages 0, 1, 3, g2's 2 and an ungrouped 4
    pop, consumer, _ = _fifo(
        _msg(0, "g1"), _msg(1, "g1"), _msg(2, "g2"), _msg(3, "g1"), _msg(4, None)
    )
    # When a receive asks for everything, it gets everything, each group in order
    first = pop.receive("T", 10, 30_000, wait_s=0)
    assert _offsets(first) == [0, 1, 2, 3, 4]
    # When g1's message 5 comes, it waits until every message of g1's batch is acked
    consumer.queued.append(_msg(5, "g1"))
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == []
    by_offset = {d.msg.queue_offset: d for d in first}
    assert pop.ack(by_offset[0].handle) and pop.ack(by_offset[3].handle)
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == []
    wakeups = consumer.wakeups
    assert pop.ack(by_offset[1].handle)
    assert consumer.wakeups == wakeups + 1  # a receive waiting for it is woken
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == [5]


def test_a_batch_is_as_large_as_the_receive_asks_and_the_rest_waits_for_it() -> None:
    pop, _consumer, _ = _fifo(_msg(0, "g1"), _msg(1, "g1"), _msg(2, "g1"))
    first = pop.receive("T", 2, 30_000, wait_s=0)
    assert _offsets(first) == [0, 1]
    assert _offsets(pop.receive("T", 2, 30_000, wait_s=0)) == []  # 2 waits behind the batch
    for delivery in first:
        assert pop.ack(delivery.handle)
    assert _offsets(pop.receive("T", 2, 30_000, wait_s=0)) == [2]


def test_a_redelivered_batch_comes_again_in_order_and_keeps_its_group_waiting() -> None:
    pop, consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"))
    first = pop.receive("T", 10, 1_000, wait_s=0)
    assert _offsets(first) == [0, 1]
    consumer.queued.append(_msg(2, "g1"))
    # When their invisible duration passes unacked, they come again (attempt 2), in order,
    # before message 2
    clock.advance(2)
    again = pop.receive("T", 10, 1_000, wait_s=0)
    assert [(d.msg.queue_offset, d.attempt) for d in again] == [(0, 2), (1, 2)]
    # And message 2 follows only once both are acked
    assert pop.ack(again[0].handle) and not pop.ack(first[0].handle)
    assert _offsets(pop.receive("T", 10, 1_000, wait_s=0)) == []
    assert pop.ack(again[1].handle)
    assert _offsets(pop.receive("T", 10, 1_000, wait_s=0)) == [2]


def test_a_dead_lettered_batch_lets_its_message_group_go_on() -> None:
    pop, consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"), max_attempts=1)
    pop.receive("T", 10, 1_000, wait_s=0)
    consumer.queued.append(_msg(2, "g1"))
    assert pop.receive("T", 10, 1_000, wait_s=0) == []
    clock.advance(2)
    # When the batch ran out of attempts, the sweep dead-letters it
    assert pop.sweep() == 2
    assert [m.queue_offset for m in consumer.dead] == [0, 1]
    # Then the group's next message is handed out
    assert _offsets(pop.receive("T", 10, 1_000, wait_s=0)) == [2]


def test_a_group_that_is_not_fifo_hands_out_everything() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.queued.extend([_msg(0, "g1"), _msg(1, "g1")])
    pop = PopGroup("G", consumer, clock=clock)  # type: ignore[arg-type]
    assert _offsets(pop.receive("T", 10, 1_000, wait_s=0)) == [0, 1]


def test_a_batch_due_again_is_not_split_over_two_receives() -> None:
    pop, _consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"))
    pop.receive("T", 10, 1_000, wait_s=0)
    clock.advance(2)
    # a receive asking for one gets the whole batch due again: another consumer must not
    # work on the same message group meanwhile
    assert _offsets(pop.receive("T", 1, 1_000, wait_s=0)) == [0, 1]
    assert _offsets(pop.receive("T", 1, 1_000, wait_s=0)) == []


def test_messages_parked_by_another_receive_keep_their_place() -> None:
    # Given a group pulling T and U, whose receive of U polls (and parks) T's message 1 while
    # a receive of T waits
    u0 = MessageExt("U", b"u0", encode_properties({UNIQ_KEY: "U0"}), queue_offset=0)
    u1 = MessageExt("U", b"u1", encode_properties({UNIQ_KEY: "U1"}), queue_offset=1)
    pop, consumer, _ = _fifo(_msg(0, "g1"), u0)
    assert [d.msg.body for d in pop.receive("U", 10, 30_000, wait_s=0)] == [b"u0"]
    polls = {"n": 0}
    real_poll = consumer.poll

    def poll(timeout: float, max_messages: int) -> list[MessageExt]:
        polls["n"] += 1
        if polls["n"] == 1:
            consumer.queued.extend([_msg(1, "g1"), u1])
            pop.receive("U", 1, 30_000, wait_s=0)
            consumer.queued.append(_msg(2, "g1"))
        return real_poll(timeout, max_messages)

    consumer.poll = poll  # type: ignore[method-assign]
    # When the receive of T goes on
    got = pop.receive("T", 10, 30_000, wait_s=0)
    # Then T's messages come in order: the parked one before the one polled after it
    assert _offsets(got) == [0, 1, 2]


def test_a_batch_message_nacked_shorter_does_not_overtake_one_before_it() -> None:
    # Given g1's batch 0, 1, 2 out for 30 s, and message 1 nacked to come back in 1 s
    pop, _consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"), _msg(2, "g1"))
    first = pop.receive("T", 10, 30_000, wait_s=0)
    assert _offsets(first) == [0, 1, 2]
    assert pop.change_invisible(first[1].handle, 1_000) is not None
    # When its second passes, Then it does not come again while 0 (before it) is still out
    clock.advance(2)
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == []
    # Nor once 0 is acked, while 2 is still out (the batch comes again together)
    assert pop.ack(first[0].handle)
    clock.advance(2)
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == []
    # When 2's duration passes too, Then 1 and 2 come again, in order
    clock.advance(30)
    again = pop.receive("T", 10, 30_000, wait_s=0)
    assert [(d.msg.queue_offset, d.attempt) for d in again] == [(1, 2), (2, 2)]


def test_a_later_message_of_a_batch_made_visible_first_still_comes_after() -> None:
    # Given g1's batch 0, 1 out; 1 nacked to come back at once, 0 to come back in 1 s
    pop, _consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"))
    first = pop.receive("T", 10, 30_000, wait_s=0)
    pop.change_invisible(first[1].handle, 0)
    pop.change_invisible(first[0].handle, 1_000)
    # When both are due, Then they come in their order, 0 first
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == []
    clock.advance(2)
    again = pop.receive("T", 10, 30_000, wait_s=0)
    assert _offsets(again) == [0, 1]


def test_a_small_receive_never_takes_a_later_message_of_a_group_alone() -> None:
    # Given g1's 0 and 1 and g2's 2 out, nacked for 10 s, 5 s and 7 s, and no receive
    # until all three are due
    pop, _consumer, clock = _fifo(_msg(0, "g1"), _msg(1, "g1"), _msg(2, "g2"))
    first = pop.receive("T", 10, 30_000, wait_s=0)
    for delivery, ms in zip(first, (10_000, 5_000, 7_000), strict=True):
        pop.change_invisible(delivery.handle, ms)
    clock.advance(11)
    # When a receive asks for one message, Then it gets g1's batch whole, 0 first (not 1
    # alone), and the next receive g2's
    assert _offsets(pop.receive("T", 1, 30_000, wait_s=0)) == [0, 1]
    assert _offsets(pop.receive("T", 1, 30_000, wait_s=0)) == [2]


def test_a_message_held_by_a_live_push_consumer_keeps_the_ones_after_it_back() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.queued.extend([_msg(0, "g1"), _msg(1, "g1")])
    pop = PopGroup("G", consumer, fifo=True, alive=lambda who: who == "c1", clock=clock)  # type: ignore[arg-type]
    # Given a push consumer holding g1's 0 and 1 (auto-renewed), and 1 nacked (no longer held)
    first = pop.receive("T", 10, 30_000, wait_s=0, holder="c1")
    pop.change_invisible(first[1].handle, 1_000)
    # When both durations pass, Then 1 does not come again while c1 still holds 0
    clock.advance(31)
    assert _offsets(pop.receive("T", 10, 30_000, wait_s=0)) == []
