"""File-system errors on the store's write path that must not stop the broker (store review,
session 32): a commit-log segment retention cannot remove, a write over the disk quota, an
fsync that stalls under ASYNC_FLUSH while something waits for it, a record the disk cannot
read. Injected through the FaultyFileSystem."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent import monkey

from actors.broker import commitlog_writer
from actors.broker.messages import AwaitFlush, DeleteSegments, SegmentsDeleted
from actors.broker.raw_append import RawCompletion
from actors.broker.store_results import GetStatus, PutStatus
from runtime.actor import new_future
from runtime.errors import StoreError
from runtime.store.faults import FaultyFileSystem
from runtime.store.lockfile import StoreLock
from runtime.store.segments import segment_name
from tests.actors.test_store_actors import (
    T,
    bodies,
    consumable,
    get,
    open_store,
    put,
    rec,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)
SEGMENT = 16 * 1024  # (test_store_actors' commitlog_segment_size)
real_thread_id = monkey.get_original("_thread", "get_ident")


def several_segments(store: Any) -> Any:
    """Fill ``store``'s log with several segments, all flushed and dispatched; its writer."""
    for _ in range(10):
        put(store, *[rec(os.urandom(900)) for _ in range(8)])
    consumable(store, 80)
    opened = store.ctx.require_open()
    wait_until(lambda: opened.log.segments.flushed_offset >= store.ctx.dispatched)
    return store.ctx.directory.require(store.names.writer)


# -- retention: a segment that cannot be removed ---------------------------------------------------


def test_a_segment_that_cannot_be_removed_stays_and_is_deleted_at_the_next_tick(
    tmp_path: Path, warnings: list[str]
) -> None:
    fs = FaultyFileSystem()
    store = open_store(tmp_path, fs)
    try:
        # Given a log of several old segments
        writer = several_segments(store)
        log = store.ctx.require_open().log
        first = log.segments.segments[0].file.path
        request = DeleteSegments(time.time() + 60, False, 2, store.ctx.dispatched)
        # When retention deletes them and the oldest one's removal fails with EACCES
        fs.fail_next_remove(errno.EACCES)
        done: SegmentsDeleted = writer.ask(request, timeout=T)
        # Then nothing is deleted: the file stays, at the log's head, and a WARNING names it
        assert done.paths == [] and done.min_offset == 0 == log.min_offset
        assert os.path.exists(first)
        assert any("cannot delete commit-log segment" in w and first in w for w in warnings)
        # And the broker goes on (the writer failed: a fail-stop for a file it could not remove)
        assert writer.is_alive() and store.failed is None
        assert put(store, rec(b"after")).status is PutStatus.PUT_OK
        # And retention's next tick deletes it
        done = writer.ask(request, timeout=T)
        assert done.paths[0] == first and len(done.paths) == 2
        assert not os.path.exists(first) and log.min_offset == 2 * SEGMENT
    finally:
        store.stop()


