"""Queue: one actor per (topic, queueId), owning that consume queue.

Messages accepted:
- ``AppendEntries(first, raw)`` (tell, from the Dispatcher): append packed consume-queue
  entries (idempotent), then wake the parked waiters the new max offset satisfies. An append
  the file system refuses (ENOSPC, EIO, no descriptor left: an ``OSError``) is undone (no torn
  entry stays) and kept, with every later one behind it, and tried again every
  ``APPEND_RETRY_S`` until it is written: the Dispatcher has moved on, so a dropped block
  would leave a hole that every later append runs into (the queue stuck until a restart).
- ``GetMessages(offset, max_nums, max_bytes, tag_codes)`` (ask) -> ``GetResult``: raw records by
  queue offset, filtered by tag hash, capped by count and bytes; statuses as RocketMQ's
  DefaultMessageStore.getMessage. A record that fails its check (CRC, size, queue offset) is
  never served. A damaged one (its bytes are in the log, or its entry is impossible) is
  skipped, as RocketMQ's getMessage skips a record it cannot read: the read goes on after it,
  ``next_begin_offset`` passes it (MESSAGE_WAS_REMOVING when nothing else was found), and one
  WARNING names its queue offset (once per record while the actor lives). One the file system
  cannot read (EIO: a bad sector) is skipped the same way, its WARNING naming the error; a
  transient error (out of memory or descriptors) fails the pull instead. So are consume-queue
  entries it cannot read: those of the page that fails (``ConsumeQueue.read_around``) are
  skipped (MESSAGE_WAS_REMOVING, ``next_begin_offset`` past them), the others served. One not
  written yet (past the log's write offset) stops the read before it (OFFSET_FOUND_NULL when it
  is the first), as the next read may find it.
- ``WaitArrival(offset, reply, deadline)`` (tell): resolve ``reply`` with the max offset once it
  exceeds ``offset`` — the hook the remoting layer parks long polls on — or at ``deadline``.
- ``QueueRange`` -> (min, max); ``OffsetForTime(ts)`` -> offset; ``EarliestStoreTime`` -> ms.
  An entry or record the disk cannot read is skipped (one WARNING a lookup): the earliest time
  is the first readable message's; a lookup by time takes an unreadable one as stored when the
  next readable one was, or else at or after ``ts`` (an answer never later than the truth).
- ``ReadEntries(start, count)`` -> (min, max, raw consume-queue entries) for admin tools: those
  before a page the disk cannot read; at one, ``StoreError`` naming the unreadable entries and
  where readable ones resume.
- ``SyncQueue(reply)`` (tell, from the Dispatcher's checkpoint): fsync (in a helper greenlet,
  so reads go on meanwhile; through the store's ``GroupSync``, one ``syncfs`` for many queues
  syncing at once), then ``reply`` gets the max offset.
- ``TrimBelow(log_min)`` (tell, from Retention): delete files below the commit log's minimum
  (``trim_files``; an idle queue without an actor is trimmed by the ``QueueTable`` directly).
- ``RetireIfIdle`` (ask, inline only, from ``QueueTable.retire_idle``) -> True when nobody waits
  on the queue and its files are synced (no sync in flight): it frees its tail cache, closes
  its files' descriptors (the next use reopens them) and its stop that follows does nothing
  more. False otherwise (it goes on as before).

Owned state: the ConsumeQueue files (written by nobody else), the parked waiters (while there
are any, the queue is in ``StoreContext.parked_queues``: the writer's hint to dispatch first).
Durability point: none of its own — entries are in the kernel when appended and fsynced at
checkpoints; the consume queue is rebuilt from the commit log when lost.

Queue actors are created on demand by the ``QueueTable`` (``actors.broker.queue_table``), which
also stops the ones left unused for ``queue_idle_stop_ms`` (an actor costs ~17 KiB; its
ConsumeQueue object, kept by the store, ~2 KiB).
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections import deque
from typing import Any

import gevent
from loguru import logger

from actors.broker.messages import (
    AppendEntries,
    EarliestStoreTime,
    GetMessages,
    OffsetForTime,
    QueueRange,
    ReadEntries,
    RetireIfIdle,
    SweepWaiters,
    SyncQueue,
    TrimBelow,
    WaitArrival,
)
from actors.broker.store_results import GetResult, GetStatus
from runtime.actor import GeventActor
from runtime.errors import StoreError
from runtime.store import record as R
from runtime.store.accel import fastlog
from runtime.store.consumequeue import (
    BLANK_SIZE_FIELD,
    ENTRY,
    ConsumeQueue,
)
from runtime.store.consumequeue import TRANSIENT_READ as CQ_TRANSIENT_READ
from runtime.store.context import StoreContext
from runtime.store.record_check import check_run
from runtime.store.segments import FlushPlan

SWEEP_S = 1.0
APPEND_RETRY_S = 1.0
"""How often a Queue tries again the entries its file system refused (as RocketMQ's reput
retries a consume-queue write every second)."""
MIN_SCAN_ENTRIES = 800  # RocketMQ scans at least 16000 bytes of consume queue per read
REPORTED_MAX = 4096
"""Most damaged records' queue offsets a Queue remembers having logged (then it forgets them)."""
EARLIEST_PROBES = 16
"""Most places ``EarliestStoreTime`` tries (unreadable entries or records skipped) before -1."""
TRANSIENT_READ = CQ_TRANSIENT_READ
"""Read errors that say nothing about the record (out of memory or descriptors; EBADF: a file
the closing store closed): the pull fails (SYSTEM_ERROR) and the next one reads again. Any
other ``OSError`` (EIO: a bad sector) skips the record."""

