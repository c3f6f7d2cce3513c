"""``DeleteSegments`` for the CommitLogWriter: Retention's deletion of old commit-log segments.

Kept beside the writer (it runs inside the writer actor, on its log), as ``raw_append`` and
``delete_marker`` are. Detaches segments from the head of the log, oldest first, at most
``max_files``, never the last one and never past ``limit_offset`` or the flushed offset; unless
``force``, only segments last modified before ``older_than``. Replies ``SegmentsDeleted`` (the
detached paths and the log's new minimum offset).

Durability point: none of its own; each file is removed at once (``Segments.delete_first``),
and a restart finds the log starting at the next segment.
"""

from __future__ import annotations

import os
from typing import Any

from loguru import logger

from actors.broker.messages import DeleteSegments, SegmentsDeleted


def handle(writer: Any, msg: DeleteSegments) -> SegmentsDeleted:
    """Run ``msg`` on ``writer`` (a CommitLogWriter). See the module docstring."""
    segs = writer.log.segments
    paths: list[str] = []
    while len(paths) < msg.max_files and len(segs.segments) > 1:
        first = segs.segments[0]
        if first.start + segs.segment_size > min(msg.limit_offset, segs.flushed_offset):
            break
        if not msg.force:
            try:
                mtime = os.stat(first.file.path).st_mtime
            except OSError:
                mtime = 0.0
            if mtime >= msg.older_than:
                break
        seg = segs.delete_first()
        if seg is None:
            break
        paths.append(seg.file.path)
    if paths:
        logger.info(
            "store {}: deleted {} commit-log segments; log now starts at {}",
            writer.settings.root,
            len(paths),
            writer.log.min_offset,
        )
    return SegmentsDeleted(paths, writer.log.min_offset)
