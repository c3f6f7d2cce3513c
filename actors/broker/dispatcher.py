"""Dispatcher (RocketMQ's "reput"): commit log -> consume queues and the key index.

Messages accepted:
- ``Dispatch(begin, end, entries)`` (tell, from the writer): records appended in ``[begin,
  end)``, already parsed. Held until confirmed, then applied.
- ``Confirm(offset, source, flushed)`` (tell): ``source`` confirms the log up to ``offset``
  ("flush" from the Flusher; "replica" from a master's HA work; "master" on a slave, from its
  HAClient: what its master showed). Consumers only ever see records below the confirmed
  offset: the minimum over the required sources (SYNC_FLUSH needs "flush", a slave "master");
  with no required source (ASYNC_FLUSH) everything written is confirmed. Batches waiting for
  it are kept up to ``HELD_MAX_BYTES`` of log; past that they are read back from the log.
- ``CheckpointTick`` (timer, every ``checkpoint_interval_ms``) / ``CheckpointDone`` (internal):
  when a checkpoint is due (the log grew ``checkpoint_lag_bytes`` past the last one, or
  ``checkpoint_max_interval_ms`` passed with anything new), fsync the touched consume queues
  (``SyncQueue`` to each Queue, which also proves it applied everything sent before) and the
  index, then atomically write the checkpoint with ``safe_offset = min(dispatched, fsynced
  log)``. Not at every tick: each checkpoint's fsyncs (the index's are random pages) cost the
  broker's latency a few milliseconds, and only the recovery scan's length depends on them.
  A sync that failed with an I/O error (pages may be lost) stops checkpoints, the stop's too,
  for the rest of this opening of the store (``StoreContext.unsynced``).
  Each tick also lets the QueueTable stop the Queue actors left unused for
  ``queue_idle_stop_ms`` (``QueueTable.tick``), and starts the key index's rebuild of the log
  ranges recovery left (``runtime.store.index_rebuild``: steps in the thread pool, until done).
- ``QueryByKey(topic, key, max_num, begin, end)`` (ask) -> ``QueryResult``: index candidates
  checked against the actual records (topic, key, time range, CRC; below the topic's fence:
  a deleted incarnation, not found).
- ``TrimBelow(log_min)`` (tell, from Retention): drop index files below the log's minimum.
- ``WhenDispatched(offset, reply)`` (tell): ``reply`` gets the reput offset once it reached
  ``offset`` with no deletion in progress (at stop or failure: the reput offset then,
  whatever it is; a barrier's helper then stops, its successor or recovery redoes it).

Topic deletion: a batch holding a deletion marker (``runtime.store.fences``; from the writer,
from the log, or replicated) is a barrier. Dispatch stops before it while a helper greenlet
waits for an fsync covering the marker, saves the raised fences, then stops the topic's Queue
actors and deletes their files (on a slave it also removes the topic's config and every group's
offsets of it, durably, as the master did before writing the marker); ``DeletionDone``
applies the held batch (the topic's entries after the marker go to fresh queues) and dispatch
goes on (the helper's work: ``deletion_barrier``). No checkpoint while it runs. A
failure fails this actor; restarted, it reads the marker back from the log and tries again.

Owned state: the reput offset (everything below it was handed to Queue actors and the index;
mirrored in the StoreContext so a restarted Dispatcher resumes there), the held batches, the
confirmations, the key index, the Queue actors (through the QueueTable; stopped with it).
When a batch is missing (the Dispatcher restarted, or the records came from elsewhere), it reads
them back from the commit log. Re-dispatching is harmless: queues and index skip what they hold.

Durability point: the checkpoint (consume queues and index are derived data, rebuilt by
recovery from the commit log).
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections import deque
from typing import Any

import gevent
import gevent.event
import pykka
from loguru import logger

from actors.broker.deletion_barrier import run_barrier
from actors.broker.messages import (
    AppendEntries,
    CheckpointDone,
    CheckpointTick,
    Confirm,
    DeletionDone,
    Dispatch,
    QueryByKey,
    SyncQueue,
    TrimBelow,
    WhenDispatched,
)
from actors.broker.store_results import QueryResult
from runtime.actor import GeventActor, new_future, offload, tell_now
from runtime.errors import StoreError
from runtime.store import checkpoint as ckpt
from runtime.store import index_rebuild
from runtime.store import record as R
from runtime.store.consumequeue import ENTRY_SIZE
from runtime.store.context import StoreContext
from runtime.store.dispatch import DispatchBatch, LogDispatchReader, QueueKey
from runtime.store.index import IndexService
from runtime.store.index_rebuild import IndexGapFiller
from runtime.store.record_dispatch import dispatch_fields
from runtime.store.recovery import make_checkpoint
from runtime.store.settings import StoreSettings

HELD_MAX_BYTES = 32 * 1024 * 1024
"""Log bytes whose parsed batches are kept while they wait for their confirmation; past it
a batch is dropped and its records are read back from the log once confirmed. A SYNC_MASTER
without a slave in sync, or a slave copying its master's log while the master shows nothing
new, held every batch in memory until then."""
SYNC_TIMEOUT_S = 10.0
SYNC_BATCH = 64
"""Consume queues a checkpoint syncs at once: thousands at once (a broker with thousands of
busy queues) filled the thread pool and starved the hub of the GIL, and sends waited in the
broker's queue for seconds (SYSTEM_BUSY)."""


