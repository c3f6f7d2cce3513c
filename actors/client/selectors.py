"""Queue selection for sends: round robin (default), by sharding key, by a callable, explicit.

A selector is any ``callable(queues, message) -> MessageQueue`` where ``queues`` are the topic's
writable queues in (broker name, queue id) order, as RocketMQ's MessageQueueSelector.
``Selection`` is what one send asked for (an explicit queue, a selector, or neither: the
default round robin, ``ROUND_ROBIN``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

from actors.client.errors import MessageInvalidError
from actors.client.message import Message, MessageQueue
from runtime.store.record import java_hash

QueueSelector = Callable[[Sequence[MessageQueue], Message], MessageQueue]


def shard_index(key: str, count: int) -> int:
    """RocketMQ's SelectMessageQueueByHash: ``abs(key.hashCode()) % count`` (Java hash), so a
    key lands on the same queue index as with RocketMQ's own clients."""
    return abs(java_hash(key)) % count


class ByShardingKey:
    """Select ``queues[abs(javaHash(key)) % len(queues)]``: one key, one queue (ordering)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, queues: Sequence[MessageQueue], message: Message) -> MessageQueue:
        return queues[shard_index(self.key, len(queues))]


def _first_queue_from_env() -> int | None:
    value = os.environ.get("ACTORMQ_FIRST_QUEUE", "")
    return int(value) if value.isdigit() else None


FIRST_QUEUE: int | None = _first_queue_from_env()
"""Where every new RoundRobin starts (None: at random). The test suite fixes it at 0, also in
the processes it starts (``ACTORMQ_FIRST_QUEUE=0``, ``tests/conftest.py``), so that its
assertions on the first queue hold."""


class RoundRobin:
    """Default selection: the next queue of the topic; on a retry, the next queue on a broker
    other than the one that just failed (when there is one); with send latency fault tolerance
    (``actors.client.latency_fault``), first the next on a broker not at fault. State is per
    topic, starting at a random queue (RocketMQ's ThreadLocalIndex: many short-lived producers
    do not all send their first message to the first queue; ``FIRST_QUEUE`` fixes it). Hub
    only."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def select(
        self,
        queues: Sequence[MessageQueue],
        avoid: str | None = None,
        available: Callable[[str], bool] | None = None,
    ) -> MessageQueue:
        """The next queue; with ``available`` (send latency fault tolerance), the next on an
        available broker other than ``avoid``, when there is one."""
        topic = queues[0].topic
        n = len(queues)
        start = self._next.get(topic)
        if start is None:
            start = FIRST_QUEUE if FIRST_QUEUE is not None else random.randrange(1 << 16)
        if available is not None:
            for step in range(n):
                mq = queues[(start + step) % n]
                if mq.broker_name != avoid and available(mq.broker_name):
                    self._next[topic] = start + step + 1
                    return mq
        if avoid is not None:
            for step in range(n):
                mq = queues[(start + step) % n]
                if mq.broker_name != avoid:
                    self._next[topic] = start + step + 1
                    return mq
        self._next[topic] = start + 1
        return queues[start % n]


def check_selected(mq: object, queues: Sequence[MessageQueue]) -> MessageQueue:
    if not isinstance(mq, MessageQueue):
        raise MessageInvalidError("queue", f"selector returned {mq!r}, not a MessageQueue")
    return mq


class Selection:
    """How to pick the queue: exactly one of explicit queue, selector, or round robin."""

    __slots__ = ("message", "queue", "selector")

    def __init__(
        self,
        queue: MessageQueue | None = None,
        selector: QueueSelector | None = None,
        message: Message | None = None,
    ) -> None:
        self.queue = queue
        self.selector = selector
        self.message = message

    @property
    def default(self) -> bool:
        return self.queue is None and self.selector is None


ROUND_ROBIN = Selection()
