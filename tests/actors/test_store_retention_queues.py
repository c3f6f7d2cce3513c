"""Retention and idle consume queues: trimming the queues after segments were deleted starts
no Queue actor for an idle queue, and leaves every queue able to retire again."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from actors.broker.messages import CleanTick
from actors.broker.retention import Retention
from actors.broker.store_results import GetStatus
from actors.broker.store_service import BrokerStore
from tests.actors.ha_support import wait_until
from tests.actors.test_store_actors import T, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(60)


def _store_with_retention(root: Path) -> tuple[BrokerStore, Any]:
    """A store whose consume queues span several files and whose commit log spans several
    segments, with a Retention that finds the disk 80 % full (expired segments go)."""
    store = open_store(root, file_reserved_hours=0, queue_idle_stop_ms=0)
    store.ctx.directory.require(store.names.retention).stop()
    retention = Retention.start(store.ctx, disk_usage=lambda _p: 0.8)
    store.ctx.directory.put(store.names.retention, retention)
    for _ in range(20):
        put(store, *[rec(os.urandom(200), queue_id=q) for q in range(2) for _ in range(10)])
    consumable(store, 200, queue_id=1)
    log = store.ctx.require_open().log
    wait_until(lambda: log.segments.flushed_offset >= store.ctx.dispatched, what="log flushed")
    return store, retention


def _retire_all(store: BrokerStore) -> None:
    table = store.ctx.queues
    wait_until(lambda: table.retire_idle(0) >= 0 and not table.refs(), what="all retired")


def test_queues_whose_files_retention_deleted_can_retire_again(tmp_path: Path) -> None:
    # Given two queues of four files each, synced by a checkpoint, in use (their actors run)
    store, retention = _store_with_retention(tmp_path)
    try:
        _retire_all(store)
        assert get(store, 0).status is GetStatus.FOUND
        assert get(store, 0, queue_id=1).status is GetStatus.FOUND
        assert len(store.ctx.queues.refs()) == 2
        # When retention deletes segments, and with them the queues' first files
        done = retention.ask(CleanTick(), timeout=T)
        assert done is not None and done.paths
        wait_until(
            lambda: all(len(cq.file.segments) < 4 for cq in store.ctx.opened.queues.values()),
            what="queue files deleted",
        )
        # Then the queues, idle again, retire (their directories synced)
        _retire_all(store)
        # and answer from their new minimum once started again
        low = get(store, 0)
        assert low.status is GetStatus.OFFSET_TOO_SMALL
        assert low.next_begin_offset == store.ctx.opened.queues[("T", 0)].min_offset > 0
    finally:
        retention.stop()
        store.stop()


def test_retention_trims_idle_queues_without_starting_their_actors(tmp_path: Path) -> None:
    # Given two queues of four files each whose actors retired
    store, retention = _store_with_retention(tmp_path)
    try:
        _retire_all(store)
        # When retention deletes segments
        done = retention.ask(CleanTick(), timeout=T)
        assert done is not None and done.paths
        # Then the idle queues lost their first files and moved their minimum, with no actor
        # started for them
        queues = store.ctx.opened.queues
        assert all(len(cq.file.segments) < 4 for cq in queues.values())
        assert all(cq.min_offset > 0 for cq in queues.values())
        assert store.ctx.queues.refs() == {}
        assert store.min_offset("T", 0).get(timeout=T) == queues[("T", 0)].min_offset
        # and the admin's trim does the same
        assert all(f.get(timeout=T) is None for f in store.trim_queues())
        assert store.ctx.queues.refs() == {}
    finally:
        retention.stop()
        store.stop()
