"""SegmentedFile's tail cache: recent appends are read from memory, and never stale.

Every read of a cached file must return exactly what the same read of an uncached twin
(same operations, its own directory) returns from disk: checked step by step over random
sequences of appends, truncations, segment skips and reads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.store.commitlog import CommitLog
from runtime.store.consumequeue import ENTRY, ConsumeQueue
from runtime.store.segments import SegmentedFile
from runtime.store.storage import OS_FS, OsFile, StorageFile

SEG = 256


class CountingFs:
    """The OS file system, counting ``pread`` calls (a unit-test probe, not a fake store)."""

    def __init__(self) -> None:
        self.preads = 0

    def open(self, path: str) -> StorageFile:
        fs = self

        class Counted(OsFile):
            def pread(self, n: int, offset: int) -> bytes:
                fs.preads += 1
                return super().pread(n, offset)

        return Counted(path)

    def remove(self, path: str) -> None:
        OS_FS.remove(path)

    def fsync_dir(self, path: str) -> None:
        OS_FS.fsync_dir(path)


def test_recent_appends_are_read_from_memory_and_older_ones_from_the_file(
    tmp_path: Path,
) -> None:
    # Given a file that keeps its last 100 bytes (to 200) in memory
    fs = CountingFs()
    f = SegmentedFile(str(tmp_path), SEG, fs, tail_cache=100)
    for i in range(10):
        f.append(bytes([i]) * 30)  # 300 bytes over two segments
    # When a reader asks for the newest bytes, Then they come without a pread, correct
    assert f.read(290, 10) == bytes([9]) * 10
    assert f.read(260, 40) == bytes([8]) * 10 + bytes([9]) * 30
    assert fs.preads == 0
    # And a read inside the cache stops at the segment's end, as a pread does
    assert f.read(200, 100) == bytes([6]) * 10 + bytes([7]) * 30 + bytes([8]) * 16
    assert fs.preads == 0
    # And older bytes come from the file
    assert f.read(0, 30) == bytes([0]) * 30
    assert fs.preads == 1
    # And past the end there is nothing
    assert f.read(300, 10) == b""


def test_truncation_and_a_new_append_never_leave_stale_bytes(tmp_path: Path) -> None:
    # Given a cached file with a tail written
    f = SegmentedFile(str(tmp_path), SEG, tail_cache=1000)
    f.append(b"a" * 100)
    # When it is truncated into the cached range and different bytes are appended
    f.truncate(60)
    f.append(b"b" * 20)
    # Then reads see the new bytes, and nothing past the new end
    assert f.read(50, 100) == b"a" * 10 + b"b" * 20
    # When it is truncated below everything cached, Then reads still match the file
    f.truncate(10)
    assert f.read(0, 100) == b"a" * 10
    f.append(b"c" * 5)
    assert f.read(0, 100) == b"a" * 10 + b"c" * 5


def test_skipping_to_the_next_segment_empties_the_cache(tmp_path: Path) -> None:
    # Given a cached file that ends inside its first segment
    f = SegmentedFile(str(tmp_path), SEG, tail_cache=1000)
    f.append(b"x" * 100)
    # When the writer skips to the next segment and appends there
    f.skip_to_next_segment()
    f.append(b"y" * 10)
    # Then the skipped range reads as the file has it, and the new bytes read back
    assert f.read(0, SEG) == b"x" * 100
    assert f.read(SEG, 100) == b"y" * 10


def _truncation_point(f: SegmentedFile, wanted: int) -> int:
    """``wanted`` moved down to where the file has bytes up to it (the store truncates at
    record boundaries, never into the gap a segment skip leaves)."""
    at = min(wanted, f.write_offset)
    for seg in reversed(f.segments):
        if seg.start <= at:
            return min(at, seg.end)
    return min(at, f.segments[0].start) if f.segments else at


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 300)),
        st.tuples(st.just("truncate"), st.integers(0, 2000)),
        st.tuples(st.just("skip"), st.just(0)),
        st.tuples(st.just("read"), st.integers(0, 2000), st.integers(1, 400)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.integers(1, 300))
def test_a_cached_file_reads_exactly_what_an_uncached_one_does(
    ops: list[tuple[int | str, ...]], cap: int
) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        cached = SegmentedFile(a, SEG, tail_cache=cap)
        plain = SegmentedFile(b, SEG)
        counter = 0
        for op in ops:
            if op[0] == "append":
                counter += 1
                data = bytes((counter + i) % 251 for i in range(int(op[1])))
                assert cached.append(data) == plain.append(data)
            elif op[0] == "truncate":
                at = _truncation_point(plain, int(op[1]))
                cached.truncate(at)
                plain.truncate(at)
            elif op[0] == "skip" and plain.write_offset % SEG:
                cached.skip_to_next_segment()
                plain.skip_to_next_segment()
            elif op[0] == "read":
                offset, n = int(op[1]), int(op[2])
                assert cached.read(offset, n) == plain.read(offset, n), (offset, n)
            assert cached.write_offset == plain.write_offset
        for offset in range(0, plain.write_offset, 37):
            assert cached.read(offset, 64) == plain.read(offset, 64)
        cached.close()
        plain.close()


def test_the_commit_log_and_consume_queues_read_a_caught_up_tail_without_pread(
    tmp_path: Path,
) -> None:
    # Given a consume queue with entries appended one at a time, as dispatch does
    fs = CountingFs()
    cq = ConsumeQueue(str(tmp_path), "T", 0, entries_per_file=1000, fs=fs)
    for i in range(50):
        cq.append_block(i, ENTRY.pack(i * 100, 100, 7))
    # When a consumer that keeps up reads the newest entries, Then no pread was needed
    assert [e.physical_offset for e in cq.entries(45, 32)] == [4500, 4600, 4700, 4800, 4900]
    assert fs.preads == 0
    # And the commit log is built with a tail cache too
    log = CommitLog(str(tmp_path / "log"), 1 << 20)
    assert log.segments._tail_cap > 0
    assert os.path.isdir(tmp_path / "log")
