"""Key index: find records by ``topic#KEY`` / ``topic#UNIQ_KEY`` within a time range.

The index is a series of index files (``IndexFile`` in ``runtime.store.index_file``: a
persistent hash like RocketMQ's IndexFile, in an ``mmap``). Files live under ``index/`` named
by the 20-digit commit-log offset of the first record they index; a full file is sealed and a
new one started.

``put_items``' per-key loop runs in C (``runtime.store._fastlog.index_insert``) when the
extension is built and ``ACTORMQ_PURE_PYTHON`` is not 1; the Python loop is the fallback.

The index is derived data: recovery extends/trims it against the commit log, lookups return
candidates that the caller verifies against the actual records (hash collisions, and entries
that a power loss left half-written, are filtered there), and a lost index is rebuilt by reput;
a file lost from the middle leaves a hole (``holes``) that ``runtime.store.index_rebuild`` fills.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Iterable

from loguru import logger

from runtime.errors import StoreError
from runtime.store.accel import fastlog
from runtime.store.index_file import IndexFile, key_hash
from runtime.store.record_dispatch import DispatchEntry
from runtime.store.segments import NAME_DIGITS, segment_name
from runtime.store.storage import fsync_dir

_fast_insert: Callable[..., tuple[int, int, int, int | None, int | None]] | None = getattr(
    fastlog(), "index_insert", None
)  # put_items' per-key loop in C (optional)


class IndexService:
    """All index files of a store: inserts go to the newest, lookups walk newest to oldest."""

    def __init__(self, root: str, slots: int = 5_000_000, capacity: int = 20_000_000) -> None:
        if sys.byteorder != "little":
            raise StoreError(root, "the key index needs a little-endian machine")
        self.dir = os.path.join(root, "index")
        self.slots = slots
        self.capacity = capacity
        os.makedirs(self.dir, exist_ok=True)
        self.files: list[IndexFile] = []
        self.dropped: list[int] = []
        """Start offsets of files dropped at load (corrupt) or by ``recover`` (see ``holes``)."""
        for name in sorted(os.listdir(self.dir)):
            if len(name) != NAME_DIGITS or not name.isdigit():
                continue
            path = os.path.join(self.dir, name)
            try:
                f = IndexFile(path, slots, capacity)
            except StoreError as exc:
                logger.warning("dropping corrupt index file {}: {}", path, exc.problem)
                os.remove(path)
                self.dropped.append(int(name))
                continue
            if f.begin_phys != int(name):
                logger.warning(
                    "dropping corrupt index file {}: its header says it starts at commit-log "
                    "offset {}",
                    path,
                    f.begin_phys,
                )
                f.close()
                os.remove(path)
                self.dropped.append(int(name))
                continue
            f.adopt()
            self.files.append(f)
        self._seeds: dict[str, int] = {}
        self._fast = _fast_insert  # None: the Python loop (tests set it to compare both)

    @property
    def end_phys(self) -> int | None:
        """Offset just past the last record the index covers, or None when there is no index."""
        return self.files[-1].end_phys if self.files else None

    def put_entries(self, entries: Iterable[DispatchEntry]) -> None:
        """Index dispatch entries (tests and tools); see ``put_items``."""
        items = []
        end = None
        for e in entries:
            if e.keys:
                items.append((e.topic, e.physical_offset, e.store_timestamp, e.keys))
            end = e.physical_offset + e.size
        if end is not None:
            self.put_items(items, end)

    def put_items(self, items: Iterable[tuple[str, int, int, tuple[str, ...]]], end: int) -> None:
        """Index ``(topic, physical_offset, store_timestamp, keys)`` items of records dispatched
        in commit-log order, covering the log up to ``end``. Items the index already covers are
        skipped, so re-dispatching a range is harmless."""
        cur = self.files[-1] if self.files else None
        covered = cur.end_phys if cur is not None else -1
        if end <= covered:
            return
        seeds = self._seeds
        if self._fast is not None and cur is not None:
            self._put_items_fast(cur, items if type(items) is list else list(items), end)
            return
        crc32 = zlib.crc32
        room = 0 if cur is None else cur.capacity - cur.count
        if cur is not None:
            slots, nslots = cur._slot, cur.slots
            hashes, physs, times, prevs = cur._hash, cur._phys, cur._time, cur._prev
            i = cur.count
        last_topic = None
        seed = 0
        for topic, phys, store_time, keys in items:
            if phys < covered:
                continue
            n = len(keys)
            if room < n:
                if cur is not None:
                    cur.count = i
                    cur.end_phys = phys
                    cur.commit()
                cur = self._new_file(phys)
                room = cur.capacity
                slots, nslots = cur._slot, cur.slots
                hashes, physs, times, prevs = cur._hash, cur._phys, cur._time, cur._prev
                i = 0
            if topic is not last_topic:
                seed = seeds.get(topic)
                if seed is None:
                    seed = seeds[topic] = crc32(f"{topic}#".encode())
                last_topic = topic
            if i == 0:
                cur.begin_time = store_time
            # IndexFile.put, inlined: this runs once per key of every message
            for key in keys:
                h = crc32(key.encode(), seed)
                hashes[i] = h
                physs[i] = phys
                times[i] = store_time
                slot = h % nslots
                prevs[i] = slots[slot]
                i += 1
                slots[slot] = i
            cur.end_time = store_time
            room -= n
        if cur is not None:
            cur.count = i
        if cur is None:
            cur = self._new_file(max(covered, 0))  # even without keys: the file records coverage
        cur.end_phys = end
        cur.commit()

    def _put_items_fast(self, cur: IndexFile, items: list, end: int) -> None:
        """``put_items`` with its per-key loop in C (``_fastlog.index_insert``), same effect."""
        covered = cur.end_phys
        room = cur.capacity - cur.count
        i = cur.count
        pos = 0
        fresh = False
        while True:
            pos, i, room, begin, last = self._fast(
                items,
                pos,
                covered,
                self._seeds,
                cur._slot,
                cur._hash,
                cur._phys,
                cur._time,
                cur._prev,
                i,
                room,
                fresh,
            )
            if begin is not None:
                cur.begin_time = begin
            if last is not None:
                cur.end_time = last
            if pos >= len(items):
                break
            phys = items[pos][1]  # it stopped before an item that needs a new file
            cur.count = i
            cur.end_phys = phys
            cur.commit()
            cur = self._new_file(phys)
            room = cur.capacity
            i = 0
            fresh = True
        cur.count = i
        cur.end_phys = end
        cur.commit()

    def _new_file(self, first_phys: int) -> IndexFile:
        f = IndexFile(
            os.path.join(self.dir, segment_name(first_phys)),
            self.slots,
            self.capacity,
            first_phys=first_phys,
        )
        self.files.append(f)
        fsync_dir(self.dir)
        return f

    def query(self, topic: str, key: str, max_num: int, begin: int, end: int) -> list[int]:
        """Candidate physical offsets for ``topic#key`` stored in [begin, end], newest first,
        without duplicates. Callers verify each against the record."""
        h = key_hash(topic, key)
        out: list[int] = []
        seen: set[int] = set()
        for f in reversed(self.files):
            if f.count == 0 or f.end_time < begin or f.begin_time > end:
                continue
            for phys in f.lookup(h, begin, end, max_num * 2 + 8):
                if phys not in seen:
                    seen.add(phys)
                    out.append(phys)
            if len(out) >= max_num * 2 + 8:
                break
        return out

    def recover(self, log_min: int, log_end: int) -> int:
        """Trim to the commit log: drop files past its end or below its minimum, and files
        before the newest that cover nothing (created, never committed: their range is left
        to ``holes``)."""
        dropped = 0
        for f in self.files[:-1]:
            if f.end_phys <= f.begin_phys:
                logger.warning("dropping index file {}: it covers no commit-log range", f.path)
                self.files.remove(f)
                self.dropped.append(f.begin_phys)
                dropped += f.count
                f.close()
                os.remove(f.path)
        while self.files and self.files[-1].begin_phys >= log_end:
            f = self.files.pop()
            dropped += f.count
            f.close()
            os.remove(f.path)
        for f in self.files:
            dropped += f.trim(log_end)
        self.delete_below(log_min)
        return dropped

    def holes(self, log_min: int, log_end: int) -> list[tuple[int, int]]:
        """Commit-log ranges ``[start, end)`` within ``[log_min, log_end)`` that no file covers
        although a later file does: left by a file dropped from the middle (a corrupt one).
        The files cover the log back to back otherwise (a full file ends where the next one
        begins); before the first file only a dropped file's range is a hole (the first file
        starts at the first record with keys). ``runtime.store.index_rebuild`` indexes them
        again."""
        out: list[tuple[int, int]] = []
        first = self.files[0].begin_phys if self.files else None
        before = [s for s in self.dropped if first is not None and s < first]
        covered = min(before) if before else None
        for f in self.files:
            if covered is not None:
                start, end = max(covered, log_min), min(f.begin_phys, log_end)
                if start < end:
                    out.append((start, end))
            covered = f.end_phys if covered is None else max(covered, f.end_phys)
        return out

    def delete_below(self, log_min: int) -> int:
        """Delete files whose every record lies below the commit log's minimum."""
        deleted = 0
        while len(self.files) > 1 and self.files[0].end_phys <= log_min:
            f = self.files.pop(0)
            f.close()
            os.remove(f.path)
            deleted += 1
        if deleted:
            fsync_dir(self.dir)
        return deleted

    def flush(self) -> None:
        """Make the index durable: fsync every file written since the last flush (a file that
        filled up between two checkpoints too, and headers that ``recover`` rewrote). Runs in
        a worker thread at checkpoints (``runtime.actor.offload``) while the hub goes on
        inserting; what it commits meanwhile is left for the next flush."""
        for f in self.files[:]:
            f.flush()

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files.clear()
