"""What a queue puller does with messages the sink failed (``FailedMessages``, a part of
``actors.client.puller.QueuePuller``, which provides the attributes declared here).

- Clustering push consumers (``send_back``) hand them back to the broker
  (CONSUMER_SEND_MSG_BACK with the delay level a batch listener asked for, else 0: the broker's
  ``%RETRY%<group>`` with level 3 + reconsumeTimes, or ``%DLQ%<group>`` past
  ``max_reconsume_times``) in a greenlet, which tells ``SentBack``; accepted ones count as
  consumed, the others are delivered again locally after ``reconsume_delay``.
- Broadcasting consumers deliver them again locally (``Redeliver`` after ``reconsume_delay``),
  up to ``max_reconsume_times`` times, then drop them with a warning (RocketMQ drops them at
  once).
- The consume timeout (``ExpireCheck``): messages whose listener call outlasted it are sent
  back (delay level 3) and leave the process queue (``actors.client.consume_timeout``); a
  failed send leaves them as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import gevent
import pykka
from loguru import logger

from actors.client.consume_timeout import EXPIRED_DELAY_LEVEL, to_send_back
from actors.client.instance import ClientInstance
from actors.client.message import MessageExt, MessageQueue
from actors.client.process_queue import ProcessQueue
from actors.client.puller_messages import PullOptions, Redeliver, SentBack, Sink
from actors.client.send_back import hand_back


class FailedMessages:
    """Mixin of ``QueuePuller``; see the module docstring. Runs in the actor, except
    ``_send_back`` (a greenlet)."""

    instance: ClientInstance
    group: str
    mq: MessageQueue
    options: PullOptions
    pq: ProcessQueue
    generation: int
    sink: Sink
    actor_ref: pykka.ActorRef[Any]
    _expiring: set[int]
    # provided by GeventActor and QueuePuller (annotations only: nothing here shadows them)
    send_after: Callable[[float, Any], Any]
    _settled: Callable[[], None]

    def _retry(self, offsets: list[int], delay_levels: dict[int, int]) -> None:
        """The sink failed these (RECONSUME_LATER or an exception)."""
        failed = [self.pq.msgs[o] for o in offsets if o in self.pq.msgs]
        if self.options.send_back:
            by_level: dict[int, list[MessageExt]] = {}
            for m in failed:
                by_level.setdefault(delay_levels.get(m.queue_offset, 0), []).append(m)
            for level, msgs in by_level.items():
                gevent.spawn(self._send_back, self.generation, msgs, level)
        else:
            self._retry_locally(failed, drop_after_max=True)

    def _redeliver(self, message: Redeliver) -> None:
        if message.generation != self.generation:
            return
        msgs = [self.pq.msgs[o] for o in message.offsets if o in self.pq.msgs]
        for m in msgs:
            m.reconsume_times += 1
        if msgs:
            self.sink.deliver(self.actor_ref, self.generation, self.mq, msgs)

    def _expire(self) -> None:
        msgs = to_send_back(self.pq, self._expiring, self.options.consume_timeout, self.mq)
        if msgs:
            gevent.spawn(self._send_back, self.generation, msgs, EXPIRED_DELAY_LEVEL, expired=True)

    def _retry_locally(self, msgs: list[MessageExt], *, drop_after_max: bool = False) -> None:
        retry = []
        dropped = []
        for m in msgs:
            if drop_after_max and m.reconsume_times >= self.options.max_reconsume_times:
                dropped.append(m.queue_offset)
            else:
                retry.append(m.queue_offset)
        if dropped:
            logger.warning(
                "client: {} {} failed {} times: dropped (offsets {})",
                self.group,
                self.mq,
                self.options.max_reconsume_times + 1,
                dropped,
            )
            self.pq.remove(dropped)
        if retry:
            self.send_after(self.options.reconsume_delay, Redeliver(self.generation, retry))

    def _send_back(
        self,
        generation: int,
        msgs: list[MessageExt],
        delay_level: int = 0,
        *,
        expired: bool = False,
    ) -> None:
        """Greenlet: CONSUMER_SEND_MSG_BACK for each message, then SentBack to the actor."""
        opts = self.options
        ok, failed = hand_back(
            self.instance,
            self.group,
            msgs,
            delay_level=delay_level,
            max_reconsume_times=opts.max_reconsume_times,
            timeout=opts.send_back_timeout,
            namespace=opts.namespace,
        )
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(SentBack(generation, ok, failed, expired))

    def _sent_back(self, message: SentBack) -> None:
        if message.expired:
            self._expiring.difference_update(message.ok + message.failed)
        if message.generation != self.generation:
            return
        self.pq.remove(message.ok)
        failed = [self.pq.msgs[o] for o in message.failed if o in self.pq.msgs]
        if failed and not message.expired:
            self._retry_locally(failed)
        self._settled()
