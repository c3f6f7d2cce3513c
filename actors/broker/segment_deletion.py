"""``DeleteSegments`` for the CommitLogWriter: Retention's deletion of old commit-log segments.

Kept beside the writer (it runs inside the writer actor, on its log), as ``raw_append`` and
``delete_marker`` are. Deletes segments from the head of the log, oldest first, at most
``max_files``, never the last one and never past ``limit_offset`` or the flushed offset; unless
``force``, only segments last modified before ``older_than``. Replies ``SegmentsDeleted`` (the
deleted paths and the log's new minimum offset).

Each file's ``stat`` and removal run in the hub's thread pool (``offload``: unlinking a 1 GiB
file frees its extents, which can take a while on a busy disk); the writer waits for them (its
appends queue meanwhile; every other actor runs), and only then detaches the segment, so a
reader meanwhile still finds it (its descriptor reads an unlinked file). A file already gone
(removed by hand) counts as deleted. A file that cannot be removed (EACCES, EBUSY, EIO: any
other ``OSError``) stays at the log's head: a WARNING names it, this request stops there and
Retention's next tick tries again; the broker goes on.

Durability point: none of its own; each file is removed at once, and a restart finds the log
starting at the next segment.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from loguru import logger

from actors.broker.messages import DeleteSegments, SegmentsDeleted
from runtime.actor import offload
from runtime.store.storage import FileSystem


def handle(writer: Any, msg: DeleteSegments) -> SegmentsDeleted:
    """Run ``msg`` on ``writer`` (a CommitLogWriter). See the module docstring."""
    segs = writer.log.segments
    paths: list[str] = []
    older_than = None if msg.force else msg.older_than
    while len(paths) < msg.max_files and len(segs.segments) > 1:
        first = segs.segments[0]
        if first.start + segs.segment_size > min(msg.limit_offset, segs.flushed_offset):
            break
        path = first.file.path
        try:
            removed = offload(remove_if_expired, segs.fs, path, older_than)
        except OSError as exc:
            logger.warning(
                "store {}: cannot delete commit-log segment {} ({}): it stays; retention "
                "tries again at its next tick",
                writer.settings.root,
                path,
                exc,
            )
            break
        if not removed:
            break
        if segs.detach_first() is not first:  # (only this actor changes the log's segments)
            raise AssertionError(f"the log's first segment changed while {path} was removed")
        paths.append(path)
    if paths:
        logger.info(
            "store {}: deleted {} commit-log segments; log now starts at {}",
            writer.settings.root,
            len(paths),
            writer.log.min_offset,
        )
    return SegmentsDeleted(paths, writer.log.min_offset)


def remove_if_expired(fs: FileSystem, path: str, older_than: float | None) -> bool:
    """Remove ``path`` if it was last modified before ``older_than`` (None: whatever its age);
    True when it is gone (a file already missing too). Blocking: for a worker thread."""
    if older_than is not None:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            mtime = 0.0  # (gone, or unreadable: its removal says which)
        if mtime >= older_than:
            return False
    with contextlib.suppress(FileNotFoundError):  # removed by hand: what was asked
        fs.remove(path)
    return True
