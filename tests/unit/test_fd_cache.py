"""The consume queues' descriptor cache: a bounded number of descriptors, nothing lost."""

from __future__ import annotations

import errno
import os
import pathlib
import resource
import subprocess
import sys
import threading

import pytest

from runtime.store import fd_cache
from runtime.store.consumequeue import ConsumeQueue
from runtime.store.faults import FaultyFileSystem
from runtime.store.fd_cache import POOLED_FS, FdCache, PooledFile, for_consume_queues
from runtime.store.storage import OS_FS
from tests.harness import REPO

pytestmark = pytest.mark.timeout(30)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_more_files_than_the_budget_keep_their_bytes_with_at_most_budget_descriptors(
    tmp_path: pathlib.Path,
) -> None:
    # Given a cache of 3 descriptors and 20 files
    cache = FdCache(budget=3)
    before = open_fds()
    files = [PooledFile(str(tmp_path / f"f{i}"), cache) for i in range(20)]
    # When each is written twice, round robin, and read back
    for round_ in range(2):
        for i, f in enumerate(files):
            f.append(f"{i}:{round_};".encode())
            assert cache.open_count <= 3
            assert open_fds() - before <= 3
    # Then every file holds both writes, its size is known without a descriptor
    for i, f in enumerate(files):
        assert f.pread(100, 0) == f"{i}:0;{i}:1;".encode()
        assert f.size() == len(f"{i}:0;{i}:1;")
    assert cache.evictions > 0
    # and truncate and fsync reopen an evicted file too
    files[0].truncate(2)
    files[0].fsync()
    assert (tmp_path / "f0").read_bytes() == b"0:"
    for f in files:
        f.close()
    assert cache.open_count == 0
    assert open_fds() == before


def test_a_released_file_gives_its_descriptor_back_and_reopens_on_next_use(
    tmp_path: pathlib.Path,
) -> None:
    # Given a written file holding a descriptor
    cache = FdCache(budget=4)
    before = open_fds()
    f = PooledFile(str(tmp_path / "f"), cache)
    f.append(b"one;")
    assert f.has_descriptor and cache.open_count == 1
    # When it is released (twice: the second does nothing)
    f.release()
    f.release()
    # Then the descriptor is closed and the file stays usable: read, written, synced
    assert not f.has_descriptor and cache.open_count == 0 and open_fds() == before
    assert f.pread(100, 0) == b"one;"
    assert f.has_descriptor and cache.open_count == 1
    f.release()
    f.append(b"two;")
    f.release()
    f.fsync()
    assert (tmp_path / "f").read_bytes() == b"one;two;"
    assert cache.evictions == 0
    f.close()
    assert open_fds() == before


def test_a_deleted_file_is_never_recreated_by_a_reopen(tmp_path: pathlib.Path) -> None:
    # Given a file whose descriptor was evicted
    cache = FdCache(budget=1)
    a = PooledFile(str(tmp_path / "a"), cache)
    a.append(b"data")
    PooledFile(str(tmp_path / "b"), cache)
    # When the file is deleted, then used
    os.remove(tmp_path / "a")
    # Then the use fails and the file stays gone
    with pytest.raises(FileNotFoundError):
        a.pread(4, 0)
    assert not (tmp_path / "a").exists()


def test_a_closed_file_refuses_use_and_opens_nothing(tmp_path: pathlib.Path) -> None:
    cache = FdCache(budget=4)
    f = PooledFile(str(tmp_path / "c"), cache)
    f.close()
    with pytest.raises(OSError) as err:
        f.append(b"x")
    assert err.value.errno == errno.EBADF
    assert cache.open_count == 0


def test_an_fsync_keeps_its_descriptor_when_the_file_is_evicted_or_closed_meanwhile(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cache of 2 descriptors and an fsync that blocks until released
    cache = FdCache(budget=2)
    f = PooledFile(str(tmp_path / "synced"), cache)
    f.append(b"abc")
    entered, release = threading.Event(), threading.Event()
    synced: list[int] = []

    def slow_fsync(fd: int) -> None:
        entered.set()
        assert release.wait(10)
        assert os.fstat(fd).st_size == 3  # the descriptor is still this file's
        synced.append(fd)

    monkeypatch.setattr(fd_cache.os, "fsync", slow_fsync)
    worker = threading.Thread(target=f.fsync)
    worker.start()
    assert entered.wait(10)
    fd = f._fd
    # When other files take every slot, and the file is closed meanwhile
    others = [PooledFile(str(tmp_path / f"o{i}"), cache) for i in range(5)]
    for other in others:
        other.append(b"y")
    f.close()
    assert f._fd == -1
    assert f not in cache._open
    # Then the fsync's own descriptor still names the file until the fsync returns
    release.set()
    worker.join(10)
    assert len(synced) == 1 and synced[0] != fd


def test_consume_queues_use_the_pooled_files_on_the_real_file_system_only() -> None:
    assert for_consume_queues(OS_FS) is POOLED_FS
    faulty = FaultyFileSystem()
    assert for_consume_queues(faulty) is faulty


def test_thousands_of_consume_queues_hold_at_most_the_budget(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the process cache cut to 8 descriptors
    monkeypatch.setattr(fd_cache.FD_CACHE, "_budget", 8)
    before = open_fds()
    # When 300 consume queues are created, appended to and reopened
    queues = [ConsumeQueue(str(tmp_path), f"T{i}", i % 4, entries_per_file=2) for i in range(300)]
    for n, cq in enumerate(queues):
        cq.append([(q, 100 * n + 30 * q, 30, 7) for q in range(3)])
    assert open_fds() - before <= 8
    # Then each reads back its entries (in two segments) after the others took the slots
    for n, cq in enumerate(queues):
        assert cq.max_offset == 3
        assert [cq.entry(q).physical_offset for q in range(3)] == [
            100 * n + 30 * q for q in range(3)
        ]
        cq.close()
    again = ConsumeQueue(str(tmp_path), "T7", 3, entries_per_file=2)
    assert again.entry(2).physical_offset == 760
    again.close()


def test_directory_syncs_in_a_monkey_patched_program_close_their_descriptors_at_once(
    tmp_path: pathlib.Path,
) -> None:
    # Given a monkey-patched program with a hub (gevent's os.close defers closing a descriptor
    # that is not a regular file to the loop's next iteration)
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import gevent, os, sys\n"
        "gevent.get_hub()\n"
        "from runtime.store.storage import fsync_dir\n"
        "before = len(os.listdir('/proc/self/fd'))\n"
        "for _ in range(300): fsync_dir(sys.argv[1])\n"
        "print(len(os.listdir('/proc/self/fd')) - before)\n"
    )
    # When it syncs a directory 300 times without yielding to the loop
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    # Then no descriptor is left open
    assert out.stdout.strip() == "0", out.stderr


def test_the_budget_is_half_the_soft_limit_unless_the_environment_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(fd_cache.BUDGET_ENV, raising=False)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        assert fd_cache.default_budget() == max(fd_cache.MIN_BUDGET, soft // 2)
    monkeypatch.setenv(fd_cache.BUDGET_ENV, "2")
    assert fd_cache.default_budget() == 2
    monkeypatch.setenv(fd_cache.BUDGET_ENV, "zero")
    assert fd_cache.default_budget() >= fd_cache.MIN_BUDGET
