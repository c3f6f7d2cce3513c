"""Priority messages (RocketMQ 5.5): a topic whose ``message.type`` attribute is PRIORITY
(``admin updateTopic -t T -a +message.type=PRIORITY``) takes messages with a priority, an
integer >= 0, bigger first.

As RocketMQ's broker does, the priority is the queue: a message goes to queue
``min(priority, queues - 1)`` of the broker it is sent to (brokers taken in turn), so a topic
of N queues has N levels, and the property ``_SYS_MSG_PRIORITY_`` keeps the priority itself.
A receive hands out what waits in the highest queue first (``PopGroup``, not for FIFO groups),
so order by priority holds among the messages waiting when a receive comes: a consumer that
keeps up sees them in arrival order, one that falls behind gets the urgent ones first.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

from actors.client.message import Message, MessageExt, MessageQueue

PRIORITY_PROPERTY = "_SYS_MSG_PRIORITY_"
"""RocketMQ's MessageConst.PROPERTY_PRIORITY."""


class ByPriority:
    """A producer's queue selector for one priority: brokers in turn, the priority's queue on
    each (``queues`` are the topic's writable queues in (broker, queue id) order)."""

    _turn = itertools.count()

    def __init__(self, priority: int) -> None:
        self.priority = priority

    def __call__(self, queues: Sequence[MessageQueue], message: Message) -> MessageQueue:
        brokers = sorted({q.broker_name for q in queues})
        broker = brokers[next(self._turn) % len(brokers)]
        mine = [q for q in queues if q.broker_name == broker]
        return mine[min(self.priority, len(mine) - 1)]


def most_urgent_first(msg: MessageExt) -> tuple[int, int]:
    """Sort key of waiting messages: the highest queue first, then as stored."""
    return -msg.queue_id, msg.queue_offset


class Urgent:
    """Waiting messages of priority topics, the most urgent first: a heap per topic. Under the
    owner's lock."""

    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[tuple[int, int], int, MessageExt]]] = {}
        self._seq = itertools.count()

    def push(self, msg: MessageExt) -> None:
        heap = self._heaps.setdefault(msg.topic, [])
        heapq.heappush(heap, (most_urgent_first(msg), next(self._seq), msg))

    def pop(self, topic: str) -> MessageExt | None:
        heap = self._heaps.get(topic)
        if not heap:
            return None
        return heapq.heappop(heap)[2]

    def drop(self, topic: str) -> None:
        self._heaps.pop(topic, None)
