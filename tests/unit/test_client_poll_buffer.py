"""The lite pull consumer's PollBuffer: what poll may return."""

from __future__ import annotations

from typing import Any

from actors.client import MessageQueue
from actors.client.poll_buffer import PollBuffer


class _Puller:
    """Stands in for a QueuePuller's ActorRef: alive or stopped."""

    def __init__(self, alive: bool) -> None:
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


def test_a_stopped_pullers_batches_are_not_returned() -> None:
    # Given a batch of q3 (offset 1204) pulled by a puller, then the queue removed from this
    # consumer and given back (R17 soak seed 8: the old puller stopped, a new one pulled 1204
    # again from the committed offset)
    buffer = PollBuffer()
    q3 = MessageQueue(topic="T", broker_name="b", queue_id=3)
    old, new = _Puller(alive=True), _Puller(alive=True)
    msgs: list[Any] = ["m1204"]
    buffer.deliver(old, 1, q3, msgs)  # type: ignore[arg-type]
    old.alive = False
    buffer.deliver(new, 2, q3, ["m1204 again"])  # type: ignore[arg-type, list-item]
    # When the application polls
    got = buffer.take(10, timeout=0)
    # Then only the live puller's batch comes back: 1204 once
    assert [b.msgs for b in got] == [["m1204 again"]]
    assert buffer.take(10, timeout=0) == []


def test_a_paused_queues_batches_wait_in_order_and_do_not_count_toward_the_cap() -> None:
    # Given a buffer capped at 3 messages holding 2 batches of q0 and one of q1
    buffer = PollBuffer(max_total=3)
    q0 = MessageQueue(topic="T", broker_name="b", queue_id=0)
    q1 = MessageQueue(topic="T", broker_name="b", queue_id=1)
    puller: Any = _Puller(alive=True)
    buffer.deliver(puller, 1, q0, ["a", "b"])
    buffer.deliver(puller, 1, q1, ["x"])
    buffer.deliver(puller, 1, q0, ["c"])
    assert buffer.cap.count == 4 and not buffer.room(puller)
    # When q0 is paused
    buffer.hold([q0], True)
    # Then only q1's batch is taken, and q0's 3 messages no longer fill the cap
    assert [b.msgs for b in buffer.take(10, timeout=0)] == [["x"]]
    assert buffer.cap.count == 0 and buffer.released() == [puller]
    buffer.deliver(puller, 1, q0, ["d"])
    assert buffer.take(10, timeout=0) == [] and buffer.cap.count == 0
    # When it is resumed, Then its batches come back in the order they were pulled
    buffer.hold([q0], False)
    assert buffer.cap.count == 4
    assert [m for b in buffer.take(10, timeout=0) for m in b.msgs] == ["a", "b", "c", "d"]


def test_a_wakeup_ends_a_waiting_take_and_no_later_one() -> None:
    import threading
    import time

    # Given a take waiting up to 30 s on an empty buffer
    buffer = PollBuffer()
    waiting = threading.Event()
    result: list[Any] = []

    def take() -> None:
        waiting.set()
        result.append(buffer.take(10, timeout=30))

    taker = threading.Thread(target=take)
    started = time.monotonic()
    taker.start()
    assert waiting.wait(5)
    # When another thread wakes it up (repeatedly: the take may not wait yet the first time)
    while taker.is_alive() and time.monotonic() - started < 10:
        buffer.wakeup()
        taker.join(0.05)
    # Then it returns at once, with nothing
    assert not taker.is_alive() and result == [[]]
    assert time.monotonic() - started < 10
    # And a take begun after the wakeup waits as usual
    began = time.monotonic()
    assert buffer.take(10, timeout=0.2) == []
    assert time.monotonic() - began >= 0.19
