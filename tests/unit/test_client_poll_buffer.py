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
