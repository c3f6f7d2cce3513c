"""KVConfig: the name server's namespaced key-value table (RocketMQ's KVConfigManager).

Messages (proxy methods; each answers at once, except that a change waits for its write):
- ``put(namespace, key, value)`` -> None (PUT_KV_CONFIG, 100: create or replace)
- ``get(namespace, key)`` -> the value or None (GET_KV_CONFIG, 101)
- ``delete(namespace, key)`` -> None (DELETE_KV_CONFIG, 102; an absent key is no error)
- ``namespace(namespace)`` -> key -> value, or None when the namespace was never created
  (GET_KVLIST_BY_NAMESPACE, 219; like RocketMQ, deleting a namespace's last key leaves it
  there, empty)

mqadmin's ``updateKvConfig`` / ``deleteKvConfig`` and ``updateOrderConf`` (namespace
``ORDER_TOPIC_CONFIG``, key: the topic, value ``brokerName:queueNums;...``) are its users; the
name server reads ``ORDER_TOPIC_CONFIG`` for routes (``orderMessageEnable``) and broker
registrations.

State owned: namespace -> key -> value. Durability point: with a ``path``, the whole table is
rewritten atomically (``configfile.write_json``: tmp + fsync + rename + directory fsync) in
RocketMQ's kvConfig.json shape ``{"configTable": {namespace: {key: value}}}`` before a change is
answered, and loaded at start; a write that fails raises ``OSError`` and leaves the table as it
was (the request gets SYSTEM_ERROR). Without a path the table lives in memory only and is lost
when the name server stops.
"""

from __future__ import annotations

import msgspec
from loguru import logger

from runtime.actor import GeventActor, offload
from runtime.store.configfile import read_json, write_json

FILE_NAME = "kvConfig.json"
ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"
"""RocketMQ's NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG: topic -> ``brokerName:queueNums;...``."""


class KVConfigSerializeWrapper(msgspec.Struct, rename="camel"):
    """kvConfig.json, as RocketMQ writes it."""

    config_table: dict[str, dict[str, str]] = {}


class KVConfig(GeventActor):
    """The KV table. See the module docstring for messages, state and durability."""

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self.path = path
        self._table: dict[str, dict[str, str]] = {}

    def on_start(self) -> None:
        if self.path is None:
            return
        loaded = read_json(self.path, KVConfigSerializeWrapper)
        if loaded is not None:
            self._table = {ns: dict(kv) for ns, kv in loaded.config_table.items()}
            logger.info("namesrv: KV config from {}: {} namespaces", self.path, len(self._table))

    # -- changes ------------------------------------------------------------------------------

    def put(self, namespace: str, key: str, value: str) -> None:
        table = {ns: dict(kv) for ns, kv in self._table.items()}
        previous = table.setdefault(namespace, {}).get(key)
        table[namespace][key] = value
        self._save(table)
        logger.info(
            "namesrv: KV {} {}: {} = {}",
            namespace,
            "updated" if previous is not None else "created",
            key,
            value,
        )

    def delete(self, namespace: str, key: str) -> None:
        if key not in self._table.get(namespace, {}):
            return
        table = {ns: dict(kv) for ns, kv in self._table.items()}
        value = table[namespace].pop(key)
        self._save(table)
        logger.info("namesrv: KV {} deleted: {} (was {})", namespace, key, value)

    def _save(self, table: dict[str, dict[str, str]]) -> None:
        """Write ``table`` (when there is a file), then make it the table."""
        if self.path is not None:
            offload(write_json, self.path, KVConfigSerializeWrapper(config_table=table))
        self._table = table

    # -- queries ------------------------------------------------------------------------------

    def get(self, namespace: str, key: str) -> str | None:
        return self._table.get(namespace, {}).get(key)

    def namespace(self, namespace: str) -> dict[str, str] | None:
        kv = self._table.get(namespace)
        return None if kv is None else dict(kv)
