"""runtime.store.group_sync: flushes waiting together are done by one syncfs."""

from __future__ import annotations

import platform
from pathlib import Path

import gevent
import pytest

from runtime.store import group_sync
from runtime.store.group_sync import MIN_BATCH, GroupSync, syncfs_available
from runtime.store.segments import FlushPlan
from runtime.store.storage import OS_FS

pytestmark = pytest.mark.timeout(20)


class CountingFile:
    """A StorageFile stand-in that counts its fsyncs (a plan's own path)."""

    def __init__(self) -> None:
        self.fsyncs = 0

    def fsync(self) -> None:
        self.fsyncs += 1


def plans(n: int) -> tuple[list[FlushPlan], list[CountingFile]]:
    files = [CountingFile() for _ in range(n)]
    return [FlushPlan(100 + i, [f], OS_FS, None) for i, f in enumerate(files)], files  # type: ignore[list-item]


def run_all(sync: GroupSync, batch: list[FlushPlan]) -> list[object]:
    jobs = [gevent.spawn(sync.run, p) for p in batch]
    gevent.joinall(jobs, timeout=10)
    return [j.value if j.successful() else j.exception for j in jobs]


def test_a_batch_is_one_syncfs(tmp_path: Path) -> None:
    calls: list[int] = []
    sync = GroupSync(str(tmp_path), sync_fs=calls.append)
    # Given MIN_BATCH flushes asked for at once
    batch, files = plans(MIN_BATCH)
    # Then one syncfs of the store directory's file system answers them all, each with its
    # own target, and no file was synced on its own
    assert run_all(sync, batch) == [100 + i for i in range(MIN_BATCH)]
    assert len(calls) == 1 and sync.group_syncs == 1
    assert [f.fsyncs for f in files] == [0] * MIN_BATCH
    # And the directory's descriptor is kept for the next batch
    run_all(sync, plans(MIN_BATCH)[0])
    assert len(calls) == 2 and calls[0] == calls[1]


def test_a_few_flushes_run_their_own_fsyncs(tmp_path: Path) -> None:
    calls: list[int] = []
    sync = GroupSync(str(tmp_path), sync_fs=calls.append)
    batch, files = plans(MIN_BATCH - 1)
    assert run_all(sync, batch) == [100 + i for i in range(MIN_BATCH - 1)]
    assert calls == [] and [f.fsyncs for f in files] == [1] * (MIN_BATCH - 1)


def test_a_failed_syncfs_fails_every_flush_of_the_batch(tmp_path: Path) -> None:
    def broken(_fd: int) -> None:
        raise OSError(5, "Input/output error")

    sync = GroupSync(str(tmp_path), sync_fs=broken)
    results = run_all(sync, plans(MIN_BATCH)[0])
    assert all(isinstance(r, OSError) and r.errno == 5 for r in results)
    assert sync.group_syncs == 0


def test_without_syncfs_every_flush_runs_its_own(tmp_path: Path) -> None:
    calls: list[int] = []
    sync = GroupSync(str(tmp_path), enabled=False, sync_fs=calls.append)
    batch, files = plans(MIN_BATCH * 2)
    run_all(sync, batch)
    assert calls == [] and [f.fsyncs for f in files] == [1] * (MIN_BATCH * 2)


def test_the_real_syncfs(tmp_path: Path) -> None:
    # Given this machine's C library, Then syncfs is there exactly on glibc, and a batch
    # synced with it succeeds
    assert syncfs_available() is (platform.libc_ver()[0] == "glibc")
    if not syncfs_available():
        pytest.skip("no syncfs here")
    seen: list[int] = []

    def real(fd: int) -> None:
        seen.append(fd)
        group_sync.syncfs(fd)

    sync = GroupSync(str(tmp_path), sync_fs=real)
    (tmp_path / "f").write_bytes(b"x" * 4096)
    assert run_all(sync, plans(MIN_BATCH)[0])[0] == 100
    assert len(seen) == 1
    # And a bad descriptor is an OSError naming the cause
    with pytest.raises(OSError, match="Bad file descriptor"):
        group_sync.syncfs(-1)
