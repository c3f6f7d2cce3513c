"""OrderlyPuller: the pull loop of one queue of an orderly push consumer (RocketMQ's
ConsumeMessageOrderlyService, per queue).

A ``QueuePuller`` whose messages are consumed one batch at a time, in queue order, and only
while this client holds the queue's broker lock:

- Pulled messages wait in the ProcessQueue; the head of it (``task_size``: ``BATCH``
  messages, or whole listener calls of ``consume_batch_size``) goes to the listener pool as one
  task (``deliver_ordered``), and the next batch only after that one reported back. Nothing is
  offered while the lock is not held (or older than ``LOCK_TTL``, RocketMQ's client-side
  30 s), and nothing is pulled either.
- A failed listener call (RECONSUME_LATER / SUSPEND_CURRENT_QUEUE_A_MOMENT / an exception: one
  message, or a batch listener's whole list) suspends the queue: after ``suspend_delay`` its
  messages are offered again with ``reconsume_times`` raised. A message that failed with
  ``reconsume_times >= max_reconsume_times`` is sent to the dead-letter queue instead
  (CONSUMER_SEND_MSG_BACK with delay level -1: ``%DLQ%<group>``) and the queue moves past it;
  if that send fails the queue stays suspended and the message is offered again (broadcasting
  consumers have no dead-letter queue: the message is dropped, with a warning).

Messages, besides the QueuePuller's:
- ``LockState(until)``: the rebalancer (re)locked the queue (``until``: monotonic expiry) or
  lost it (0). Resumes pulling and consuming when held.
- ``Resume(generation)``: the suspension timer fired.
- ``Idle(reply)``: offer nothing more; ``reply`` gets True once no batch is being consumed (the
  rebalancer waits for this, bounded, before it unlocks a queue taken away).

State owned, besides the QueuePuller's: the lock expiry, whether a batch (or a dead-letter
send) is in flight, whether the queue is suspended, the ``Idle`` waiters.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Protocol

import gevent
import msgspec
import pykka
from loguru import logger

from actors.client.message import MessageExt, MessageQueue
from actors.client.puller import QueuePuller
from actors.client.puller_messages import Consumed, SentBack
from actors.client.send_back import TO_DLQ

LOCK_TTL = 30.0
"""Seconds a lock counts as held after it was granted (RocketMQ's rebalance lock max live)."""
BATCH = 16
"""Messages offered to the listener pool as one in-order task (at least)."""


def task_size(consume_batch_size: int) -> int:
    """Messages per in-order task: about ``BATCH``, in whole listener calls."""
    return max(1, BATCH // consume_batch_size) * consume_batch_size


class OrderedSink(Protocol):
    def deliver_ordered(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None: ...


class LockState(msgspec.Struct, frozen=True, tag=True):
    until: float  # time.monotonic() deadline; 0 = not locked


class Resume(msgspec.Struct, frozen=True, tag=True):
    generation: int


class Idle(msgspec.Struct, frozen=True, tag=True):
    reply: Any  # GeventFuture[bool]


class OrderlyPuller(QueuePuller):
    """See the module docstring."""

    CONCURRENT = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.locked_until = 0.0
        self.last_lock_ms = 0
        self.busy = False
        self.suspended = False
        self.stopping = False
        self._idle_waiters: list[Any] = []
        self._task_size = task_size(self.options.consume_batch_size)

    @property
    def locked(self) -> bool:
        return time.monotonic() < self.locked_until

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LockState):
            self.locked_until = message.until
            if self.locked:
                self.last_lock_ms = int(time.time() * 1000)
                self._pull_next()
                self._dispatch()
        elif isinstance(message, Resume):
            if message.generation == self.generation:
                self.suspended = False
                self._dispatch()
        elif isinstance(message, Idle):
            self.stopping = True
            if self.busy:
                self._idle_waiters.append(message.reply)
            else:
                message.reply.set(True)
        else:
            super().on_receive(message)
        return None

    # -- QueuePuller hooks --------------------------------------------------------------------

    def _lock_info(self) -> tuple[bool, int]:
        return self.locked, self.last_lock_ms

    def _pull_next(self) -> None:
        if self.locked:
            super()._pull_next()

    def _deliver(self, fresh: list[MessageExt]) -> None:
        self._dispatch()

    def _consumed(self, message: Consumed) -> None:
        if message.generation != self.generation:
            self._stale_done()
            return
        self._not_busy()
        self.last_consume_ms = int(time.time() * 1000)
        self.pq.remove(message.offsets)
        failed = [self.pq.msgs[o] for o in message.retry if o in self.pq.msgs]
        if failed:
            limit = self.options.max_reconsume_times
            again = [m for m in failed if m.reconsume_times < limit]
            if again:
                self._suspend(again, message.suspend_s)
            if len(again) < len(failed):
                self._dead_letter([m for m in failed if m.reconsume_times >= limit])
        self._settled()
        self._dispatch()

    def _sent_back(self, message: SentBack) -> None:
        if message.generation != self.generation:
            self._stale_done()
            return
        self._not_busy()
        self.pq.remove(message.ok)
        failed = [self.pq.msgs[o] for o in message.failed if o in self.pq.msgs]
        if failed:
            self._suspend(failed)
        self._settled()
        self._dispatch()

    # -- consuming ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self.busy or self.suspended or self.stopping or self.quiescing or not self.locked:
            return
        batch = list(itertools.islice(self.pq.msgs.values(), self._task_size))
        if not batch:
            return
        self.busy = True
        sink: OrderedSink = self.sink  # type: ignore[assignment]
        sink.deliver_ordered(self.actor_ref, self.generation, self.mq, batch)

    def _suspend(self, msgs: list[MessageExt], delay: float | None = None) -> None:
        for msg in msgs:
            msg.reconsume_times += 1
        self.suspended = True
        wait = self.options.suspend_delay if delay is None else delay
        self.send_after(wait, Resume(self.generation))

    def _dead_letter(self, msgs: list[MessageExt]) -> None:
        dlq = self.options.send_back
        fate = "to the dead-letter queue" if dlq else "dropped (broadcasting has no DLQ)"
        for msg in msgs:
            logger.warning(
                "client: {} {} failed {} times: {}",
                self.group,
                msg,
                msg.reconsume_times + 1,
                fate,
            )
        if not dlq:
            self.pq.remove([m.queue_offset for m in msgs])
            return
        self.busy = True
        gevent.spawn(self._send_back, self.generation, msgs, TO_DLQ)

    def _stale_done(self) -> None:
        """The task (or dead-letter send) in flight when the generation changed (a seek, an
        offset the broker moved) ended: its outcome is dropped, but the queue is free again, so
        the new generation's messages are offered (only after it: one task at a time)."""
        if self.busy:
            self._not_busy()
            self._dispatch()

    def _not_busy(self) -> None:
        self.busy = False
        waiters, self._idle_waiters = self._idle_waiters, []
        for reply in waiters:
            reply.set(True)
