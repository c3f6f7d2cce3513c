"""A consume queue whose append fails (ENOSPC, EIO, no descriptor left) keeps its entries and
writes them once the disk takes them again: acknowledged messages never stay unconsumable until
a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.broker.store_results import GetStatus, PutStatus
from runtime.store import record as R
from runtime.store.faults import FaultyFileSystem
from tests.actors.ha_support import wait_until
from tests.actors.test_store_actors import T, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(60)


def test_a_consume_queue_append_that_fails_is_written_once_the_disk_has_room(
    tmp_path: Path,
) -> None:
    # Given a store whose queue T/0 holds two messages
    fs = FaultyFileSystem()
    store = open_store(tmp_path, fs=fs)
    try:
        put(store, rec(b"m0"))
        log = store.ctx.require_open().log
        before = log.write_offset
        put(store, rec(b"m1"))
        consumable(store, 2)
        record_size = log.write_offset - before
        # When the disk fills up right after the commit log took the next record: its
        # consume-queue entry is half written (10 of 20 bytes), then ENOSPC
        fs.enospc_after(record_size + 10)
        assert put(store, rec(b"m2")).status is PutStatus.PUT_OK
        end = log.write_offset
        wait_until(lambda: store.ctx.dispatched >= end, what="m2 dispatched")
        # (asked after the dispatch's AppendEntries: answered once the queue tried it)
        assert store.queue_range("T", 0).get(timeout=T) == (0, 2)
        # and space comes back, and more messages are sent
        fs.enospc_after(None)
        for i in (3, 4):
            assert put(store, rec(b"m%d" % i)).status is PutStatus.PUT_OK
        # Then every acknowledged message becomes consumable, in order, without a restart
        consumable(store, 5)
        got = get(store, 0)
        assert got.status is GetStatus.FOUND
        assert [R.decode_record(m).body for m in got.messages] == [
            b"m0",
            b"m1",
            b"m2",
            b"m3",
            b"m4",
        ]
        assert store.queue_range("T", 0).get(timeout=T) == (0, 5)
    finally:
        fs.enospc_after(None)
        store.stop()
    # and the queue's file holds exactly those five entries (nothing of the torn one left)
    again = open_store(tmp_path)
    try:
        assert again.ctx.require_open().report.queues_rebuilt == []
        assert again.queue_range("T", 0).get(timeout=T) == (0, 5)
    finally:
        again.stop()
