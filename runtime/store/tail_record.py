"""The tail-loss guard's record on disk, so that a guard raised in a term outlives its process.

    save(config_dir, snapshot(guard))               the guard was raised, or forgot something
    restore(config_dir, guard, committed, now_ms)   a master's store opened with no new loss
    drop(config_dir)                                a slave's store: nothing to guard

A guard (``runtime.store.tail_guard``) lived only in the process: a master restarted after the
term that began on a short log (a crash, an upgrade, an operator's restart) guarded nothing,
so a consumer still holding a position from the old log that had not pulled since (paused,
flow-controlled, cut off) skipped the messages that took those offsets again once they reached
its position. ``<store>/config/tailLossGuard.json`` keeps the queue ends the guard was raised
at, when, and the topics and groups it forgot since. A restart within ``KEPT_MS`` raises the
guard again from it, and vouches (for every connection) each committed offset the store holds:
each was stored through the guard's bound, so it is a position of the new log. What the old
process vouched for a connection alone is not kept: a consumer that reconnects is moved back to
its group's last commit (duplicates since, as after any restart). A record older than
``KEPT_MS`` is dropped: the guard's cost (a group starting past the ends is moved back to them)
stays bounded.

``save`` writes atomically (tmp + fsync + rename) in the caller's thread: call it through
``offload``. ``restore`` reads a small file and changes the guard: call it on the hub.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import msgspec
from loguru import logger

from runtime.errors import StoreError
from runtime.store.configfile import read_json, write_json
from runtime.store.tail_guard import TailLossGuard

FILE_NAME = "tailLossGuard.json"
KEPT_MS = 24 * 3600 * 1000
"""How long after the guard was raised a restart raises it again."""


class _Record(msgspec.Struct, rename="camel"):
    raised_ms: int
    ends: dict[str, dict[int, int]]  # topic -> queueId -> the next offset when raised
    free_topics: list[str] = []
    free_groups: list[str] = []


def _path(config_dir: str) -> str:
    return os.path.join(config_dir, FILE_NAME)


def snapshot(guard: TailLossGuard) -> _Record | None:
    """``guard``'s record (None: lowered). Take it on the hub, where the guard changes."""
    if not guard.raised:
        return None
    ends: dict[str, dict[int, int]] = {}
    for (topic, queue_id), end in guard.ends.items():
        ends.setdefault(topic, {})[queue_id] = end
    return _Record(guard.raised_ms, ends, sorted(guard.free_topics), sorted(guard.free_groups))


def save(config_dir: str, record: _Record | None) -> None:
    """Write ``record``, or remove the file (None)."""
    if record is None:
        drop(config_dir)
    else:
        write_json(_path(config_dir), record)


def drop(config_dir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_path(config_dir))


def restore(
    config_dir: str,
    guard: TailLossGuard,
    committed: Iterable[tuple[str, str, int, int]],
    now_ms: int,
) -> bool:
    """Raise ``guard`` again from the record, if one younger than ``KEPT_MS`` is there, and
    vouch each of ``committed`` ((group, topic, queueId, offset): the store's committed
    offsets). Whether it was raised. A guard raised already (this node's store opened again for
    a role change, the process the same) is left as it is."""
    if guard.raised:
        return True
    try:
        record = read_json(_path(config_dir), _Record)
    except StoreError as exc:  # (atomic writes leave none: damage): guard nothing, as before
        logger.error("store: the tail-loss guard's record is unreadable, dropped: {}", exc)
        drop(config_dir)
        return False
    if record is None:
        return False
    if now_ms - record.raised_ms >= KEPT_MS:
        logger.info("store: the tail-loss guard raised at {} ms has expired", record.raised_ms)
        drop(config_dir)
        return False
    ends = {(t, q): end for t, queues in record.ends.items() for q, end in queues.items()}
    guard.raise_at(ends, raised_ms=record.raised_ms)
    for topic in record.free_topics:
        guard.forget(topic=topic)
    for group in record.free_groups:
        guard.forget(group=group)
    for group, topic, queue_id, offset in committed:
        guard.vouch(group, topic, queue_id, offset)
    logger.warning(
        "store: the tail-loss guard raised at {} ms (a term that began on a log that may have "
        "lost its tail) is raised again: a pull past a group's last commit or the ends then is "
        "moved back",
        record.raised_ms,
    )
    return True
