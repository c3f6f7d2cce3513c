"""PollBuffer: the lite pull consumer's sink, where pulled batches wait for ``poll`` (any
thread). See the class docstring."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable
from typing import Any

import pykka

from actors.client.message import MessageExt, MessageQueue
from actors.client.pull_limits import TotalCap


class _Batch:
    __slots__ = ("generation", "mq", "msgs", "puller")

    def __init__(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None:
        self.puller = puller
        self.generation = generation
        self.mq = mq
        self.msgs = msgs


class PollBuffer:
    """The lite consumer's sink: pulled batches wait here for ``poll`` (any thread).

    ``floor[mq]`` is the lowest generation still wanted for a queue: a seek raises it, so
    batches pulled before the seek are dropped instead of returned. A batch whose puller has
    stopped (its queue was reassigned, or the puller restarted) is dropped too, as RocketMQ's
    lite consumer skips the requests of a dropped process queue: a queue given back to this
    consumer restarts from its committed offset, so returning the old puller's batch would
    deliver its messages twice (and, given to another consumer, this one would return messages
    of a queue it no longer holds, which it cannot commit).

    A queue the user paused (``hold``) keeps its batches here, in order, and ``take`` passes
    them by until it is resumed (Kafka's rule for ``pause``: nothing of a paused partition is
    returned; RocketMQ's lite consumer still returns what it had buffered).

    With ``max_total`` (RocketMQ's pullThresholdForAll) it is a ``CappedSink``: while it holds
    more messages than that, ``room`` tells pullers to wait, and ``released`` names them once a
    ``poll`` or a seek took it back to the cap (``actors.client.pull_limits.TotalCap``)."""

    def __init__(self, max_total: int = 0) -> None:
        self._batches: collections.deque[_Batch] = collections.deque()
        self.cap = TotalCap(max_total)
        # An RLock: Condition asks it whether this thread owns it (``_is_owned``). A plain
        # Lock answers by trying to acquire it, and gevent's failed non-blocking acquire yields
        # to the hub (a switch on every notify).
        self._cond = threading.Condition(threading.RLock())
        self.floor: dict[MessageQueue, int] = {}
        self.paused: set[MessageQueue] = set()
        self.closed = False
        self._wakeups = 0
        """``wakeup`` calls so far: a ``take`` waiting when one comes returns."""

    def hold(self, queues: Iterable[MessageQueue], on: bool) -> None:
        """Pause (``on``) or resume returning ``queues``' batches; a resume wakes ``take``.
        A paused queue's batches do not count toward ``max_total``: they would hold every
        other queue back until it is resumed."""
        with self._cond:
            if on:
                self.paused.update(queues)
            else:
                self.paused.difference_update(queues)
                self._cond.notify_all()
            self._recount()

    def _recount(self) -> None:
        paused = self.paused
        self.cap.count = sum(len(b.msgs) for b in self._batches if b.mq not in paused)

    def deliver(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None:
        if generation < self.floor.get(mq, 0):
            return
        with self._cond:
            if self.closed:
                return
            self._batches.append(_Batch(puller, generation, mq, msgs))
            if mq not in self.paused:
                self.cap.count += len(msgs)
            self._cond.notify()

    def drop(self, mq: MessageQueue, floor: int) -> None:
        with self._cond:
            self.floor[mq] = floor
            self._batches = collections.deque(b for b in self._batches if b.mq != mq)
            self._recount()

    def room(self, puller: pykka.ActorRef[Any]) -> bool:
        """False while more than ``max_total`` messages wait here (the puller is remembered)."""
        with self._cond:
            return self.cap.room(puller)

    def released(self) -> list[pykka.ActorRef[Any]]:
        """The pullers to tell ``FlowCheck``: those that waited, once there is room again."""
        with self._cond:
            return self.cap.released()

    def take(self, limit: int, timeout: float) -> list[_Batch]:
        """Up to ``limit`` messages (as batches, the last one possibly split), waiting up to
        ``timeout`` for the first."""
        deadline = time.monotonic() + max(timeout, 0.0)
        out: list[_Batch] = []
        with self._cond:
            wakeups = self._wakeups
            while not self.closed:
                passed: list[_Batch] = []  # of paused queues: left here, in order
                while self._batches and limit > 0:
                    batch = self._batches.popleft()
                    if batch.mq in self.paused:
                        passed.append(batch)
                        continue
                    self.cap.count -= len(batch.msgs)
                    if batch.generation < self.floor.get(batch.mq, 0):
                        continue
                    if not batch.puller.is_alive():
                        continue
                    if len(batch.msgs) > limit:
                        rest = _Batch(batch.puller, batch.generation, batch.mq, batch.msgs[limit:])
                        self._batches.appendleft(rest)
                        self.cap.count += len(rest.msgs)
                        batch = _Batch(batch.puller, batch.generation, batch.mq, batch.msgs[:limit])
                    out.append(batch)
                    limit -= len(batch.msgs)
                self._batches.extendleft(reversed(passed))
                if out:
                    return out
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._wakeups != wakeups:
                    return out
                self._cond.wait(remaining)
            return out

    def wakeup(self) -> None:
        """Every ``take`` waiting now returns (with nothing, if nothing came meanwhile)."""
        with self._cond:
            self._wakeups += 1
            self._cond.notify_all()

    def close(self) -> None:
        """The consumer shut down: a ``take`` waiting now returns at once, with nothing, and so
        does every later one (what is still buffered was never polled: its offsets were not
        committed, so the queues' next owner gets it)."""
        with self._cond:
            self.closed = True
            self._batches.clear()
            self._cond.notify_all()
