"""``StoreSettings``: everything the store needs, in one small frozen struct.

Built from the broker's config by ``StoreSettings.from_broker_config(cfg)``; tests build it
directly (small segments, short intervals) so they do not depend on the config package.
Durations carry their unit in the name; sizes are bytes.
"""

from __future__ import annotations

import enum
import os
from typing import Any

import msgspec

from runtime.hostport import resolve_ip
from runtime.store.record import host_bytes
from runtime.store.record_properties import DEFAULT_DELAY_LEVELS_SPEC, parse_delay_levels


class FlushMode(enum.Enum):
    """RocketMQ's flushDiskType."""

    ASYNC_FLUSH = "ASYNC_FLUSH"
    SYNC_FLUSH = "SYNC_FLUSH"


class StoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    root: str
    commitlog_path: str = ""
    """storePathCommitLog: the commit log's directory when not ``<root>/commitlog`` (e.g. on
    its own disk); everything else stays under ``root``."""
    broker_name: str = "broker-a"
    cluster_name: str = "DefaultCluster"
    commitlog_segment_size: int = 1024 * 1024 * 1024
    cq_entries_per_file: int = 300_000
    flush_mode: FlushMode = FlushMode.ASYNC_FLUSH
    flush_interval_ms: int = 500
    sync_flush_timeout_ms: int = 5000
    slave_timeout_ms: int = 3000
    max_message_size: int = 4 * 1024 * 1024
    store_host: str = "127.0.0.1"
    store_port: int = 10911
    # retention (RocketMQ: fileReservedTime hours, deleteWhen hours "04;16", disk ratios %)
    file_reserved_hours: float = 72
    delete_when: str = "04"
    disk_max_used_space_ratio: int = 75
    disk_space_clean_forcibly_ratio: int = 85
    disk_space_warning_level_ratio: int = 90
    clean_resource_interval_ms: int = 10_000
    # key index
    message_index_enable: bool = True
    index_slots: int = 5_000_000
    index_capacity: int = 20_000_000
    # persistence cadence
    checkpoint_interval_ms: int = 1000
    """How often the Dispatcher checks whether a checkpoint is due."""
    checkpoint_lag_bytes: int = 64 * 1024**2
    """A checkpoint is due once the log grew this much past the last one (bounds the recovery
    scan after a crash: ~0.5 s for 64 MiB); 0 = at every tick."""
    checkpoint_max_interval_ms: int = 60_000
    """... or once this long passed with anything new (RocketMQ's thorough CQ flush)."""
    consumer_offset_persist_interval_ms: int = 5000
    queue_idle_stop_ms: int = 120_000
    """A consume queue's actor unused this long stops (its files stay open; the next dispatch
    or read starts one again); 0: never."""
    # reads and writes
    check_crc_on_read: bool = True
    os_page_cache_busy_timeout_ms: int = 1000
    max_get_bytes: int = 256 * 1024
    message_delay_level: str = DEFAULT_DELAY_LEVELS_SPEC
    # topics
    auto_create_topic_enable: bool = True
    default_topic_queue_nums: int = 8
    trace_topic: str | None = None
    """traceTopicEnable: the message-trace topic the broker creates at start (its name)."""
    read_only: bool = False  # a slave: the writer refuses client puts
    max_truncate_bytes: int = 256 * 1024 * 1024
    """Recovery refuses (StoreError) to cut more than this off the commit log's tail: a torn
    tail is at most the unflushed writes; more points at a bug or damage an operator should
    look at first (raise it to accept the loss)."""

    # -- derived --------------------------------------------------------------------------------

    @property
    def commitlog_dir(self) -> str:
        return self.commitlog_path or os.path.join(self.root, "commitlog")

    @property
    def config_dir(self) -> str:
        return os.path.join(self.root, "config")

    @property
    def store_host_bytes(self) -> bytes:
        """The store host of every record: ``brokerIP1``, a host name resolved (once, when
        the store opens)."""
        return host_bytes(resolve_ip(self.store_host))

    @property
    def delay_levels(self) -> tuple[int, ...]:
        return parse_delay_levels(self.message_delay_level)

    @property
    def sync_flush(self) -> bool:
        return self.flush_mode is FlushMode.SYNC_FLUSH

    # -- from the broker config --------------------------------------------------------------------

    @classmethod
    def from_broker_config(cls, cfg: Any, **overrides: Any) -> StoreSettings:
        """Map a ``config.schema.BrokerConfig`` (read by attribute name) to store settings."""

        def get(name: str, default: Any) -> Any:
            return getattr(cfg, name, default)

        flush = get("flush_disk_type", FlushMode.ASYNC_FLUSH)
        flush_mode = FlushMode(getattr(flush, "value", flush))
        role = get("broker_role", None)
        role_name = getattr(role, "value", role)
        cq_bytes = get("mapped_file_size_consume_queue", 300_000 * 20)
        values: dict[str, Any] = {
            "root": os.path.expanduser(get("store_path_root_dir", "~/store")),
            "commitlog_path": os.path.expanduser(get("store_path_commit_log", "") or ""),
            "broker_name": get("broker_name", "broker-a"),
            "cluster_name": get("broker_cluster_name", "DefaultCluster"),
            "commitlog_segment_size": get("mapped_file_size_commit_log", 1024**3),
            "cq_entries_per_file": max(1, cq_bytes // 20),
            "flush_mode": flush_mode,
            "flush_interval_ms": get("flush_interval_commit_log", 500),
            "sync_flush_timeout_ms": get("sync_flush_timeout", 5000),
            "slave_timeout_ms": get("slave_timeout", 3000),
            "max_message_size": get("max_message_size", 4 * 1024 * 1024),
            "store_host": get("broker_ip1", "127.0.0.1"),
            "store_port": get("listen_port", 10911),
            "file_reserved_hours": get("file_reserved_time", 72),
            "delete_when": get("delete_when", "04"),
            "disk_max_used_space_ratio": get("disk_max_used_space_ratio", 75),
            "disk_space_clean_forcibly_ratio": get("disk_space_clean_forcibly_ratio", 85),
            "disk_space_warning_level_ratio": get("disk_space_warning_level_ratio", 90),
            "clean_resource_interval_ms": get("clean_resource_interval", 10_000),
            "message_index_enable": get("message_index_enable", True),
            "checkpoint_interval_ms": get("flush_interval_consume_queue", 1000),
            "checkpoint_max_interval_ms": get("flush_consume_queue_thorough_interval", 60_000),
            "consumer_offset_persist_interval_ms": get("flush_consumer_offset_interval", 5000),
            "queue_idle_stop_ms": get("queue_idle_stop_millis", 120_000),
            "max_get_bytes": get("max_transfer_bytes_on_message_in_memory", 256 * 1024),
            "os_page_cache_busy_timeout_ms": get("os_page_cache_busy_timeout_mills", 1000),
            "message_delay_level": get("message_delay_level", DEFAULT_DELAY_LEVELS_SPEC),
            "auto_create_topic_enable": get("auto_create_topic_enable", True),
            "default_topic_queue_nums": get("default_topic_queue_nums", 8),
            "trace_topic": (
                get("msg_trace_topic_name", "RMQ_SYS_TRACE_TOPIC")
                if get("trace_topic_enable", False)
                else None
            ),
            "read_only": role_name == "SLAVE",
        }
        values.update(overrides)
        return cls(**values)
