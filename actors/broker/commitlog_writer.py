"""CommitLogWriter: the single writer of the commit log.

Messages accepted:
- ``AppendBatch(records, reply, enqueued_at)`` — validate every record first (topic name, body
  size, properties size, fits a segment) and answer MESSAGE_ILLEGAL / PROPERTIES_SIZE_EXCEEDED
  with nothing written; refuse with SERVICE_NOT_AVAILABLE when the store failed, is read-only,
  the disk is above the warning ratio or a write met ENOSPC or EDQUOT less than
  ``ENOSPC_PAUSE_S`` ago
  or (controller mode) the master holds no lease (whoever
  appends: the broker's own timer, delay and transaction writers too), and OS_PAGE_CACHE_BUSY
  when the batch waited in the inbox longer than ``os_page_cache_busy_timeout_ms``. Otherwise
  assign queue and physical offsets, encode, write (one ``os.pwrite`` per segment touched),
  complete ``reply`` with a
  ``PutResult`` once the flush condition (SYNC_FLUSH: the Flusher's fsync) and the replication
  condition both answered (at once when neither waits), then hand the dispatch entries to the
  Dispatcher. Order: acks first, dispatch second — unless a long poll is parked on one of the
  group's queues (``StoreContext.parked_queues``): then the dispatch goes first, inline when the
  Dispatcher is idle, so the poll's response leaves before the acks (what Redis does for a
  blocked reader; end-to-end p50 ~10 - 20 % lower at 2,000 msg/s, a sync producer's rate
  unchanged within noise: docs/benchmarks.md, "Session 6").
- ``AppendRaw(offset, data, reply)`` — a slave's replicated bytes (``raw_append``).
- ``DiskSpace(full, ratio)`` from Retention; ``StoreFailed(reason)`` from the Flusher.
- ``DeleteSegments(...)`` from Retention (ask): detach old segments, reply ``SegmentsDeleted``
  (``segment_deletion``).
- ``DeleteTopicData(topic)`` (ask, topic deletion): append the topic's deletion marker
  (``runtime.store.fences``), forget the topic's next queue offsets (it starts again at 0), hand
  the marker to the Dispatcher (which removes the topic's queues once the marker is fsynced)
  and ask the Flusher for that fsync; reply ``TopicDataDeleted(fence)`` (``delete_marker``).
  Client records of the marker's reserved topic are refused (MESSAGE_ILLEGAL).

Fast path: ``BrokerStore.put`` hands an ``AppendBatch`` to an idle writer through
``handle_inline`` (runtime/actor.py) when no other greenlet is about to run: the append then
runs in the sender's greenlet, exactly as this actor's loop would run it (the handler never
yields), and the reply is set before ``put`` returns. Under load appends queue as usual and are
written in groups.

Owned state: the open store (lock, commit log, recovered consume queues and index, handed on
through the StoreContext), the queue-offset table (topic, queueId) -> next offset.

Durability point: none by itself — bytes are in the kernel when ``os.pwrite`` returns (so a
kill -9 loses nothing acknowledged); fsync is the Flusher's. ``on_start`` runs recovery (lock,
scan, truncate, rebuild) and creates the abort marker; ``on_stop`` fsyncs, writes the final
checkpoint and removes it. A failed write or fsync never yields PUT_OK; the actor is
fail-stop (``fail_on_error``): a broker must not keep acking after its writer died. Failing, it
marks the store failed (``StoreContext.failed``: the others' stops then do no flush and no
checkpoint) and closes the store's files and lock once the Flusher and the Dispatcher (which
stops the Queues) have ended (``close_after_readers``), not under them.
"""

from __future__ import annotations

import errno
import time
from typing import Any

import pykka
from loguru import logger

