"""A record that fails its check on the read path (a damaged commit-log record under a running
broker) is skipped, as RocketMQ's getMessage moves past a record it cannot read
(MESSAGE_WAS_REMOVING, nextBeginOffset past it): its consumers go on with the good records
after it, and a WARNING names it once. A record not written yet is not damaged: a read stops
before it (OFFSET_FOUND_NULL at its offset), as before."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from actors.broker.messages import AppendEntries
from actors.broker.store_results import GetStatus
from runtime.store.consumequeue import ENTRY
from runtime.store.faults import FaultyFileSystem
from runtime.store.record import HEADER_SIZE
from runtime.store.segments import segment_name
from tests.actors.test_store_actors import bodies, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(60)
SEGMENT = 16 * 1024  # (test_store_actors' commitlog_segment_size)


def damage(root: Path, physical_offset: int) -> None:
    """Flip a bit of the body of the record at ``physical_offset`` in its segment file."""
    start = physical_offset - physical_offset % SEGMENT
    path = os.path.join(root, "commitlog", segment_name(start))
    FaultyFileSystem.bitflip(path, physical_offset - start + HEADER_SIZE + 1)


def stored_with_damage(root: Path, damaged: list[int]) -> Any:
    """A store whose T/0 holds m0 .. m5; the records at the ``damaged`` queue offsets have a
    flipped bit on disk (written, then the log rolled on: no cached copy serves them)."""
    store = open_store(root)
    written = put(store, *(rec(b"m%d" % i) for i in range(6)))
    for _ in range(3):  # (6 KiB each: the log rolls to its next segment, its tail cache drops)
        put(store, rec(b"f" * 6000, topic="F"))
    consumable(store, 6)
    for q in damaged:
        damage(root, written.physical_offsets[q])
    return store


def test_a_damaged_record_is_skipped_and_the_good_ones_after_it_are_served(
    tmp_path: Path, warnings: list[str]
) -> None:
    # Given T/0 whose record at queue offset 2 was damaged on disk
    store = stored_with_damage(tmp_path, [2])
    try:
        # When a consumer pulls from 0, Then it gets every record but that one, and moves on
        # past all six (the read stopped before it: a consumer got m0, m1, then nothing more)
        got = get(store, 0)
        assert got.status is GetStatus.FOUND
        assert bodies(got) == [b"m0", b"m1", b"m3", b"m4", b"m5"]
        assert got.queue_offsets == (0, 1, 3, 4, 5)
        assert got.next_begin_offset == 6
        # And one at the damaged record itself is moved past it (it was answered
        # OFFSET_FOUND_NULL at 2 for ever: the consumer stuck until its offset was reset)
        got = get(store, 2, n=1)
        assert got.status is GetStatus.MESSAGE_WAS_REMOVING
        assert got.next_begin_offset == 3
        assert bodies(get(store, 3)) == [b"m3", b"m4", b"m5"]
        # And the broker named it once, however often it was read
        named = [w for w in warnings if "failed their check" in w]
        assert len(named) == 1, warnings
        assert "T/0" in named[0] and "queue offset(s) 2" in named[0]
    finally:
        store.stop()


def test_damaged_records_in_a_row_are_skipped_with_one_warning(
    tmp_path: Path, warnings: list[str]
) -> None:
    # Given T/0 whose records 0 .. 2 were damaged on disk
    store = stored_with_damage(tmp_path, [0, 1, 2])
    try:
        # When a consumer pulls two records from 0
        got = get(store, 0, n=2)
        # Then it is moved past them at once (no record to serve: RocketMQ's answer)
        assert got.status is GetStatus.MESSAGE_WAS_REMOVING
        assert got.next_begin_offset == 2
        # And its next pull gets the good records after the last damaged one
        got = get(store, 2)
        assert bodies(got) == [b"m3", b"m4", b"m5"] and got.next_begin_offset == 6
        # And each read that skipped records named them in one line
        named = [w for w in warnings if "failed their check" in w]
        tails = [n.rsplit(": ", 1)[1].strip() for n in named]
        assert tails == ["queue offset(s) 0-1", "queue offset(s) 2"]
    finally:
        store.stop()


def test_a_record_not_written_yet_is_not_skipped(tmp_path: Path, warnings: list[str]) -> None:
    # Given T/0 holding m0, m1, and an entry at queue offset 2 for a record past the log's end
    # (what a consume queue ahead of its commit log would hold)
    store = open_store(tmp_path)
    try:
        written = put(store, rec(b"m0"), rec(b"m1"))
        consumable(store, 2)
        log = store.ctx.require_open().log
        size = len(log.read_record_bytes(written.physical_offsets[1]) or b"")
        store.ctx.queues.get("T", 0).tell(AppendEntries(2, ENTRY.pack(log.write_offset, size, 0)))
        consumable(store, 3)
        # When a consumer pulls from 1
        got = get(store, 1)
        # Then it gets m1 and is kept before the entry (not moved past a record yet to come)
        assert bodies(got) == [b"m1"] and got.next_begin_offset == 2
        got = get(store, 2)
        assert got.status is GetStatus.OFFSET_FOUND_NULL
        assert got.next_begin_offset == 2
        assert not [w for w in warnings if "failed their check" in w]
    finally:
        store.stop()
