"""``truncate_log`` on a log without bytes and an offset past its end: the log starts there
(an empty slave of a master whose first segments retention deleted), and replication, the
consume queues and a reopen follow from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.store import checkpoint as ckpt
from runtime.store.consumequeue import ConsumeQueue
from runtime.store.raw import truncate_log
from runtime.store.recovery import open_store
from tests.unit.test_store_raw import SEG, close, fill, replicate, settings

pytestmark = pytest.mark.timeout(60)


def test_an_empty_log_starts_at_the_masters_first_segment(tmp_path: Path) -> None:
    # Given a master whose first segments were deleted
    master = open_store(settings(tmp_path / "m"))
    fill(master, 120)
    while len(master.log.segments.segments) > 2:
        master.log.segments.delete_first()
    start = master.log.min_offset
    assert start > 0 and start % SEG == 0
    # and an empty slave store with a stale consume queue (its first file padded)
    s = settings(tmp_path / "s")
    close(open_store(s))
    stale = ConsumeQueue(s.root, "T", 0, 16)
    stale.append_block(5, b"\x00" * 8 + b"\x00\x00\x00\x10" + b"\x00" * 8)
    stale.close()
    # When its log is started at the master's first segment
    assert truncate_log(s, start) == 0
    # Then it opens starting there, without the stale queue, its checkpoint there
    cp = ckpt.load(s.root)
    assert cp is not None and (cp.safe_offset, cp.log_min_offset) == (start, start)
    slave = open_store(s)
    assert (slave.log.min_offset, slave.log.write_offset) == (start, start)
    assert not slave.queues and slave.report.truncated_bytes == 0
    # and replication from there gives the master's log, queues and next offsets
    replicate(master, slave, 1024)
    assert slave.log.write_offset == master.log.write_offset
    assert slave.next_offsets == master.next_offsets
    close(slave)
    again = open_store(s)
    assert (again.log.min_offset, again.log.write_offset) == (start, master.log.write_offset)
    assert again.next_offsets == master.next_offsets
    # (recovery dispatched the records: each queue starts at its first record there)
    assert set(again.queues) == set(master.next_offsets)
    for key, cq in again.queues.items():
        entries = cq.entries(cq.min_offset, 1000)
        assert cq.min_offset > 0 and cq.max_offset == master.next_offsets[key]
        assert len(entries) == cq.max_offset - cq.min_offset
        assert all(e.physical_offset >= start for e in entries)
        first = again.log.read_record(entries[0].physical_offset)
        assert first is not None and first.queue_offset == cq.min_offset
    close(again)
    close(master)
