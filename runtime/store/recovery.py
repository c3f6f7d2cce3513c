"""Open a store: lock it, check the commit log, bring consume queues and the index in line.

Steps (STORE.md "Recovery"):

1. Take ``<root>/lock``; note whether ``abort`` exists (the last run died).
2. Load the checkpoint; load commit-log segments, consume queues and index files.
3. Choose where to start: the checkpoint's ``safe_offset`` (or the commit log's first byte when
   there is no usable checkpoint), moved earlier when a consume queue is shorter than the
   checkpoint says (its files were deleted or cut) or the index lags.
4. One pass over the commit log from there checks every record (magic, lengths, CRC); the first
   invalid byte is the end. Records are re-dispatched to consume queues (idempotent) and the index
   on the way. A consume queue with a hole that the pass cannot fill restarts the pass from the
   log's first byte.
5. Damage with valid records *after* it is not a torn tail: the store refuses to start
   (StoreError) rather than silently drop acknowledged records. Otherwise the tail is truncated
   and the number of bytes is logged.
6. Consume-queue and index entries pointing past the end are dropped; next queue offsets are the
   consume queues' ends. Log ranges an index file dropped from the middle covered are indexed
   again (``runtime.store.index_rebuild``; a large one partly, the Dispatcher does the rest).
   Everything is fsynced, a fresh checkpoint written, ``abort`` created.

Deleted topics (``fences``): the pass skips a topic's records below its fence, and a deletion
marker it meets removes the topic's consume queues (the records after the marker are dispatched
afresh). A consume queue of a fenced topic that still points below the fence (its removal did
not reach the disk) is dropped and rebuilt from the fence; a checkpoint older than a fence does
not ask for the deleted topic's queues. A fence past the log's end (its marker was cut off with
a replica's divergent tail) is dropped and the whole log dispatched again: the topic is back.
An unreadable fence file is rebuilt by a pass over the whole log (the markers are there).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import NamedTuple

from loguru import logger

from runtime.errors import StoreError
from runtime.store import checkpoint as ckpt
from runtime.store import fences as fence_table
from runtime.store import record as R
from runtime.store.commitlog import CommitLog
from runtime.store.commitlog_reads import ScanResult
from runtime.store.consumequeue import (
    ENTRY_SIZE,
    ConsumeQueue,
    QueueGap,
    list_queues,
    queue_dir,
    remove_topic_queues,
)
from runtime.store.dispatch import LogDispatchReader, QueueKey
from runtime.store.index import IndexService
from runtime.store.index_rebuild import INLINE_BYTES, IndexGapFiller
from runtime.store.lockfile import StoreLock, abort_exists, create_abort
from runtime.store.record_check import check_record
from runtime.store.settings import StoreSettings
from runtime.store.storage import OS_FS, FileSystem

_BATCH = 4096


class RecoveryReport(NamedTuple):
    unclean: bool
    scan_start: int
    log_end: int
    truncated_bytes: int
    problem: str | None
    reput_from: int
    reput_records: int
    queues_rebuilt: list[QueueKey]
    index_dropped: int
    seconds: float


class OpenStore(NamedTuple):
    """Everything recovery hands to the actors."""

    settings: StoreSettings
    lock: StoreLock
    log: CommitLog
    queues: dict[QueueKey, ConsumeQueue]
    index: IndexService | None
    next_offsets: dict[QueueKey, int]
    report: RecoveryReport
    fences: dict[str, int]
    index_rebuild: IndexGapFiller | None = None
    """Holes of the index left for the Dispatcher to fill (``runtime.store.index_rebuild``)."""


def open_store(settings: StoreSettings, fs: FileSystem = OS_FS) -> OpenStore:
    """Lock, recover and open the store at ``settings.root`` (see the module docstring)."""
    os.makedirs(settings.root, exist_ok=True)
    lock = StoreLock(settings.root)
    try:
        return _recover(settings, fs, lock)
    except BaseException:
        lock.release()
        raise


def _recover(settings: StoreSettings, fs: FileSystem, lock: StoreLock) -> OpenStore:
    t0 = time.monotonic()
    root = settings.root
    unclean = abort_exists(root)
    if unclean:
        logger.warning("store {}: abort marker found: the last run did not stop cleanly", root)
    cp = ckpt.load(root)
    try:
        saved_fences = fence_table.load(root)
        fences_lost = False
    except StoreError as exc:
        # The markers in the log say the same: a pass over the whole log rebuilds the fences.
        logger.warning("store {}: {}: rebuilding the topic fences from the whole log", root, exc)
        saved_fences, fences_lost = {}, True
    fences = dict(saved_fences)
    log = CommitLog(
        settings.commitlog_dir,
        settings.commitlog_segment_size,
        fs,
        store_host=settings.store_host_bytes,
        store_port=settings.store_port,
        delay_levels=settings.delay_levels,
        max_message_size=settings.max_message_size,
    )
    log_min = log.min_offset
    data_end = log.write_offset
    undone = sorted(t for t, f in fences.items() if f > data_end)
    for topic in undone:
        # The marker is not in the log any more (a replica's divergent tail, cut when it
        # rejoined): the deletion did not happen in this log's history. Its queues were
        # removed all the same, so the whole log is dispatched again below.
        logger.warning(
            "store {}: deletion of topic {} (fence {}) lies past the log's end {}: undone",
            root,
            topic,
            fences.pop(topic),
            data_end,
        )
    queues: dict[QueueKey, ConsumeQueue] = {}
    damaged: list[QueueKey] = []
    for key in list_queues(root):
        try:
            queues[key] = ConsumeQueue(root, key[0], key[1], settings.cq_entries_per_file, fs)
        except StoreError as exc:
            logger.warning(
                "store {}: consume queue {}/{} unusable ({}): rebuilding", root, *key, exc
            )
            shutil.rmtree(queue_dir(root, *key))
            damaged.append(key)
    for key in [k for k in queues if k[0] in fences]:
        first = queues[key].entry(queues[key].min_offset)
        if first is not None and first.physical_offset < fences[key[0]]:
            logger.warning(
                "store {}: consume queue {}/{} still holds a deleted incarnation: rebuilding",
                root,
                *key,
            )
            queues.pop(key).close()
            shutil.rmtree(queue_dir(root, *key))
            damaged.append(key)
    index = (
        IndexService(root, settings.index_slots, settings.index_capacity)
        if settings.message_index_enable
        else None
    )

    # -- where to start ------------------------------------------------------------------------
    next_segment = log.segments.segment_end(data_end - 1) if data_end else 0
    if (
        cp is not None
        and log_min <= cp.safe_offset
        and (cp.safe_offset <= data_end or cp.safe_offset == next_segment)
    ):
        scan_start = cp.safe_offset
    else:
        if cp is not None:
            logger.warning(
                "store {}: checkpoint offset {} outside the commit log [{}, {}]: full scan",
                root,
                cp.safe_offset,
                log_min,
                data_end,
            )
        scan_start = log_min
    reput_from = scan_start
    rebuilt: list[QueueKey] = list(damaged)
    if damaged:
        reput_from = log_min
    expected = {
        (q.topic, q.queue_id): q.next_offset
        for q in (cp.queues if cp else ())
        if cp is not None and cp.safe_offset >= fences.get(q.topic, -1)
    }
    for key, want in expected.items():
        cq = queues.get(key)
        if cq is None or cq.max_offset < want:
            rebuilt.append(key)
            last = cq.last_entry() if cq is not None else None
            reput_from = min(reput_from, last.physical_offset if last else log_min)
    if cp is None or undone or fences_lost:
        reput_from = log_min
    if index is not None:
        ie = index.end_phys
        reput_from = min(reput_from, ie if ie is not None else log_min)
    reput_from = max(reput_from, log_min)

    # -- one checking, re-dispatching pass -------------------------------------------------------
    while True:
        try:
            scan, reput_records = _pass(settings, fs, log, queues, index, reput_from, root, fences)
            break
        except QueueGap as gap:
            if reput_from <= log_min:
                raise StoreError(
                    gap.path, f"{gap.problem}; the commit log no longer holds the missing records"
                ) from gap
            logger.warning("store {}: {}: re-dispatching the whole commit log", root, gap)
            rebuilt.append((gap.topic, gap.queue_id))
            reput_from = log_min

    log_end = scan.end
    truncated = 0
    if scan.problem is not None or log_end != data_end:
        _refuse_mid_log_damage(log, scan)
        doomed = sum(max(0, s.end - max(s.start, log_end)) for s in log.segments.segments)
        if doomed > settings.max_truncate_bytes:
            raise StoreError(
                settings.commitlog_dir,
                f"recovery would cut {doomed} bytes off the commit log at offset {log_end} "
                f"({scan.problem or 'end of valid data'}), more than max_truncate_bytes "
                f"{settings.max_truncate_bytes}: refusing; inspect the log, or raise the limit "
                "to accept the loss",
            )
        truncated = log.segments.truncate(log_end)
        if truncated:
            logger.warning(
                "store {}: commit log truncated at {}: {} bytes dropped ({})",
                root,
                log_end,
                truncated,
                scan.problem or "end of data",
            )

    # -- trim derived data to the log --------------------------------------------------------------
    log_min = log.min_offset
    next_offsets: dict[QueueKey, int] = {}
    for key, cq in queues.items():
        dropped = cq.truncate_past(log_end)
        if dropped:
            logger.warning("store {}: {}/{}: dropped {} entries past the log", root, *key, dropped)
        cq.correct_min_offset(log_min)
        next_offsets[key] = cq.max_offset
    index_dropped = 0
    if index is not None:
        index_dropped = index.recover(log_min, log_end)
    kept = fence_table.pruned(fences, log_min, log_end)
    if kept != saved_fences:
        fence_table.save(root, kept)
    index_rebuild = None
    if index is not None:
        index_rebuild = _fill_index_holes(settings, log, index, kept)

    # -- make it durable and mark the store open ---------------------------------------------
    if unclean:  # (what the stopped process wrote may be in the page cache only)
        log.segments.unsynced_from(scan_start)
        # the consume queues too, past what the checkpoint had them hold (its claim, written
        # below, covers their entries; the whole of each without a usable checkpoint)
        held = expected if cp is not None and scan_start == cp.safe_offset else {}
        for key, cq in queues.items():
            durable = held.get(key, 0)
            if cq.max_offset > durable:
                cq.file.unsynced_from(durable * ENTRY_SIZE)
    log.segments.flush()
    for cq in queues.values():
        cq.flush()
    if index is not None:
        index.flush()
    ckpt.save(root, make_checkpoint(log_end, log_min, next_offsets))
    create_abort(root)
    report = RecoveryReport(
        unclean,
        scan_start,
        log_end,
        truncated,
        scan.problem,
        reput_from,
        reput_records,
        sorted(set(rebuilt)),
        index_dropped,
        time.monotonic() - t0,
    )
    logger.info(
        "store {}: recovered in {:.3f}s: log [{}, {}), {} records re-dispatched from {}, "
        "{} queues, {} rebuilt",
        root,
        report.seconds,
        log_min,
        log_end,
        reput_records,
        reput_from,
        len(queues),
        len(report.queues_rebuilt),
    )
    return OpenStore(settings, lock, log, queues, index, next_offsets, report, kept, index_rebuild)


def _fill_index_holes(
    settings: StoreSettings, log: CommitLog, index: IndexService, fences: dict[str, int]
) -> IndexGapFiller | None:
    """Index again the log ranges no index file covers (a file dropped from the middle): the
    first ``INLINE_BYTES`` here, the rest (returned) by the Dispatcher in the background."""
    holes = index.holes(log.min_offset, log.write_offset)
    if not holes:
        return None
    filler = IndexGapFiller(log, index, holes, delay_levels=settings.delay_levels, fences=fences)
    logger.warning(
        "store {}: the key index does not cover {} bytes of the commit log in {} range(s) "
        "(an index file was dropped): rebuilding them from the commit log",
        settings.root,
        sum(end - start for start, end in holes),
        len(holes),
    )
    try:
        filler.step(INLINE_BYTES)
        filler.publish()
    except (OSError, StoreError) as exc:
        logger.warning("store {}: rebuilding the key index: {}", settings.root, exc)
        filler.close()
        return None
    if filler.done:
        return None
    logger.info(
        "store {}: key index: {} bytes of the log left to index in the background",
        settings.root,
        sum(end - start for start, end in filler.pending),
    )
    return filler


def make_checkpoint(safe: int, log_min: int, next_offsets: dict[QueueKey, int]) -> ckpt.Checkpoint:
    return ckpt.Checkpoint(
        safe_offset=safe,
        log_min_offset=log_min,
        timestamp=int(time.time() * 1000),
        queues=[ckpt.QueuePoint(t, q, n) for (t, q), n in sorted(next_offsets.items())],
    )


def _pass(
    settings: StoreSettings,
    fs: FileSystem,
    log: CommitLog,
    queues: dict[QueueKey, ConsumeQueue],
    index: IndexService | None,
    start: int,
    root: str,
    fences: dict[str, int],
) -> tuple[ScanResult, int]:
    """One checking pass from ``start``; ``fences`` rises with every marker met."""
    reader = LogDispatchReader(settings.delay_levels, fences)
    last_end = start

    def drain(end: int) -> None:
        batch = reader.take(end)
        for topic, _fence in batch.deleted:
            for key in [k for k in queues if k[0] == topic]:
                queues.pop(key).close()
            remove_topic_queues(root, topic)
        if batch.deleted:
            fences.update(fence_table.raised(fences, batch.deleted))
        for key, (first, raw) in batch.queues.items():
            cq = queues.get(key)
            if cq is None:
                cq = queues[key] = ConsumeQueue(
                    root, key[0], key[1], settings.cq_entries_per_file, fs
                )
            cq.append_block(first, raw)
        if index is not None:
            index.put_items(batch.index, batch.end)

    def on_record(buf: memoryview, pos: int, size: int, phys: int) -> None:
        nonlocal last_end
        reader.on_record(buf, pos, size, phys)
        last_end = phys + size
        if reader.count % _BATCH == 0:
            drain(last_end)

    scan = log.scan(start, on_record, verify_crc=True)
    drain(max(last_end, scan.end))
    return scan, reader.count


def _refuse_mid_log_damage(log: CommitLog, scan: ScanResult) -> None:
    """Raise StoreError when valid records follow the damage at ``scan.end``."""
    if scan.problem is None:
        return
    end = scan.end
    segs = log.segments
    seg = segs.segment_at(end)
    if seg is not None:
        head = log.segments.read(end, 8)
        if len(head) == 8:
            size = int.from_bytes(head[:4], "big", signed=True)
            magic = int.from_bytes(head[4:8], "big")
            if magic == R.MAGIC and R.MIN_RECORD_SIZE <= size < log.segment_size:
                nxt = log.read_record_bytes(end + size)
                if nxt is not None:
                    raise StoreError(
                        seg.file.path,
                        f"corrupt record at commit-log offset {end} ({scan.problem}) is followed "
                        "by valid records: refusing to truncate acknowledged data; restore this "
                        "segment from a replica or backup",
                    )
    for later in segs.segments:
        if later.start > end and later.file.size() > 0:
            first = log.read_record_bytes(later.start)
            blank = check_record(later.file.pread(8, 0), 0).blank
            if first is not None or blank:
                raise StoreError(
                    later.file.path,
                    f"commit log is damaged at offset {end} ({scan.problem}) but later "
                    "segments hold valid records: refusing to truncate acknowledged data",
                )
