"""Segmented files and the commit log: appends, segment rolls with blank markers, reads, scans,
truncation, and the fault-injecting file system."""

from __future__ import annotations

import errno
import os
import random

import pytest

from runtime.errors import StoreError
from runtime.store import record as R
from runtime.store import record_check as RC
from runtime.store.commitlog import AppendedBatch, CommitLog
from runtime.store.faults import FaultyFileSystem
from runtime.store.prepare import Invalid, prepare
from runtime.store.record_properties import encode_properties
from runtime.store.segments import SegmentedFile, segment_name

SEG = 4096


def recs(n: int, body_len: int = 100, topic: str = "T", queue_id: int = 0) -> list[R.PutRecord]:
    return [
        R.PutRecord(
            topic=topic,
            queue_id=queue_id,
            body=bytes([i % 256]) * body_len,
            properties=encode_properties({"TAGS": f"t{i % 3}", "KEYS": f"key{i}"}),
        )
        for i in range(n)
    ]


def append(
    log: CommitLog, batch: list[R.PutRecord], table: dict[tuple[str, int], int], ts: int = 1
) -> AppendedBatch:
    out = log.append_batch(batch, table, ts, 1 << 20)
    assert isinstance(out, AppendedBatch)
    return out


def test_segmented_file_append_read_flush(tmp_path: os.PathLike[str]) -> None:
    f = SegmentedFile(str(tmp_path), 100)
    assert f.append(b"a" * 250) == 0
    assert sorted(os.listdir(tmp_path)) == [segment_name(0), segment_name(100), segment_name(200)]
    assert f.read(90, 50) == b"a" * 10  # reads stay within one segment
    assert f.write_offset == 250
    assert f.flush() == 250
    f.close()
    again = SegmentedFile(str(tmp_path), 100)
    assert (again.min_offset, again.write_offset) == (0, 250)
    assert again.truncate(150) == 100
    assert again.write_offset == 150
    assert sorted(os.listdir(tmp_path)) == [segment_name(0), segment_name(100)]


def test_segment_gap_refuses_to_load(tmp_path: os.PathLike[str]) -> None:
    f = SegmentedFile(str(tmp_path), 100)
    f.append(b"x" * 300)
    f.close()
    os.remove(os.path.join(tmp_path, segment_name(100)))
    with pytest.raises(StoreError, match="not contiguous"):
        SegmentedFile(str(tmp_path), 100)


def test_append_batch_assigns_offsets_and_rolls(tmp_path: os.PathLike[str]) -> None:
    log = CommitLog(str(tmp_path), SEG)
    table: dict[tuple[str, int], int] = {("T", 0): 10}
    batch = recs(100)
    out = append(log, batch, table, 1234)
    assert out.queue_offsets == list(range(10, 110))
    assert table[("T", 0)] == 110
    # no record straddles a segment; each segment that was left carries a blank marker
    for off, rec in zip(out.physical_offsets, batch, strict=True):
        got = log.read_record(off)
        assert got is not None
        assert off // SEG == (off + got.total_size - 1) // SEG
        assert got.body == rec.body
        assert got.physical_offset == off
    assert len(log.segments.segments) > 2
    for seg in log.segments.segments[:-1]:
        data = seg.file.pread(SEG, 0)
        blank = RC.check_record(data, len(data) - 8)
        assert blank.blank and blank.size == SEG - (len(data) - 8)
    # a scan finds every record, in order
    seen: list[int] = []
    res = log.scan(0, lambda buf, pos, size, off: seen.append(off))
    assert res.problem is None
    assert res.end == log.write_offset
    assert seen == out.physical_offsets


