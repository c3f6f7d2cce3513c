"""Start offsets of newly assigned queues, looked up together when there are many.

A consumer's rebalancer needs each new queue's start offset (``Rebalancer.start_offset``: the
route, the group's offset, the consume-from offset and its commit, two to four round trips)
before it starts the queue's puller. One queue at a time, a lite consumer assigned one queue of
each of 4,000 topics took 10 - 20 s to start, both processes mostly waiting for each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from actors.client.errors import ClientError
from actors.client.fan_out import ONE_BY_ONE, fan_out
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.offsets import queue_offset
from actors.client.rebalance_messages import CONSUME_TIMESTAMP_LAG_MS, ConsumeFrom
from runtime.remoting.codes import RETRY_PREFIX, RequestCode

START_ONE_BY_ONE = ONE_BY_ONE
"""Up to this many newly assigned queues are looked up one at a time, in order, as always: a
group's rebalance moves a few queues, and the member taking one over then asks for its offset
some round trips after the member giving it up was told (NOTIFY_CONSUMER_IDS_CHANGED) and
commits it. That is an order of events RocketMQ does not promise either (a handover may
deliver a message twice), but the usual one (``test_a_queue_taken_away_has_its_offset_
committed_first``). More are looked up ``fan_out``'s ``IN_FLIGHT`` at once."""


def start_offsets(
    mqs: list[MessageQueue], lookup: Callable[[MessageQueue], int]
) -> dict[MessageQueue, int]:
    """``lookup(mq)`` of each of ``mqs`` (``fan_out``). A queue whose lookup raises a
    ClientError is left out (a warning; the next rebalance tries again); anything else is
    raised (the first one)."""

    def one(mq: MessageQueue) -> int | None:
        try:
            return lookup(mq)
        except ClientError as exc:
            logger.warning("client: cannot start {}: {}", mq, exc)
            return None

    return {mq: offset for mq, offset in fan_out(mqs, one).items() if offset is not None}


def consume_from_offset(
    instance: ClientInstance,
    mq: MessageQueue,
    consume_from: ConsumeFrom,
    consume_timestamp: int | None,
    timeout: float,
) -> int:
    """Where a group with no committed offset starts ``mq``, asked of its broker: LAST its max
    offset, FIRST (and any retry topic) its min offset, TIMESTAMP the offset of the first
    message stored at or after ``consume_timestamp``."""
    if consume_from is ConsumeFrom.FIRST or mq.topic.startswith(RETRY_PREFIX):
        return queue_offset(instance, RequestCode.GET_MIN_OFFSET, mq, timeout)
    if consume_from is ConsumeFrom.TIMESTAMP:
        ts = consume_timestamp
        if ts is None:  # the consumer passes its own default; this is a fallback
            ts = int(time.time() * 1000) - CONSUME_TIMESTAMP_LAG_MS
        return queue_offset(instance, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, mq, timeout, ts)
    return queue_offset(instance, RequestCode.GET_MAX_OFFSET, mq, timeout)
