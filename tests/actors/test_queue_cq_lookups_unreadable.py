"""Consume-queue lookups on a page the disk cannot read (EIO: a bad sector). b845bd8 made pulls
skip such a page; the other reads still raised: OffsetForTime and EarliestStoreTime (a consumer
reset by time, the admin's earliest time) and ReadEntries answered SYSTEM_ERROR on every call
for ever, and a restart's recovery (truncate_past, first_offset_at_or_after_phys, the leading
blank skip) failed to open the store. Now each answers something bounded: a time lookup skips
what it cannot read (one WARNING; an offset never later than the truth), ReadEntries serves the
entries before the page and names the unreadable ones when asked at them, and recovery goes on
(a WARNING)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import StoreError
from runtime.store import record as R
from runtime.store.consumequeue import ENTRY, ENTRY_SIZE, ConsumeQueue, queue_dir
from runtime.store.faults import FaultyFileSystem
from runtime.store.segments import segment_name
from tests.actors.test_store_actors import bodies, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(60)

N = 700
PAGE = 4096
FIRST_BAD = PAGE // ENTRY_SIZE  # 204: the entry across the second page's start
PAST_BAD = -(-2 * PAGE // ENTRY_SIZE)  # 410: the first entry wholly after it
PAST_FIRST_PAGE = -(-PAGE // ENTRY_SIZE)  # 205: the first entry wholly after the first page


def filled(root: Path, fs: FaultyFileSystem) -> Any:
    """A store whose T/0 holds m0 .. m699 (one consume-queue file)."""
    store = open_store(root, fs, cq_entries_per_file=1000)
    for start in range(0, N, 100):
        put(store, *(rec(b"m%d" % i) for i in range(start, start + 100)))
    consumable(store, N)
    return store


def bad_page(root: Path, fs: FaultyFileSystem, page: int) -> None:
    """The disk fails (EIO) to read page ``page`` of T/0's consume-queue file."""
    path = os.path.join(queue_dir(str(root), "T", 0), segment_name(0))
    fs.bad_sector(path, page * PAGE, PAGE, errno.EIO)


def store_time(store: Any, q: int) -> int:
    got = get(store, q, n=1)
    return R.decode_record(got.messages[0]).store_timestamp


def test_the_earliest_store_time_skips_an_unreadable_first_page(
    tmp_path: Path, warnings: list[str]
) -> None:
    fs = FaultyFileSystem()
    # Given T/0 whose first consume-queue page (entries 0 .. 204) the disk cannot read
    store = filled(tmp_path, fs)
    try:
        expected = store_time(store, PAST_FIRST_PAGE)
        bad_page(tmp_path, fs, 0)
        # When the admin asks for the queue's earliest store time, Then it is the first
        # readable message's (it raised EIO: SYSTEM_ERROR on every call)
        assert store.earliest_store_time("T", 0).get(timeout=10) == expected
        # And a WARNING says entries were skipped
        assert any("earliest store time" in w and "Errno 5" in w for w in warnings), warnings
    finally:
        store.stop()


def test_an_offset_for_time_is_bounded_and_never_later_than_the_truth(
    tmp_path: Path, warnings: list[str]
) -> None:
    fs = FaultyFileSystem()
    # Given T/0 whose entries 204 .. 409 lie on a page the disk cannot read
    store = filled(tmp_path, fs)
    try:
        times = {q: store_time(store, q) for q in (0, 100, 600, N - 1)}
        bad_page(tmp_path, fs, 1)
        # When a consumer resets by time, Then it gets an offset (the lookup raised EIO)
        # no later than the first message stored at or after the time
        for q in (100, 600):
            got = store.offset_by_time("T", 0, times[q]).get(timeout=10)
            assert 0 <= got <= q, (q, got)
        # And the ends are the queue's ends
        assert store.offset_by_time("T", 0, 0).get(timeout=10) == 0
        assert store.offset_by_time("T", 0, times[N - 1] + 60_000).get(timeout=10) == N
        # And a WARNING names the lookup and the error
        assert any("offset for time" in w and "Errno 5" in w for w in warnings), warnings
    finally:
        store.stop()


def test_read_entries_serves_what_it_can_and_names_what_it_cannot(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    # Given T/0 whose entries 204 .. 409 lie on a page the disk cannot read
    store = filled(tmp_path, fs)
    try:
        bad_page(tmp_path, fs, 1)
        # When an admin tool reads entries 100 .. 299, Then it gets those before the page
        # (the read raised EIO)
        lo, hi, raw = store.read_entries("T", 0, 100, 200).get(timeout=10)
        assert (lo, hi, len(raw)) == (0, N, (FIRST_BAD - 100) * ENTRY_SIZE)
        # And one read at the page is refused with an error naming the entries and where
        # readable ones resume
        with pytest.raises(StoreError, match=f"300-{PAST_BAD - 1}.*resume at {PAST_BAD}"):
            store.read_entries("T", 0, 300, 10).get(timeout=10)
        # And past the page every entry is served
        _lo, _hi, raw = store.read_entries("T", 0, PAST_BAD, 5).get(timeout=10)
        assert len(raw) == 5 * ENTRY_SIZE
    finally:
        store.stop()


def test_a_store_with_an_unreadable_consume_queue_page_opens_again(
    tmp_path: Path, warnings: list[str]
) -> None:
    fs = FaultyFileSystem()
    # Given a stopped store whose T/0 has consume-queue pages the disk cannot read (its first,
    # and the one the recovery's searches probe first)
    filled(tmp_path, fs).stop()
    bad_page(tmp_path, fs, 0)
    bad_page(tmp_path, fs, 1)
    # When it opens again, Then it does (recovery raised EIO)
    store = open_store(tmp_path, fs, cq_entries_per_file=1000)
    try:
        # And the readable entries are served
        assert bodies(get(store, PAST_BAD, n=2)) == [b"m410", b"m411"]
        assert store.max_offset("T", 0).get(timeout=10) == N
        assert any("could not be read" in w for w in warnings), warnings
    finally:
        store.stop()


def test_the_searches_take_unreadable_entries_on_their_likelier_side(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    # Given a consume queue of 1000 entries (entry i: log offset 100 i, size 100) whose entries
    # 204 .. 409 the disk cannot read
    cq = ConsumeQueue(str(tmp_path), "T", 0, 1000, fs)
    cq.append_block(0, b"".join(ENTRY.pack(100 * i, 100, 0) for i in range(1000)))
    cq.flush()
    cq.file.drop_tail_cache()
    fs.bad_sector(os.path.join(queue_dir(str(tmp_path), "T", 0), segment_name(0)), PAGE, PAGE)
    # When the log's minimum is below the page, Then the first entry at it is found
    assert cq.first_offset_at_or_after_phys(5_000) == 50
    # And one inside the page gives an offset no higher than the truth (no readable entry
    # hidden)
    assert FIRST_BAD <= cq.first_offset_at_or_after_phys(30_000) <= 300
    # When the log is cut at 90,000 (above the page), Then the entries past it are dropped
    assert cq.truncate_past(90_000) == 100
    assert cq.max_offset == 900
    cq.close()