from actors.broker import delete_marker, raw_append, segment_deletion
from actors.broker.messages import (
    AppendBatch,
    AppendRaw,
    AwaitFlush,
    DeleteSegments,
    DeleteTopicData,
    DiskSpace,
    Dispatch,
    StoreFailed,
)
from actors.broker.put_completion import (
    PutCompletion,
    appended,
    refusal_of,
    refused,
    repl_status,
    set_reply,
)
from actors.broker.store_results import FlushStatus, PutResult, PutStatus
from runtime.actor import GeventActor, tell_now, watch
from runtime.errors import StoreError
from runtime.store import checkpoint as ckpt
from runtime.store.context import ReplicationStatus, StoreContext
from runtime.store.dispatch import merge
from runtime.store.lockfile import remove_abort
from runtime.store.recovery import OpenStore, make_checkpoint, open_store
from runtime.store.topic_names import LITE_QUEUE_PREFIX, TOPIC_DELETED_MARKER, split_lmq

MAX_GROUP_RECORDS = 1024
"""Write coalescing stops taking queued appends once a group holds this many records."""
ENOSPC_PAUSE_S = 1.0
"""After a write failed with ENOSPC, appends are refused (SERVICE_NOT_AVAILABLE) this long,
then tried again. Retention's ``DiskSpace`` reports only changes of its own measure, so a disk
that filled up between two of its ticks, or is full by a measure it does not take (inodes, a
reserve), would otherwise stay refused until a restart."""
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
"""Write errors that mean "no room" (EDQUOT: the user's or project's disk quota is used up):
refused for ``ENOSPC_PAUSE_S``, never a fail-stop (the undo worked; space may come back)."""


def close_files(opened: OpenStore) -> None:
    """Close the store's files (log, consume queues, index) and release its lock."""
    try:
        opened.log.segments.close()
        for cq in opened.queues.values():
            cq.close()
        if opened.index is not None:
            opened.index.close()
    finally:
        opened.lock.release()


def close_after_readers(ctx: StoreContext, opened: OpenStore) -> None:
    """``close_files(opened)`` once the store's Flusher and Dispatcher (which stops the Queue
    actors) have ended, or now when neither runs: a failed writer's store was closed under
    them (EBADF in their reads, "file closed" in the Queues' stops) and its lock released
    while they still wrote."""
    names = ctx.names
    running = [
        ref
        for name in (names.flusher, names.dispatcher)
        if (ref := ctx.directory.get(name)) is not None and ref.is_alive()
    ]
    left = {ref.actor_urn for ref in running}
    if not left:
        close_files(opened)
        return

    def ended(ref: pykka.ActorRef[Any], _failure: BaseException | None) -> None:
        left.discard(ref.actor_urn)
        if not left:
            try:
                close_files(opened)
            except Exception as exc:  # (a hub callback: nobody else would see it)
                logger.error("store {}: closing after a failure: {!r}", opened.settings.root, exc)

    for ref in running:
        watch(ref, ended)


