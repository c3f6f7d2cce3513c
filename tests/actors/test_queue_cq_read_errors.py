"""A consume-queue file the disk cannot read (EIO: a bad sector) failed every pull of its queue
for ever (SYSTEM_ERROR): the Queue raised the error of ``ConsumeQueue.read_raw``. Now the
entries of the page that cannot be read are skipped (MESSAGE_WAS_REMOVING, nextBeginOffset past
them; one WARNING), the entries before and after it are served, and a transient error (out of
memory) still fails the pull."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from actors.broker.store_results import GetStatus
from runtime.store.consumequeue import ENTRY_SIZE, queue_dir
from runtime.store.faults import FaultyFileSystem
from runtime.store.segments import segment_name
from tests.actors.test_store_actors import bodies, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(60)

N = 700  # entries of T/0: the tail cache (the last 128 to 256) holds none of the bad page's
PAGE = 4096
FIRST_BAD = PAGE // ENTRY_SIZE  # 204: the entry across the page's start (bytes 4080-4100)
PAST_BAD = -(-2 * PAGE // ENTRY_SIZE)  # 410: the first entry wholly after the page


def queue_with_bad_page(root: Path, fs: FaultyFileSystem, err: int) -> Any:
    """A store whose T/0 holds m0 .. m699, the disk failing (``err``) to read the second page
    (bytes 4096-8191) of its consume-queue file."""
    store = open_store(root, fs, cq_entries_per_file=1000)
    for start in range(0, N, 100):
        put(store, *(rec(b"m%d" % i) for i in range(start, start + 100)))
    consumable(store, N)
    path = os.path.join(queue_dir(str(root), "T", 0), segment_name(0))
    fs.bad_sector(path, PAGE, PAGE, err)
    return store


def test_entries_the_disk_cannot_read_are_skipped_and_the_others_served(
    tmp_path: Path, warnings: list[str]
) -> None:
    fs = FaultyFileSystem()
    # Given T/0 whose consume-queue entries 204 .. 409 lie on a page the disk cannot read
    store = queue_with_bad_page(tmp_path, fs, errno.EIO)
    try:
        # When a consumer pulls just before them, Then it gets the readable entries up to them
        # (every pull touching the page failed: SYSTEM_ERROR for ever)
        got = get(store, 200)
        assert got.status is GetStatus.FOUND
        assert bodies(got) == [b"m200", b"m201", b"m202", b"m203"]
        assert got.next_begin_offset == FIRST_BAD
        # And a pull at the first of them is moved past the page's entries, and no further
        got = get(store, FIRST_BAD)
        assert got.status is GetStatus.MESSAGE_WAS_REMOVING
        assert got.next_begin_offset == PAST_BAD
        # And one inside them too, with a tag filter as well
        got = get(store, 300, tag_filter=[0])
        assert (got.status, got.next_begin_offset) == (GetStatus.MESSAGE_WAS_REMOVING, PAST_BAD)
        # And the entries after the page are served
        got = get(store, PAST_BAD, n=3)
        assert bodies(got) == [b"m410", b"m411", b"m412"]
        # And one WARNING names the skipped queue offsets and the error
        named = [w for w in warnings if "consume-queue entries" in w]
        assert len(named) == 1, named
        assert f"queue offset(s) {FIRST_BAD}-{PAST_BAD - 1}" in named[0]
        assert "Errno 5" in named[0]
    finally:
        store.stop()


def test_a_transient_consume_queue_read_error_fails_the_pull_and_skips_nothing(
    tmp_path: Path,
) -> None:
    fs = FaultyFileSystem()
    # Given T/0 whose consume-queue page cannot be read for want of memory (ENOMEM)
    store = queue_with_bad_page(tmp_path, fs, errno.ENOMEM)
    try:
        # When a consumer pulls there, Then the pull fails (the next one reads again)
        with pytest.raises(OSError, match="Cannot allocate memory"):
            get(store, 300)
        # And once memory is back, every entry is served
        fs.clear_bad_sectors()
        assert bodies(get(store, 300, n=2)) == [b"m300", b"m301"]
    finally:
        store.stop()
