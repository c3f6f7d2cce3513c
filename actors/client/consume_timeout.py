"""Consume timeout: RocketMQ's ``consumeTimeout`` (its ``ProcessQueue.cleanExpiredMsg``).

A push consumer's listener that never returns would hold its queue's committable offset (the
lowest offset in flight) forever: nothing after it is ever committed, and a restart or
rebalance delivers all of it again. So, in clustering mode and for concurrent (not orderly)
consumers, a queue's puller looks at its lowest cached messages every ``check_interval``: one
whose listener call began (``MessageExt.consume_start_ms``) more than ``consume_timeout``
ago is handed back to the broker (CONSUMER_SEND_MSG_BACK with delay level 3, as RocketMQ) and
leaves the process queue, so the offset moves on; at most ``EXPIRE_BATCH`` (16) per look,
lowest first, stopping at the first one not expired, as RocketMQ. The listener call is not
interrupted: when it returns, its outcome for that message is ignored (the broker's copy is
delivered again later, through the retry topic). A message whose send-back fails stays where
it is and is tried again at the next look.
"""

from __future__ import annotations

import time

import msgspec
from loguru import logger

from actors.client.message import MessageExt, MessageQueue
from actors.client.process_queue import ProcessQueue

EXPIRE_BATCH = 16
EXPIRED_DELAY_LEVEL = 3
"""The delay level an expired message is sent back with (RocketMQ's cleanExpiredMsg: 3)."""


class ExpireCheck(msgspec.Struct, frozen=True, tag=True):
    """Timer message: look for messages consumed for longer than the consume timeout."""


def check_interval(consume_timeout: float) -> float:
    """How often a puller looks: a quarter of the timeout, between 50 ms and 60 s (RocketMQ
    looks every ``consumeTimeout``, so it sends back after one to two timeouts)."""
    return min(max(consume_timeout / 4, 0.05), 60.0)


def expired(pq: ProcessQueue, now_ms: int, timeout_ms: int) -> list[MessageExt]:
    """The lowest cached messages whose listener call began over ``timeout_ms`` ago (at most
    ``EXPIRE_BATCH``; stops at the first lowest message that has not expired)."""
    out: list[MessageExt] = []
    for offset in sorted(pq.msgs)[:EXPIRE_BATCH]:
        msg = pq.msgs[offset]
        started = msg.consume_start_ms
        if not started or now_ms - started <= timeout_ms:
            break
        out.append(msg)
    return out


def to_send_back(
    pq: ProcessQueue, expiring: set[int], consume_timeout: float, mq: MessageQueue
) -> list[MessageExt]:
    """The expired messages of ``pq`` not already being sent back (``expiring``, updated), as
    copies: their listener calls still hold the originals."""
    now_ms = int(time.time() * 1000)
    msgs = [
        m
        for m in expired(pq, now_ms, int(consume_timeout * 1000))
        if m.queue_offset not in expiring
    ]
    if msgs:
        expiring.update(m.queue_offset for m in msgs)
        logger.warning(
            "client: {}: offsets {} in the listener for over {} s (consume timeout): sent back "
            "to the broker",
            mq,
            [m.queue_offset for m in msgs],
            consume_timeout,
        )
    return [msgspec.structs.replace(m) for m in msgs]
