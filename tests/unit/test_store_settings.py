"""StoreSettings from the broker's config: RocketMQ's keys map onto the store's settings."""

from __future__ import annotations

from config.schema import BrokerConfig, BrokerRole, FlushDiskType
from runtime.store.settings import FlushMode, StoreSettings


def test_from_broker_config() -> None:
    cfg = BrokerConfig(
        store_path_root_dir="/tmp/store-x",
        flush_disk_type=FlushDiskType.SYNC_FLUSH,
        broker_role=BrokerRole.SLAVE,
        broker_id=1,
        mapped_file_size_commit_log=1 << 20,
        mapped_file_size_consume_queue=1000 * 20,
        sync_flush_timeout=700,
        delete_when="04;16",
        listen_port=10999,
        os_page_cache_busy_timeout_mills=250,
    )
    s = StoreSettings.from_broker_config(cfg)
    assert s.os_page_cache_busy_timeout_ms == 250
    assert s.root == "/tmp/store-x"
    assert s.flush_mode is FlushMode.SYNC_FLUSH and s.sync_flush
    assert s.read_only  # a slave refuses client puts
    assert (s.commitlog_segment_size, s.cq_entries_per_file) == (1 << 20, 1000)
    assert (s.sync_flush_timeout_ms, s.delete_when, s.store_port) == (700, "04;16", 10999)
    assert s.commitlog_dir == "/tmp/store-x/commitlog"


def test_defaults_mirror_rocketmq() -> None:
    s = StoreSettings.from_broker_config(BrokerConfig(), root="/tmp/r")
    assert s.flush_mode is FlushMode.ASYNC_FLUSH and not s.read_only
    assert s.commitlog_segment_size == 1024**3
    assert s.cq_entries_per_file == 300_000
    assert (s.flush_interval_ms, s.sync_flush_timeout_ms) == (500, 5000)
    assert s.max_message_size == 4 * 1024 * 1024
    assert (s.file_reserved_hours, s.delete_when) == (72, "04")
    assert (
        s.disk_max_used_space_ratio,
        s.disk_space_clean_forcibly_ratio,
        s.disk_space_warning_level_ratio,
    ) == (75, 85, 90)
    assert len(s.delay_levels) == 18 and s.delay_levels[0] == 1000
