"""The native fsync thread (``runtime.store._fsyncer``) through its gevent side
(``runtime.store.fsyncer.Fsyncer``), and which flushes may use it (``FlushPlan.fds``). Skipped
when the extension is not built; the fallback (the hub's thread pool) is what every store test
on the fault-injecting file system runs."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from runtime.store.faults import FaultyFileSystem
from runtime.store.fsyncer import Fsyncer
from runtime.store.segments import SegmentedFile

pytest.importorskip("runtime.store._fsyncer")

T = 5.0


@pytest.fixture
def fsyncer() -> Iterator[Fsyncer]:
    f = Fsyncer.open()
    assert f is not None
    yield f
    f.close()


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    n = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    yield n
    os.close(n)


def test_fsync_returns_after_syncing(fsyncer: Fsyncer, fd: int) -> None:
    # Given a file with an unsynced write
    os.write(fd, b"x" * 1000)
    # When it is fsynced through the native thread, then the calling greenlet resumes
    gevent.with_timeout(T, fsyncer.fsync, [fd, fd])
    assert fsyncer.submitted == 1


def test_a_failing_fsync_raises_its_errno(fsyncer: Fsyncer) -> None:
    # Given a descriptor fsync refuses (a pipe: EINVAL)
    r, w = os.pipe()
    try:
        # When it is fsynced, then the caller gets OSError with that errno
        with pytest.raises(OSError) as info:
            gevent.with_timeout(T, fsyncer.fsync, [r])
        assert info.value.errno == errno.EINVAL
    finally:
        os.close(r)
        os.close(w)


def test_a_closed_descriptor_fails_at_submission(fsyncer: Fsyncer, tmp_path: Path) -> None:
    # Given a descriptor that is closed
    n = os.open(tmp_path / "g", os.O_RDWR | os.O_CREAT)
    os.close(n)
    # When it is submitted, then EBADF at once (the thread never sees it)
    with pytest.raises(OSError) as info:
        fsyncer.fsync([n])
    assert info.value.errno == errno.EBADF


def test_concurrent_callers_each_get_their_outcome(fsyncer: Fsyncer, fd: int) -> None:
    # Given a pipe among the files of some callers
    r, w = os.pipe()
    try:
        # When eight greenlets fsync at once, every other one with the pipe
        jobs = [gevent.spawn(fsyncer.fsync, [fd] if i % 2 else [fd, r]) for i in range(8)]
        gevent.joinall(jobs, timeout=T)
        # Then each finished, and exactly the pipe's callers failed
        assert all(j.ready() for j in jobs)
        failed = [i for i, j in enumerate(jobs) if j.exception is not None]
        assert failed == [0, 2, 4, 6]
    finally:
        os.close(r)
        os.close(w)


def test_close_wakes_a_waiting_caller(fd: int) -> None:
    # Given a caller waiting for its fsync
    f = Fsyncer.open()
    assert f is not None
    job = gevent.spawn(f.fsync, [fd])
    gevent.sleep(0)
    # When the fsyncer closes before the hub collected the outcome
    f.close()
    # Then the caller still gets it, and later calls are refused
    job.join(T)
    assert job.successful()
    with pytest.raises(ValueError):
        f.fsync([fd])


def test_pure_python_asks_for_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given ACTORMQ_PURE_PYTHON=1, when an fsyncer is asked for, then there is none
    monkeypatch.setenv("ACTORMQ_PURE_PYTHON", "1")
    assert Fsyncer.open() is None


def test_flush_plans_use_descriptors_of_plain_files_only(tmp_path: Path) -> None:
    # Given a segmented file on the OS and one on the fault-injecting file system
    plain = SegmentedFile(str(tmp_path / "plain"), 4096)
    faulty = SegmentedFile(str(tmp_path / "faulty"), 4096, FaultyFileSystem())
    for seg in (plain, faulty):
        seg.append(b"x" * 100)
    # When each prepares its first flush, the directory is due too (a segment was created)
    first = plain.prepare_flush()
    assert first is not None and first.fds() is None
    first.run()
    # Then later flushes of plain files are descriptors, and faulty files never are
    plain.append(b"y" * 100)
    later = plain.prepare_flush()
    assert later is not None and later.fds() == [plain.segments[-1].file.fileno()]
    faulty.prepare_flush()
    faulty.append(b"y" * 100)
    plan = faulty.prepare_flush()
    assert plan is not None and plan.fds() is None
