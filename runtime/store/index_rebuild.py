"""Rebuilding the key index over commit-log ranges that no index file covers any more.

The index files of a store cover the commit log back to back (a full file ends where the next
begins). A file dropped from the middle (a corrupt header, a file removed by hand) leaves a
hole: the records in it could not be found by key any more, and the ordinary re-dispatch at
recovery only extends the newest file. ``IndexService.holes`` finds those ranges;
``IndexGapFiller`` indexes them again from the commit log, into files of their own named by
the hole's start (so the files stay back to back), in steps of a bounded number of log bytes:
recovery runs the first ``INLINE_BYTES``, the Dispatcher the rest in the hub's thread pool
(``STEP_BYTES`` at a time, so the broker starts and serves meanwhile).

``step`` may run in a worker thread: the files it writes are the filler's alone until
``publish`` (run by the index's owner) puts them into ``IndexService.files``; a step after
that only appends to the file being built (readers see whole entries: an entry is written
before the count that makes it visible). A crash mid-way leaves a file that covers part of the
hole, committed batch by batch: the next start finds the rest as a smaller hole.
"""

from __future__ import annotations

import bisect
import os
import threading

from loguru import logger

from runtime.errors import StoreError
from runtime.store.commitlog import CommitLog
from runtime.store.dispatch import LogDispatchReader
from runtime.store.index import IndexService
from runtime.store.index_file import IndexFile, key_hash
from runtime.store.record_properties import DEFAULT_DELAY_LEVELS
from runtime.store.segments import segment_name
from runtime.store.storage import fsync_dir

INLINE_BYTES = 256 * 1024 * 1024
"""Log bytes recovery indexes itself before it leaves the rest to the Dispatcher."""
STEP_BYTES = 32 * 1024 * 1024
"""Log bytes one background step indexes."""
_BATCH = 4096  # records between two commits of the file being built


class IndexGapFiller:
    """Indexes the holes ``[start, end)`` of ``index`` from ``log`` (see the module docstring)."""

    def __init__(
        self,
        log: CommitLog,
        index: IndexService,
        holes: list[tuple[int, int]],
        *,
        delay_levels: tuple[int, ...] = DEFAULT_DELAY_LEVELS,
        fences: dict[str, int] | None = None,
    ) -> None:
        self.log = log
        self.index = index
        self.pending = list(holes)
        self.indexed_bytes = 0
        self._levels = delay_levels
        self._fences = dict(fences or {})
        self._cur: IndexFile | None = None
        self._built: list[IndexFile] = []
        self._lock = threading.Lock()
        self._closing = False

    @property
    def done(self) -> bool:
        return not self.pending

    def step(self, budget: int) -> bool:
        """Index about ``budget`` bytes of the holes (a whole record past it at most).
        False when another step is running or the filler is closed (nothing done)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            while self.pending and budget > 0 and not self._closing:
                start, end = self.pending[0]
                if self._cur is None:
                    self._new_file(start)  # the hole's first file covers it from its start
                try:
                    reached = self._index(start, min(end, start + budget), end)
                except _Closing:
                    break
                budget -= reached - start
                self.indexed_bytes += reached - start
                if reached >= end:
                    self._close_hole(end)
                else:
                    self.pending[0] = (reached, end)
            return True
        finally:
            self._lock.release()

    def publish(self) -> int:
        """Put the files built so far into the index (by its owner: recovery, the Dispatcher's
        greenlet). Returns how many (0 while a step runs)."""
        if not self._lock.acquire(blocking=False):
            return 0
        try:
            built, self._built = self._built, []
            for f in built:
                bisect.insort(self.index.files, f, key=lambda g: g.begin_phys)
            return len(built)
        finally:
            self._lock.release()

    def close(self) -> None:
        """Stop: a running step ends at its next batch (this waits for it); the files built and
        not published are closed (what they committed is found again as a smaller hole)."""
        self._closing = True
        with self._lock:
            for f in self._built:
                f.close()
            self._built.clear()
            self._cur = None

    # -- one range -----------------------------------------------------------------------------

    def _index(self, start: int, stop: int, end: int) -> int:
        """Index the records from ``start`` to the first record boundary at or past ``stop``;
        returns that boundary (``end`` when the log has no more valid records there)."""
        reader = LogDispatchReader(self._levels, self._fences)

        def on_record(buf: memoryview, pos: int, size: int, phys: int) -> None:
            reader.on_record(buf, pos, size, phys)
            if reader.count % _BATCH == 0:
                self._put(reader.take(phys + size).index, phys + size)
                if self._closing:
                    raise _Closing

        scan = self.log.scan(start, on_record, verify_crc=True, stop_at=stop)
        reached = scan.end
        if scan.problem is not None or reached < stop:
            logger.warning(
                "store {}: rebuilding the key index over [{}, {}): the commit log has no valid "
                "records from {} ({}); the rest of that range stays unindexed",
                self.index.dir,
                start,
                end,
                reached,
                scan.problem or "end of data",
            )
            reached = end
        self._put(reader.take(min(reached, end)).index, min(reached, end))
        return reached

    def _put(self, items: list[tuple[str, int, int, tuple[str, ...]]], end: int) -> None:
        cur = self._cur
        assert cur is not None
        for topic, phys, store_time, keys in items:
            if cur.capacity - cur.count < len(keys):
                cur = self._new_file(phys)
            for key in keys:
                cur.put(key_hash(topic, key), phys, store_time)
        cur.end_phys = max(cur.end_phys, end)
        cur.commit()

    def _new_file(self, start: int) -> IndexFile:
        """A file indexing from ``start`` on; the one before is sealed there."""
        prev = self._cur
        if prev is not None:
            prev.end_phys = start
            prev.commit()
        path = os.path.join(self.index.dir, segment_name(start))
        if os.path.exists(path):
            raise StoreError(path, "an index file for a range the index does not cover exists")
        f = IndexFile(path, self.index.slots, self.index.capacity, first_phys=start)
        fsync_dir(self.index.dir)
        self._cur = f
        self._built.append(f)
        return f

    def _close_hole(self, end: int) -> None:
        if self._cur is not None:
            self._cur.end_phys = end
            self._cur.commit()
        self._cur = None
        self.pending.pop(0)


class _Closing(Exception):
    """``close`` asked a running step to stop (raised from the scan's callback)."""
