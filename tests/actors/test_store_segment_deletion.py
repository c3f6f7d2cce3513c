"""Retention's deletion of old commit-log segments (``DeleteSegments`` on the CommitLogWriter)
when a segment file is already gone: an operator removed old commit-log files by hand."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from actors.broker.messages import DeleteSegments, SegmentsDeleted
from actors.broker.store_results import PutStatus
from tests.actors.test_store_actors import T, consumable, open_store, put, rec, wait_until

pytestmark = pytest.mark.timeout(30)


def test_a_segment_removed_by_hand_is_skipped_not_a_fail_stop(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Given a log of several segments, all flushed and dispatched
        for _ in range(10):
            put(store, *[rec(os.urandom(900)) for _ in range(8)])
        consumable(store, 80)
        opened = store.ctx.require_open()
        wait_until(lambda: opened.log.segments.flushed_offset >= store.ctx.dispatched)
        # And its oldest segment file removed by hand
        first = opened.log.segments.segments[0]
        os.remove(first.file.path)
        # When retention deletes the oldest segments
        writer = store.ctx.directory.require(store.names.writer)
        request = DeleteSegments(time.time() + 60, False, 2, store.ctx.dispatched)
        done: SegmentsDeleted = writer.ask(request, timeout=T)
        # Then the missing one counts as deleted, the next one is deleted too
        assert first.file.path in done.paths and len(done.paths) == 2
        assert store.commit_log_min_offset == 2 * opened.log.segment_size
        # And the writer goes on appending (it did not fail-stop the store)
        assert writer.is_alive() and store.failed is None
        assert put(store, rec(b"after")).status is PutStatus.PUT_OK
    finally:
        store.stop()
