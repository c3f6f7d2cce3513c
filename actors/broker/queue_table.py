"""QueueTable: creates and finds the store's Queue actors (``actors.broker.queue``), one per store.

It starts a Queue actor on demand (first dispatch or first read of a queue that has files) and
restarts a dead one on next use. Every message to a Queue goes through ``get`` right before it
is sent (no caller keeps a ref across a yield), so ``get`` records when each queue was last
used, and ``retire_idle`` (from ``tick``: the Dispatcher's timer, every ``RETIRE_EVERY_S``)
stops the actors unused for ``queue_idle_stop_ms`` that agree (``RetireIfIdle``: nobody waits
on them, their files are synced): a broker with thousands of queues keeps actors only for the
ones in use. Their ConsumeQueue objects stay open in the store (their descriptors closed);
the next ``get`` starts a new actor on one. After a sweep that stopped ``TRIM_AFTER`` or more,
the next tick (they have ended by then) gives the freed memory back to the OS
(``runtime.memory``).

It is not supervised by the broker supervisor: the Dispatcher stops all queues when it stops
(``stop_all``; from then on, until a Dispatcher starts again, nothing is started: a long poll
woken by the stop must not start a queue on a store that is closing), and a deleted topic's
(``drop_topic``: the actors stop, parked polls are answered, the consume-queue files are closed
and deleted). Owned state: the live Queue actors by (topic, queue id) and when each was last
used, the topics being dropped, and whether the table is closed.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import gevent.event
import pykka
from loguru import logger

from actors.broker.messages import RetireIfIdle, TrimBelow
from actors.broker.queue import Queue, trim_files
from runtime.actor import GeventActor, actor_of, new_future, offload
from runtime.future import GeventFuture as Future
from runtime.memory import release_free_memory
from runtime.store.consumequeue import queue_dir, remove_topic_queues
from runtime.store.context import StoreContext
from runtime.store.topic_names import topic_problem

RETIRE_EVERY_S = 10.0
"""How often ``tick`` looks for idle Queue actors (a look at 32,000 queues takes ~5 ms)."""
TRIM_AFTER = 256
"""Stopped Queue actors (~17 KiB each) worth a ``malloc_trim`` (~2 ms for 2,000)."""


class QueueTable:
    """Creates and finds Queue actors (see the module docstring). One per store."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self._refs: dict[tuple[str, int], pykka.ActorRef[Any]] = {}
        self._used: dict[tuple[str, int], float] = {}  # key -> monotonic time of its last get
        self._sweep_at = time.monotonic()
        self._trim_due = False  # many actors were stopped: give their memory back
        self._dropping: dict[str, gevent.event.Event] = {}  # topic -> set when its drop ends
        self.closed = False
        """Set by ``stop_all`` (the Dispatcher stopped), cleared by ``reopen`` (one started)."""

    def exists(self, topic: str, queue_id: int) -> bool:
        if topic_problem(topic) is not None or not 0 <= queue_id <= 0x7FFFFFFF:
            return False  # never a path built from an illegal name (e.g. "../x")
        if topic in self._dropping:
            return False
        key = (topic, queue_id)
        if key in self._refs:
            return True
        opened = self.ctx.opened
        if opened is not None and key in opened.queues:
            return True
        return os.path.isdir(queue_dir(self.ctx.settings.root, topic, queue_id))

    def get(self, topic: str, queue_id: int, *, create: bool = False) -> pykka.ActorRef[Any] | None:
        """The live Queue actor, started when the queue exists (or ``create``); else None."""
        key = (topic, queue_id)
        ref = self._refs.get(key)
        if ref is not None and ref.is_alive():
            self._used[key] = time.monotonic()
            return ref
        if not self.exists(topic, queue_id) and (
            not create or topic_problem(topic) or topic in self._dropping
        ):
            return None
        if not 0 <= queue_id <= 0x7FFFFFFF:
            return None
        if self.ctx.opened is None or self.closed:
            return None
        ref = Queue.start(self.ctx, topic, queue_id)
        self._refs[key] = ref
        self._used[key] = time.monotonic()
        return ref

    def idle_range(self, topic: str, queue_id: int) -> tuple[int, int] | None:
        """(min, max offset) of a queue without a live actor, from the ConsumeQueue the store
        keeps (nothing writes it while no actor runs: every write goes through one), so a
        GET_MIN/MAX_OFFSET sweep over thousands of idle queues starts no actors; None when an
        actor runs (ask it) or the store holds no such queue open."""
        key = (topic, queue_id)
        ref = self._refs.get(key)
        opened = self.ctx.opened
        if (ref is not None and ref.is_alive()) or opened is None or topic in self._dropping:
            return None
        cq = opened.queues.get(key)
        return None if cq is None else (cq.min_offset, cq.max_offset)

    def trim_below(self, log_min: int) -> list[Future[Any]]:
        """Every queue drops the files that only point below the commit log's minimum
        ``log_min`` (after retention deleted segments): a running Queue actor is asked
        (``TrimBelow``); an idle queue's ConsumeQueue is trimmed here, without starting an actor
        (nothing writes it meanwhile: every write goes through one; ``queue.trim_files`` never
        yields). Futures, one per queue, set once it is done."""
        done: list[Future[Any]] = []
        opened = self.ctx.opened
        if opened is None or self.closed:
            return done
        for key in self.known_keys():
            if key[0] in self._dropping:
                continue
            ref = self._refs.get(key)
            if ref is not None and ref.is_alive():
                with contextlib.suppress(pykka.ActorDeadError):
                    done.append(ref.ask(TrimBelow(log_min), block=False))
                continue
            cq = opened.queues.get(key)
            if cq is None:
                continue
            trim_files(self.ctx, cq, log_min)
            cq.release_descriptors()  # (opened to read its first file's last entry)
            idle: Future[Any] = new_future()
            idle.set(None)
            done.append(idle)
        return done

    def tick(self, idle_s: float) -> None:
        """Every ``RETIRE_EVERY_S`` (or ``idle_s``, if shorter), ``retire_idle(idle_s)``; 0:
        never. Never yields."""
        if self._trim_due:
            self._trim_due = False
            release_free_memory()
        now = time.monotonic()
        if idle_s <= 0 or now < self._sweep_at:
            return
        self._sweep_at = now + min(RETIRE_EVERY_S, idle_s)
        retired = self.retire_idle(idle_s)
        if retired:
            logger.debug("store {}: {} idle queue actors stopped", self.ctx.settings.root, retired)
        self._trim_due = retired >= TRIM_AFTER

    def retire_idle(self, idle_s: float) -> int:
        """Stop the Queue actors unused for ``idle_s`` seconds that are idle now and agree
        (``RetireIfIdle``); returns how many stopped. Never yields: the ref leaves the table
        and the actor is told to stop in one step, so nothing reaches it in between, and a
        ``get`` after that starts a new actor (the old one's stop does nothing)."""
        if self.closed:
            return 0
        now = time.monotonic()
        retired = 0
        for key, used in list(self._used.items()):
            if now - used < idle_s or key[0] in self._dropping:
                continue
            ref = self._refs.get(key)
            if ref is None or not ref.is_alive():
                self._refs.pop(key, None)
                del self._used[key]
                continue
            actor = actor_of(ref)
            asked = actor.ask_inline(RetireIfIdle()) if isinstance(actor, GeventActor) else None
            if asked is None or asked.get() is not True:
                continue  # busy now, or waited on / not synced: the next sweep asks again
            del self._refs[key], self._used[key]
            ref.stop(block=False)
            retired += 1
        return retired

    def refs(self) -> dict[tuple[str, int], pykka.ActorRef[Any]]:
        return {k: r for k, r in self._refs.items() if r.is_alive()}

    def known_keys(self) -> list[tuple[str, int]]:
        opened = self.ctx.opened
        known = set(self._refs)
        if opened is not None:
            known.update(opened.queues)
        return sorted(known)

    def drop_topic(self, topic: str, timeout: float = 5.0) -> None:
        """Stop ``topic``'s Queue actors (parked polls are answered), close and delete its
        consume-queue files. Blocks the calling greenlet; meanwhile no queue of the topic is
        found or created. Drops of one topic run one after the other (a failed Dispatcher's
        may still run when its successor's starts: it must not delete files created after)."""
        while (running := self._dropping.get(topic)) is not None:
            running.wait()
        ended = self._dropping[topic] = gevent.event.Event()
        try:
            for key in [k for k in self._refs if k[0] == topic]:
                ref = self._refs.pop(key, None)
                self._used.pop(key, None)
                if ref is None:
                    continue  # retired meanwhile
                try:
                    ref.stop(block=True, timeout=timeout)
                except (pykka.ActorDeadError, pykka.Timeout):
                    logger.warning("queue {}/{} did not stop cleanly", *key)
            opened = self.ctx.opened
            if opened is None:
                return  # the store closed meanwhile: the next start's recovery removes them
            for key in [k for k in opened.queues if k[0] == topic]:
                opened.queues.pop(key).close()
            offload(remove_topic_queues, self.ctx.settings.root, topic)
        finally:
            del self._dropping[topic]
            ended.set()

    def reopen(self) -> None:
        """A Dispatcher started: queues may be started again."""
        self.closed = False

    def stop_all(self, timeout: float = 5.0) -> None:
        """Stop every Queue actor (their parked polls are answered) and start none until
        ``reopen``."""
        self.closed = True
        for key, ref in list(self._refs.items()):
            try:
                ref.stop(block=True, timeout=timeout)
            except (pykka.ActorDeadError, pykka.Timeout):
                logger.warning("queue {}/{} did not stop cleanly", *key)
        self._refs.clear()
        self._used.clear()
