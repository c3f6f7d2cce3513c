"""Flow control of the pull loops: RocketMQ's pull thresholds and pull interval.

- **Per queue** (``over_queue_limits``, asked by ``QueuePuller`` after each pull and each
  consume report): a queue stops pulling while more than ``max_cached_messages``
  (pullThresholdForQueue) messages or ``max_cached_bytes`` (pullThresholdSizeForQueue) of bodies
  are pulled but not consumed, or (concurrent consumers) the cached offsets span more than
  ``max_span`` (consumeConcurrentlyMaxSpan / consumeMaxSpan; 0: off).
- **Per topic, push** (``share_topic_limits``, called by the ``Rebalancer`` after a rebalance
  that changed the assignment): with ``pull_threshold_for_topic`` /
  ``pull_threshold_size_for_topic`` set (not -1), the per-queue limits become those divided by
  the number of queues the consumer holds (at least 1 message / 1 MiB), told to every puller
  (``SetLimits``). As RocketMQ's ``RebalancePushImpl.messageQueueChanged``, the divisor is
  every queue the consumer holds, of all its topics and its ``%RETRY%<group>`` queues alike
  (its ``processQueueTable``), not only the queues of one topic; a consumer holding no queue
  keeps its limits.
- **All queues, lite** (``TotalCap``, inside the ``PollBuffer``): RocketMQ's
  pullThresholdForAll: pulling pauses while the buffer holds more than
  ``max_cached_messages_total`` messages not yet polled, and the paused pullers are told
  ``FlowCheck`` once a ``poll`` (or a seek) brought it back to the cap.
- **Pull interval, push** (``pull_interval``, the puller's own timer): after a pull that found
  messages the queue's next pull waits that long; pulls that found nothing pull again at once,
  as RocketMQ.

``check_*`` validate the options at construction (``ClientError`` naming the option, the value
and the range; the ranges are RocketMQ's ``checkConfig`` ones).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import msgspec
import pykka
from loguru import logger

from actors.client.errors import ClientError
from actors.client.process_queue import ProcessQueue
from actors.client.puller_messages import PullOptions, SetLimits

MIB = 1024 * 1024
MAX_PULL_INTERVAL = 65.535
"""Seconds (RocketMQ: pullInterval in [0, 65535] ms)."""
MAX_THRESHOLD_FOR_TOPIC = 6_553_500
MAX_THRESHOLD_SIZE_FOR_TOPIC = 102_400
"""MiB (RocketMQ: pullThresholdSizeForTopic in [1, 102400])."""
MAX_PULL_BATCH_SIZE = 1024
"""RocketMQ's checkConfig: pullBatchSize in [1, 1024]."""
OFF = -1


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_pull_interval(value: float) -> float:
    if not _is_number(value):
        raise ClientError(f"pull_interval {value!r} is not a number of seconds")
    if not 0 <= value <= MAX_PULL_INTERVAL:
        raise ClientError(
            f"pull_interval {value!r} is out of range [0, {MAX_PULL_INTERVAL}] seconds "
            "(RocketMQ's pullInterval, [0, 65535] ms)"
        )
    return float(value)


def _check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ClientError(f"{name} {value!r} is not an int")


def check_topic_threshold(name: str, value: int, upper: int, unit: str = "") -> int:
    """-1 (off) or an int in [1, upper]."""
    _check_int(name, value)
    if not (value == OFF or 1 <= value <= upper):
        raise ClientError(f"{name} {value} is out of range [1, {upper}]{unit} (or -1: off)")
    return value


def check_at_least(name: str, value: object, least: int) -> None:
    """An int of at least ``least`` (0 named as "off" when that is the least)."""
    _check_int(name, value)
    assert isinstance(value, int)
    if value < least:
        raise ClientError(f"{name} {value} is below {least}" + (" (0: off)" * (least == 0)))


def check_total(value: int) -> int:
    """0 (off) or a positive int."""
    _check_int("max_cached_messages_total", value)
    if value < 0:
        raise ClientError(f"max_cached_messages_total {value} is negative (0: off)")
    return value


