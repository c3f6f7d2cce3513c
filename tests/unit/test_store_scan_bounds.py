"""Recovery's scan reads a record longer than its window again, whole: only when the record's
header agrees with its size, so a flipped bit in a size field cannot make it read a whole
segment (1 GiB by default) into memory at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.store import commitlog_reads
from runtime.store import record as R
from runtime.store.commitlog import AppendedBatch, CommitLog
from runtime.store.faults import PreadSizes

CHUNK = 4096  # the scan's window here (SCAN_CHUNK: 4 MiB)
SEG = 1 << 20


@pytest.fixture(autouse=True)
def _small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commitlog_reads, "SCAN_CHUNK", CHUNK)


def written(root: Path, body_len: int, n: int, **kw: int) -> AppendedBatch:
    log = CommitLog(str(root), SEG, **kw)
    batch = [R.PutRecord("T", 0, bytes([i]) * body_len, "") for i in range(n)]
    out = log.append_batch(batch, {}, 1, 1 << 20)
    assert isinstance(out, AppendedBatch)
    log.segments.close()
    return out


def test_a_corrupt_size_across_the_window_is_damage_not_a_segment_long_read(
    tmp_path: Path,
) -> None:
    # Given a log whose record across the scan window's end has a corrupt size field, one that
    # fits in the segment (a flipped high bit)
    out = written(tmp_path, 900, 12)
    phys = next(p for p in out.physical_offsets if p < CHUNK < p + 1000)
    seg = os.path.join(tmp_path, f"{0:020d}")
    with open(seg, "r+b") as fh:
        fh.seek(phys)
        fh.write((900_000).to_bytes(4, "big"))
    # When the scan walks it
    fs = PreadSizes()
    log = CommitLog(str(tmp_path), SEG, fs)
    result = log.scan(0)
    # Then it stops there, calling it damage, having read no more than a window at a time
    # (it read the 900,000 bytes the size claimed: a whole segment for a size near 1 GiB)
    assert result.end == phys
    assert result.problem == "totalSize 900000 disagrees with the record's body length"
    assert max(fs.asked) <= CHUNK, fs.asked
    log.segments.close()


def test_records_longer_than_the_window_are_read_whole(tmp_path: Path) -> None:
    # Given records longer than the scan's window, stored before maxMessageSize was lowered
    # below them
    out = written(tmp_path, 6000, 5)
    log = CommitLog(str(tmp_path), SEG, max_message_size=1000)
    # When the scan walks them, Then every one is valid
    result = log.scan(0)
    assert (result.end, result.problem, result.records) == (out.end, None, 5)
    log.segments.close()
