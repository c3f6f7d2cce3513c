"""ConsumerOffsets: committed consume offsets per (group, topic, queueId).

Messages accepted:
- ``CommitOffset(group, topic, queue_id, offset)`` (tell or ask -> None)
- ``QueryOffset(group, topic, queue_id)`` (ask) -> int, -1 when never committed
- ``GroupOffsets(group)`` (ask) -> {topic: {queue_id: offset}}
- ``RemoveGroup(group)`` (ask) -> bool
- ``ClampOffsets()`` (tell): lower the offsets past their queue's end now, raise the
  tail-loss guard (see below)
- ``RemoveOffsets(keys)`` (ask) -> int: the ``topic@group`` entries removed (a slave's full
  copy: its master no longer has them)
- ``RemoveTopicOffsets(topic)`` (ask) -> an AsyncResult set to True once the table without
  the topic's offsets is on disk (False: the write failed): a deleted topic's offsets must not
  come back with a crash after the deletion was reported
- ``AllOffsets()`` (ask) -> {"topic@group": {queue_id: offset}} (a copy; slaves sync from it)
- ``OffsetsSince(since)`` (ask) -> ``OffsetsDelta``: the ``topic@group`` entries changed since
  the version ``since`` (one this table answered before), or the whole table when ``since`` is
  not a version of this incarnation (another process, or ""): a slave's poll every second
  copies only what changed
- ``PersistTick`` (timer, every ``consumer_offset_persist_interval_ms``)

Owned state: the offset table, keyed ``topic@group`` as RocketMQ's consumerOffset.json; a
version counter (with a random incarnation id) and the version of each entry's last change.

At start (a master's store: not read-only), a committed offset past its queue's end as
recovered (0 for a queue the store holds nothing of) is lowered to that end, with a WARNING:
the log lost its tail (a power loss under ASYNC_FLUSH), and new messages will take those queue
offsets again; left as it was, a consumer
that starts (or is given the queue) would resume past them and skip them. (A consumer still
running keeps its own position: the pull answers OFFSET_OVERFLOW_BADLY and moves it to the end
only until new messages reach it.) A classic master reconciling after a power loss
(``actors.broker.ha_reconcile``) does it when it holds its log again (``ClampOffsets``), not
at start: the tail it fetches from its slaves brings those offsets back, and a consumer kept
running re-commits its position meanwhile.

At the same two points, when the log may be short (its machine lost power since the store
last ran: ``runtime.ha.boot.power_cut_pending``; a reconciliation's end), it raises the store's
tail-loss guard (``runtime.store.tail_guard``) from the queue ends as they are: the pull and
commit handlers then keep consumers still running from passing the offsets new messages take
again. A slave's store lowers it; a deleted topic's or a removed group's offsets are forgotten
by it too. Its record (``runtime.store.tail_record``, written in the thread pool when raised
and when it forgets; slaves copy their master's) raises it again at a master's next start
within a day (this node's restart, or a slave made master), vouching every committed offset of
the table; a new loss within that day raises it at the lower of both ends.

Durability point: ``config/consumerOffset.json``, written atomically (tmp + fsync + rename +
dir fsync) by a background greenlet in the thread pool every few seconds when something changed
(so a slow disk never delays commits or queries), and on stop. A crash
loses at most the last interval's commits: consumers then re-read (duplicates), never skip (R17).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

import gevent.event
import msgspec
from loguru import logger

from actors.broker.messages import (
    AllOffsets,
    ClampOffsets,
    CommitOffset,
    GroupOffsets,
    OffsetsDelta,
    OffsetsSince,
    PersistTick,
    QueryOffset,
    RemoveGroup,
    RemoveOffsets,
    RemoveTopicOffsets,
)
from runtime.actor import GeventActor, offload
from runtime.ha import boot
from runtime.store import tail_record
from runtime.store.background import BackgroundWriter
from runtime.store.configfile import read_json
from runtime.store.context import StoreContext


def clamp_to_ends(
    table: dict[str, dict[int, int]], ends: Mapping[tuple[str, int], int], label: str
) -> set[str]:
    """Lower every committed offset past its queue's end (``ends``: (topic, queueId) -> the
    next queue offset, as recovered) to that end. A queue ``ends`` does not
    know has end 0: the store holds nothing of it (a power loss took all its records, or its
    topic was deleted), and its next message takes queue offset 0. Returns the
    ``topic@group`` keys changed."""
    lowered: list[str] = []
    keys: set[str] = set()
    for key, queues in table.items():
        topic, _, group = key.rpartition("@")
        for queue_id, offset in queues.items():
            end = ends.get((topic, queue_id), 0)
            if offset > end:
                queues[queue_id] = end
                keys.add(key)
                lowered.append(f"{group} {topic}/{queue_id} {offset}->{end}")
    if lowered:
        logger.warning(
            "store {}: {} committed offsets passed their queue's end (the log lost its tail: a "
            "power loss?); lowered so consumers do not skip the messages that take those "
            "offsets again: {}{}",
            label,
            len(lowered),
            ", ".join(lowered[:8]),
            ", ..." if len(lowered) > 8 else "",
        )
    return keys


def _reconciling(ctx: StoreContext) -> bool:
    """A classic master fetching its lost tail from its slaves after a power loss (its
    replication condition's ``HAState.reconciling``, set before the store opens): the ends
    are not final yet, and the Reconciliation sends ``ClampOffsets`` once they are."""
    state = getattr(ctx.replication, "state", None)
    return bool(getattr(state, "reconciling", False))


def _log_may_be_short(ctx: StoreContext) -> bool:
    """Whether a master's store may end below offsets its consumers read: its machine lost
    power since it last ran (``runtime.ha.boot``; a kill -9 loses nothing, and a controller-mode
    master never showed consumers what its in-sync slaves lacked). The node records the
    suspicion before the store opens (classic) or just after (controller mode, whose role
    changes open the store again before the new term clears it): read, not recorded, here."""
    opened = ctx.opened
    if opened is None:
        return False
    return boot.power_cut_pending(ctx.settings.root, opened.report.unclean)


class _OffsetsFile(msgspec.Struct, rename="camel"):
    offset_table: dict[str, dict[int, int]]  # RocketMQ's consumerOffset.json: "offsetTable"


class ConsumerOffsets(GeventActor):
    """See the module docstring."""

    def __init__(self, ctx: StoreContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.path = os.path.join(ctx.settings.config_dir, "consumerOffset.json")
        self.table: dict[str, dict[int, int]] = {}
        self._dirty = False
        self._incarnation = secrets.token_hex(8)
        self._version = 0
        self._changed: dict[str, int] = {}  # topic@group -> the version of its last change

    def on_start(self) -> None:
        loaded = read_json(self.path, _OffsetsFile)
        if loaded is not None:
            self.table = loaded.offset_table
        if self.ctx.settings.read_only:
            self.ctx.tail_guard.lower()  # (a slave moves no consumer; its record: a copy)
        elif not _reconciling(self.ctx):  # (else once the master holds its log: ClampOffsets)
            self._dirty = bool(self._clamp())
            if _log_may_be_short(self.ctx):
                self._raise_guard()
            else:  # (raised in a term since, before a restart)
                tail_record.restore(
                    self.ctx.settings.config_dir,
                    self.ctx.tail_guard,
                    self._committed(),
                    int(time.time() * 1000),
                )
        self._writer = BackgroundWriter(self.path)
        interval = self.ctx.settings.consumer_offset_persist_interval_ms / 1000.0
        self.send_every(interval, PersistTick())

    def _clamp(self) -> set[str]:
        """Lower the offsets past their queue's end (a master's store; see the module
        docstring); the keys changed count as changes for the slaves' polls."""
        opened = self.ctx.opened
        if opened is None or self.ctx.settings.read_only:
            return set()
        keys = clamp_to_ends(self.table, opened.next_offsets, self.ctx.settings.root)
        for key in keys:
            self._version += 1
            self._changed[key] = self._version
        return keys

    def _raise_guard(self) -> None:
        """Guard every group from the queue ends now (the term's start)."""
        opened = self.ctx.opened
        if opened is not None:
            tail_record.raise_new(
                self.ctx.settings.config_dir,
                self.ctx.tail_guard,
                opened.next_offsets,
                self._committed(),
                int(time.time() * 1000),
            )
            self._save_guard()

    def _save_guard(self) -> None:
        """Keep the guard's record on disk (``runtime.store.tail_record``); a failed write is
        logged: the guard then lives in this process only."""
        try:
            record = tail_record.snapshot(self.ctx.tail_guard)
            offload(tail_record.save, self.ctx.settings.config_dir, record)
        except OSError as exc:
            logger.error("store: the tail-loss guard's record could not be written: {}", exc)

    def _committed(self) -> list[tuple[str, str, int, int]]:
        """(group, topic, queueId, offset) of every committed offset."""
        out = []
        for key, queues in self.table.items():
            topic, _, group = key.rpartition("@")
            out.extend((group, topic, queue_id, offset) for queue_id, offset in queues.items())
        return out

    def on_stop(self) -> None:
        if self._dirty:
            self._persist()
        self._writer.close()

    def on_failure(self, *_exc_info: Any) -> None:
        self._writer.close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CommitOffset):
            key = f"{message.topic}@{message.group}"
            queues = self.table.get(key)
            if queues is None:
                queues = self.table[key] = {}
            if queues.get(message.queue_id) != message.offset:
                queues[message.queue_id] = message.offset
                self._dirty = True
                self._version += 1
                self._changed[key] = self._version
            return None
        if isinstance(message, QueryOffset):
            queues = self.table.get(f"{message.topic}@{message.group}")
            return -1 if queues is None else queues.get(message.queue_id, -1)
        if isinstance(message, GroupOffsets):
            suffix = f"@{message.group}"
            return {
                key[: -len(suffix)]: dict(queues)
                for key, queues in self.table.items()
                if key.endswith(suffix)
            }
        if isinstance(message, RemoveGroup):
            suffix = f"@{message.group}"
            keys = [k for k in self.table if k.endswith(suffix)]
            for k in keys:
                del self.table[k]
            if self.ctx.tail_guard.raised:
                self.ctx.tail_guard.forget(group=message.group)  # (made again: a new group)
                self._save_guard()
            self._dirty = self._dirty or bool(keys)
            return bool(keys)
        if isinstance(message, ClampOffsets):
            if self._clamp():
                self._dirty = True
            self._raise_guard()
            return None
        if isinstance(message, RemoveOffsets):
            gone = [k for k in message.keys if self.table.pop(k, None) is not None]
            self._dirty = self._dirty or bool(gone)
            return len(gone)
        if isinstance(message, RemoveTopicOffsets):
            prefix = f"{message.topic}@"
            for k in [k for k in self.table if k.startswith(prefix)]:
                del self.table[k]
            if self.ctx.tail_guard.raised:
                self.ctx.tail_guard.forget(topic=message.topic)  # (made again: new offsets)
                self._save_guard()
            done = gevent.event.AsyncResult()
            self._dirty = False
            self._writer.request(self._snapshot(), done)
            return done
        if isinstance(message, AllOffsets):
            return {key: dict(queues) for key, queues in self.table.items()}
        if isinstance(message, OffsetsSince):
            return self._since(message.since)
        if isinstance(message, PersistTick):
            self._persist()
            return None
        return super().on_receive(message)

    def _since(self, since: str) -> OffsetsDelta:
        version = f"{self._incarnation}:{self._version}"
        incarnation, _, counter = since.partition(":")
        if incarnation != self._incarnation or not counter.isdigit():
            whole = {key: dict(queues) for key, queues in self.table.items()}
            return OffsetsDelta(version, whole, whole=True)
        after = int(counter)
        table = self.table
        changed = {
            key: dict(table[key]) for key, v in self._changed.items() if v > after and key in table
        }
        return OffsetsDelta(version, changed, whole=False)

    def _persist(self) -> None:
        """Write a snapshot in the background; commits keep being served during a slow fsync."""
        if not self._dirty:
            return
        self._dirty = False
        self._writer.request(self._snapshot())

    def _snapshot(self) -> _OffsetsFile:
        return _OffsetsFile({k: dict(v) for k, v in self.table.items()})
