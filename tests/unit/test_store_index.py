"""The key index's durability and damage handling: what ``IndexService.flush`` fsyncs, corrupt
index files at load, and index files rebuilt from the commit log."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from loguru import logger

from runtime.store import record_dispatch as RD
from runtime.store.index import IndexService
from runtime.store.index_file import HEADER_SIZE, IndexFile


def entry(topic: str, phys: int, ts: int, *keys: str) -> RD.DispatchEntry:
    return RD.DispatchEntry(topic, 0, 0, phys, 10, 0, ts, 0, keys)


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the index files whose ``flush`` actually fsynced, in order."""
    out: list[str] = []
    real = IndexFile.flush

    def recording(self: IndexFile) -> None:
        before = self.synced
        real(self)
        if self.synced != before:
            out.append(self.path)

    monkeypatch.setattr(IndexFile, "flush", recording)
    return out


def test_flush_fsyncs_every_file_written_since_the_last_flush(
    tmp_path: Path, fsynced: list[str]
) -> None:
    # Given an index whose files hold 2 entries each, and one batch that fills four of them
    idx = IndexService(str(tmp_path), slots=7, capacity=2)
    idx.flush()
    fsynced.clear()
    idx.put_entries([entry("T", i * 10, 1000 + i, "k") for i in range(7)])
    assert len(idx.files) == 4
    # When the index is flushed
    idx.flush()
    # Then every file written is fsynced, the ones that filled up early too
    assert sorted(fsynced) == sorted(f.path for f in idx.files)
    # and a flush with nothing new fsyncs nothing, one after a write only the file written
    fsynced.clear()
    idx.flush()
    assert fsynced == []
    idx.put_entries([entry("T", 70, 1007, "k")])
    idx.flush()
    assert fsynced == [idx.files[-1].path]
    idx.close()


def _fsyncs_of(idx: IndexService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of ``idx``'s files, once per ``os.fsync`` of the file's descriptor from now on."""
    paths = {f._fd: f.path for f in idx.files}
    out: list[str] = []
    real = os.fsync

    def counting(fd: int) -> None:
        if fd in paths:
            out.append(paths[fd])
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return out


def test_recovery_fsyncs_only_the_index_files_it_trimmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an index of four files made durable and closed (records at 0, 10, .., 60)
    idx = IndexService(str(tmp_path), slots=7, capacity=2)
    idx.put_entries([entry("T", i * 10, 1000 + i, "k") for i in range(7)])
    idx.flush()
    idx.close()
    again = IndexService(str(tmp_path), slots=7, capacity=2)
    assert [f.begin_phys for f in again.files] == [0, 20, 40, 60]
    fsyncs = _fsyncs_of(again, monkeypatch)
    # When recovery finds the log ending where the index does, and the index is flushed
    assert again.recover(0, 70) == 0
    again.flush()
    # Then no file is fsynced: recovery changed none
    assert fsyncs == []
    # When the log turns out to end inside the last file's range
    assert again.recover(0, 65) == 0
    again.flush()
    # Then only that file (its covered range cut to the log's end) is fsynced
    assert fsyncs == [again.files[-1].path]
    assert again.files[-1].end_phys == 65
    # When the log ends before the third file's last record (the fourth file goes)
    fsyncs.clear()
    assert again.recover(0, 45) == 2
    again.flush()
    # Then only the third file, trimmed, is fsynced; the first two are left alone
    assert [f.begin_phys for f in again.files] == [0, 20, 40]
    assert fsyncs == [again.files[-1].path]
    assert again.query("T", "k", 10, 0, 10**13) == [40, 30, 20, 10, 0]
    again.close()


def _corrupt(path: str, **fields: int) -> None:
    """Rewrite header fields of a closed index file (``index_file._HEADER``'s layout)."""
    with open(path, "r+b") as fh:
        head = bytearray(fh.read(HEADER_SIZE))
        for name, value in fields.items():
            at, fmt = _HEADER_FIELDS[name]
            struct.pack_into(fmt, head, at, value)
        fh.seek(0)
        fh.write(head)


_HEADER_FIELDS = {
    "slots": (8, "=I"),
    "capacity": (12, "=I"),
    "count": (16, "=I"),
    "begin_phys": (40, "=q"),
    "end_phys": (48, "=q"),
}


@pytest.mark.parametrize(
    "damage",
    [
        {"slots": 0},
        {"capacity": 0},
        {"capacity": 50},  # more than the file's size holds
        {"count": 1000},  # past the capacity
        {"begin_phys": 30},  # not where its name says it starts
        {"begin_phys": 20, "end_phys": 10},
    ],
    ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()),
)
def test_a_corrupt_header_is_dropped_at_load_with_a_warning(
    tmp_path: Path, damage: dict[str, int]
) -> None:
    # Given an index of two files, and the header of the second one damaged
    idx = IndexService(str(tmp_path), slots=7, capacity=5)
    idx.put_entries([entry("T", i * 10, 1000 + i, "k") for i in range(8)])
    first, second = (f.path for f in idx.files)
    size = os.path.getsize(second)
    idx.close()
    _corrupt(second, **damage)
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        # When the index is loaded
        again = IndexService(str(tmp_path), slots=7, capacity=5)
    finally:
        logger.remove(sink)
    # Then the damaged file is dropped with a warning that names it, its size untouched,
    assert [f.path for f in again.files] == [first]
    assert any("corrupt index file" in w and second in w for w in warnings), warnings
    assert not os.path.exists(second) and size > 0
    # and the index still answers from what is left
    assert again.query("T", "k", 10, 0, 10**13) == [40, 30, 20, 10, 0]
    again.put_entries([entry("T", 80, 1008, "k")])
    assert again.query("T", "k", 1, 0, 10**13)[0] == 80
    again.close()


def test_holes_are_the_ranges_dropped_files_covered(tmp_path: Path) -> None:
    # Given an index of four files whose first keyed record is not the log's first
    idx = IndexService(str(tmp_path), slots=7, capacity=2)
    unkeyed = entry("T", 0, 999)
    idx.put_entries([unkeyed, *(entry("T", 10 + i * 10, 1000 + i, "k") for i in range(7))])
    starts = [f.begin_phys for f in idx.files]
    assert starts == [10, 30, 50, 70]
    # Then nothing is a hole: the range before the first keyed record is not
    assert idx.holes(0, 80) == []
    idx.close()
    # When the second and the first file are dropped (corrupt)
    for name in sorted(os.listdir(tmp_path / "index"))[:2]:
        _corrupt(str(tmp_path / "index" / name), slots=0)
    again = IndexService(str(tmp_path), slots=7, capacity=2)
    # Then their ranges are, within the log's bounds
    assert again.dropped == [10, 30]
    assert again.holes(0, 80) == [(10, 50)]
    assert again.holes(20, 80) == [(20, 50)]
    again.close()
