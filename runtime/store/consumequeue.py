"""Consume queue: fixed 20-byte entries per (topic, queueId); logical offset = entry index.

Entry: commit-log offset int64, size int32, tagsCode int64 (big-endian). Files live under
``consumequeue/<topic>/<queueId>/`` named by their 20-digit start *byte* offset, each
``entries_per_file * 20`` bytes (300,000 entries in RocketMQ). A queue rebuilt after the commit
log's head was deleted starts at a non-zero logical offset: like RocketMQ, the first file is
padded with blank entries (offset 0, size 0x7FFFFFFF) up to it.

Appends are idempotent: an entry whose queue offset the queue already holds is skipped (after
checking it points at the same record), so re-dispatching a range after a crash or an actor
restart is harmless. A gap (an entry beyond the end) raises ``QueueGap``.

Segments on the real file system are ``runtime.store.fd_cache.PooledFile``s: thousands of
queues do not hold a descriptor each.
"""

from __future__ import annotations

import bisect
import errno
import os
import shutil
import struct
from collections.abc import Iterable
from typing import NamedTuple

from loguru import logger

from runtime.errors import StoreError
from runtime.store.fd_cache import for_consume_queues
from runtime.store.segments import SegmentedFile
from runtime.store.storage import OS_FS, FileSystem

ENTRY = struct.Struct(">qiq")
ENTRY_SIZE = ENTRY.size
assert ENTRY_SIZE == 20
BLANK_SIZE_FIELD = 0x7FFFFFFF
BLANK_ENTRY = ENTRY.pack(0, BLANK_SIZE_FIELD, 0)
TRANSIENT_READ = frozenset(
    {errno.EAGAIN, errno.ENOMEM, errno.ENOBUFS, errno.EMFILE, errno.ENFILE, errno.EBADF}
)
"""Read errors that say nothing about the bytes (out of memory or descriptors; EBADF: a file
the closing store closed): raised, the next read tries again. Any other ``OSError`` (EIO: a bad
sector) means the bytes cannot be read."""
READ_PAGE = 4096
"""``read_around``'s unit: what the kernel reads (and fails to read) at once."""
TAIL_CACHE_ENTRIES = 128
"""The last 128 (to 256) entries stay in memory: a consumer that keeps up (within four pulls of
32) reads them without a ``pread`` (``SegmentedFile``'s ``tail_cache``; 5 KiB per queue at most,
so 40 MiB for 8,000 busy queues)."""


class CqEntry(NamedTuple):
    physical_offset: int
    size: int
    tags_code: int


class QueueGap(StoreError):
    """An entry arrived beyond the end of the queue: entries before it are missing."""

    def __init__(self, topic: str, queue_id: int, expected: int, got: int) -> None:
        self.topic, self.queue_id, self.expected, self.got = topic, queue_id, expected, got
        super().__init__(
            f"consumequeue/{topic}/{queue_id}", f"expected queue offset {expected}, got {got}"
        )


