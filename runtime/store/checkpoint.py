"""The checkpoint: a point below which the store is known consistent and durable.

``safe_offset`` is a commit-log record boundary such that every byte below it was fsynced *and*
every consume-queue and index entry for records below it was made durable. Recovery scans the
commit log from there (plus whatever the consume queues need, see ``recovery``). ``queues``
records each queue's next offset at that point, so recovery notices consume-queue files that
were deleted or cut short and rebuilds them. Written atomically (``configfile``).
"""

from __future__ import annotations

import os

import msgspec

from runtime.errors import StoreError
from runtime.store.configfile import read_json, write_json

FILE_NAME = "checkpoint"


class QueuePoint(msgspec.Struct, frozen=True, array_like=True):
    topic: str
    queue_id: int
    next_offset: int


class Checkpoint(msgspec.Struct, frozen=True):
    safe_offset: int
    log_min_offset: int = 0
    timestamp: int = 0
    queues: list[QueuePoint] = []


def checkpoint_path(root: str) -> str:
    return os.path.join(root, FILE_NAME)


def load(root: str) -> Checkpoint | None:
    """The checkpoint, or None if missing or unreadable (recovery then scans everything)."""
    try:
        return read_json(checkpoint_path(root), Checkpoint)
    except StoreError:
        return None


def save(root: str, cp: Checkpoint) -> None:
    write_json(checkpoint_path(root), cp)
