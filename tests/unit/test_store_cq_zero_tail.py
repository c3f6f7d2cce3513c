"""A consume-queue file whose new length survived a power loss but not its data reads as zeros
past its last real entry: recovery drops those (0, 0, 0) entries, as it drops entries that point
past the log, instead of keeping them as queue offsets no record has."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.store.consumequeue import ENTRY_SIZE, queue_dir
from runtime.store.lockfile import create_abort
from runtime.store.recovery import open_store
from runtime.store.segments import segment_name
from tests.unit.test_store_recovery import (
    check_consistent,
    clean_close,
    crash,
    make_settings,
    write,
)

pytestmark = pytest.mark.timeout(30)
PER_FILE = 16  # make_settings' cq_entries_per_file


def test_zero_filled_consume_queue_entries_are_dropped_at_recovery(tmp_path: Path) -> None:
    # Given a store whose queues hold 40 records, all durable
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 40)
    clean_close(store)
    # And one queue's last file 3 entries longer, zero-filled (a power loss kept the file's new
    # length but not the entries written there; the records they pointed at were lost too)
    counts = {q: sum(1 for w in written if w.queue_id == q) for q in range(3)}
    q = next(q for q, n in counts.items() if n % PER_FILE <= PER_FILE - 3)
    last = (counts[q] - counts[q] % PER_FILE) * ENTRY_SIZE
    with open(os.path.join(queue_dir(str(tmp_path), "T", q), segment_name(last)), "ab") as fh:
        fh.write(bytes(3 * ENTRY_SIZE))
    create_abort(str(tmp_path))
    # When the store recovers
    again = open_store(s)
    try:
        # Then the queue ends at its last real entry (it kept the zeros: three queue offsets
        # pointing at no record, and the next message's offset three past the real end)
        assert again.queues[("T", q)].max_offset == counts[q]
        check_consistent(again, written)
    finally:
        crash(again)
