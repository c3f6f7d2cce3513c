"""OrderlyRebalancer: the rebalancer of an orderly push consumer (RocketMQ's RebalancePushImpl
with ``isOrder``). Runs ``OrderlyPuller``s and keeps their queues locked at the brokers.

Besides the ``Rebalancer``'s behaviour (clustering only; broadcasting consumers need no lock):

- A newly assigned queue is locked first (LOCK_BATCH_MQ, one request per broker for every queue
  gained in a round); only then is its start offset read and its puller started. A queue whose
  lock is refused (another consumer still holds it, e.g. the one it is moving away from) is not
  started; the rebalancer tries again after 1 s, doubling up to ``interval``.
- ``Relock`` (its own timer, every ``relock_interval``, 20 s): LOCK_BATCH_MQ for every queue it
  runs; each puller learns whether it still holds its lock (``LockState``). A broker that does
  not answer changes nothing (the pullers' locks expire 30 s after they were last granted).
- A queue taken away (or every queue at shutdown): its puller is told to offer nothing more and
  the rebalancer waits up to 1 s for the batch being consumed; the puller stops, the offset is
  persisted, and only then, if the puller was idle, UNLOCK_BATCH_MQ, so the next owner starts
  after everything this one consumed. A queue still busy stays locked until its lock expires
  (60 s at the broker), as in RocketMQ.

State owned, besides the Rebalancer's: the lock-retry back-off.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
import pykka
from loguru import logger

from actors.client.message import MessageQueue
from actors.client.orderly_puller import LOCK_TTL, Idle, LockState, OrderlyPuller
from actors.client.rebalance import DoRebalance, Rebalancer
from actors.client.send_back import lock_queues, unlock_queues
from runtime.actor import GeventFuture, new_future
from runtime.remoting.codes import MessageModel

IDLE_WAIT = 1.0
"""Seconds to wait for a queue taken away to finish its batch before unlocking it."""
LOCK_RETRY_DELAY = 1.0
FOREVER = float("inf")


class Relock(msgspec.Struct, frozen=True, tag=True):
    pass


class OrderlyRebalancer(Rebalancer):
    """See the module docstring."""

    puller_class = OrderlyPuller

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retry_delay = LOCK_RETRY_DELAY
        self._retry_pending = False

    @property
    def locking(self) -> bool:
        return self.model is MessageModel.CLUSTERING

    def on_start(self) -> None:
        super().on_start()
        if self.locking and self.options.relock_interval > 0:
            self.send_every(self.options.relock_interval, Relock())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Relock):
            if not self._stopping:
                self._relock()
            return None
        if isinstance(message, DoRebalance) and message.reason == "lock retry":
            self._retry_pending = False
        return super().on_receive(message)

    # -- Rebalancer hooks -------------------------------------------------------------------

    def _start_pullers(self, mqs: list[MessageQueue]) -> list[MessageQueue]:
        if not mqs:
            return []
        if not self.locking:
            started = super()._start_pullers(mqs)
            self._tell_lock(started, FOREVER)
            return started
        asked_at = time.monotonic()
        locked, _answered = lock_queues(self.instance, self.group, mqs, self.timeout)
        missed = [mq for mq in mqs if mq not in locked]
        if missed:
            logger.info(
                "client: {} could not lock {} of {} queues yet (held by another consumer?); "
                "trying again in {:g}s",
                self.group,
                len(missed),
                len(mqs),
                self._retry_delay,
            )
            self._lock_retry()
        else:
            self._retry_delay = LOCK_RETRY_DELAY
        started = super()._start_pullers([mq for mq in mqs if mq in locked])
        self._tell_lock(started, asked_at + LOCK_TTL)
        unused = [mq for mq in mqs if mq in locked and mq not in started]
        if unused:
            unlock_queues(self.instance, self.group, unused, self.timeout)
        return started

    def _stop_pullers(self, mqs: list[MessageQueue], persist: bool = True) -> None:
        idle = self._wait_idle(mqs) if persist and self.locking else []
        super()._stop_pullers(mqs, persist)
        if idle:
            unlock_queues(self.instance, self.group, idle, self.timeout)

    # -- locks ----------------------------------------------------------------------------------

    def _tell_lock(self, mqs: list[MessageQueue], until: float) -> None:
        for mq in mqs:
            ref = self.pullers.get(mq)
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.tell(LockState(until))

    def _lock_retry(self) -> None:
        if self._retry_pending or self._stopping:
            return
        self._retry_pending = True
        self.send_after(self._retry_delay, DoRebalance("lock retry"))
        self._retry_delay = min(self._retry_delay * 2, max(self.interval, LOCK_RETRY_DELAY))

    def _relock(self) -> None:
        mqs = sorted(self.pullers)
        if not mqs:
            return
        asked_at = time.monotonic()
        locked, answered = lock_queues(self.instance, self.group, mqs, self.timeout)
        lost = [mq for mq in mqs if mq not in locked and mq.broker_name in answered]
        if lost:
            logger.warning("client: {} lost the lock of {}; not consuming them", self.group, lost)
        self._tell_lock([mq for mq in mqs if mq in locked], asked_at + LOCK_TTL)
        self._tell_lock(lost, 0.0)

    def _wait_idle(self, mqs: list[MessageQueue]) -> list[MessageQueue]:
        """Tell the pullers of ``mqs`` to offer nothing more; the queues idle within 1 s."""
        replies: list[tuple[MessageQueue, GeventFuture[bool]]] = []
        idle: list[MessageQueue] = []
        for mq in mqs:
            ref = self.pullers.get(mq)
            if ref is None:
                continue
            reply: GeventFuture[bool] = new_future()
            try:
                ref.tell(Idle(reply))
            except pykka.ActorDeadError:
                idle.append(mq)
                continue
            replies.append((mq, reply))
        deadline = time.monotonic() + IDLE_WAIT
        for mq, reply in replies:
            try:
                if reply.get(timeout=max(deadline - time.monotonic(), 0.001)):
                    idle.append(mq)
            except pykka.Timeout:
                logger.warning(
                    "client: {} {} still consuming; its lock is left to expire", self.group, mq
                )
        return idle