def test_prepared_records_take_no_queue_offset(tmp_path: os.PathLike[str]) -> None:
    log = CommitLog(str(tmp_path), SEG)
    table: dict[tuple[str, int], int] = {}
    batch = [
        R.PutRecord("T", 1, b"a"),
        R.PutRecord("T", 1, b"b", sys_flag=R.TRANSACTION_PREPARED_TYPE),
        R.PutRecord("T", 1, b"c", sys_flag=R.TRANSACTION_COMMIT_TYPE),
        R.PutRecord("T", 1, b"d", sys_flag=R.TRANSACTION_ROLLBACK_TYPE),
    ]
    out = append(log, batch, table)
    assert out.queue_offsets == [0, -1, 1, -1]
    assert table == {("T", 1): 2}
    # only the records with queue offsets get consume-queue entries
    first, raw = out.dispatch.queues[("T", 1)]
    assert (first, len(raw)) == (0, 40)


def test_append_batch_refuses_illegal_batches_untouched(tmp_path: os.PathLike[str]) -> None:
    log = CommitLog(str(tmp_path), SEG)
    table: dict[tuple[str, int], int] = {}
    out = log.append_batch([*recs(3), R.PutRecord("bad topic", 0, b"")], table, 1, 1000)
    assert isinstance(out, Invalid)
    assert (log.write_offset, table) == (0, {})


def test_prepare_refuses_illegal_records() -> None:
    assert isinstance(prepare(R.PutRecord("bad topic", 0, b""), 100, SEG), Invalid)
    assert isinstance(prepare(R.PutRecord("T", 0, b"x" * 101), 100, SEG), Invalid)
    big_props = encode_properties({"p": "x" * 40000})
    refused = prepare(R.PutRecord("T", 0, b"", big_props), 100, SEG)
    assert isinstance(refused, Invalid) and refused.properties
    assert isinstance(prepare(R.PutRecord("T", 0, b"x" * SEG), 10 * SEG, SEG), Invalid)


def test_scan_stops_at_torn_tail_and_flipped_bit(tmp_path: os.PathLike[str]) -> None:
    log = CommitLog(str(tmp_path), 1 << 20)
    out = append(log, recs(10), {})
    last = out.physical_offsets[-1]
    seg_path = log.segments.segments[0].file.path
    log.segments.close()
    os.truncate(seg_path, out.end - 5)
    log = CommitLog(str(tmp_path), 1 << 20)
    res = log.scan(0)
    assert res.end == last and res.records == 9 and res.problem is not None
    FaultyFileSystem.bitflip(seg_path, out.physical_offsets[5] + 100)
    res = log.scan(0)
    assert res.end == out.physical_offsets[5] and res.problem == "body CRC mismatch"


def test_faulty_fs_power_loss_keeps_synced_bytes(tmp_path: os.PathLike[str]) -> None:
    fs = FaultyFileSystem()
    f = SegmentedFile(str(tmp_path), 1000, fs)
    f.append(b"a" * 300)
    f.flush()
    f.append(b"b" * 300)
    f.close()
    report = fs.power_loss(random.Random(7))
    (written, kept) = report[os.path.join(str(tmp_path), segment_name(0))]
    assert written == 600
    assert 300 <= kept <= 600


def test_faulty_fs_unsynced_create_vanishes(tmp_path: os.PathLike[str]) -> None:
    fs = FaultyFileSystem()
    f = SegmentedFile(str(tmp_path), 100, fs)
    f.append(b"a" * 150)  # creates two segments, no fsync at all
    f.close()
    fs.power_loss(random.Random(1))
    assert os.listdir(tmp_path) == []


def test_faulty_fs_fsync_failure_and_enospc(tmp_path: os.PathLike[str]) -> None:
    fs = FaultyFileSystem()
    f = SegmentedFile(str(tmp_path), 1000, fs)
    f.append(b"x" * 10)
    fs.fail_next_fsync()
    with pytest.raises(OSError) as err:
        f.flush()
    assert err.value.errno == errno.EIO
    fs.enospc_after(5)
    with pytest.raises(OSError) as err:
        f.append(b"y" * 10)
    assert err.value.errno == errno.ENOSPC
    assert f.segments[0].file.size() == 15  # the partial write stays until truncated