def check_pull_options(opts: PullOptions) -> None:
    """The pull options every consumer has, checked at construction: ``ClientError`` naming
    the option as the constructors spell it, the value and what it may be."""
    _check_int("pull_batch_size", opts.batch_size)
    if not 1 <= opts.batch_size <= MAX_PULL_BATCH_SIZE:
        raise ClientError(
            f"pull_batch_size {opts.batch_size} is out of range [1, {MAX_PULL_BATCH_SIZE}] "
            "(RocketMQ's pullBatchSize)"
        )
    check_at_least("max_cached_messages", opts.max_cached_messages, 1)
    check_at_least("max_cached_bytes", opts.max_cached_bytes, 1)
    check_at_least("max_span", opts.max_span, 0)
    for name, seconds in (
        ("consume_timeout", opts.consume_timeout),
        ("suspend_timeout", opts.suspend_ms / 1000),
        ("pull_error_delay", opts.error_delay),
    ):
        if not _is_number(seconds) or seconds < 0:
            raise ClientError(f"{name} {seconds!r} is not a number of seconds >= 0")


def over_queue_limits(pq: ProcessQueue, opts: PullOptions, concurrent: bool) -> bool:
    """Whether one queue's cache is over its limits (count, bytes, and the span when
    ``concurrent``)."""
    return (
        pq.count > opts.max_cached_messages
        or pq.bytes > opts.max_cached_bytes
        or (concurrent and opts.max_span > 0 and pq.count > 1 and pq.span() > opts.max_span)
    )


def topic_share(opts: PullOptions, queues_held: int) -> tuple[int, int] | None:
    """The per-queue (messages, bytes) limits the topic thresholds give for ``queues_held``
    queues; None when neither is set or no queue is held (the limits stay as they are)."""
    by_count = opts.pull_threshold_for_topic
    by_size = opts.pull_threshold_size_for_topic
    if queues_held <= 0 or (by_count == OFF and by_size == OFF):
        return None
    messages = opts.max_cached_messages if by_count == OFF else max(1, by_count // queues_held)
    size = opts.max_cached_bytes if by_size == OFF else max(1, by_size // queues_held) * MIB
    return messages, size


def share_topic_limits(
    opts: PullOptions, pullers: Mapping[Any, pykka.ActorRef[Any]], group: str
) -> PullOptions:
    """After a rebalance: the options with the per-queue limits the topic thresholds give for
    the queues now held, told to every puller when they changed (see the module docstring)."""
    share = topic_share(opts, len(pullers))
    if share is None or share == (opts.max_cached_messages, opts.max_cached_bytes):
        return opts
    messages, size = share
    logger.info(
        "client: {} holds {} queues: per-queue limits {} messages / {} bytes (were {} / {})",
        group,
        len(pullers),
        messages,
        size,
        opts.max_cached_messages,
        opts.max_cached_bytes,
    )
    for ref in pullers.values():
        # a puller that died meanwhile: a restarted one gets the new options
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(SetLimits(messages, size))
    return msgspec.structs.replace(opts, max_cached_messages=messages, max_cached_bytes=size)


class TotalCap:
    """How many messages a sink holds across all queues, and the pullers waiting for room
    (RocketMQ's pullThresholdForAll). Not thread-safe: its owner (the ``PollBuffer``) calls it
    under its own lock."""

    __slots__ = ("count", "limit", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """0: no cap."""
        self.count = 0
        self.waiting: set[pykka.ActorRef[Any]] = set()

    def room(self, puller: pykka.ActorRef[Any]) -> bool:
        """False while over the cap; the puller is then remembered for ``released``."""
        if not self.limit or self.count <= self.limit:
            return True
        self.waiting.add(puller)
        return False

    def released(self) -> list[pykka.ActorRef[Any]]:
        """The waiting pullers, once the count is back at or under the cap (they are then
        forgotten: each is to be told ``FlowCheck``)."""
        if not self.waiting or self.count > self.limit:
            return []
        waiting, self.waiting = list(self.waiting), set()
        return waiting
