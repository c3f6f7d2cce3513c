"""The replication read (``read_raw``) never sends a damaged record: a record's size field
that disagrees with its other fields stops the stream with ``RawDamaged`` (the records before it
are sent), and a flipped bit in a size field makes no read as long as it says (before, the
master read up to the write offset's worth of bytes and sent them as one record, which the
slave refused again and again)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.store import record as R
from runtime.store.commitlog import AppendedBatch, CommitLog
from runtime.store.faults import PreadSizes
from runtime.store.raw import RawDamaged, read_raw
from runtime.store.record_check import check_record

pytestmark = pytest.mark.timeout(30)

SEG = 1 << 20
BODY = 900


def written(root: Path, n: int) -> list[int]:
    """``n`` records of BODY bytes in a closed log; their offsets."""
    log = CommitLog(str(root), SEG)
    batch = [R.PutRecord("T", 0, bytes([i]) * BODY, "") for i in range(n)]
    out = log.append_batch(batch, {}, 1, 1 << 20)
    assert isinstance(out, AppendedBatch)
    log.segments.close()
    return list(out.physical_offsets)


def set_size(root: Path, phys: int, size: int) -> None:
    with open(os.path.join(root, f"{0:020d}"), "r+b") as fh:
        fh.seek(phys)
        fh.write(size.to_bytes(4, "big"))


def test_a_flipped_high_bit_in_a_size_makes_no_long_read_and_stops_the_stream(
    tmp_path: Path,
) -> None:
    # Given a log of 200 records whose 10th has a flipped high bit in its size (100,000 bytes:
    # inside the segment and the data written)
    offsets = written(tmp_path, 200)
    size = offsets[1] - offsets[0]
    set_size(tmp_path, offsets[10], size | 1 << 16)
    fs = PreadSizes()
    log = CommitLog(str(tmp_path), SEG, fs)
    try:
        # When the master reads for a slave from the start, Then the records before it come
        got = read_raw(log, 0, 4096, log.write_offset)
        while got.next < offsets[10]:
            got = read_raw(log, got.next, 4096, log.write_offset)
        assert got.next == offsets[10]
        # And the read at it stops the stream with the damage named, nothing sent, no read
        # longer than a window (it read the 100,000 bytes and sent them as one record)
        fs.asked.clear()
        with pytest.raises(RawDamaged, match=f"offset {offsets[10]} is damaged .*body length"):
            read_raw(log, offsets[10], 4096, log.write_offset)
        assert max(fs.asked) <= 4096, fs.asked
    finally:
        log.segments.close()


def test_a_size_field_off_by_a_little_is_not_sent(tmp_path: Path) -> None:
    # Given a log whose 3rd record's size is 16 bytes too large (it ends inside the 4th)
    offsets = written(tmp_path, 8)
    size = offsets[1] - offsets[0]
    set_size(tmp_path, offsets[2], size + 16)
    log = CommitLog(str(tmp_path), SEG)
    try:
        # When the master reads the whole log in one read
        got = read_raw(log, 0, 1 << 20, log.write_offset)
        # Then it sends the two records before it only (it sent the damaged one too, and the
        # next read found no record boundary: the stream stalled)
        assert got.next == offsets[2]
        assert check_record(got.data, 0).size == size
        # And the read at it stops the stream
        with pytest.raises(RawDamaged, match="damaged"):
            read_raw(log, offsets[2], 1 << 20, log.write_offset)
    finally:
        log.segments.close()


@pytest.mark.parametrize("delta", [-4, -1])
def test_the_last_record_of_a_read_is_checked_too(tmp_path: Path, delta: int) -> None:
    # Given a log whose last record's size is a few bytes short (no room for another record's
    # header after it: nothing follows it to show it wrong)
    offsets = written(tmp_path, 4)
    size = offsets[1] - offsets[0]
    set_size(tmp_path, offsets[3], size + delta)
    log = CommitLog(str(tmp_path), SEG)
    try:
        # When the master reads it all, Then the last record is not sent
        got = read_raw(log, 0, 1 << 20, log.write_offset)
        assert got.next == offsets[3]
        with pytest.raises(RawDamaged):
            read_raw(log, offsets[3], 1 << 20, log.write_offset)
    finally:
        log.segments.close()


def test_sound_records_and_a_non_boundary_read_as_before(tmp_path: Path) -> None:
    # Given a sound log
    offsets = written(tmp_path, 6)
    log = CommitLog(str(tmp_path), SEG)
    try:
        # When it is read in windows smaller than a record, Then every record comes whole
        pos, got = 0, []
        while pos < log.write_offset:
            read = read_raw(log, pos, 100, log.write_offset)
            got.append(pos)
            pos = read.next
        assert got == offsets
        # And an offset inside a record (no magic: not a record boundary) reads as nothing
        assert read_raw(log, offsets[1] + 10, 100, log.write_offset).data == b""
    finally:
        log.segments.close()
