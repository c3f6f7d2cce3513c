"""The key index's durability and damage handling: what ``IndexService.flush`` fsyncs, corrupt
index files at load, and index files rebuilt from the commit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.store import record_dispatch as RD
from runtime.store.index import IndexService
from runtime.store.index_file import IndexFile


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
