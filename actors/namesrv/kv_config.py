"""KVConfig: the name server's namespaced key-value table (RocketMQ's KVConfigManager).

Messages (proxy methods; each is answered at once, without waiting for the file):
- ``put(namespace, key, value)`` -> a future set (None) once the change is on disk
  (PUT_KV_CONFIG, 100: create or replace)
- ``delete(namespace, key)`` -> the same (DELETE_KV_CONFIG, 102; an absent key is no error and
  its future is set at once)
- ``get(namespace, key)`` -> the value or None (GET_KV_CONFIG, 101)
- ``namespace(namespace)`` -> key -> value, or None when the namespace was never created
  (GET_KVLIST_BY_NAMESPACE, 219; like RocketMQ, deleting a namespace's last key leaves it
  there, empty)

mqadmin's ``updateKvConfig`` / ``deleteKvConfig`` and ``updateOrderConf`` (namespace
``ORDER_TOPIC_CONFIG``, key: the topic, value ``brokerName:queueNums;...``) are its users; the
name server reads ``ORDER_TOPIC_CONFIG`` for routes (``orderMessageEnable``) and for every
broker registration, so reads never wait behind a write.

State owned: namespace -> key -> value (changes apply at once: a read sees a change before it
is on disk, as in RocketMQ); the table as the file holds it; the changes not yet written.

Durability point: with a ``path``, the whole table is rewritten atomically
(``configfile.write_atomic``: tmp + fsync + rename + directory fsync, in the hub's thread pool)
in RocketMQ's kvConfig.json shape ``{"configTable": {namespace: {key: value}}}``, and loaded at
start. Group commit: one writer greenlet writes the table as it stands, covering every change
made since its last write; changes made meanwhile wait for the next write, which covers them
all (a flood of puts costs a few writes, not one each). A change's future is set only after a
write that includes it; a write that fails sets that error (``OSError``: the request gets
SYSTEM_ERROR) on the futures of the changes it covered and takes them back out of the table
(changes made after it began stay, for the next write). Without a path the table lives in
memory only, every future is set at once, and it is lost when the name server stops. On stop
the writer finishes (up to ``STOP_WRITE_TIMEOUT_S``).
"""

from __future__ import annotations

from collections.abc import Callable

import gevent
import msgspec
from loguru import logger

from runtime.actor import GeventActor, GeventFuture, new_future, offload
from runtime.store.configfile import read_json, write_atomic

FILE_NAME = "kvConfig.json"
ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"
"""RocketMQ's NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG: topic -> ``brokerName:queueNums;...``."""

STOP_WRITE_TIMEOUT_S = 10.0
"""How long a stopping KVConfig waits for its writer to write what is pending."""

Table = dict[str, dict[str, str]]
Persist = Callable[[str, bytes], None]
"""Writes the file's bytes durably; called from the writer greenlet (a test seam)."""


class KVConfigSerializeWrapper(msgspec.Struct, rename="camel"):
    """kvConfig.json, as RocketMQ writes it."""

    config_table: Table = {}


class _Change(msgspec.Struct, frozen=True):
    """One put (``value``) or delete (``value`` None) and the future its asker waits on."""

    namespace: str
    key: str
    value: str | None
    done: GeventFuture[None]


def write_in_pool(path: str, data: bytes) -> None:
    """The default ``Persist``: an atomic, fsync'd replace in the hub's thread pool."""
    offload(write_atomic, path, data)


def encode_table(table: Table) -> bytes:
    """The kvConfig.json bytes of ``table`` (indented, as ``configfile.write_json`` writes)."""
    return msgspec.json.format(
        msgspec.json.encode(KVConfigSerializeWrapper(config_table=table)), indent=2
    )


def _apply(table: Table, changes: list[_Change]) -> None:
    for c in changes:
        if c.value is None:
            table.get(c.namespace, {}).pop(c.key, None)
        else:
            table.setdefault(c.namespace, {})[c.key] = c.value


def _copy(table: Table) -> Table:
    return {ns: dict(kv) for ns, kv in table.items()}


