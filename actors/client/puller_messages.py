"""What a queue puller is told and configured with (``actors.client.puller``): its options,
the sink it delivers to, and its messages — pull outcomes (PullDone), consume reports
(Consumed: done, retry, the delay levels and suspend time a batch listener asked for),
send-back outcomes (SentBack), local redeliveries (Redeliver), seeks and quiescing, and flow
control (SetLimits, FlowCheck, IntervalOver: ``actors.client.pull_limits``). Kept apart so the
actor module holds only the actor; ``actors.client.puller`` re-exports them.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import msgspec
import pykka

from actors.client.message import MessageExt, MessageQueue


class Sink(Protocol):
    """Where a puller hands the messages it pulled."""

    def deliver(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None: ...

    def drop(self, mq: MessageQueue, floor: int) -> None:
        """``mq``'s puller moved to generation ``floor`` (a seek, a reset offset, an offset the
        broker moved): what was delivered of older generations and not consumed yet is dropped,
        never given to a listener (RocketMQ marks the ProcessQueue dropped)."""
        ...


class CappedSink(Sink, Protocol):
    """A sink that also caps what it holds across all queues (the lite consumer's PollBuffer,
    RocketMQ's pullThresholdForAll); asked only when ``max_cached_messages_total`` is set."""

    def room(self, puller: pykka.ActorRef[Any]) -> bool:
        """False when it holds more than its cap: the puller then waits, and is told
        ``FlowCheck`` once there is room again."""
        ...


_generations = itertools.count(1)


def next_generation() -> int:
    """Generations are unique in the process, so a restarted puller never reuses one."""
    return next(_generations)


class PullOptions(msgspec.Struct, frozen=True, kw_only=True):
    batch_size: int = 32
    suspend_ms: int = 15_000
    max_cached_messages: int = 1000
    max_cached_bytes: int = 100 * 1024 * 1024
    max_span: int = 2000
    """Pause pulling while the cached offsets span more than this (RocketMQ's
    consumeConcurrentlyMaxSpan / consumeMaxSpan); orderly consumers ignore it, as RocketMQ's."""
    error_delay: float = 3.0
    reconsume_delay: float = 1.0
    commit_in_pull: bool = True
    lite: bool = False
    send_back: bool = False
    """Hand failed messages back to the broker (clustering push consumers)."""
    max_reconsume_times: int = 16
    send_back_timeout: float = 3.0
    consume_timeout: float = 0.0
    """Seconds a listener call may hold a message before it is sent back (0: never; clustering
    push consumers, not orderly; ``actors.client.consume_timeout``)."""
    suspend_delay: float = 1.0
    """Orderly: how long a queue waits before a failed message is consumed again."""
    relock_interval: float = 20.0
    """Orderly: how often the queue locks are renewed (LOCK_BATCH_MQ)."""
    consume_batch_size: int = 1
    """Push: at most this many messages per call of a batch listener (RocketMQ's
    consumeMessageBatchMaxSize); the orderly puller offers whole calls' worth per task."""
    namespace: str = ""
    """The consumer's namespace ("" none): a message sent back gets its wire topic again."""
    pull_interval: float = 0.0
    """Push: seconds between a pull that found messages and the next pull of that queue
    (RocketMQ's pullInterval, in ms there; 0: at once)."""
    pull_threshold_for_topic: int = -1
    """Push: after each rebalance that changed the assignment, ``max_cached_messages`` becomes
    this divided by the queues held (at least 1; RocketMQ's pullThresholdForTopic; -1: off)."""
    pull_threshold_size_for_topic: int = -1
    """Push: the same for ``max_cached_bytes``, in MiB (RocketMQ's pullThresholdSizeForTopic;
    -1: off)."""
    max_cached_messages_total: int = 0
    """Lite: pause pulling while the poll buffer holds more than this many messages of all
    queues (RocketMQ's pullThresholdForAll; 0: off). The sink is a ``CappedSink`` then."""


class PullNext(msgspec.Struct, frozen=True, tag=True):
    pass


class PullDone(msgspec.Struct, frozen=True, tag=True):
    generation: int
    result: Any  # PullResult | None
    error: Any  # Exception | None


class Consumed(msgspec.Struct, frozen=True, tag=True):
    generation: int
    offsets: list[int]
    retry: list[int] = []
    delay_levels: dict[int, int] = {}
    """Offset -> the delay level a batch listener's context asked for (absent: 0)."""
    suspend_s: float | None = None
    """Orderly: the suspend time a batch listener's context asked for (None: the default)."""


class SentBack(msgspec.Struct, frozen=True, tag=True):
    generation: int
    ok: list[int]
    failed: list[int]
    expired: bool = False
    """They were sent back by the consume timeout: the failed ones stay as they are."""


class Redeliver(msgspec.Struct, frozen=True, tag=True):
    generation: int
    offsets: list[int]


class Seek(msgspec.Struct, frozen=True, tag=True):
    offset: int
    generation: int


class Quiesce(msgspec.Struct, frozen=True, tag=True):
    pass


class Hold(msgspec.Struct, frozen=True, tag=True):
    """Stop pulling (``on``) or pull again: the user paused or resumed the queue (a lite
    consumer's ``pause``, a push consumer's ``suspend``)."""

    on: bool


class SetLimits(msgspec.Struct, frozen=True, tag=True):
    """New per-queue limits (the rebalancer's share of the topic thresholds)."""

    max_cached_messages: int
    max_cached_bytes: int


class FlowCheck(msgspec.Struct, frozen=True, tag=True):
    """Look at flow control again and pull if no longer over (the sink has room again)."""


class IntervalOver(msgspec.Struct, frozen=True, tag=True):
    """The ``pull_interval`` timer fired."""