def _lost_writes(exc: BaseException) -> bool:
    """Whether a failed sync may have lost written pages (an fsync's I/O error), not merely not
    run (out of descriptors, a timeout: the next checkpoint's sync covers them)."""
    return isinstance(exc, OSError) and exc.errno not in (errno.EMFILE, errno.ENFILE, None)


def checkpoint_due(lag: int, elapsed_s: float, settings: StoreSettings) -> bool:
    """Whether a tick writes a checkpoint: the log grew ``lag`` bytes and ``elapsed_s`` passed
    since the last one."""
    return (
        lag >= settings.checkpoint_lag_bytes
        or elapsed_s >= settings.checkpoint_max_interval_ms / 1000
    )


class Dispatcher(GeventActor):
    """See the module docstring."""

    def __init__(self, ctx: StoreContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.settings = ctx.settings
        self._pending: deque[Dispatch] = deque()
        self._held_bytes = 0  # log bytes of the batches in ``_pending``
        self._touched: set[QueueKey] = set()
        self._checkpointing = False
        self._deleting: DispatchBatch | None = None  # the held batch of a deletion barrier
        self._ended = False  # stopped or failed: a barrier's helper must not go on
        self._when: list[tuple[int, Any]] = []
        self._index_rebuild: IndexGapFiller | None = None  # holes of the index left to fill
        self._rebuilding = False  # a greenlet runs the index rebuild's steps

    def on_start(self) -> None:
        opened = self.ctx.require_open()
        self.log = opened.log
        self.index: IndexService | None = opened.index
        self._index_rebuild = opened.index_rebuild
        self.queues = self.ctx.queues
        self.queues.reopen()
        self.reput = self.ctx.dispatched
        self.queue_next = self.ctx.queue_next
        self.required = self.ctx.confirm_sources
        self.confirmed_by = dict.fromkeys(self.required, self.reput)
        if "flush" in self.confirmed_by:
            self.confirmed_by["flush"] = max(self.reput, self.log.segments.flushed_offset)
        self.written = self.log.write_offset
        self.log_flushed = self.log.segments.flushed_offset
        self.last_checkpoint = min(self.reput, self.log_flushed)
        self._checkpoint_at = time.monotonic()
        self.send_every(self.settings.checkpoint_interval_ms / 1000.0, CheckpointTick())
        self._advance()

    def on_failure(self, *_exc_info: Any) -> None:
        self._ended = True
        self._release_waiters(everyone=True)  # a restarted Dispatcher applies what is held

    def on_stop(self) -> None:
        self._ended = True
        if self._index_rebuild is not None:
            self._index_rebuild.close()  # (the next start finds what is left as a hole)
        if self.ctx.failed is not None:
            self.queues.stop_all()  # a failed store does no more durability work
            return
        try:
            self._sync_queues(list(self.queues.refs()))
        except Exception as exc:  # each queue's own stop flushes it again
            logger.warning("store {}: syncing the queues at stop: {}", self.settings.root, exc)
            self._note_sync_failure(exc)
        self.queues.stop_all()
        self._release_waiters(everyone=True)
        if self.index is not None:
            offload(self.index.flush)  # (fsyncs: in the thread pool, not on the hub)
        if self._unsynced():  # (no final checkpoint: the next start re-dispatches)
            return
        point = min(self.reput, self.log_flushed)
        ckpt.save(self.settings.root, make_checkpoint(point, self.log.min_offset, self.queue_next))
        self.ctx.final_dispatch = (self.reput, dict(self.queue_next))

    # -- messages ------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Dispatch):
            if self._held_bytes < HELD_MAX_BYTES or message.end <= self._confirmed():
                self._pending.append(message)
                self._held_bytes += message.end - message.begin
            if message.end > self.written:
                self.written = message.end
            self._advance()
            return None
        if isinstance(message, Confirm):
            if message.flushed and message.offset > self.log_flushed:
                self.log_flushed = message.offset
            if message.source in self.confirmed_by:
                if message.offset > self.confirmed_by[message.source]:
                    self.confirmed_by[message.source] = message.offset
                self._advance()
            return None
        if isinstance(message, CheckpointTick):
            self._start_checkpoint()
            self._continue_index_rebuild()
            self.queues.tick(self.settings.queue_idle_stop_ms / 1000)
            return None
        if isinstance(message, CheckpointDone):
            self._checkpointing = False
            if message.error is None:
                self.last_checkpoint = message.safe_offset
            else:
                logger.warning("store {}: checkpoint failed: {}", self.settings.root, message.error)
            return None
        if isinstance(message, QueryByKey):
            return self._query(message)
        if isinstance(message, TrimBelow):
            if self.index is not None:
                self.index.delete_below(message.log_min)
            return None
        if isinstance(message, WhenDispatched):
            self._when.append((message.offset, message.reply))
            self._release_waiters()
            return None
        if isinstance(message, DeletionDone):
            self._end_deletion(message)
            return None
        return super().on_receive(message)

    # -- dispatching ---------------------------------------------------------------------------

    def _confirmed(self) -> int:
        if not self.confirmed_by:
            return self.written  # ASYNC_FLUSH: written is confirmed
        return min(self.confirmed_by.values())

    def _advance(self) -> None:
        if self._deleting is not None:
            return  # a deletion barrier: everything after the marker waits for it
        limit = self._confirmed()
        pending = self._pending
        while self.reput < limit:
            if pending and pending[0].end <= self.reput:
                self._forget(pending.popleft())
                continue
            if pending and pending[0].begin == self.reput:
                if pending[0].end > limit:
                    break
                msg = pending.popleft()
                self._forget(msg)
                if msg.batch.deleted:
                    self._begin_deletion(msg.batch)
                    break
                self._apply(msg.batch)
                self.reput = msg.end
                continue
            stop = limit
            if pending and self.reput < pending[0].begin < limit:
                stop = pending[0].begin
            if not self._reput_from_log(stop) or self._deleting is not None:
                break
        self.ctx.dispatched = self.reput
        if self._when:
            self._release_waiters()

    def _forget(self, msg: Dispatch) -> None:
        self._held_bytes -= msg.end - msg.begin

    def _reput_from_log(self, stop: int) -> bool:
        """Dispatch records read back from the log in [reput, stop); False if none were."""
        reader = LogDispatchReader(self.settings.delay_levels, self.ctx.topic_fences)
        start = self.reput
        res = self.log.scan(start, reader.on_record, verify_crc=False, stop_at=stop)
        if res.end > start:
            batch = reader.take(res.end)
            if batch.deleted:
                self._begin_deletion(batch)
                return True
            self._apply(batch)
            self.reput = res.end
            return True
        if res.problem:
            logger.error(
                "store {}: reput stuck at {}: {}", self.settings.root, res.end, res.problem
            )
        return False

    def _apply(self, batch: DispatchBatch) -> None:
        queues = self.queues
        for key, (first, raw) in batch.queues.items():
            ref = queues.get(key[0], key[1], create=True)
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    tell_now(ref, AppendEntries(first, raw))  # inline when the queue is idle
            self.queue_next[key] = first + len(raw) // ENTRY_SIZE
            self._touched.add(key)
        if self.index is not None:
            self.index.put_items(batch.index, batch.end)

    def _release_waiters(self, *, everyone: bool = False) -> None:
        if self._deleting is not None and not everyone:
            return
        keep = []
        for offset, reply in self._when:
            if everyone or offset <= self.reput:
                with contextlib.suppress(Exception):
                    reply.set(self.reput)
            else:
                keep.append((offset, reply))
        self._when = keep

    # -- topic deletion ------------------------------------------------------------------------

    def _begin_deletion(self, batch: DispatchBatch) -> None:
        self._deleting = batch
        gevent.spawn(self._run_deletion, batch)

    def _run_deletion(self, batch: DispatchBatch) -> None:
        """The barrier's work (``deletion_barrier.run_barrier``), in a helper greenlet."""
        error = None
        try:
            if not run_barrier(self.ctx, self.log, self.queues, batch, lambda: self._ended):
                return  # a restarted Dispatcher (or the next start's recovery) does it
        except Exception as exc:  # the actor fails on it, and retries when restarted
            error = repr(exc)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(DeletionDone(error))

    def _end_deletion(self, message: DeletionDone) -> None:
        batch, self._deleting = self._deleting, None
        if batch is None:
            return
        topics = [t for t, _f in batch.deleted]
        if message.error is not None:
            raise StoreError(
                self.settings.root, f"deleting topic(s) {topics} failed: {message.error}"
            )
        for key in [k for k in self.queue_next if k[0] in topics]:
            del self.queue_next[key]
        self._touched = {k for k in self._touched if k[0] not in topics}
        self._apply(batch)
        self.reput = batch.end
        logger.info("store {}: topic(s) {} deleted", self.settings.root, topics)
        self._advance()

    # -- checkpoints ---------------------------------------------------------------------------

    def _start_checkpoint(self) -> None:
        if self._checkpointing or self._deleting is not None or self._unsynced():
            return
        point = min(self.reput, self.log_flushed)
        if point <= self.last_checkpoint and not self._touched:
            return
        now = time.monotonic()
        lag = point - self.last_checkpoint
        if not checkpoint_due(lag, now - self._checkpoint_at, self.settings):
            return
        self._checkpoint_at = now
        touched, self._touched = self._touched, set()
        self._checkpointing = True
        cp = make_checkpoint(point, self.log.min_offset, self.queue_next)
        gevent.spawn(self._write_checkpoint, cp, touched)

    def _sync_queues(self, keys: list[QueueKey]) -> None:
        """``SyncQueue`` to each of these queues, ``SYNC_BATCH`` at a time, and wait for them.
        A Queue answers after everything told to it before, so the sync covers what the
        checkpoint's offset says was dispatched."""
        for start in range(0, len(keys), SYNC_BATCH):
            futures = []
            for key in keys[start : start + SYNC_BATCH]:
                ref = self.queues.get(key[0], key[1])
                if ref is not None:
                    fut = new_future()
                    with contextlib.suppress(pykka.ActorDeadError):
                        ref.tell(SyncQueue(fut))
                        futures.append(fut)
            for fut in futures:
                fut.get(timeout=SYNC_TIMEOUT_S)

    def _write_checkpoint(self, cp: ckpt.Checkpoint, touched: set[QueueKey]) -> None:
        error = None
        try:
            self._sync_queues(list(touched))
            if self.index is not None:
                offload(self.index.flush)
            offload(ckpt.save, self.settings.root, cp)
        except Exception as exc:  # any failure: the next tick tries again
            error = repr(exc)
            self._touched |= touched
            self._note_sync_failure(exc)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(CheckpointDone(cp.safe_offset, error))

    def _note_sync_failure(self, exc: BaseException) -> None:
        """A sync of consume queues or the index failed: if written pages may be lost, no
        checkpoint for the rest of this opening (``ctx.unsynced``)."""
        if not _lost_writes(exc) or self._unsynced():
            return
        self.ctx.unsynced = (self.ctx.opened, repr(exc))
        logger.error(
            "store {}: syncing consume queues or the index failed ({!r}): no checkpoint until "
            "a restart (it re-dispatches from the last good one)",
            self.settings.root,
            exc,
        )

    def _unsynced(self) -> bool:
        """An fsync of this opening's consume queues or index failed (``ctx.unsynced``)."""
        failed = self.ctx.unsynced
        return failed is not None and failed[0] is self.ctx.opened

    def _continue_index_rebuild(self) -> None:
        """Index the holes recovery left (``runtime.store.index_rebuild``), step by step in
        the hub's thread pool; the files go into the index between steps, here on the hub."""
        rebuild = self._index_rebuild
        if rebuild is None or rebuild.done or self._rebuilding:
            return
        self._rebuilding = True
        gevent.spawn(self._run_index_rebuild, rebuild)

    def _run_index_rebuild(self, rebuild: IndexGapFiller) -> None:
        try:
            while not rebuild.done and not self._ended:
                if not index_rebuild.run_step(rebuild):
                    break  # a step of a stopped Dispatcher still runs, or closed: next tick
                rebuild.publish()
            if rebuild.done:
                logger.info("store {}: key index rebuilt", self.settings.root)
        except Exception as exc:  # (OSError, StoreError) left for the next start
            logger.warning("store {}: rebuilding the key index: {}", self.settings.root, exc)
            self._index_rebuild = None
        finally:
            self._rebuilding = False

    # -- key lookups ---------------------------------------------------------------------------

    def _query(self, q: QueryByKey) -> QueryResult:
        if self.index is None:
            return QueryResult()
        out: list[bytes] = []
        fence = self.ctx.topic_fences.get(q.topic, -1)  # a deleted incarnation is not found
        for phys in self.index.query(q.topic, q.key, q.max_num, q.begin, q.end):
            if phys >= self.reput or phys < fence:
                continue
            raw = self.log.read_record_bytes(phys, verify_crc=True)
            if raw is None:
                continue
            try:
                rec = R.decode_record(raw)
            except UnicodeDecodeError:  # damaged outside the body CRC: skipped, not a failure
                logger.warning(
                    "store {}: record at commit-log offset {} has undecodable topic or "
                    "properties; left out of a key lookup",
                    self.settings.root,
                    phys,
                )
                continue
            if rec.topic != q.topic or not (q.begin <= rec.store_timestamp <= q.end):
                continue
            _code, keys, _wait = dispatch_fields(rec.topic, rec.properties, rec.sys_flag, 0)
            if q.key not in keys:
                continue
            out.append(raw)
            if len(out) >= q.max_num:
                break
        last = self.index.files[-1] if self.index.files else None
        return QueryResult(
            messages=tuple(out),
            index_last_update_timestamp=last.end_time if last else 0,
            index_last_update_phyoffset=last.end_phys if last else 0,
        )
