"""The store's admin look at consume queues: ``read_entries`` (QUERY_CONSUME_QUEUE) and
``trim_queues`` (CLEAN_EXPIRED_CONSUMEQUEUE), over real store actors and files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from actors.broker.messages import DeleteSegments, SegmentsDeleted
from actors.broker.store_adapter import StoreAdapter
from runtime.remoting.properties import tag_hash
from tests.actors.test_store_actors import T, consumable, open_store, put, rec, wait_until

pytestmark = pytest.mark.timeout(30)


def test_read_entries_gives_the_queue_range_and_raw_entries(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    adapter = StoreAdapter(store, put_timeout=T)
    try:
        # Given three messages in queue 0, tagged a, b, a
        put(store, *[rec(b"m", TAGS=tag) for tag in "aba"])
        consumable(store, 3)
        # When the admin reads two entries from offset 1
        found = adapter.consume_queue("T", 0, 1, 2)
        # Then it gets the range and those entries: where, how big, which tags
        assert found is not None
        assert (found.min_offset, found.max_offset) == (0, 3)
        [(p1, s1, t1), (p2, s2, t2)] = found.entries
        assert (t1, t2) == (tag_hash("b"), tag_hash("a"))
        assert p2 == p1 + s1 and s1 == s2 > 0
        # And nothing from outside the range, and None for a queue that does not exist
        assert adapter.consume_queue("T", 0, 3, 5).entries == ()  # type: ignore[union-attr]
        assert adapter.consume_queue("T", 0, -1, 5).entries == ()  # type: ignore[union-attr]
        assert adapter.consume_queue("T", 9, 0, 5) is None
        assert adapter.queue_topics() == ["T"]
    finally:
        store.stop()


def test_trim_queues_drops_consume_queue_files_below_the_log(tmp_path: Path) -> None:
    # Given a store whose oldest commit-log segments were deleted without trimming its queue
    store = open_store(tmp_path, file_reserved_hours=0)
    adapter = StoreAdapter(store, put_timeout=T)
    try:
        for _ in range(10):
            put(store, *[rec(os.urandom(900)) for _ in range(8)])
        consumable(store, 80)
        opened = store.ctx.require_open()
        wait_until(lambda: opened.log.segments.flushed_offset >= store.ctx.dispatched)
        writer = store.ctx.directory.require(store.names.writer)
        request = DeleteSegments(time.time() + 60, False, 3, store.ctx.dispatched)
        done: SegmentsDeleted = writer.ask(request, timeout=T)
        assert done.paths and store.commit_log_min_offset > 0
        assert store.min_offset("T", 0).get(timeout=T) == 0
        # When the consume queues are trimmed (cleanExpiredCQ)
        assert adapter.trim_consume_queues() == 1
        # Then the queue no longer starts at entries whose records are gone
        assert store.min_offset("T", 0).get(timeout=T) > 0
    finally:
        store.stop()
