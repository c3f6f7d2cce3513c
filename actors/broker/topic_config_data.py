"""Topic configuration data: RocketMQ's TopicConfig and the versioned table of them."""

from __future__ import annotations

import msgspec


class TopicConfigData(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """RocketMQ's TopicConfig. ``perm``: 4 read, 2 write, 1 inherit (6 = read+write)."""

    topic_name: str
    read_queue_nums: int = 16
    write_queue_nums: int = 16
    perm: int = 6
    topic_filter_type: str = "SINGLE_TAG"
    topic_sys_flag: int = 0
    order: bool = False
    attributes: dict[str, str] = {}
    """RocketMQ 5's topic attributes (``runtime.store.topic_attributes``)."""

    @property
    def readable(self) -> bool:
        return bool(self.perm & 4)

    @property
    def writable(self) -> bool:
        return bool(self.perm & 2)


class DataVersion(msgspec.Struct, frozen=True, rename="camel"):
    timestamp: int
    counter: int


class TopicTable(msgspec.Struct, frozen=True):
    topics: dict[str, TopicConfigData]
    data_version: DataVersion
