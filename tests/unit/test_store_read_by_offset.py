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


def _fake_header(size: int, body_len: int) -> bytes:
    """The first bytes of a record claiming ``size`` and ``body_len``, as a body may hold."""
    head = bytearray(R.HEADER_SIZE)
    head[0:4] = size.to_bytes(4, "big")
    head[4:8] = R.MAGIC.to_bytes(4, "big")
    head[R.HEADER_SIZE - 4 :] = body_len.to_bytes(4, "big", signed=True)
    return bytes(head)


@pytest.mark.parametrize(
    ("claimed", "body_len", "filler"),
    [
        # larger than any record max_message_size (4 MiB here) allows
        (4 * 1024 * 1024 + 512 * 1024, 4 * 1024 * 1024 + 512 * 1024 - 100, 4 * 1024 * 1024),
        # a size a record can have, but its body length does not fill it
        (3 * 1024 * 1024, 17, 4 * 1024 * 1024),
        # a consistent header, but past the data written
        (3 * 1024 * 1024, 3 * 1024 * 1024 - 100, 1024 * 1024),
    ],
    ids=["over-max-message-size", "inconsistent-body-length", "past-the-written-data"],
)
def test_a_body_crafted_to_look_like_a_record_costs_one_small_read(
    tmp_path: pathlib.Path, claimed: int, body_len: int, filler: int
) -> None:
    # Given a record whose body starts with a record's size and magic (and more of a header),
    # followed by megabytes of data in the same segment
    fs = _CountingFileSystem()
    log = CommitLog(str(tmp_path / "commitlog"), SEGMENT, fs, max_message_size=4 * 1024 * 1024)
    body = _fake_header(claimed, body_len) + os.urandom(64)
    first = R.PutRecord(topic="T", queue_id=0, body=body)
    rest = R.PutRecord(topic="T", queue_id=0, body=b"x" * filler)
    out = log.append_batch([first, rest], {}, 1, 8 << 20)
    assert isinstance(out, AppendedBatch)
    body_at = out.physical_offsets[0] + R.header_size(0)
    log.segments.drop_tail_cache()
    # When it is read by the offset of its body (an offset message id a client made up)
    fs.asked.clear()
    got = log.read_record_bytes(body_at)
    # Then nothing is found after one read of at most 4 KiB
    assert got is None
    assert max(fs.asked) <= 4096
    # and the real records are still read whole
    assert log.read_record_bytes(out.physical_offsets[0]) is not None
    assert log.read_record_bytes(out.physical_offsets[1]) is not None
    log.segments.close()
