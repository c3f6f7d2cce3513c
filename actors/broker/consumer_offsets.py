"""ConsumerOffsets: committed consume offsets per (group, topic, queueId).

Messages accepted:
- ``CommitOffset(group, topic, queue_id, offset)`` (tell or ask -> None)
- ``QueryOffset(group, topic, queue_id)`` (ask) -> int, -1 when never committed
- ``GroupOffsets(group)`` (ask) -> {topic: {queue_id: offset}}
- ``RemoveGroup(group)`` (ask) -> bool
- ``PersistTick`` (timer, every ``consumer_offset_persist_interval_ms``)

Owned state: the offset table, keyed ``topic@group`` as RocketMQ's consumerOffset.json.

Durability point: ``config/consumerOffset.json``, written atomically (tmp + fsync + rename +
dir fsync) in the thread pool every few seconds when something changed, and on stop. A crash
loses at most the last interval's commits: consumers then re-read (duplicates), never skip (R17).
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
from loguru import logger

from actors.broker.messages import (
    CommitOffset,
    GroupOffsets,
    PersistTick,
    QueryOffset,
    RemoveGroup,
)
from runtime.actor import GeventActor, offload
from runtime.store.configfile import read_json, write_json
from runtime.store.context import StoreContext


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
        self._persisting = False

    def on_start(self) -> None:
        loaded = read_json(self.path, _OffsetsFile)
        if loaded is not None:
            self.table = loaded.offset_table
        self.send_every(
            self.ctx.settings.consumer_offset_persist_interval_ms / 1000.0, PersistTick()
        )

    def on_stop(self) -> None:
        if self._dirty:
            write_json(self.path, _OffsetsFile(self.table))
            self._dirty = False

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CommitOffset):
            key = f"{message.topic}@{message.group}"
            queues = self.table.get(key)
            if queues is None:
                queues = self.table[key] = {}
            if queues.get(message.queue_id) != message.offset:
                queues[message.queue_id] = message.offset
                self._dirty = True
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
            self._dirty = self._dirty or bool(keys)
            return bool(keys)
        if isinstance(message, PersistTick):
            self._persist()
            return None
        return super().on_receive(message)

    def _persist(self) -> None:
        if not self._dirty or self._persisting:
            return
        snapshot = _OffsetsFile({k: dict(v) for k, v in self.table.items()})
        self._dirty = False
        self._persisting = True
        try:
            offload(write_json, self.path, snapshot)
        except OSError as exc:
            self._dirty = True
            logger.error("consumer offsets not persisted: {}", exc)
        finally:
            self._persisting = False