_check_run = getattr(fastlog(), "check_run", None) or check_run
"""The read path's record check (C when built; ``record_check.check_run`` is the reference)."""


def _usual_choice(
    raw: bytes, off: int, max_bytes: int, log_min: int
) -> tuple[list[tuple[int, int, int]], int] | None:
    """The entries a read without a tag filter takes from ``raw`` (the first ``max_nums``
    consume-queue entries from queue offset ``off``) and their total size, when none is blank
    or below the log's minimum and they fit ``max_bytes`` -- exactly what ``Queue._get``'s
    per-entry loop would choose then, without a Python step per entry. None otherwise (the
    loop decides)."""
    entries = list(ENTRY.iter_unpack(raw))
    if not entries:
        return None
    physs = [e[0] for e in entries]
    sizes = [e[1] for e in entries]
    total = sum(sizes)
    if min(physs) < log_min or BLANK_SIZE_FIELD in sizes or total > max_bytes:
        return None
    return list(zip(range(off, off + len(physs)), physs, sizes, strict=True)), total


class _RetryAppend:
    """Timer message: try the held consume-queue entries again."""


class Queue(GeventActor):
    """See the module docstring."""

    def __init__(self, ctx: StoreContext, topic: str, queue_id: int) -> None:
        super().__init__()
        self.ctx = ctx
        self.topic = topic
        self.queue_id = queue_id
        self._waiters: list[tuple[int, float, Any]] = []
        self._sweep_armed = False
        self._syncs = 0  # fsyncs in flight (helper greenlets)
        self._retired = False
        self._held: deque[tuple[int, bytes | bytearray]] = deque()  # refused appends, in order
        self._append_failing = False  # the oldest held block was refused (logged once)
        self._reported: set[int] = set()  # damaged records' queue offsets, logged once
        self._read_error = ""  # the last read error a pull skipped records for (the WARNING's)
        self._cq_error: OSError | None = None  # the last consume-queue page's read error

    def on_start(self) -> None:
        opened = self.ctx.require_open()
        key = (self.topic, self.queue_id)
        cq = opened.queues.get(key)
        if cq is None:
            s = self.ctx.settings
            cq = opened.queues[key] = ConsumeQueue(
                s.root, self.topic, self.queue_id, s.cq_entries_per_file, self.ctx.fs
            )
        self.cq = cq
        self.log = opened.log
        self._verify_crc = self.ctx.settings.check_crc_on_read

    def on_stop(self) -> None:
        if self._retired:
            return  # idle, synced, nobody waiting: nothing to do
        self._wake(all_=True)
        if self.ctx.failed is None:
            self.cq.flush()

    def on_failure(self, *_exc_info: Any) -> None:
        self._wake(all_=True)

    # -- messages ------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AppendEntries):
            self._held.append((message.first, message.raw))
            if len(self._held) == 1 and self._append_held() and self._waiters:
                self._wake()
            return None
        if isinstance(message, _RetryAppend):
            if self._append_held() and self._waiters:
                self._wake()
            return None
        if isinstance(message, GetMessages):
            return self._get(message)
        if isinstance(message, WaitArrival):
            self._park(message)
            return None
        if isinstance(message, SweepWaiters):
            self._sweep_armed = False
            self._wake()
            return None
        if isinstance(message, QueueRange):
            return (self.cq.min_offset, self.cq.max_offset)
        if isinstance(message, SyncQueue):
            self._sync(message.reply)
            return None
        if isinstance(message, OffsetForTime):
            return self._offset_for_time(message.timestamp)
        if isinstance(message, EarliestStoreTime):
            return self._earliest_store_time()
        if isinstance(message, ReadEntries):
            lo, hi = self.cq.min_offset, self.cq.max_offset
            inside = lo <= message.start < hi
            return (lo, hi, self._admin_entries(message.start, message.count) if inside else b"")
        if isinstance(message, TrimBelow):
            trim_files(self.ctx, self.cq, message.log_min)
            return None
        if isinstance(message, RetireIfIdle):
            return self._retire()
        return super().on_receive(message)

    def _append_held(self) -> bool:
        """Append the held blocks, oldest first; True once all are written. A refused one is
        undone and stays held (with those behind it) for a retry ``APPEND_RETRY_S`` later."""
        held = self._held
        while held:
            first, raw = held[0]
            try:
                self.cq.append_block(first, raw)
            except OSError as exc:
                # drop the torn bytes past the last whole entry (a new segment it created
                # goes too); an error here fails the actor, as before
                self.cq.truncate_logical(self.cq.max_offset)
                log = logger.debug if self._append_failing else logger.error
                log(
                    "store {}: {}/{}: consume-queue append at offset {} failed ({}); "
                    "{} block(s) held, trying again every {:g} s",
                    self.ctx.settings.root,
                    self.topic,
                    self.queue_id,
                    first,
                    exc,
                    len(held),
                    APPEND_RETRY_S,
                )
                self._append_failing = True
                self.send_after(APPEND_RETRY_S, _RetryAppend())
                return False
            held.popleft()
        if self._append_failing:
            self._append_failing = False
            logger.info(
                "store {}: {}/{}: held consume-queue entries written",
                self.ctx.settings.root,
                self.topic,
                self.queue_id,
            )
        return True

    def _retire(self) -> bool:
        if self._held or self._waiters or self._syncs or not self.cq.file.clean:
            return False
        self._retired = True
        self.cq.file.drop_tail_cache()
        self.cq.release_descriptors()  # synced: reopened by its next use, as after an eviction
        return True

    # -- arrival notification ------------------------------------------------------------------

    def _park(self, msg: WaitArrival) -> None:
        if self.cq.max_offset > msg.offset:
            _resolve(msg.reply, self.cq.max_offset)
            return
        self._waiters.append((msg.offset, msg.deadline, msg.reply))
        self.ctx.parked_queues.add((self.topic, self.queue_id))
        self._arm_sweep()

    def _wake(self, *, all_: bool = False) -> None:
        top = self.cq.max_offset
        now = time.monotonic()
        keep = []
        for offset, deadline, reply in self._waiters:
            if all_ or top > offset or deadline <= now:
                _resolve(reply, top)
            else:
                keep.append((offset, deadline, reply))
        self._waiters = keep
        if keep:
            self._arm_sweep()
        else:
            self.ctx.parked_queues.discard((self.topic, self.queue_id))

    def _arm_sweep(self) -> None:
        if not self._sweep_armed:
            self._sweep_armed = True
            self.send_after(SWEEP_S, SweepWaiters())

    # -- reads ---------------------------------------------------------------------------------

    def _get(self, m: GetMessages) -> GetResult:
        cq = self.cq
        lo, hi = cq.min_offset, cq.max_offset
        off = m.offset

        def result(status: GetStatus, next_begin: int, **kw: Any) -> GetResult:
            return GetResult(
                status=status, next_begin_offset=next_begin, min_offset=lo, max_offset=hi, **kw
            )

        if hi == 0:
            return result(GetStatus.NO_MESSAGE_IN_QUEUE, 0)
        if off < lo:
            return result(GetStatus.OFFSET_TOO_SMALL, lo)
        if off == hi:
            return result(GetStatus.OFFSET_OVERFLOW_ONE, off)
        if off > hi:
            return result(GetStatus.OFFSET_OVERFLOW_BADLY, lo if lo == 0 else hi)

        # pass 1: choose entries (tags, caps) without touching the commit log
        tag_codes = m.tag_codes
        log_min = self.log.min_offset
        max_nums, max_bytes = m.max_nums, m.max_bytes
        status = GetStatus.NO_MATCHED_MESSAGE  # if nothing is chosen
        usual = None
        if tag_codes is None:  # then the usual case needs max_nums entries, not a whole scan
            raw, resume = self._read_entries(off, max_nums)
            if resume is not None:
                return result(GetStatus.MESSAGE_WAS_REMOVING, resume)
            usual = _usual_choice(raw, off, max_bytes, log_min)
        if usual is not None:
            chosen, total = usual
            next_begin = off + len(chosen)
        else:
            chosen, total = [], 0  # (queue offset, phys, size), their sizes' sum
            next_begin = off
            raw, resume = self._read_entries(off, max(MIN_SCAN_ENTRIES, max_nums))
            if resume is not None:
                return result(GetStatus.MESSAGE_WAS_REMOVING, resume)
            for i, (phys, size, tags) in enumerate(ENTRY.iter_unpack(raw)):
                q = off + i
                if size == BLANK_SIZE_FIELD:
                    next_begin = q + 1
                    continue
                if len(chosen) >= max_nums or (chosen and total + size > max_bytes):
                    break
                next_begin = q + 1
                if phys < log_min:
                    status = GetStatus.MESSAGE_WAS_REMOVING
                    continue
                if tag_codes is not None and tags not in tag_codes:
                    continue
                chosen.append((q, phys, size))
                total += size
        if not chosen:
            return result(status, next_begin)

        # pass 2: read contiguous runs with one pread each, check every record
        messages: list[bytes] = []
        qoffs: list[int] = []
        damaged: list[int] = []  # queue offsets of records skipped as damaged
        unreadable: list[int] = []  # queue offsets of records skipped: the read failed
        i = 0
        n = len(chosen)
        # entries ascend in the log without overlapping: all of them are one run exactly when
        # the span from the first to the end of the last is the sum of their sizes
        one_run = chosen[-1][1] + chosen[-1][2] - chosen[0][1] == total
        singly = False  # a run's read failed: the rest is read record by record
        while i < n:
            j = i + 1 if singly else n if one_run else i + 1
            while not singly and j < n and chosen[j][1] == chosen[j - 1][1] + chosen[j - 1][2]:
                j += 1
            start = chosen[i][1]
            span = chosen[j - 1][1] + chosen[j - 1][2] - start
            data = self._read_log(start, span, unreadable)
            if data is None:  # an I/O error: only the records that cannot be read are skipped
                if j - i > 1:
                    singly = True
                    continue
                unreadable.append(chosen[i][0])
                i = j
                continue
            run = chosen[i:j]
            k = 0
            while k < len(run):
                good = _check_run(
                    data, start, run[k:] if k else run, self.queue_id, self._verify_crc
                )
                messages.extend(
                    [data[p - start : p - start + size] for _q, p, size in run[k : k + good]]
                )
                qoffs.extend([q for q, _p, _size in run[k : k + good]])
                k += good
                if k == len(run):
                    break
                q, phys, size = run[k]
                if not self._damaged(phys, size):  # not in the log yet: stop before it
                    self._report_damaged(damaged)
                    self._report_damaged(unreadable, self._read_error)
                    if messages:
                        return result(
                            GetStatus.FOUND, q, messages=tuple(messages), queue_offsets=tuple(qoffs)
                        )
                    status = (
                        GetStatus.MESSAGE_WAS_REMOVING
                        if damaged or unreadable
                        else GetStatus.OFFSET_FOUND_NULL
                    )
                    return result(status, q)
                damaged.append(q)
                k += 1
            i = j
        self._report_damaged(damaged)
        self._report_damaged(unreadable, self._read_error)
        if not messages:  # (RocketMQ's answer for records it cannot read: the reader moves on)
            return result(GetStatus.MESSAGE_WAS_REMOVING, next_begin)
        return result(
            GetStatus.FOUND, next_begin, messages=tuple(messages), queue_offsets=tuple(qoffs)
        )

    def _read_entries(self, off: int, count: int) -> tuple[bytes, int | None]:
        """Up to ``count`` raw consume-queue entries from ``off`` (``off`` inside the queue),
        and None; or, when the file system cannot read the entry at ``off`` (EIO: a bad
        sector), b"" and the queue offset past the entries of the page that failed, which are
        skipped (one WARNING). Entries before such a page are returned, the read stopping
        there. A transient error (``TRANSIENT_READ``) is raised: the pull fails."""
        try:
            return self.cq.read_raw(off, count), None
        except OSError as exc:
            if exc.errno in TRANSIENT_READ:
                raise
        raw, resume, error = self.cq.read_around(off, count)
        if raw or error is None:
            return raw, None
        if error.errno in TRANSIENT_READ:
            raise error
        self._cq_error = error
        self._report_damaged(
            list(range(off, resume)), f"have consume-queue entries that could not be read ({error})"
        )
        return b"", resume

    def _damaged(self, phys: int, size: int) -> bool:
        """Whether a record that failed its check is damaged (skipped): its entry is impossible
        (a size no record has, or one past its segment's end), or its bytes were written (the
        log's write offset is past it: entries are dispatched only after their records are
        written). A record not written yet (past the write offset) is not damaged: a read
        stops before it, as before."""
        log = self.log
        if size <= 0 or size > log.max_record_size:
            return True
        if phys + size > log.segments.segment_end(phys):
            return True
        return phys + size <= log.write_offset

    def _read_log(self, start: int, span: int, unreadable: list[int]) -> bytes | None:
        """The log's bytes ``[start, start + span)``, or None when the file system could not
        read them (EIO: a bad sector); the error is kept for the WARNING. A transient error
        (``TRANSIENT_READ``: out of memory or descriptors) is raised: the pull fails
        (SYSTEM_ERROR) and the next one reads again. ``unreadable`` is the read's list so far
        (only the first error of a read is kept)."""
        try:
            return self.log.read(start, span)
        except OSError as exc:
            if exc.errno in TRANSIENT_READ:
                raise
            if not unreadable:
                self._read_error = f"could not be read ({exc})"
            return None

    def _report_damaged(
        self, offsets: list[int], why: str = "failed their check (damaged)"
    ) -> None:
        """One WARNING for the damaged (or unreadable) records a read skipped, once per record
        (while this actor lives; ``REPORTED_MAX`` remembered)."""
        fresh = [q for q in offsets if q not in self._reported]
        if not fresh:
            return
        if len(self._reported) + len(fresh) > REPORTED_MAX:
            self._reported.clear()
        self._reported.update(fresh)
        logger.warning(
            "store {}: {}/{}: {} record(s) {} and are skipped, never served: queue offset(s) {}",
            self.ctx.settings.root,
            self.topic,
            self.queue_id,
            len(fresh),
            why,
            _ranges(fresh),
        )

    def _store_time(self, q: int) -> int | OSError:
        """The store timestamp of the record at queue offset ``q`` (-1: none there, or below
        the log's minimum), or the error when its entry or its record cannot be read (EIO: a
        bad sector); a transient error (``TRANSIENT_READ``) is raised."""
        try:
            e = self.cq.entry(q)
            if e is None or e.physical_offset < self.log.min_offset:
                return -1
            head = self.log.read(e.physical_offset, R.STORE_TIMESTAMP_HEAD)
        except OSError as exc:
            if exc.errno in TRANSIENT_READ:
                raise
            return exc
        if len(head) < R.STORE_TIMESTAMP_HEAD:
            return -1
        return R.store_timestamp_of(head)

    def _time_from(self, q: int, probes: int) -> tuple[int | None, OSError | None]:
        """The store time (``_store_time``) of the first readable message from queue offset
        ``q``, trying at most ``probes`` places: past a consume-queue page that cannot be read,
        past a record that cannot be read; None when none of them could be read (or the queue
        ended). Also the first read error met (None: none)."""
        first: OSError | None = None
        for _ in range(probes):
            if q >= self.cq.max_offset:
                break
            got = self._store_time(q)
            if not isinstance(got, OSError):
                return got, first
            first = first or got
            _raw, past, cq_error = self.cq.read_around(q, 1)
            q = past if cq_error is not None else q + 1
        return None, first

    def _earliest_store_time(self) -> int:
        """The store time of the queue's first readable message (-1: none readable among the
        first ``EARLIEST_PROBES`` places; one WARNING when some could not be read)."""
        got, error = self._time_from(self.cq.min_offset, EARLIEST_PROBES)
        if error is not None:
            self._warn_time_lookup("the earliest store time", error)
        return -1 if got is None else got

    def _offset_for_time(self, ts: int) -> int:
        """First offset whose record was stored at or after ``ts`` (max offset if none). An
        entry or record that cannot be read counts as stored when the next readable one was
        (times grow with queue offsets), or, when none is near, at or after ``ts``: the answer
        is never later than the truth (a consumer reset to it may get messages again, never
        miss one), with one WARNING."""
        lo = self.cq.min_offset
        offsets = range(lo, self.cq.max_offset)
        errors: list[OSError] = []

        def key(q: int) -> int:
            got = self._store_time(q)
            if not isinstance(got, OSError):
                return got
            errors.append(got)
            later, _error = self._time_from(q, 4)
            return later if later is not None and later >= 0 else ts

        i = bisect.bisect_left(offsets, ts, key=key)
        if errors:
            self._warn_time_lookup(f"the offset for time {ts}", errors[0])
        return lo + i

    def _warn_time_lookup(self, what: str, error: OSError) -> None:
        logger.warning(
            "store {}: {}/{}: looking up {}: skipped entries or records that could not be "
            "read ({})",
            self.ctx.settings.root,
            self.topic,
            self.queue_id,
            what,
            error,
        )

    def _admin_entries(self, start: int, count: int) -> bytes:
        """``ReadEntries``' raw entries: those before a consume-queue page that cannot be
        read; ``StoreError`` naming the unreadable entries and where readable ones resume when
        ``start`` is on it (no answer is right there; an admin tool asks again past them)."""
        raw, resume = self._read_entries(start, count)
        if resume is None:
            return raw
        raise StoreError(
            f"consumequeue/{self.topic}/{self.queue_id}",
            f"queue offset(s) {start}-{resume - 1} could not be read ({self._cq_error}); "
            f"readable entries resume at {resume}",
        )

    def _sync(self, reply: Any) -> None:
        """fsync in a helper greenlet: reads keep being served while a slow disk syncs."""
        plan = self.cq.file.prepare_flush()
        top = self.cq.max_offset
        if plan is None:
            _resolve(reply, top)
            return
        self._syncs += 1
        gevent.spawn(self._run_sync, plan, self.cq, reply, top)

    def _run_sync(self, plan: FlushPlan, cq: ConsumeQueue, reply: Any, top: int) -> None:
        try:
            cq.file.flushed_to(self.ctx.group_sync.run(plan))
        except Exception:
            cq.file.flush_not_done(plan)  # the checkpoint tries again: the directory too
            with contextlib.suppress(Exception):
                reply.set_exception()
            return
        finally:
            self._syncs -= 1
        _resolve(reply, top)


