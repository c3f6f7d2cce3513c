"""Priority messages in the proxy (actors/proxy/priority.py): the queue a priority goes to, and
a receive handing out the highest queue's waiting messages first (pop.py)."""

from __future__ import annotations

from actors.client.message import Message, MessageExt, MessageQueue
from actors.proxy.pop import PopGroup
from actors.proxy.priority import ByPriority
from runtime.remoting.properties import UNIQ_KEY, encode_properties
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer


def _queues(*brokers: str, count: int = 4) -> list[MessageQueue]:
    return [
        MessageQueue(topic="T", broker_name=b, queue_id=q) for b in brokers for q in range(count)
    ]


def test_a_priority_picks_its_queue_on_each_broker_in_turn() -> None:
    msg = Message("T", b"x")
    picks = [ByPriority(2)(_queues("a", "b"), msg) for _ in range(4)]
    assert {(q.broker_name, q.queue_id) for q in picks} == {("a", 2), ("b", 2)}
    assert ByPriority(9)(_queues("a"), msg).queue_id == 3  # above the last queue: the last
    assert ByPriority(0)(_queues("a"), msg).queue_id == 0


def _msg(queue_id: int, offset: int) -> MessageExt:
    props = encode_properties({UNIQ_KEY: f"ID{queue_id}-{offset}"})
    return MessageExt(
        "T", b"q%d-%d" % (queue_id, offset), props, queue_id=queue_id, queue_offset=offset
    )


def _group(fifo: bool = False) -> tuple[PopGroup, FakeConsumer]:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    pop = PopGroup("G", consumer, fifo=fifo, clock=clock)  # type: ignore[arg-type]
    pop.subscribe("T")
    pop.priority_topics.add("T")
    return pop, consumer


def test_the_highest_queue_waiting_goes_first() -> None:
    pop, consumer = _group()
    consumer.queued.extend([_msg(0, 0), _msg(1, 0), _msg(3, 0), _msg(0, 1), _msg(3, 1)])
    first = pop.receive("T", 2, 30_000, wait_s=0)
    assert [d.msg.body for d in first] == [b"q3-0", b"q3-1"]
    rest = pop.receive("T", 8, 30_000, wait_s=0)
    assert [d.msg.body for d in rest] == [b"q1-0", b"q0-0", b"q0-1"]


def test_a_new_urgent_message_passes_those_waiting() -> None:
    pop, consumer = _group()
    consumer.queued.extend([_msg(0, 0), _msg(0, 1)])
    assert [d.msg.body for d in pop.receive("T", 1, 30_000, wait_s=0)] == [b"q0-0"]
    consumer.queued.append(_msg(2, 0))
    assert [d.msg.body for d in pop.receive("T", 1, 30_000, wait_s=0)] == [b"q2-0"]


def test_a_fifo_group_keeps_arrival_order() -> None:
    pop, consumer = _group(fifo=True)
    consumer.queued.extend([_msg(0, 0), _msg(3, 0)])
    assert [d.msg.body for d in pop.receive("T", 8, 30_000, wait_s=0)] == [b"q0-0", b"q3-0"]


def test_an_urgent_message_behind_many_buffered_ones_still_goes_first() -> None:
    pop, consumer = _group()
    consumer.queued.extend(_msg(0, i) for i in range(600))  # more than one drain batch
    consumer.queued.append(_msg(3, 0))
    assert [d.msg.body for d in pop.receive("T", 1, 30_000, wait_s=0)] == [b"q3-0"]


def test_a_priority_topics_redelivery_waits_behind_waiting_messages() -> None:
    pop, consumer = _group()
    clock = consumer.clock
    consumer.queued.append(_msg(0, 0))
    (_first,) = pop.receive("T", 1, 1_000, wait_s=0)
    consumer.queued.append(_msg(1, 0))
    clock.advance(2)  # the first is due again
    got = pop.receive("T", 2, 1_000, wait_s=0)
    assert [(d.msg.body, d.attempt) for d in got] == [(b"q1-0", 1), (b"q0-0", 2)]
