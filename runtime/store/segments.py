"""Segmented append-only files: the commit log and each consume queue.

A ``SegmentedFile`` is a directory of files named by their 20-digit start offset, each
``segment_size`` bytes at most, starts aligned to multiples of ``segment_size``. Offsets are
absolute ("physical") byte offsets across the whole sequence. Appends go to the kernel with
``os.pwrite`` (see ``storage``); ``flush`` fsyncs every segment with unflushed bytes, plus the
directory when segments were created since the last flush.

Flushing is split so the fsync can run in a worker thread while the hub keeps appending:
``prepare_flush()`` (hub) captures what to sync, ``FlushPlan.run()`` (any thread) syncs, and
``flushed_to(offset)`` (hub) records the result.

A file may keep the last bytes it appended in memory (``tail_cache``): a reader that keeps up
with the writer (a consumer's long poll woken by the append it waits for) then gets them
without a ``pread``, as RocketMQ's readers get the tail from its mapped files. The cache holds
exactly ``[tail_start, write_offset)``; truncation trims it, a jump of ``write_offset`` empties
it, and a read checks that invariant and otherwise goes to the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from runtime.errors import StoreError
from runtime.store.storage import OS_FS, Buffer, FileSystem, OsFile, StorageFile

NAME_DIGITS = 20


def segment_name(start: int) -> str:
    return f"{start:0{NAME_DIGITS}d}"


class Segment:
    __slots__ = ("file", "start")

    def __init__(self, start: int, file: StorageFile) -> None:
        self.start = start
        self.file = file

    @property
    def end(self) -> int:
        """Offset just past the last byte written."""
        return self.start + self.file.size()


class FlushPlan:
    """What one flush must sync; ``run`` is safe to call from a worker thread."""

    __slots__ = ("_dir", "_files", "_fs", "target")

    def __init__(self, target: int, files: list[StorageFile], fs: FileSystem, dir_: str | None):
        self.target = target
        self._files = files
        self._fs = fs
        self._dir = dir_

    @property
    def syncs_dir(self) -> bool:
        return self._dir is not None

    def fds(self) -> list[int] | None:
        """The descriptors to fsync when every file is a plain ``OsFile`` and no directory
        sync is due (a job for ``runtime.store.fsyncer``); else None: call ``run``."""
        if self._dir is not None:
            return None
        fds = []
        for f in self._files:
            if type(f) is not OsFile:
                return None
            fds.append(f.fileno())
        return fds

    def run(self) -> int:
        for f in self._files:
            f.fsync()
        if self._dir is not None:
            self._fs.fsync_dir(self._dir)
        return self.target


class SegmentedFile:
    """A directory of aligned segments. Single writer; see the module docstring."""

    def __init__(
        self,
        directory: str,
        segment_size: int,
        fs: FileSystem = OS_FS,
        *,
        empty_start: int = 0,
        tail_cache: int = 0,
    ) -> None:
        """``tail_cache``: keep at least the last this many appended bytes in memory (up to
        twice as many; 0: none)."""
        if segment_size <= 0:
            raise ValueError("segment_size must be positive")
        self.directory = directory
        self.segment_size = segment_size
        self.fs = fs
        self.segments: list[Segment] = []
        self._dir_dirty = False
        os.makedirs(directory, exist_ok=True)
        self._load()
        self._empty_start = empty_start
        self.write_offset = self.segments[-1].end if self.segments else empty_start
        self.flushed_offset = self.write_offset
        self._tail_cap = max(tail_cache, 0)
        self._tail = bytearray()
        self._tail_start = self.write_offset

    # -- loading --------------------------------------------------------------------------

    def _load(self) -> None:
        starts = []
        for name in os.listdir(self.directory):
            if len(name) == NAME_DIGITS and name.isdigit():
                starts.append(int(name))
            elif name.endswith(".tmp"):
                continue
        starts.sort()
        prev = None
        for start in starts:
            path = os.path.join(self.directory, segment_name(start))
            if start % self.segment_size:
                raise StoreError(
                    path, f"segment start is not a multiple of the segment size {self.segment_size}"
                )
            if prev is not None and start != prev + self.segment_size:
                raise StoreError(
                    path, f"segments are not contiguous: previous segment starts at {prev}"
                )
            f = self.fs.open(path)
            if f.size() > self.segment_size:
                raise StoreError(path, f"{f.size()} bytes exceed the segment size")
            self.segments.append(Segment(start, f))
            prev = start

    # -- geometry ----------------------------------------------------------------------------

    @property
    def min_offset(self) -> int:
        return self.segments[0].start if self.segments else self.write_offset

    def segment_start(self, offset: int) -> int:
        return offset - offset % self.segment_size

    def segment_end(self, offset: int) -> int:
        """End of the segment that the byte at ``offset`` belongs to."""
        return self.segment_start(offset) + self.segment_size

    def segment_at(self, offset: int) -> Segment | None:
        if not self.segments:
            return None
        i = (offset - self.segments[0].start) // self.segment_size
        if 0 <= i < len(self.segments):
            return self.segments[i]
        return None

    def __iter__(self) -> Iterator[Segment]:
        return iter(list(self.segments))

    # -- writing -----------------------------------------------------------------------------

    def _new_segment(self, start: int) -> Segment:
        path = os.path.join(self.directory, segment_name(start))
        f = self.fs.open(path)
        if f.size():
            f.truncate(0)
        seg = Segment(start, f)
        self.segments.append(seg)
        self._dir_dirty = True
        return seg

    def _tail_for(self, offset: int) -> Segment:
        """The segment that takes a write at ``offset`` (== write_offset), created if needed."""
        if self.segments:
            last = self.segments[-1]
            if last.start <= offset < last.start + self.segment_size:
                return last
            if offset != last.start + self.segment_size:
                raise AssertionError(f"write at {offset} not next to the tail segment {last.start}")
        return self._new_segment(self.segment_start(offset))

    def append(self, data: Buffer) -> int:
        """Write ``data`` at ``write_offset`` (split across segment boundaries); returns the start.

        On OSError the file keeps whatever the kernel took; call ``truncate(start)`` to undo.
        """
        start = self.write_offset
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            seg = self._tail_for(self.write_offset)
            room = seg.start + self.segment_size - self.write_offset
            chunk = view[pos : pos + room]
            if seg.end != self.write_offset:
                raise AssertionError(f"{seg.file.path}: end {seg.end} != {self.write_offset}")
            seg.file.append(chunk)
            pos += len(chunk)
            self.write_offset += len(chunk)
        if self._tail_cap:
            self._cache(start, view)
        return start

    def _cache(self, start: int, data: memoryview) -> None:
        tail = self._tail
        if self._tail_start + len(tail) != start:  # not contiguous with what is cached
            tail.clear()
            self._tail_start = start
        tail += data
        if len(tail) > 2 * self._tail_cap:
            drop = len(tail) - self._tail_cap
            del tail[:drop]
            self._tail_start += drop

    def drop_tail_cache(self) -> None:
        """Free the tail cache (an idle file's readers read from the file meanwhile)."""
        self._uncache()

    def release_descriptors(self) -> None:
        """Close the segments' descriptors now where their files can reopen on the next use
        (``PooledFile.release``; other files keep theirs): an idle consume queue's."""
        for segment in self.segments:
            release = getattr(segment.file, "release", None)
            if release is not None:
                release()

    def _uncache(self) -> None:
        self._tail.clear()
        self._tail_start = self.write_offset

    def skip_to_next_segment(self) -> int:
        """Continue writing at the next segment boundary (after an end-of-segment marker)."""
        self.write_offset = self.segment_end(self.write_offset - 1) if self.write_offset else 0
        if self.write_offset % self.segment_size:
            raise AssertionError("skip_to_next_segment left an unaligned offset")
        self._uncache()
        return self.write_offset

    # -- reading -----------------------------------------------------------------------------

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` from the one segment holding it (b"" if none)."""
        seg = self.segment_at(offset)
        if seg is None:
            return b""
        rel = offset - seg.start
        n = min(n, self.segment_size - rel)
        k = offset - self._tail_start
        tail = self._tail
        if k >= 0 and tail and self._tail_start + len(tail) == self.write_offset:
            return bytes(memoryview(tail)[k : k + n])
        return seg.file.pread(n, rel)

    # -- flushing ----------------------------------------------------------------------------

    def prepare_flush(self) -> FlushPlan | None:
        """What a flush up to the current ``write_offset`` must sync, or None if nothing."""
        target = self.write_offset
        if target <= self.flushed_offset and not self._dir_dirty:
            return None
        files = [
            s.file
            for s in self.segments
            if s.start + self.segment_size > self.flushed_offset and s.start < target
        ]
        dir_ = self.directory if self._dir_dirty else None
        self._dir_dirty = False
        return FlushPlan(target, files, self.fs, dir_)

    @property
    def clean(self) -> bool:
        """Nothing written or created since the last completed flush (no plan in flight)."""
        return self.write_offset <= self.flushed_offset and not self._dir_dirty

    def unsynced_from(self, offset: int) -> None:
        """Bytes from ``offset`` on, and the directory's entries, may not be on disk (a store
        opened after an unclean stop: the page cache kept what the killed process wrote, and
        the next flush must sync it, since opening took the files' lengths as flushed)."""
        self.flushed_offset = min(self.flushed_offset, max(offset, self.min_offset))
        self._dir_dirty = True

    def flushed_to(self, offset: int) -> None:
        if offset > self.flushed_offset:
            self.flushed_offset = offset

    def flush_not_done(self, plan: FlushPlan) -> None:
        """``plan`` did not complete (no descriptor, a checkpoint to try again): the next plan
        syncs the directory again if this one was to (its files are synced again anyway)."""
        if plan.syncs_dir:
            self._dir_dirty = True

    def flush(self) -> int:
        """Synchronous flush (recovery, shutdown, tests). Returns the flushed offset."""
        plan = self.prepare_flush()
        if plan is not None:
            self.flushed_to(plan.run())
        return self.flushed_offset

    # -- truncation and deletion --------------------------------------------------------------

    def truncate(self, offset: int) -> int:
        """Drop everything at and after ``offset``; returns the number of bytes dropped."""
        dropped = 0
        while self.segments and self.segments[-1].start >= offset:
            seg = self.segments.pop()
            dropped += seg.file.size()
            seg.file.close()
            self.fs.remove(seg.file.path)
            self._dir_dirty = True
        seg = self.segment_at(offset)
        if seg is not None and seg.end > offset:
            dropped += seg.end - offset
            seg.file.truncate(offset - seg.start)
            seg.file.fsync()
        self.write_offset = offset
        self.flushed_offset = min(self.flushed_offset, offset)
        if offset <= self._tail_start:
            self._uncache()
        else:
            del self._tail[offset - self._tail_start :]
        return dropped

    def delete_first(self) -> Segment | None:
        """Remove the oldest segment (retention). Never removes the segment being written.

        A file already gone (removed by hand) is detached all the same: its removal is what
        was asked. Another OSError propagates, with the segment detached (the file stays on
        disk; the next open finds it again at the log's head)."""
        seg = self.detach_first()
        if seg is not None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.remove(seg.file.path)
        return seg

    def detach_first(self) -> Segment | None:
        """Drop the oldest segment from the file without removing it from disk (its caller
        removed it already: the commit log's retention removes a file in a worker thread first,
        so one that cannot be removed stays in the log). Never the segment being written."""
        if len(self.segments) <= 1:
            return None
        seg = self.segments.pop(0)
        self._dir_dirty = True
        return seg

    def delete_all(self) -> None:
        for seg in self.segments:
            seg.file.close()
            self.fs.remove(seg.file.path)
        self.segments.clear()
        self._dir_dirty = True
        self.write_offset = self.flushed_offset = self._empty_start
        self._uncache()

    def reset_to(self, offset: int) -> None:
        """Start an empty file at ``offset`` (a queue rebuilt after the log's head moved on)."""
        if self.segments:
            raise AssertionError("reset_to on a non-empty file")
        self.write_offset = self.flushed_offset = offset
        self._uncache()

    def start_empty_at(self, offset: int) -> None:
        """Make a file that holds no bytes start at ``offset``, a segment start: its first
        segment is created there (empty) and the next open finds it starting there (an empty
        slave of a master whose log no longer starts at 0, as RocketMQ's slave creates its
        first file at the offset its master streams from)."""
        if offset % self.segment_size or offset < 0:
            raise ValueError(f"{offset} is not a segment start (segment size {self.segment_size})")
        if any(seg.file.size() for seg in self.segments):
            raise AssertionError("start_empty_at on a file that holds bytes")
        self.delete_all()
        self.reset_to(offset)
        self._new_segment(offset)

    def close(self) -> None:
        for seg in self.segments:
            seg.file.close()
