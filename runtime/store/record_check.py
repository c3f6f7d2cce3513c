"""Checking raw commit-log bytes: is there a valid record (or an end-of-segment marker) here?

``check_record`` validates the record at one position (magic, length fields, optionally the body
CRC) and says what it found (``RecordCheck``: a record, a blank marker, the end of the data, or
corruption and why): recovery's scan, reads by physical offset and replication use it.
``check_run`` is the read path's check of the records a pull serves (the C
``runtime.store._fastlog.check_run`` does the same; this is its reference).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

from runtime.store.record import (
    BLANK_MAGIC,
    BLANK_SIZE,
    HEADER_SIZE,
    MAGIC,
    MIN_RECORD_SIZE,
    SIZE_MAGIC,
    header_size,
)

_H = struct.Struct(">h")


class RecordCheck(NamedTuple):
    """Outcome of ``check_record`` at one position: exactly one of the cases holds.

    ``size > 0`` and not ``blank``: a valid record of that size. ``blank``: an end-of-segment
    marker (``size`` = remaining bytes it covers). ``size == 0``: no more data here (the end).
    ``size < 0``: corrupt or torn; ``problem`` says why.
    """

    size: int
    blank: bool = False
    problem: str | None = None


END = RecordCheck(0)


def check_record(buf: bytes | memoryview, pos: int, *, verify_crc: bool = True) -> RecordCheck:
    """Validate the record starting at ``buf[pos]`` (``buf`` may end anywhere).

    A record is valid when its magic, its length fields and (optionally) its body CRC agree.
    A torn record (the buffer ends inside it) is reported as corrupt.
    """
    avail = len(buf) - pos
    if avail < 8:
        if avail == 0 or not any(buf[pos:]):
            return END
        return RecordCheck(-1, problem=f"{avail} stray bytes at the end")
    size, magic = SIZE_MAGIC.unpack_from(buf, pos)
    if magic == BLANK_MAGIC:
        if size < BLANK_SIZE:
            return RecordCheck(-1, problem=f"blank marker with remaining {size}")
        return RecordCheck(size, blank=True)
    if magic != MAGIC:
        if size == 0 and magic == 0 and not any(buf[pos : pos + 64]):
            return END  # zero-filled: never written
        return RecordCheck(-1, problem=f"bad magic 0x{magic:08X}")
    if size < MIN_RECORD_SIZE:
        return RecordCheck(-1, problem=f"totalSize {size} below the minimum")
    if size > avail:
        return RecordCheck(-1, problem=f"torn record: totalSize {size}, {avail} bytes present")
    _size, _magic, crc, sys_flag = _CHECK_HEAD.unpack_from(buf, pos)
    head = header_size(sys_flag)  # IPv6 hosts make it longer
    if head + 3 > size:
        return RecordCheck(-1, problem=f"totalSize {size} below the minimum for sysFlag {sys_flag}")
    (blen,) = _I.unpack_from(buf, pos + head - 4)
    if blen < 0 or head + blen + 3 > size:
        return RecordCheck(-1, problem=f"bodyLen {blen} inconsistent with totalSize {size}")
    tpos = pos + head + blen
    ppos = tpos + 1 + buf[tpos]
    if ppos + 2 > pos + size:
        return RecordCheck(-1, problem="topic length runs past the record")
    (plen,) = _H.unpack_from(buf, ppos)
    if plen < 0 or ppos + 2 + plen != pos + size:
        return RecordCheck(-1, problem="length fields do not add up to totalSize")
    if verify_crc and zlib.crc32(buf[pos + head : tpos]) & 0x7FFFFFFF != crc:
        return RecordCheck(-1, problem="body CRC mismatch")
    return RecordCheck(size)


_CHECK_HEAD = struct.Struct(">iIi24xi")  # totalSize, magic, bodyCRC, sysFlag
_I = struct.Struct(">i")


def check_run(
    data: bytes,
    start: int,
    entries: Sequence[tuple[int, int, int]],
    queue_id: int,
    verify_crc: bool,
) -> int:
    """How many of ``entries`` ((queue offset, commit-log offset, size), in order) are, from the
    first on, valid records of queue ``queue_id`` in ``data`` (the log's bytes from ``start``):
    ``check_record`` says so with exactly that size, and the record names that queue and queue
    offset. The read path's check; ``runtime.store._fastlog.check_run`` does the same in C."""
    for n, (q, phys, size) in enumerate(entries):
        pos = phys - start
        if pos < 0 or pos + size > len(data):
            return n
        check = check_record(data, pos, verify_crc=verify_crc)
        if (
            check.size != size
            or check.blank
            or _QOFF_AT.unpack_from(data, pos + 20)[0] != q
            or int.from_bytes(data[pos + 12 : pos + 16], "big", signed=True) != queue_id
        ):
            return n
    return len(entries)


_QOFF_AT = struct.Struct(">q")
assert _CHECK_HEAD.size == 40 < HEADER_SIZE
