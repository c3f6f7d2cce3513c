"""Topic fences: where a deleted topic's old records end in the commit log.

Deleting a topic appends a *deletion marker* to the commit log (a record of the reserved topic
``record.TOPIC_DELETED_MARKER`` whose body is the deleted topic's name). The commit log keeps the
topic's older records until retention removes their segments, so everything that reads records
back (recovery, the Dispatcher's reput, a slave's replicated bytes) must treat them as gone. The
fence of a topic is the offset just past its latest marker: a record of that topic below its
fence belongs to a deleted incarnation and is never dispatched again; records at or after it
belong to the topic as created again.

The table lives in ``<root>/topicfences.json`` (atomic writes, ``configfile``). The Dispatcher
saves it before it removes the deleted topic's consume queues, so a consume queue is never gone
while its fence is not yet durable. Recovery drops fences at or below the log's first offset
(no old record is left) and past its end (the marker itself was lost with the tail).
"""

from __future__ import annotations

import os

import msgspec

from runtime.store.configfile import read_json, write_json

FILE_NAME = "topicfences.json"


class _FencesFile(msgspec.Struct):
    topics: dict[str, int] = {}


def fences_path(root: str) -> str:
    return os.path.join(root, FILE_NAME)


def load(root: str) -> dict[str, int]:
    """The fence table ({} when the file does not exist; StoreError when it is corrupt)."""
    loaded = read_json(fences_path(root), _FencesFile)
    return dict(loaded.topics) if loaded is not None else {}


def save(root: str, fences: dict[str, int]) -> None:
    write_json(fences_path(root), _FencesFile(topics=dict(sorted(fences.items()))))


def raised(fences: dict[str, int], deleted: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """``fences`` with each ``(topic, fence)`` of ``deleted`` applied (a fence only rises)."""
    out = dict(fences)
    for topic, fence in deleted:
        if fence > out.get(topic, -1):
            out[topic] = fence
    return out


def pruned(fences: dict[str, int], log_min: int, log_end: int) -> dict[str, int]:
    """The fences that still matter for a log spanning ``[log_min, log_end)``."""
    return {t: f for t, f in fences.items() if log_min < f <= log_end}