class _RecordingFs(FaultyFileSystem):
    """Remembers the OS thread each ``remove`` ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.removed_on: list[int] = []

    def remove(self, path: str) -> None:
        self.removed_on.append(real_thread_id())
        super().remove(path)


def test_a_segment_is_removed_in_a_worker_thread_not_on_the_hub(tmp_path: Path) -> None:
    fs = _RecordingFs()
    store = open_store(tmp_path, fs)
    try:
        # Given a log of several old segments
        writer = several_segments(store)
        # When retention deletes two of them
        request = DeleteSegments(time.time() + 60, False, 2, store.ctx.dispatched)
        done: SegmentsDeleted = writer.ask(request, timeout=T)
        # Then both files were removed off the hub's thread (an unlink of a big file blocked
        # every actor of the broker meanwhile)
        assert len(done.paths) == 2 and len(fs.removed_on) == 2
        assert real_thread_id() not in fs.removed_on
    finally:
        store.stop()


# -- a write over the disk quota -------------------------------------------------------------------


def test_edquot_refuses_for_a_while_then_appends_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commitlog_writer, "ENOSPC_PAUSE_S", 0.3)
    fs = FaultyFileSystem()
    store = open_store(tmp_path, fs)
    try:
        assert put(store, rec(b"first")).status is PutStatus.PUT_OK
        # Given a write that met EDQUOT (the broker's user or project quota used up)
        fs.enospc_after(10, errno.EDQUOT)
        # Then it is refused as a full disk (it fail-stopped the broker: "write failed")
        refused = put(store, rec(b"x" * 100))
        assert refused.status is PutStatus.SERVICE_NOT_AVAILABLE, refused
        # And once the quota has room again, appends are taken after the pause
        fs.enospc_after(None)
        deadline = time.monotonic() + 5.0
        while (result := put(store, rec(b"later"))).status is not PutStatus.PUT_OK:
            assert time.monotonic() < deadline, f"still refused: {result}"
            gevent.sleep(0.05)
        assert result.queue_offsets == (1,) and store.failed is None
    finally:
        store.stop()


# -- ASYNC_FLUSH: a wait for an fsync that stalls --------------------------------------------------


def test_an_fsync_wait_times_out_under_async_flush(tmp_path: Path, warnings: list[str]) -> None:
    fs = FaultyFileSystem()
    store = open_store(tmp_path, fs, sync_flush_timeout_ms=300)  # (ASYNC_FLUSH: the default)
    try:
        # Given an ASYNC_FLUSH store whose disk stalls in fsync
        assert not store.settings.sync_flush
        put(store, rec(b"first"))
        log = store.ctx.require_open().log
        wait_until(lambda: log.segments.flushed_offset == log.write_offset)
        fs.slow_fsync(2.0)
        put(store, rec(b"unflushed"))
        # When something waits for the fsync of the log's end (a reconciling master's raw
        # append does, in either flush mode)
        reply = new_future()
        flusher = store.ctx.directory.require(store.names.flusher)
        flusher.tell(AwaitFlush(log.write_offset, [RawCompletion(reply, log.write_offset)]))
        # Then it is answered within syncFlushTimeout, not fsynced (it waited until the fsync
        # ended, for ever on a disk that never answers), and a WARNING says so
        result = reply.get(timeout=1.5)
        assert not result.ok and "FLUSH_TIMEOUT" in (result.reason or "")
        assert any("timed out after syncFlushTimeout" in w for w in warnings)
    finally:
        fs.slow_fsync(0)
        store.stop()


# -- a record the disk cannot read -----------------------------------------------------------------


def stored_with_bad_sector(root: Path, fs: FaultyFileSystem, q: int, err: int) -> Any:
    """A store whose T/0 holds m0 .. m5, the disk failing (``err``) to read record ``q``."""
    store = open_store(root, fs)
    written = put(store, *(rec(b"m%d" % i) for i in range(6)))
    for _ in range(3):  # (6 KiB each: the log rolls to its next segment, its tail cache drops)
        put(store, rec(b"f" * 6000, topic="F"))
    consumable(store, 6)
    phys = written.physical_offsets[q]
    start = phys - phys % SEGMENT
    fs.bad_sector(os.path.join(root, "commitlog", segment_name(start)), phys - start + 30, 1, err)
    return store


def test_a_record_the_disk_cannot_read_is_skipped(tmp_path: Path, warnings: list[str]) -> None:
    fs = FaultyFileSystem()
    # Given T/0 whose record at queue offset 2 the disk cannot read (EIO)
    store = stored_with_bad_sector(tmp_path, fs, 2, errno.EIO)
    try:
        # When a consumer pulls from 0, Then it gets every other record and moves on past all
        # six (every pull failed with the EIO: SYSTEM_ERROR for ever)
        got = get(store, 0)
        assert got.status is GetStatus.FOUND
        assert bodies(got) == [b"m0", b"m1", b"m3", b"m4", b"m5"]
        assert got.next_begin_offset == 6
        # And a pull at the record itself is moved past it
        got = get(store, 2, n=1)
        assert got.status is GetStatus.MESSAGE_WAS_REMOVING and got.next_begin_offset == 3
        # And one WARNING names it and the error
        named = [w for w in warnings if "could not be read" in w]
        assert len(named) == 1 and "queue offset(s) 2" in named[0] and "Errno 5" in named[0]
    finally:
        store.stop()


def test_a_transient_read_error_fails_the_pull_and_skips_nothing(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    # Given T/0 whose record at queue offset 2 cannot be read for want of memory (ENOMEM)
    store = stored_with_bad_sector(tmp_path, fs, 2, errno.ENOMEM)
    try:
        # When a consumer pulls from 0, Then the pull fails (the next one reads again)
        with pytest.raises(OSError, match="Cannot allocate memory"):
            get(store, 0)
        # And once memory is back, every record is served
        fs.clear_bad_sectors()
        assert bodies(get(store, 0)) == [b"m%d" % i for i in range(6)]
    finally:
        store.stop()


# -- a failed writer closes the store only once its readers stopped -------------------------------


def test_a_failed_writer_closes_the_store_once_its_readers_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    stopped = False
    try:
        # Given a store with records consumers read
        put(store, *(rec(b"m%d" % i) for i in range(3)))
        consumable(store, 3)
        opened = store.ctx.require_open()
        writer = store.ctx.directory.require(store.names.writer)

        # When its writer fails (a bug in an append)
        def bug(*_args: Any, **_kw: Any) -> Any:
            raise RuntimeError("a bug in the append")

        monkeypatch.setattr(opened.log, "append_batch", bug)
        assert put(store, rec(b"x")).status is PutStatus.UNKNOWN_ERROR
        wait_until(lambda: not writer.is_alive())
        # Then the store says it failed (the Queues' and the Dispatcher's stops then do no
        # durability work on its files)
        assert store.failed is not None and "a bug in the append" in store.failed
        # And until the Dispatcher and the Flusher stop, the files stay open and locked: reads
        # go on (they failed on the closed log) and no other opening can take the store
        assert bodies(get(store, 0)) == [b"m0", b"m1", b"m2"]
        with pytest.raises(StoreError, match="locked"):
            StoreLock(str(tmp_path))
        assert opened.lock.held
        # And once they stopped, the store is closed and its lock free
        store.stop()
        stopped = True
        wait_until(lambda: not opened.lock.held)
        StoreLock(str(tmp_path)).release()
    finally:
        if not stopped:
            store.stop()
