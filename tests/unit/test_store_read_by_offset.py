"""Reading a record by a physical offset that a client chose (VIEW_MESSAGE_BY_ID, an offset
message id): an offset that is no record's start costs one small read, never a read of the
rest of the segment."""

from __future__ import annotations

import os
import pathlib

import pytest

from runtime.store import record as R
from runtime.store.commitlog import AppendedBatch, CommitLog
from runtime.store.storage import OsFile, OsFileSystem

pytestmark = pytest.mark.timeout(30)

SEGMENT = 8 * 1024 * 1024


class _CountingFile(OsFile):
    """A real file that records how many bytes each ``pread`` asked for."""

    __slots__ = ("asked",)

    def __init__(self, path: str, asked: list[int]) -> None:
        super().__init__(path)
        self.asked = asked

    def pread(self, n: int, offset: int) -> bytes:
        self.asked.append(n)
        return super().pread(n, offset)


class _CountingFileSystem(OsFileSystem):
    def __init__(self) -> None:
        self.asked: list[int] = []

    def open(self, path: str) -> _CountingFile:
        return _CountingFile(path, self.asked)


def test_an_offset_inside_a_body_is_answered_none_after_one_small_read(
    tmp_path: pathlib.Path,
) -> None:
    # Given a record whose body starts with a large positive int (what any offset into data
    # can find), far from the end of an 8 MiB segment
    fs = _CountingFileSystem()
    log = CommitLog(str(tmp_path / "commitlog"), SEGMENT, fs)
    body = (0x00700000).to_bytes(4, "big") + os.urandom(64)
    first = R.PutRecord(topic="T", queue_id=0, body=body)
    filler = R.PutRecord(topic="T", queue_id=0, body=b"x" * (4 * 1024 * 1024))
    out = log.append_batch([first, filler], {}, 1, 8 << 20)
    assert isinstance(out, AppendedBatch)
    body_at = out.physical_offsets[0] + R.header_size(0)
    assert log.read(body_at, 4) == body[:4]
    log.segments.drop_tail_cache()  # (read from the file, as an old record is)
    # When it is read by the offset of its body (no record starts there)
    fs.asked.clear()
    got = log.read_record_bytes(body_at)
    # Then nothing is found, and no more than the first small read was made
    assert got is None
    assert max(fs.asked) <= 4096
    # and a real record is still read whole
    assert log.read_record_bytes(out.physical_offsets[1]) is not None
    log.segments.close()
