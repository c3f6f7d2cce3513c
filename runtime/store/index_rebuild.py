"""Rebuilding the key index over commit-log ranges that no index file covers any more.

The index files of a store cover the commit log back to back (a full file ends where the next
begins). A file dropped from the middle (a corrupt header, a file removed by hand) leaves a
hole: the records in it could not be found by key any more, and the ordinary re-dispatch at
recovery only extends the newest file. ``IndexService.holes`` finds those ranges;
``IndexGapFiller`` indexes them again from the commit log, into files of their own named by
the hole's start (so the files stay back to back), in steps of a bounded number of log bytes:
recovery runs the first ``INLINE_BYTES``, the Dispatcher the rest in the hub's thread pool
(``STEP_BYTES`` at a time, so the broker starts and serves meanwhile; ``run_step``).

A background step is paced by the hub (``run_step``): the scan is CPU-bound Python, and a
worker thread that keeps the GIL makes the hub wait for it at every system call it makes
(up to the 5 ms switch interval each time: a sync send's p90 went from 0.35 to 7 - 9 ms,
docs/benchmarks.md "Key index rebuild"). Every ``SLICE_RECORDS`` records the worker waits,
the GIL released, until the hub's loop is idle (nothing else ready to run) or
``IDLE_WAIT_S`` passed: the rebuild uses the time the broker leaves, a request waits for at
most one slice.

``step`` may run in a worker thread: the files it writes are the filler's alone until
``publish`` (run by the index's owner) puts them into ``IndexService.files``; a step after
that only appends to the file being built (readers see whole entries: an entry is written
before the count that makes it visible). A crash mid-way leaves a file that covers part of the
hole, committed batch by batch: the next start finds the rest as a smaller hole.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading

import gevent
from gevent import monkey
from loguru import logger

from runtime.actor import offload
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
SLICE_RECORDS = 64
"""Records a background step indexes between two waits for the hub (~1 ms of CPU)."""
IDLE_WAIT_S = 0.02
"""Longest wait for an idle hub: a broker busy without pause still lets the rebuild on."""
_real_lock = monkey.get_original("_thread", "allocate_lock")


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
        self.gate: _IdleGate | None = None
        """What a step waits on every ``SLICE_RECORDS`` records (``run_step`` sets it)."""

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
        gate = self.gate
        if gate is not None:
            gate.close()  # (a step waiting for the hub goes on: this hub waits for the lock)
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
        pace = None if self.gate is None else self.gate.wait

        def on_record(buf: memoryview, pos: int, size: int, phys: int) -> None:
            reader.on_record(buf, pos, size, phys)
            if pace is not None and reader.count % SLICE_RECORDS == 0:
                pace()
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
        pace = None if self.gate is None else self.gate.wait
        for n, (topic, phys, store_time, keys) in enumerate(items, 1):
            if pace is not None and n % SLICE_RECORDS == 0:
                pace()  # (4096 records' keys are a dozen ms of inserts)
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


def run_step(filler: IndexGapFiller, budget: int | None = None) -> bool:
    """On the hub: one ``filler.step`` of ``budget`` (``STEP_BYTES``) in the thread pool,
    paced by the hub (see the module docstring). Returns what ``step`` returns."""
    gate = filler.gate = _IdleGate()
    try:
        return offload(filler.step, STEP_BYTES if budget is None else budget)
    finally:
        filler.gate = None
        gate.close()


class _IdleGate:
    """Lets a worker thread go on only once the hub's loop is idle (or ``IDLE_WAIT_S``)."""

    def __init__(self) -> None:
        self._loop = gevent.get_hub().loop
        self._grant = _real_lock()  # a real lock: the worker blocks on it, the GIL released
        self._grant.acquire()
        self._closed = False

    def wait(self) -> None:
        """In the worker: ask the hub, block until it grants (at once once closed)."""
        if self._closed:
            return
        self._loop.run_callback_threadsafe(gevent.spawn, self._grant_when_idle)
        self._grant.acquire()

    def close(self) -> None:
        """On the hub: let the worker go on without waiting any more."""
        self._closed = True
        self._release()

    def _grant_when_idle(self) -> None:
        with gevent.Timeout(IDLE_WAIT_S, False):
            gevent.idle()
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(RuntimeError):  # (already released: closed meanwhile)
            self._grant.release()


class _Closing(Exception):
    """``close`` asked a running step to stop (raised from the scan's callback)."""
