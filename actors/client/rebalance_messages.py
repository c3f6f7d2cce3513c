"""What the ``Rebalancer`` (``actors.client.rebalance``) is told, and where a new group starts
(``ConsumeFrom``). Kept apart so the actor module holds only the actor;
``actors.client.rebalance`` re-exports them.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from actors.client.message import MessageQueue


class ConsumeFrom(enum.Enum):
    """Where a group with no committed offset on a queue starts (RocketMQ's ConsumeFromWhere):
    LAST = the queue's max offset (only messages sent after), FIRST = the queue's min offset
    (everything still stored), TIMESTAMP = the first message stored at or after the consumer's
    ``consume_timestamp``."""

    LAST = "CONSUME_FROM_LAST_OFFSET"
    FIRST = "CONSUME_FROM_FIRST_OFFSET"
    TIMESTAMP = "CONSUME_FROM_TIMESTAMP"


class DoRebalance(msgspec.Struct, frozen=True, tag=True):
    reason: str = "timer"
    reply: Any = None
    topics: frozenset[str] | None = None  # only these (None: every subscribed topic)


class Assign(msgspec.Struct, frozen=True, tag=True):
    queues: tuple[MessageQueue, ...]
    reply: Any = None


class SeekQueue(msgspec.Struct, frozen=True, tag=True):
    mq: MessageQueue
    offset: int
    generation: int
    reply: Any = None


class PullerExited(msgspec.Struct, frozen=True, tag=True):
    mq: MessageQueue
    urn: str
    failure: str | None


class QuiesceAll(msgspec.Struct, frozen=True, tag=True):
    reply: Any = None


class ReadAssignment(msgspec.Struct, frozen=True, tag=True):
    """``reply`` gets the queues pulled now (sorted): the consumer's ``assignment()``."""

    reply: Any = None


class SetSubscriptions(msgspec.Struct, frozen=True, tag=True):
    """The consumer's subscriptions changed while it runs (``subscribe`` / ``unsubscribe``
    after ``start``): topic -> ``TagFilter``, every one; ``reply`` gets whether the assignment
    changed."""

    subscriptions: dict[str, Any]
    reply: Any = None


class HoldQueues(msgspec.Struct, frozen=True, tag=True):
    """Pause (``on``) or resume pulling of ``queues`` (None: every queue, now and later),
    held now or assigned later; ``reply`` gets the queues held now that it changed."""

    queues: tuple[MessageQueue, ...] | None
    on: bool
    reply: Any = None


CONSUME_TIMESTAMP_LAG_MS = 30 * 60 * 1000
"""RocketMQ's default consumeTimestamp: half an hour before the consumer (here: its start)."""
