"""Reading the commit log: raw bytes and records by physical offset, and the recovery scan.

``CommitLogReads`` is a part of ``runtime.store.commitlog.CommitLog`` (which sets ``segments``
and ``segment_size``): readers (Queue actors, lookups by offset message id) call ``read`` /
``read_record_bytes`` / ``read_record``; recovery walks the valid records with ``scan``, which
stops at the first invalid byte and says why (``ScanResult``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from runtime.store import record as R
from runtime.store.record_check import check_record
from runtime.store.segments import SegmentedFile

SCAN_CHUNK = 4 * 1024 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024  # StoreSettings.max_message_size's default
_MAX_HEADER = R.header_size(R.STOREHOST_V6_FLAG | R.BORNHOST_V6_FLAG)
_MAX_TAIL = 1 + 255 + 2 + R.MAX_PROPERTIES_SIZE  # topic length byte, topic, props length, props


def max_record_size(max_message_size: int) -> int:
    """The largest record a body of ``max_message_size`` bytes can make."""
    return _MAX_HEADER + max_message_size + _MAX_TAIL


class ScanResult(NamedTuple):
    end: int  # offset just past the last valid record (the new write offset)
    problem: str | None  # why the scan stopped before the end of the data, if it did
    problem_offset: int  # where (== end when problem is set)
    records: int


class CommitLogReads:
    """Reads by physical offset and the scan. See the module docstring."""

    segments: SegmentedFile
    segment_size: int
    max_record_size: int = max_record_size(DEFAULT_MAX_MESSAGE_SIZE)
    """Bound of a read by offset (``max_record_size(settings.max_message_size)``)."""

    # -- reading -------------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> bytes:
        """Raw bytes at a physical offset (within one segment); short or b"" past the end."""
        if offset < 0 or offset >= self.segments.write_offset:
            return b""
        return self.segments.read(offset, min(size, self.segments.write_offset - offset))

    def read_record_bytes(self, offset: int, *, verify_crc: bool = True) -> bytes | None:
        """The raw valid record at ``offset``, or None (not there, removed, or corrupt).

        The offset may be one a client chose (an offset message id), anywhere in the log, even
        inside a body crafted to look like a record: the first read is 4 KiB, and a longer one
        is made only for a size that a record can have (``max_record_size``), that fits in the
        segment and the data written, and that the header's body length agrees with.
        """
        head = self.read(offset, 4096)
        if len(head) < 8:
            return None
        size, magic = R.SIZE_MAGIC.unpack_from(head)
        if magic != R.MAGIC:
            return None  # no record starts here (an offset a client chose may be anywhere)
        if size > len(head):
            room = min(self.segments.segment_end(offset), self.segments.write_offset) - offset
            if size > min(self.max_record_size, room) or not _plausible(head, size):
                return None
            head = self.read(offset, size)
        check = check_record(head, 0, verify_crc=verify_crc)
        if check.size <= 0 or check.blank:
            return None
        return head[: check.size]

    def read_record(self, offset: int, *, verify_crc: bool = True) -> R.StoredRecord | None:
        raw = self.read_record_bytes(offset, verify_crc=verify_crc)
        return None if raw is None else R.decode_record(raw)

    # -- scanning ------------------------------------------------------------------------------

    def scan(
        self,
        start: int,
        on_record: Callable[[memoryview, int, int, int], None] | None = None,
        *,
        verify_crc: bool = True,
        stop_at: int | None = None,
    ) -> ScanResult:
        """Walk valid records from ``start`` (a record boundary) to the end of the data.

        Calls ``on_record(buf, pos, size, physical_offset)`` for every valid record. Stops at
        the first invalid byte (``problem`` says why), at the end of the data, or at ``stop_at``.
        """
        segs = self.segments
        seg_size = self.segment_size
        offset = start
        records = 0
        window = SCAN_CHUNK
        while True:
            if stop_at is not None and offset >= stop_at:
                return ScanResult(offset, None, offset, records)
            seg = segs.segment_at(offset)
            if seg is None:
                return ScanResult(offset, None, offset, records)
            rel = offset - seg.start
            want = min(window, seg_size - rel)
            data = seg.file.pread(want, rel)
            eof = len(data) < want  # the file's data ends inside this window
            view = memoryview(data)
            n = len(data)
            pos = 0
            jump = None
            window = SCAN_CHUNK
            while pos < n:
                if stop_at is not None and offset + pos >= stop_at:
                    break
                check = check_record(view, pos, verify_crc=verify_crc)
                size = check.size
                if check.blank:
                    jump = seg.start + seg_size
                    break
                if size > 0:
                    if on_record is not None:
                        on_record(view, pos, size, offset + pos)
                    records += 1
                    pos += size
                    continue
                if not eof and size < 0 and (n - pos < 8 or check.problem.startswith("torn")):
                    # the window ended inside the record: read again from it, with a window
                    # that holds it whole, if the segment can hold it (else it is damage: a
                    # read that cannot hold more would find the same bytes for ever) and its
                    # header's body length agrees with its size (else it is damage too: a
                    # flipped bit in the size must not make one read of a whole segment)
                    need = 8 if n - pos < 8 else int.from_bytes(view[pos : pos + 4], "big")
                    if need <= seg_size - rel - pos and want < seg_size - rel:
                        again = _window_for(view[pos:], need)
                        if isinstance(again, int):
                            window = again
                            break
                        check = check._replace(problem=again)
                    elif need > 8:
                        check = check._replace(problem=f"totalSize {need} runs past the segment")
                end = offset + pos
                if size == 0 and segs.segment_at(seg.start + seg_size) is not None:
                    return ScanResult(end, "zero bytes before the end of a segment", end, records)
                return ScanResult(end, check.problem, end, records)
            if jump is not None:
                offset = jump
                continue
            offset += pos
            if eof and pos >= n:
                if segs.segment_at(seg.start + seg_size) is not None:
                    problem = "segment ends without an end-of-segment marker"
                    return ScanResult(offset, problem, offset, records)
                return ScanResult(offset, None, offset, records)


def _window_for(head: bytes | memoryview, size: int) -> int | str:
    """The window to read again from a record of ``size`` bytes that the last window cut
    (``head``: its bytes in that window), or why it is damage: a record longer than
    ``SCAN_CHUNK`` is read whole only when its header's body length agrees with ``size``
    (``_plausible``; when ``head`` does not hold the header, a first window from the record
    brings it). No bound by ``max_message_size``: a record stored before that setting was
    lowered is no damage."""
    if size <= SCAN_CHUNK or len(head) < _MAX_HEADER:
        return SCAN_CHUNK
    if _plausible(head[:_MAX_HEADER], size):
        return size
    return f"totalSize {size} disagrees with the record's body length"


def _plausible(head: bytes | memoryview, size: int) -> bool:
    """Whether the body length in ``head`` (a record's first bytes) agrees with ``size``:
    body, topic and properties must fill it."""
    if len(head) < R.SYS_FLAG_AT + 4:
        return False
    hsize = R.header_size(int.from_bytes(head[R.SYS_FLAG_AT : R.SYS_FLAG_AT + 4], "big"))
    if len(head) < hsize:
        return False
    blen = int.from_bytes(head[hsize - 4 : hsize], "big", signed=True)
    rest = size - hsize - blen
    return blen >= 0 and 3 <= rest <= _MAX_TAIL
