"""Consume queues synced by a checkpoint or a stop go through the store's GroupSync: one
syncfs for a batch of them, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.actors.ha_support import wait_until
from tests.actors.test_store_actors import bodies, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(30)


def test_a_checkpoint_syncs_many_queues_with_one_syncfs(tmp_path: Path) -> None:
    # Given a store (the real file system) and a message on each of 40 queues
    store = open_store(tmp_path, queue_idle_stop_ms=0)
    try:
        sync = store.ctx.group_sync
        if not sync.enabled:
            pytest.skip("no syncfs here")
        put(store, *[rec(b"m%d" % q, queue_id=q) for q in range(40)])
        consumable(store, 1, queue_id=39)
        # When the checkpoints sync them, Then batches went through syncfs, and every queue's
        # files count as synced (an idle queue retires only then)
        wait_until(lambda: sync.group_syncs >= 1, what="a group sync")
        table = store.ctx.queues
        wait_until(lambda: table.retire_idle(0) >= 0 and not table.refs(), what="all synced")
    finally:
        store.stop()
    # And a restart reads every message back
    store = open_store(tmp_path, queue_idle_stop_ms=0)
    try:
        assert [bodies(get(store, 0, queue_id=q)) for q in (0, 39)] == [[b"m0"], [b"m39"]]
    finally:
        store.stop()
