"""Raw commit-log bytes for replication (used only by HA).

- ``read_raw`` (master): whole records starting at an offset, up to the committed end, never
  across a segment end; an end-of-segment marker travels like any record, so the slave's
  segment files come out byte-identical.
- ``append_raw`` (slave, called by the CommitLogWriter): check every record (magic, lengths,
  CRC, that its physicalOffset field is where it lands), write, and build the dispatch batch
  so the slave fills its own consume queues and index and knows its next queue offsets.
- ``truncate_log`` (slave start only, before recovery): cut the commit log at an offset, so
  recovery trims the consume queues and index to match and restores next offsets; or start
  an empty one at its master's first segment.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
from typing import NamedTuple

import msgspec
from loguru import logger

from runtime.errors import StoreError
from runtime.store import checkpoint as ckpt
from runtime.store import record as R
from runtime.store.commitlog import CommitLog
from runtime.store.commitlog_reads import _MAX_HEADER, _plausible
from runtime.store.consumequeue import ENTRY_SIZE
from runtime.store.dispatch import DispatchBatch, LogDispatchReader
from runtime.store.lockfile import StoreLock
from runtime.store.record_check import check_record
from runtime.store.segments import SegmentedFile
from runtime.store.settings import StoreSettings
from runtime.store.storage import OS_FS, FileSystem

_PHYS = struct.Struct(">q")
_PHYS_AT = 28  # physicalOffset field of a record


class RawRefused(Exception):
    """The bytes cannot be appended here (wrong offset, not valid records); nothing written."""


class RawDamaged(StoreError):
    """``read_raw`` met a damaged record (its size field disagrees with its other fields, or
    runs past its segment): it is not sent, and replication cannot go past it."""

    def __init__(self, offset: int, problem: str) -> None:
        self.offset = offset
        super().__init__(
            "commitlog", f"the record at offset {offset} is damaged ({problem}): not replicated"
        )


class RawWrite(NamedTuple):
    begin: int
    end: int  # the write offset after the append
    batch: DispatchBatch
    next_offsets: dict[tuple[str, int], int]  # per queue: next queue offset after these records
    records: int


class RawRead(NamedTuple):
    data: bytes
    next: int  # where the next read starts (the next segment after an end-of-segment marker)


def read_raw(log: CommitLog, offset: int, max_bytes: int, limit: int) -> RawRead:
    """Whole records (or an end-of-segment marker) at ``offset``, below ``limit``.

    At most ``max_bytes`` unless the first record alone is larger (it then comes whole).
    Empty data when nothing whole is there yet, or when no record starts at ``offset`` (no
    magic: a caller's offset that is not a record boundary). ``limit`` is the committed end
    (the write offset). ``next`` is where the following read starts.

    A damaged record is not sent: a first record longer than the read is read whole only when
    its header agrees with its size and it fits its segment (``_whole_record``), and the last
    record of a read, or one the next does not follow (no magic where it ends), must pass
    ``check_record`` (lengths; the slave checks CRCs). The records before a damaged one are
    returned; a read that starts at it raises ``RawDamaged``.
    """
    segs = log.segments
    seg = segs.segment_at(offset)
    if seg is None or offset >= limit:
        return RawRead(b"", offset)
    seg_end = seg.start + segs.segment_size
    want = min(max(max_bytes, R.BLANK_SIZE), limit - offset, seg_end - offset)
    head = segs.read(offset, want)
    pos = 0
    last = -1  # where the last record taken starts
    n = len(head)
    while pos + 8 <= n:
        size, magic = R.SIZE_MAGIC.unpack_from(head, pos)
        if magic == R.BLANK_MAGIC:
            if last < 0 or _sound(head, last, pos):
                return RawRead(head[: pos + R.BLANK_SIZE], seg_end)
            break
        if magic != R.MAGIC or size < R.MIN_RECORD_SIZE:
            if pos == 0 and magic == R.MAGIC:
                raise RawDamaged(offset, f"totalSize {size} below the minimum")
            break  # not a record boundary: the caller's offset is wrong, or the last is damaged
        if pos + size > n:
            if pos == 0:
                return _whole_record(log, offset, size, head, limit)
            break
        last = pos
        pos += size
    if last >= 0 and not _sound(head, last, pos):
        if last == 0:
            problem = check_record(head[:pos], 0, verify_crc=False).problem
            raise RawDamaged(offset, problem or f"totalSize {pos} disagrees with its fields")
        pos = last  # sent up to it; the next read starts at it, and raises
    return RawRead(head[:pos], offset + pos)


def _sound(head: bytes, start: int, end: int) -> bool:
    """Whether ``head[start:end]`` is one record whose length fields add up."""
    return check_record(head[start:end], 0, verify_crc=False).size == end - start


def _whole_record(log: CommitLog, offset: int, size: int, head: bytes, limit: int) -> RawRead:
    """The record at ``offset`` that ``head`` (its first bytes) does not hold whole: read whole
    only when it ends within its segment (leaving room for the end-of-segment marker) and its
    header's body length agrees with ``size`` (as recovery's scan decides,
    ``commitlog_reads._window_for``), so a flipped bit in a size field makes no read of up to a
    whole segment, sent as a record. Empty while it is not written whole (past ``limit``);
    ``RawDamaged`` when it is damaged."""
    if offset + size > log.segments.segment_end(offset) - R.BLANK_SIZE:
        raise RawDamaged(offset, f"totalSize {size} runs past its segment")
    if len(head) < _MAX_HEADER:
        head = log.segments.read(offset, _MAX_HEADER)
    if not _plausible(head, size):
        raise RawDamaged(offset, f"totalSize {size} disagrees with the record's body length")
    if offset + size > limit:
        return RawRead(b"", offset)
    whole = log.segments.read(offset, size)
    if len(whole) < size:
        return RawRead(b"", offset)
    if not _sound(whole, 0, size):
        problem = check_record(whole, 0, verify_crc=False).problem
        raise RawDamaged(offset, problem or f"totalSize {size} disagrees with its fields")
    return RawRead(whole, offset + size)


def append_raw(log: CommitLog, offset: int, data: bytes, delay_levels: tuple[int, ...]) -> RawWrite:
    """Validate ``data`` as whole records landing at ``offset`` and write them (one write).

    Raises RawRefused (nothing written) or OSError from the write (the caller truncates back to
    ``begin``, as for any failed append).
    """
    begin = log.write_offset
    if offset != begin:
        raise RawRefused(f"data at {offset}, but the log ends at {begin}")
    seg_size = log.segment_size
    seg_end = begin - begin % seg_size + seg_size
    view = memoryview(data)
    reader = LogDispatchReader(delay_levels)
    pos = 0
    blank = False
    n = len(view)
    if not n:
        raise RawRefused("no data")
    while pos < n:
        check = check_record(view, pos, verify_crc=True)
        if check.blank:
            if pos + R.BLANK_SIZE != n or begin + pos + check.size != seg_end:
                raise RawRefused(f"end-of-segment marker at {begin + pos} is misplaced")
            blank = True
            pos = n
            break
        if check.size <= 0:
            raise RawRefused(f"no valid record at {begin + pos}: {check.problem or 'no data'}")
        (phys,) = _PHYS.unpack_from(view, pos + _PHYS_AT)
        if phys != begin + pos:
            raise RawRefused(f"record at {begin + pos} says it belongs at {phys}")
        if begin + pos + check.size + R.BLANK_SIZE > seg_end:
            raise RawRefused(f"record at {begin + pos} would cross the segment end")
        reader.on_record(view, pos, check.size, begin + pos)
        pos += check.size
    log.segments.append(view)
    if blank:
        log.segments.skip_to_next_segment()
    end = log.write_offset
    batch = reader.take(end)
    nexts = {key: first + len(raw) // ENTRY_SIZE for key, (first, raw) in batch.queues.items()}
    return RawWrite(begin, end, batch, nexts, reader.count)


def truncate_log(settings: StoreSettings, offset: int, fs: FileSystem = OS_FS) -> int:
    """Cut the (closed) store's commit log at ``offset``; returns the bytes dropped.

    Takes the store lock for the duration (StoreError if the store is open elsewhere). The
    checkpoint is moved back to ``offset`` when it points further, so recovery scans from there
    and drops consume-queue and index entries past the new end.

    A log that holds no bytes asked to end further on starts there instead (``offset`` is a
    segment start: an empty slave of a master whose log no longer starts at 0 begins at the
    master's first segment), with a checkpoint there; its consume queues and index (of records
    it no longer holds) are removed.
    """
    lock = StoreLock(settings.root)
    try:
        segs = SegmentedFile(settings.commitlog_dir, settings.commitlog_segment_size, fs)
        started = offset > segs.write_offset == segs.min_offset
        try:
            if started:
                segs.start_empty_at(offset)
            dropped = segs.truncate(offset) if offset < segs.write_offset else 0
            segs.flush()
        finally:
            segs.close()
        if started:
            # consume queues and index entries of an empty log point at nothing: gone (a
            # queue's padded first file would otherwise refuse the first records there)
            for derived in ("consumequeue", "index"):
                shutil.rmtree(os.path.join(settings.root, derived), ignore_errors=True)
            ckpt.save(settings.root, ckpt.Checkpoint(offset, offset, int(time.time() * 1000)))
            logger.info(
                "store {}: the empty commit log starts at {} for replication", settings.root, offset
            )
            return 0
        cp = ckpt.load(settings.root)
        if cp is not None and cp.safe_offset > offset:
            moved = msgspec.structs.replace(
                cp, safe_offset=offset, log_min_offset=min(cp.log_min_offset, offset)
            )
            ckpt.save(settings.root, moved)
        if dropped:
            logger.warning(
                "store {}: commit log cut at {} for replication: {} bytes dropped",
                settings.root,
                offset,
                dropped,
            )
        return dropped
    finally:
        lock.release()
