"""The tail-loss guard's record on disk, so that a guard raised in a term outlives its process
and its master.

    raise_new(config_dir, guard, ends, committed, now_ms)   a term begins on a short log
    save(config_dir, snapshot(guard))               the guard was raised, or forgot something
    restore(config_dir, guard, committed, now_ms)   a master's store opened with no new loss
    file_bytes(config_dir) / copy(config_dir, body) a master's record, a slave's copy of it
    version(config_dir)                             changes with the record (a slave polls it)

A guard (``runtime.store.tail_guard``) lived only in the process: a master restarted after the
term that began on a short log (a crash, an upgrade, an operator's restart), or a slave made
master since, guarded nothing, so a consumer still holding a position from the old log that
had not pulled since (paused, flow-controlled, cut off) skipped the messages that took those
offsets again once they reached its position. ``<store>/config/tailLossGuard.json`` keeps the
queue ends the guard was raised at, when, and the topics and groups it forgot since; slaves
copy it with their master's metadata (GET_TAIL_LOSS_GUARD, ``slave_sync_handler``), within
about a second of a change (its ``version`` in the master's GET_METADATA_VERSION answer). A master's
start within ``KEPT_MS`` of the raise raises the guard again from it, and vouches (for every
connection) each committed offset the store holds: each was stored through the guard's bound
(or lowered to the ends at the loss), so it is a position of the new log. What the old process
vouched for a connection alone is not kept: a consumer that reconnects is moved back to its
group's last commit (duplicates since, as after any restart). A new loss within ``KEPT_MS``
raises the guard at the lower of both ends. A record older than ``KEPT_MS`` is dropped: the
guard's cost (a group starting past the ends is moved back to them) stays bounded. Every
choice here only lowers the bound: the cost of a mistake is duplicates, never a skip.

``save`` and ``copy`` write atomically (tmp + fsync + rename) in the caller's thread: call them
through ``offload``. ``raise_new`` and ``restore`` read a small file and change the guard: call
them on the hub.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping

import msgspec
from loguru import logger

from runtime.errors import StoreError
from runtime.store.configfile import read_bytes, read_json, replace_checked, write_json
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


def _fresh(config_dir: str, now_ms: int) -> _Record | None:
    """The record, if one younger than ``KEPT_MS`` is there (an older or unreadable one is
    removed)."""
    try:
        record = read_json(_path(config_dir), _Record)
    except StoreError as exc:  # (atomic writes leave none: damage): guard nothing, as before
        logger.error("store: the tail-loss guard's record is unreadable, dropped: {}", exc)
        drop(config_dir)
        return None
    if record is not None and now_ms - record.raised_ms >= KEPT_MS:
        logger.info("store: the tail-loss guard raised at {} ms has expired", record.raised_ms)
        drop(config_dir)
        return None
    return record


def _ends(record: _Record) -> dict[tuple[str, int], int]:
    return {(t, q): end for t, queues in record.ends.items() for q, end in queues.items()}


def _vouch(guard: TailLossGuard, committed: Iterable[tuple[str, str, int, int]]) -> None:
    for group, topic, queue_id, offset in committed:
        guard.vouch(group, topic, queue_id, offset)


def raise_new(
    config_dir: str,
    guard: TailLossGuard,
    ends: Mapping[tuple[str, int], int],
    committed: Iterable[tuple[str, str, int, int]],
    now_ms: int,
) -> None:
    """Raise ``guard`` for a term that begins on a log that may be short, at the queue
    ``ends``, lowered to a fresh record's (an earlier loss's guard, this node's or its
    master's copy, still holds: positions past its ends from before it may be waiting too; a
    queue it does not know ended at 0), and vouch ``committed`` (lowered to the ends at the
    store's opening, or stored within an earlier guard's bound: positions of this log)."""
    record = _fresh(config_dir, now_ms)
    merged = dict(ends)
    if record is not None:
        earlier = _ends(record)
        for key in merged.keys() | earlier.keys():
            merged[key] = min(merged.get(key, 0), earlier.get(key, 0))
    guard.raise_at(merged, raised_ms=now_ms)
    _vouch(guard, committed)


def restore(
    config_dir: str,
    guard: TailLossGuard,
    committed: Iterable[tuple[str, str, int, int]],
    now_ms: int,
) -> bool:
    """Raise ``guard`` again from the record, if a fresh one is there, and vouch each of
    ``committed`` ((group, topic, queueId, offset): the store's committed offsets). Whether it
    was raised. A guard raised already (this node's store opened again for a role change, the
    process the same) is left as it is."""
    if guard.raised:
        return True
    record = _fresh(config_dir, now_ms)
    if record is None:
        return False
    guard.raise_at(_ends(record), raised_ms=record.raised_ms)
    for topic in record.free_topics:
        guard.forget(topic=topic)
    for group in record.free_groups:
        guard.forget(group=group)
    _vouch(guard, committed)
    logger.warning(
        "store: the tail-loss guard raised at {} ms (a term that began on a log that may have "
        "lost its tail) is raised again: a pull past a group's last commit or the ends then is "
        "moved back",
        record.raised_ms,
    )
    return True


def version(config_dir: str) -> str:
    """What changes whenever the record is written or removed ("-": none), without reading it
    (a slave asks every second)."""
    try:
        st = os.stat(_path(config_dir))
    except FileNotFoundError:
        return "-"
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def file_bytes(config_dir: str) -> bytes:
    """The record as stored, b"" when there is none (what a master answers its slaves)."""
    return read_bytes(_path(config_dir)) or b""


def copy(config_dir: str, body: bytes) -> None:
    """A slave's copy of its master's record (``file_bytes``; b"": none, ours removed).
    Raises ProtocolError for a body that is not a record."""
    if body:
        replace_checked(_path(config_dir), body, _Record)
    else:
        drop(config_dir)