def _same_entries(mine: bytes, theirs: bytes | bytearray, count: int) -> int:
    """How many of the first ``count`` entries of ``mine`` and ``theirs`` are the same, from the
    first on."""
    size = count * ENTRY_SIZE
    if len(mine) >= size and mine[:size] == theirs[:size]:
        return count
    for i in range(min(count, len(mine) // ENTRY_SIZE)):
        at = i * ENTRY_SIZE
        if mine[at : at + ENTRY_SIZE] != theirs[at : at + ENTRY_SIZE]:
            return i
    return min(count, len(mine) // ENTRY_SIZE)


def queue_dir(root: str, topic: str, queue_id: int) -> str:
    return os.path.join(root, "consumequeue", topic, str(queue_id))


def remove_topic_queues(root: str, topic: str) -> None:
    """Delete every consume-queue file of ``topic`` (a deleted topic; its queues are closed)."""
    shutil.rmtree(os.path.join(root, "consumequeue", topic), ignore_errors=True)


def list_queues(root: str) -> list[tuple[str, int]]:
    """Every (topic, queueId) with a directory under ``consumequeue/``."""
    base = os.path.join(root, "consumequeue")
    out = []
    if not os.path.isdir(base):
        return out
    for topic in sorted(os.listdir(base)):
        tdir = os.path.join(base, topic)
        if not os.path.isdir(tdir):
            continue
        for q in os.listdir(tdir):
            if q.isdigit() and os.path.isdir(os.path.join(tdir, q)):
                out.append((topic, int(q)))
    return out


class ConsumeQueue:
    """One consume queue's files. Single writer (the Queue actor); see the module docstring."""

    def __init__(
        self,
        root: str,
        topic: str,
        queue_id: int,
        entries_per_file: int = 300_000,
        fs: FileSystem = OS_FS,
    ) -> None:
        self.topic = topic
        self.queue_id = queue_id
        self.file = SegmentedFile(
            queue_dir(root, topic, queue_id),
            entries_per_file * ENTRY_SIZE,
            for_consume_queues(fs),
            tail_cache=TAIL_CACHE_ENTRIES * ENTRY_SIZE,
        )
        torn = self.file.write_offset % ENTRY_SIZE
        if torn:
            self.file.truncate(self.file.write_offset - torn)
        self.min_offset = self.file.min_offset // ENTRY_SIZE
        self._skip_leading_blanks()

    # -- geometry ----------------------------------------------------------------------------------

    @property
    def max_offset(self) -> int:
        """Logical offset of the next entry (= number of entries, counting the padding)."""
        return self.file.write_offset // ENTRY_SIZE

    def __len__(self) -> int:
        return self.max_offset - self.min_offset

    # -- writing -----------------------------------------------------------------------------------

    def append(self, entries: Iterable[tuple[int, int, int, int]]) -> int:
        """Append ``(queue_offset, physical_offset, size, tags_code)`` entries with contiguous
        queue offsets (see ``append_block``). Returns how many were new."""
        first = None
        buf = bytearray()
        for qoff, phys, size, tags in entries:
            if first is None:
                first = qoff
            elif qoff != first + len(buf) // ENTRY_SIZE:
                raise AssertionError("queue offsets in one append must be contiguous")
            buf += ENTRY.pack(phys, size, tags)
        return 0 if first is None else self.append_block(first, buf)

    def append_block(self, first: int, raw: bytes | bytearray) -> int:
        """Append packed entries for queue offsets ``first ..``. Returns how many were new.

        Entries the queue already holds are skipped after checking that every one of them is
        the same (a power loss may have zeroed some pages of a file whose length survived);
        from the first that differs the queue is truncated and rewritten (the commit log is the
        truth); a block starting past the end raises ``QueueGap`` — except on an empty queue,
        which then starts at ``first`` (its head was deleted by retention).
        """
        top = self.max_offset
        if first > top:
            if self.file.segments or top != self.min_offset:
                raise QueueGap(self.topic, self.queue_id, top, first)
            self._start_at(first)
            top = first
        if first < top:
            end = first + min(top - first, len(raw) // ENTRY_SIZE)  # past the held overlap
            lo = max(first, self.min_offset)  # (entries below the queue's start are not read)
            keep = first  # the first entry to write
            if lo < end:
                mine = self.read_raw(lo, end - lo)
                keep = lo + _same_entries(mine, raw[(lo - first) * ENTRY_SIZE :], end - lo)
            if keep < end:
                self.truncate_logical(keep)
                if self.max_offset != keep:  # truncated below the queue's start
                    self._start_at(keep)
            raw = raw[(keep - first) * ENTRY_SIZE :]
        if raw:
            self.file.append(raw)
        return len(raw) // ENTRY_SIZE

    def _write(self, buf: bytearray) -> None:
        if buf:
            self.file.append(buf)

    def _start_at(self, qoff: int) -> None:
        """An empty queue that starts at ``qoff``: pad its first file with blank entries."""
        byte_off = qoff * ENTRY_SIZE
        seg_start = self.file.segment_start(byte_off)
        self.file.reset_to(seg_start)
        pad = (byte_off - seg_start) // ENTRY_SIZE
        if pad:
            self.file.append(BLANK_ENTRY * pad)
        self.min_offset = qoff

    def truncate_logical(self, qoff: int) -> None:
        """Drop the entries at and after logical offset ``qoff``."""
        self.file.truncate(max(qoff, 0) * ENTRY_SIZE)
        if self.max_offset < self.min_offset or not self.file.segments:
            self.min_offset = self.max_offset

    def truncate_past(self, log_end: int) -> int:
        """Drop entries pointing at or past ``log_end`` (a truncated commit log), and a tail of
        zero-filled entries (size 0: no record has it; a file whose new length survived a power
        loss but not its data reads as zeros there); returns count. An entry the file system
        cannot read counts as kept (the log's end is near the queue's end: a bad page is most
        likely below it), with a WARNING: recovery does not fail on it."""
        hi = self.max_offset
        lo = self.min_offset
        unreadable: OSError | None = None
        # entries are sorted by physical offset: find the first whose record ends past log_end
        while lo < hi:
            mid = (lo + hi) // 2
            e = self.probe(mid)
            if isinstance(e, OSError):  # kept: the log's end is near the queue's, rarely in it
                unreadable = unreadable or e
                lo = mid + 1
            elif e is None or (e.size > 0 and e.physical_offset + e.size <= log_end):
                lo = mid + 1
            else:
                hi = mid
        if unreadable is not None:
            self._warn_unreadable(f"truncating past log offset {log_end}", unreadable)
        dropped = self.max_offset - lo
        if dropped:
            self.truncate_logical(lo)
        return dropped

    # -- reading -----------------------------------------------------------------------------------

    def read_raw(self, start: int, count: int) -> bytes:
        """Raw entries ``[start, start+count)`` clipped to what exists (may span files)."""
        start = max(start, self.min_offset)
        end = min(start + count, self.max_offset)
        if end <= start:
            return b""
        out = b""
        pos = start * ENTRY_SIZE
        stop = end * ENTRY_SIZE
        while pos < stop:
            chunk = self.file.read(pos, stop - pos)
            if not chunk:
                break
            out += chunk
            pos += len(chunk)
        return out[: len(out) - len(out) % ENTRY_SIZE]

    def read_around(self, start: int, count: int) -> tuple[bytes, int, OSError | None]:
        """``read_raw`` for a range the file system failed to read: read again a page at a time
        (``READ_PAGE`` bytes of the file: a page the kernel cannot read fails whole).

        Returns ``(raw, resume, error)``: the whole entries from ``start`` before the first page
        that cannot be read (b"" when the entry at ``start`` touches it), the queue offset past
        the entries that page touches (also those past ``count``: where a reader goes on), and
        its error; ``(raw, end, None)`` when every page could be read."""
        start = max(start, self.min_offset)
        end = min(start + count, self.max_offset)
        out = bytearray()
        pos = start * ENTRY_SIZE
        stop = end * ENTRY_SIZE
        while pos < stop:
            seg = self.file.segment_start(pos)
            page_end = min(
                seg + ((pos - seg) // READ_PAGE + 1) * READ_PAGE, seg + self.file.segment_size
            )
            try:
                chunk = self.file.read(pos, min(page_end, stop) - pos)
            except OSError as exc:  # (the page's entries past ``stop`` cannot be read either)
                whole = len(out) - len(out) % ENTRY_SIZE
                resume = min(-(-page_end // ENTRY_SIZE), self.max_offset)
                return bytes(out[:whole]), resume, exc
            if not chunk:
                break
            out += chunk
            pos += len(chunk)
        return bytes(out[: len(out) - len(out) % ENTRY_SIZE]), end, None

    def probe(self, qoff: int) -> CqEntry | OSError | None:
        """``entry`` for a search: the error, not raised, when the file system cannot read it
        (EIO: a bad sector); a transient one (``TRANSIENT_READ``) is raised."""
        try:
            return self.entry(qoff)
        except OSError as exc:
            if exc.errno in TRANSIENT_READ:
                raise
            return exc

    def _warn_unreadable(self, doing: str, error: OSError) -> None:
        logger.warning(
            "consumequeue/{}/{}: {}: entries that could not be read ({}) were taken to be on "
            "the likelier side of the search",
            self.topic,
            self.queue_id,
            doing,
            error,
        )

    def entry(self, qoff: int) -> CqEntry | None:
        if qoff < self.min_offset or qoff >= self.max_offset:
            return None
        raw = self.file.read(qoff * ENTRY_SIZE, ENTRY_SIZE)
        if len(raw) < ENTRY_SIZE:
            return None
        e = CqEntry(*ENTRY.unpack(raw))
        return None if e.size == BLANK_SIZE_FIELD else e

    def entries(self, start: int, count: int) -> list[CqEntry]:
        return [CqEntry(*t) for t in ENTRY.iter_unpack(self.read_raw(start, count))]

    def last_entry(self) -> CqEntry | None:
        return self.entry(self.max_offset - 1) if self.max_offset > self.min_offset else None

    def first_offset_at_or_after_phys(self, phys: int) -> int:
        """Smallest logical offset whose entry points at or after ``phys`` (binary search).

        An entry the file system cannot read counts as at or after ``phys`` (``phys`` is the
        log's minimum, near the queue's start: the answer is then never too high, so no
        readable entry is hidden), with a WARNING."""
        offsets = range(self.min_offset, self.max_offset)
        unreadable: list[OSError] = []

        def key(q: int) -> int:
            e = self.probe(q)
            if isinstance(e, OSError):
                unreadable.append(e)
                return phys
            return -1 if e is None else e.physical_offset

        i = bisect.bisect_left(offsets, phys, key=key)
        if unreadable:
            self._warn_unreadable(f"looking for log offset {phys}", unreadable[0])
        return self.min_offset + i

    # -- retention ---------------------------------------------------------------------------------

    def _skip_leading_blanks(self) -> None:
        while self.min_offset < self.max_offset:
            try:
                raw = self.file.read(self.min_offset * ENTRY_SIZE, ENTRY_SIZE)
            except OSError as exc:  # (not known to be padding: a Queue's read skips it)
                if exc.errno in TRANSIENT_READ:
                    raise
                self._warn_unreadable("skipping leading blank entries", exc)
                break
            if len(raw) == ENTRY_SIZE and ENTRY.unpack(raw)[1] == BLANK_SIZE_FIELD:
                self.min_offset += 1
            else:
                break

    def correct_min_offset(self, log_min: int) -> None:
        """Advance ``min_offset`` past entries that point below the commit log's minimum."""
        self.min_offset = max(self.min_offset, self.first_offset_at_or_after_phys(log_min))

    def delete_files_below(self, log_min: int) -> int:
        """Delete whole files whose entries all point below ``log_min``; returns files deleted."""
        deleted = 0
        seg_size = self.file.segment_size
        try:
            while len(self.file.segments) > 1:
                first = self.file.segments[0]
                raw = self.file.read(first.start + seg_size - ENTRY_SIZE, ENTRY_SIZE)
                if len(raw) < ENTRY_SIZE:
                    break
                phys, size, _tags = ENTRY.unpack(raw)
                if size != BLANK_SIZE_FIELD and phys >= log_min:
                    break
                seg = self.file.delete_first()
                if seg is not None:
                    # the Queue actor is the file's only user: close it, else the descriptor
                    # cache keeps the deleted file (its disk space) open until it evicts it
                    seg.file.close()
                deleted += 1
        finally:  # (also when a removal failed: the file left the queue all the same)
            self.min_offset = max(self.min_offset, self.file.min_offset // ENTRY_SIZE)
        self.correct_min_offset(log_min)
        return deleted

    # -- durability --------------------------------------------------------------------------------

    def flush(self) -> None:
        self.file.flush()

    def release_descriptors(self) -> None:
        """Close its open descriptors until the next use (an idle queue's: ``Queue``'s
        ``RetireIfIdle``)."""
        self.file.release_descriptors()

    def close(self) -> None:
        self.file.close()