class CommitLogWriter(GeventActor):
    """See the module docstring."""

    fail_on_error = True

    def __init__(self, ctx: StoreContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.settings = ctx.settings
        self._disk_full = False
        self._no_space_until = 0.0  # a write failed with ENOSPC or EDQUOT: refuse until then
        self._failed: str | None = None
        self._flusher: pykka.ActorRef[Any] | None = None
        self._dispatcher: pykka.ActorRef[Any] | None = None
        self._closed = False
        self._store_ts = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        opened = self.ctx.opened
        if opened is None:  # started directly, not through the store service's start function
            opened = self.ctx.opened = open_store(self.settings, self.ctx.fs)
        self.ctx.failed = None
        self.ctx.dispatched = opened.log.write_offset
        self.ctx.queue_next = dict(opened.next_offsets)
        self.ctx.topic_fences = dict(opened.fences)
        self.ctx.final_dispatch = None
        self.log = opened.log
        self.next_offsets = opened.next_offsets
        self._sync_flush = self.settings.sync_flush
        self._busy_timeout = self.settings.os_page_cache_busy_timeout_ms / 1000.0
        self._max_size = self.settings.max_message_size

    def on_stop(self) -> None:
        self._close(clean=self._failed is None and self.ctx.failed is None)

    def on_failure(self, *exc_info: Any) -> None:
        # The store failed with its writer: the Dispatcher's and the Queues' stops that follow
        # must do no durability work (no flush, no final checkpoint), as after a failed fsync
        if self.ctx.failed is None:
            self.ctx.failed = f"commit-log writer failed: {exc_info[1]!r}"
        self._close(clean=False, others_running=True)

    def _close(self, *, clean: bool, others_running: bool = False) -> None:
        """Close the store (a clean stop: fsync, final checkpoint, no abort marker).
        ``others_running``: this writer failed, so the supervisor stops the store's other
        actors only now; the files they use and the lock are closed once they stopped."""
        if self._closed or self.ctx.opened is None:
            return
        self._closed = True
        opened = self.ctx.opened
        try:
            if clean:
                self.log.segments.flush()
                final = self.ctx.final_dispatch
                if final is not None and final[0] == self.log.write_offset:
                    ckpt.save(
                        self.settings.root,
                        make_checkpoint(final[0], self.log.min_offset, final[1]),
                    )
                    remove_abort(self.settings.root)
                else:
                    logger.warning(
                        "store {}: dispatch did not finish cleanly; next start re-dispatches",
                        self.settings.root,
                    )
        finally:
            self.ctx.opened = None  # (a new start opens the store again)
            if others_running:
                close_after_readers(self.ctx, opened)
            else:
                close_files(opened)

    # -- messages ------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AppendBatch):
            self._append(message)
            return None
        if isinstance(message, AppendRaw):  # a slave: bytes replicated from its master
            raw_append.handle(self, message)
            return None
        if isinstance(message, DiskSpace):
            if message.full != self._disk_full:
                logger.warning(
                    "store {}: disk {:.0%} used: writes {}",
                    self.settings.root,
                    message.used_ratio,
                    "refused" if message.full else "accepted again",
                )
            self._disk_full = message.full
            return None
        if isinstance(message, StoreFailed):
            self._failed = message.reason
            logger.error("store {}: failed, refusing appends: {}", self.settings.root, message)
            return None
        if isinstance(message, DeleteSegments):
            return segment_deletion.handle(self, message)
        if isinstance(message, DeleteTopicData):
            return delete_marker.handle(self, message.topic)
        return super().on_receive(message)

    # -- appending -----------------------------------------------------------------------------

    def _take_queued_appends(self, first: AppendBatch) -> list[AppendBatch]:
        """``first`` plus the AppendBatch messages queued right behind it in the inbox (write
        coalescing: one write, one dispatch and one flush wait for all of them). Only a run at
        the head of the inbox is taken, so no other message is overtaken."""
        group = [first]
        inbox = self.actor_inbox
        total = len(first.records)
        while total < MAX_GROUP_RECORDS and inbox.qsize():  # type: ignore[attr-defined]
            envelope = inbox.peek_nowait()  # type: ignore[attr-defined]
            msg = getattr(envelope, "message", None)
            if not isinstance(msg, AppendBatch) or envelope.reply_to is not None:
                break
            inbox.get_nowait()  # type: ignore[attr-defined]
            group.append(msg)
            total += len(msg.records)
        return group

    def _append(self, first: AppendBatch) -> None:
        group = self._take_queued_appends(first)
        now = time.monotonic()
        failed = self._failed or self.ctx.failed
        refusal = None
        if failed is not None:
            refusal = refused(PutStatus.SERVICE_NOT_AVAILABLE, f"store failed: {failed}")
        elif self.settings.read_only:
            refusal = refused(PutStatus.SERVICE_NOT_AVAILABLE, "store is read-only (slave)")
        elif self._disk_full:
            refusal = refused(PutStatus.SERVICE_NOT_AVAILABLE, "disk above warning ratio")
        elif now < self._no_space_until:
            refusal = refused(
                PutStatus.SERVICE_NOT_AVAILABLE, "disk full (a write met ENOSPC or EDQUOT)"
            )
        elif not self.ctx.replication.may_append():
            refusal = refused(
                PutStatus.SERVICE_NOT_AVAILABLE,
                "this master holds no lease from the controller (a failover may be under way)",
            )
        elif not self.ctx.replication.replicas_enough():
            refusal = refused(
                PutStatus.IN_SYNC_REPLICAS_NOT_ENOUGH,
                "in-sync replicas not enough (minInSyncReplicas)",
            )
        if refusal is not None:
            for msg in group:
                set_reply(msg.reply, refusal)
            return
        store_ts = self._store_ts = int(time.time() * 1000)
        log = self.log
        begin = log.write_offset
        overlay: dict[tuple[str, int], int] = {}
        outcomes: list[tuple[AppendBatch, Any]] = []
        log.begin_group()
        try:
            self._encode_group(group, outcomes, now, store_ts, overlay)
            end = log.commit_group()
        except OSError as exc:
            log.abort_group()
            self._write_failed(exc, begin, [m.reply for m, o in outcomes if appended(o)])
            for msg, out in outcomes:
                if not appended(out):
                    set_reply(msg.reply, refusal_of(out))
            return
        except BaseException:
            log.abort_group()  # a bug: nothing of this group was written; the actor fails
            for msg in group:
                set_reply(msg.reply, refused(PutStatus.UNKNOWN_ERROR, "writer failed"))
            raise
        self.next_offsets.update(overlay)
        dispatched = [o.dispatch for _m, o in outcomes if appended(o)]
        self.ctx.put_messages += sum(len(m.records) for m, o in outcomes if appended(o))
        if not dispatched:
            self._complete(outcomes, end)
            return
        parked = self.ctx.parked_queues
        if parked and any(not parked.isdisjoint(d.queues) for d in dispatched):
            # A long poll waits on one of these queues: dispatch first (inline when the
            # dispatcher is idle), so the queue wakes the poll before the acks are set and the
            # hub, which runs woken greenlets in order, sends the pull response before the acks
            # (as Redis serves a blocked reader before the writer's reply).
            self._tell_dispatcher(Dispatch(begin, end, merge(dispatched)), inline=True)
            self._complete(outcomes, end, polls_first=True)
        else:
            # Acks first, dispatch second (merging the group's batches too): a producer's ack
            # does not wait behind consume-queue and index work no consumer is waiting for.
            self._complete(outcomes, end)
            self._tell_dispatcher(Dispatch(begin, end, merge(dispatched)))

    def _complete(
        self, outcomes: list[tuple[AppendBatch, Any]], end: int, *, polls_first: bool = False
    ) -> None:
        """Reply to each append now, or once its flush and replication conditions hold."""
        log = self.log
        store_ts = self._store_ts
        repl = self.ctx.replication
        waiting: list[PutCompletion] = []
        host, port = log.store_host, log.store_port
        put_bytes, put_counts = self.ctx.put_bytes, self.ctx.put_counts
        for msg, out in outcomes:
            if not appended(out):
                set_reply(msg.reply, refusal_of(out))
                continue
            topic = msg.records[0].topic
            if topic.startswith(LITE_QUEUE_PREFIX):  # (one key per lite topic grew for ever)
                topic = (split_lmq(topic) or (topic, ""))[0]
            put_bytes[topic] = put_bytes.get(topic, 0) + out.wrote_bytes
            put_counts[topic] = put_counts.get(topic, 0) + len(msg.records)
            result = PutResult(
                status=PutStatus.PUT_OK,
                queue_offsets=tuple(out.queue_offsets),
                physical_offsets=tuple(out.physical_offsets),
                wrote_bytes=out.wrote_bytes,
                store_timestamp=store_ts,
                store_host=host,
                store_port=port,
            )
            flush_wait = self._sync_flush and out.wait_store_ok
            # WAIT=false (RocketMQ's waitStoreMsgOK): answered once appended, waiting neither
            # for the fsync nor for replication, as RocketMQ's handleDiskFlush / handleHA skip
            if not out.wait_store_ok or (not flush_wait and not repl.required):
                set_reply(msg.reply, result)
                continue
            # A reply that waits for its fsync may be sent long after the replication answer:
            # the condition is asked again then (controller mode: is the lease still held?).
            still_holds = repl.still_holds if flush_wait and repl.required else None
            completion = PutCompletion(result, msg.reply, still_holds)
            if flush_wait:
                waiting.append(completion)
            else:
                completion.flush_done(FlushStatus.FLUSH_OK)
            if repl.required:
                fut = repl.wait(out.end)
                fut.add_done_callback(lambda f, c=completion: c.replication_done(repl_status(f)))
            else:
                completion.replication_done(ReplicationStatus.REPLICATED)
        if waiting and not self._tell_flusher(AwaitFlush(end, waiting, polls_first)):
            for c in waiting:
                c.flush_done(FlushStatus.FLUSH_FAILED)

    def _encode_group(
        self,
        group: list[AppendBatch],
        outcomes: list[tuple[AppendBatch, Any]],
        now: float,
        store_ts: int,
        overlay: dict[tuple[str, int], int],
    ) -> None:
        log = self.log
        for msg in group:
            if msg.enqueued_at and now - msg.enqueued_at > self._busy_timeout:
                outcomes.append(
                    (msg, refused(PutStatus.OS_PAGE_CACHE_BUSY, "append waited too long"))
                )
            elif not msg.records:
                outcomes.append((msg, refused(PutStatus.MESSAGE_ILLEGAL, "empty batch")))
            elif any(r.topic == TOPIC_DELETED_MARKER for r in msg.records):
                reason = f"topic {TOPIC_DELETED_MARKER} is reserved"
                outcomes.append((msg, refused(PutStatus.MESSAGE_ILLEGAL, reason)))
            else:
                out = log.append_batch(
                    msg.records, self.next_offsets, store_ts, self._max_size, overlay
                )
                outcomes.append((msg, out))

    def _write_failed(self, exc: OSError, begin: int, replies: list[Any]) -> None:
        """Undo a failed write; nothing was acknowledged, so the answer is a definite fail
        when the undo worked. If it did not, the log holds bytes we cannot vouch for: fail-stop."""
        try:
            self.log.segments.truncate(begin)
        except OSError as undo:
            for reply in replies:
                set_reply(reply, refused(PutStatus.UNKNOWN_ERROR, f"write failed: {exc}"))
            raise StoreError(
                self.settings.commitlog_dir, f"write failed ({exc}) and could not be undone: {undo}"
            ) from undo
        fatal = False
        if exc.errno in NO_SPACE:
            self._no_space_until = time.monotonic() + ENOSPC_PAUSE_S
            answer = refused(PutStatus.SERVICE_NOT_AVAILABLE, f"disk full: {exc}")
            logger.error(
                "store {}: disk full (or quota used up), refusing writes for {}s, then trying "
                "again: {}",
                self.settings.root,
                ENOSPC_PAUSE_S,
                exc,
            )
        elif exc.errno in (errno.EMFILE, errno.ENFILE, errno.EACCES, errno.EROFS):
            answer = refused(PutStatus.CREATE_MAPPED_FILE_FAILED, str(exc))
        else:
            answer = refused(PutStatus.UNKNOWN_ERROR, f"write failed: {exc}")
            fatal = True
        for reply in replies:
            set_reply(reply, answer)
        if fatal:
            raise StoreError(self.settings.commitlog_dir, f"write failed: {exc}") from exc

    def _tell_dispatcher(self, msg: Dispatch, *, inline: bool = False) -> None:
        ref = self._dispatcher
        if ref is None or not ref.is_alive():
            ref = self._dispatcher = self.ctx.directory.get(self.ctx.names.dispatcher)
        if ref is None:
            return  # it re-reads the log when it (re)starts
        try:
            if inline:
                tell_now(ref, msg)
            else:
                ref.tell(msg)
        except pykka.ActorDeadError:
            self._dispatcher = None

    def _tell_flusher(self, msg: AwaitFlush) -> bool:
        ref = self._flusher
        if ref is None or not ref.is_alive():
            ref = self._flusher = self.ctx.directory.get(self.ctx.names.flusher)
        if ref is None:
            return False
        try:
            tell_now(ref, msg)  # an idle flusher takes it here (its handler never yields)
            return True
        except pykka.ActorDeadError:
            self._flusher = None
            return False