def trim_files(ctx: StoreContext, cq: ConsumeQueue, log_min: int) -> None:
    """Delete ``cq``'s files that only point below the commit log's minimum ``log_min`` (and
    advance its min offset), then sync its directory in a helper greenlet. Never yields. The
    sync is what lets the queue retire again: a queue is idle only when its files are synced,
    and the Dispatcher's checkpoints sync only the queues it wrote to."""
    try:
        if not cq.delete_files_below(log_min):
            return
    except OSError as exc:  # (a file that cannot be removed stays until a restart trims it)
        logger.warning(
            "store {}: {}/{}: deleting old files: {}", ctx.settings.root, cq.topic, cq.queue_id, exc
        )
    plan = cq.file.prepare_flush()
    if plan is not None:
        gevent.spawn(_sync_after_trim, ctx, cq, plan)


def _sync_after_trim(ctx: StoreContext, cq: ConsumeQueue, plan: FlushPlan) -> None:
    try:
        cq.file.flushed_to(ctx.group_sync.run(plan))
    except Exception as exc:  # the next sync (a checkpoint, a stop) does the directory again
        cq.file.flush_not_done(plan)
        logger.warning(
            "store {}: {}/{}: syncing after deleting old files: {}",
            ctx.settings.root,
            cq.topic,
            cq.queue_id,
            exc,
        )


def _ranges(offsets: list[int]) -> str:
    """Ascending queue offsets as "3, 7-9"."""
    parts: list[str] = []
    first = last = offsets[0]
    for q in offsets[1:]:
        if q != last + 1:
            parts.append(str(first) if first == last else f"{first}-{last}")
            first = q
        last = q
    parts.append(str(first) if first == last else f"{first}-{last}")
    return ", ".join(parts)


def _resolve(reply: Any, value: int) -> None:
    try:
        reply.set(value)
    except Exception:  # a caller gave up and set it, or it was resolved already
        logger.trace("arrival waiter already resolved")
