"""Consume queues under retention: files deleted below the commit log's minimum."""

from __future__ import annotations

import os
import pathlib

import pytest

from runtime.store.consumequeue import ConsumeQueue
from runtime.store.fd_cache import FD_CACHE

pytestmark = pytest.mark.timeout(30)


def _descriptors_of_deleted_files(directory: pathlib.Path) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)) and target.endswith("(deleted)"):
            out.append(target)
    return out


def test_deleted_consume_queue_files_give_their_descriptors_and_disk_space_back(
    tmp_path: pathlib.Path,
) -> None:
    # Given a consume queue on the real file system (pooled descriptors) with 4 files of 10
    cq = ConsumeQueue(str(tmp_path), "T", 0, entries_per_file=10)
    cq.append((i, 100 * i, 100, 0) for i in range(35))
    assert len(cq.file.segments) == 4
    open_before = FD_CACHE.open_count
    # When retention moved the log's minimum past the first two files' records
    deleted = cq.delete_files_below(100 * 25)
    # Then the two files are gone from the disk, and no descriptor keeps them alive
    assert deleted == 2
    assert cq.min_offset == 25
    assert len(os.listdir(tmp_path / "consumequeue" / "T" / "0")) == 2
    assert _descriptors_of_deleted_files(tmp_path) == []
    assert FD_CACHE.open_count == open_before - 2
    # and the queue still reads and appends
    assert cq.entry(25) is not None and cq.entry(25).physical_offset == 2500
    cq.append([(35, 3500, 100, 0)])
    assert cq.max_offset == 36
    cq.close()
