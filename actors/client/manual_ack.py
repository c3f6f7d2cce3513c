"""Unacked: a lite pull consumer's polled-but-unacknowledged messages (``manual_ack=True``).

``poll`` records each message's queue, offset and the puller (and its generation) that pulled
it; ``ack`` finds them again and tells each puller ``Consumed`` for its offsets, so the queue's
process queue lets them go and its committable offset moves past them. Until then the offset
committed for the queue stays at the oldest unacknowledged message (RocketMQ's push-consumer
rule). An ack of a queue pulled again since (rebalanced away and back, or seeked) carries the
old generation: its puller ignores it, as it ignores a push listener finishing late.

Thread-safe: ``poll`` and ``ack`` may run on different threads (one lock, never held across a
switch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import pykka

from actors.client.message import MessageExt, MessageQueue
from actors.client.puller_messages import Consumed

Key = tuple[str, str, int, int]
"""(wire topic, broker name, queue id, queue offset)."""


class Unacked:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Key, tuple[pykka.ActorRef[Any], int]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def record(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, offsets: list[int]
    ) -> None:
        topic, broker, qid = mq.topic, mq.broker_name, mq.queue_id
        with self._lock:
            for offset in offsets:
                self._held[(topic, broker, qid, offset)] = (puller, generation)

    def held_by_live_puller(self, msg: MessageExt, wire_topic: str) -> bool:
        """Whether ``msg`` is held and the puller that pulled it still runs: False once its
        queue moved to another member (that puller stopped) or it was acked."""
        key = (wire_topic, msg.broker_name, msg.queue_id, msg.queue_offset)
        with self._lock:
            found = self._held.get(key)
        return found is not None and found[0].is_alive()

    def take(
        self, msgs: Iterable[MessageExt], wire_topic: Callable[[MessageExt], str]
    ) -> tuple[dict[tuple[pykka.ActorRef[Any], int], Consumed], int]:
        """The ``Consumed`` to tell each (puller, generation) for ``msgs`` (``wire_topic(msg)``
        gives a message's topic as the broker knows it), and how many were not held (acked
        before, or never polled with manual acks)."""
        grouped: dict[tuple[pykka.ActorRef[Any], int], list[int]] = {}
        unknown = 0
        with self._lock:
            for msg in msgs:
                key = (wire_topic(msg), msg.broker_name, msg.queue_id, msg.queue_offset)
                found = self._held.pop(key, None)
                if found is None:
                    unknown += 1
                else:
                    grouped.setdefault(found, []).append(msg.queue_offset)
        return {key: Consumed(key[1], offsets) for key, offsets in grouped.items()}, unknown