class KVConfig(GeventActor):
    """The KV table. See the module docstring for messages, state and durability."""

    def __init__(self, path: str | None = None, persist: Persist = write_in_pool) -> None:
        super().__init__()
        self.path = path
        self._persist = persist
        self._table: Table = {}
        self._durable: Table = {}
        """The table as the file holds it (what a failed write falls back to)."""
        self._writing: list[_Change] = []
        """The changes the write in progress covers."""
        self._unwritten: list[_Change] = []
        """Changes made since the write in progress began (or since the last one)."""
        self._writer: gevent.Greenlet | None = None
        self.writes = 0
        """Writes that reached the disk (tests, figures)."""

    def on_start(self) -> None:
        if self.path is None:
            return
        loaded = read_json(self.path, KVConfigSerializeWrapper)
        if loaded is not None:
            self._table = {ns: dict(kv) for ns, kv in loaded.config_table.items()}
            self._durable = _copy(self._table)
            logger.info("namesrv: KV config from {}: {} namespaces", self.path, len(self._table))

    def on_stop(self) -> None:
        writer = self._writer
        if writer is not None:
            writer.join(timeout=STOP_WRITE_TIMEOUT_S)
            if not writer.dead:
                logger.warning(
                    "namesrv: KV config stopped with {} changes not written to {}",
                    len(self._writing) + len(self._unwritten),
                    self.path,
                )

    # -- changes ------------------------------------------------------------------------------

    def put(self, namespace: str, key: str, value: str) -> GeventFuture[None]:
        previous = self._table.get(namespace, {}).get(key)
        self._table.setdefault(namespace, {})[key] = value
        logger.info(
            "namesrv: KV {} {}: {} = {}",
            namespace,
            "updated" if previous is not None else "created",
            key,
            value,
        )
        return self._changed(namespace, key, value)

    def delete(self, namespace: str, key: str) -> GeventFuture[None]:
        kv = self._table.get(namespace, {})
        if key not in kv:
            if self._writing or self._unwritten:
                # it may be absent only through a change not yet on disk (a first delete being
                # written): answer with the next write, which also applies (or, failed, undoes)
                return self._changed(namespace, key, None)
            done: GeventFuture[None] = new_future()
            done.set(None)
            return done
        value = kv.pop(key)
        logger.info("namesrv: KV {} deleted: {} (was {})", namespace, key, value)
        return self._changed(namespace, key, None)

    def _changed(self, namespace: str, key: str, value: str | None) -> GeventFuture[None]:
        """Record a change already made to the table; its future is set once it is written."""
        change = _Change(namespace, key, value, new_future())
        if self.path is None:
            change.done.set(None)
            return change.done
        self._unwritten.append(change)
        if self._writer is None:
            self._writer = gevent.spawn(self._write_all)
        return change.done

    def _write_all(self) -> None:
        """The writer greenlet: write the table until no change is left unwritten."""
        try:
            while self._unwritten:
                self._write_once()
        finally:
            self._writer = None

    def _write_once(self) -> None:
        assert self.path is not None
        self._writing, self._unwritten = self._unwritten, []
        data = encode_table(self._table)  # the table holds every change in _writing
        try:
            self._persist(self.path, data)
        except Exception as exc:
            failed, self._writing = self._writing, []
            logger.error(
                "namesrv: KV config not written to {}: {} ({} changes undone)",
                self.path,
                exc,
                len(failed),
            )
            self._table = _copy(self._durable)
            _apply(self._table, self._unwritten)
            for change in failed:
                change.done.set_exception((type(exc), exc, exc.__traceback__))
            return
        written, self._writing = self._writing, []
        _apply(self._durable, written)
        self.writes += 1
        for change in written:
            change.done.set(None)

    # -- queries ------------------------------------------------------------------------------

    def get(self, namespace: str, key: str) -> str | None:
        return self._table.get(namespace, {}).get(key)

    def namespace(self, namespace: str) -> dict[str, str] | None:
        kv = self._table.get(namespace)
        return None if kv is None else dict(kv)
