"""StorePort: the store operations the broker's request handlers use, and nothing more.

Handlers are edge code: every call may block its greenlet (never an actor) up to a timeout.
``StoreAdapter`` in ``actors.broker.store_adapter`` implements it over the store's actors.
Outcome statuses mirror RocketMQ's PutMessageStatus / GetMessageStatus and are compared by name.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from runtime.remoting.bodies import SubscriptionGroupConfig, SubscriptionGroupWrapper, TopicConfig
from runtime.store.record import PutRecord
from runtime.store.tail_guard import TailLossGuard


class PutOutcome(msgspec.Struct, frozen=True):
    status: str  # PutMessageStatus name: PUT_OK, FLUSH_DISK_TIMEOUT, MESSAGE_ILLEGAL, ...
    queue_offset: int = -1  # of the first record
    msg_ids: tuple[str, ...] = ()  # offset message ids, one per record
    remark: str | None = None
    wrote_bytes: int = 0  # the records as stored


class GetOutcome(msgspec.Struct, frozen=True):
    status: str  # GetMessageStatus name: FOUND, NO_MATCHED_MESSAGE, OFFSET_OVERFLOW_ONE, ...
    next_begin_offset: int
    min_offset: int
    max_offset: int
    messages: tuple[bytes, ...] = ()  # raw commit-log records, in queue order

    @property
    def body(self) -> bytes:
        """The PULL body: the records concatenated."""
        return b"".join(self.messages)

    @property
    def count(self) -> int:
        return len(self.messages)


class QueueEntries(msgspec.Struct, frozen=True):
    """A slice of one consume queue, as admin tools look at it (QUERY_CONSUME_QUEUE)."""

    min_offset: int
    max_offset: int
    entries: tuple[tuple[int, int, int], ...] = ()  # (commit-log offset, size, tags code)


class StorePort(Protocol):
    # topics
    def topic(self, topic: str) -> TopicConfig | None: ...
    def all_topics(self) -> dict[str, TopicConfig]: ...
    def create_topic(self, config: TopicConfig) -> None: ...
    def ensure_topic(self, config: TopicConfig) -> TopicConfig:
        """The existing config of the topic, else ``config`` created (create-if-missing)."""
        ...

    def delete_topic(self, topic: str) -> str | None: ...
    def is_system_topic(self, topic: str) -> bool: ...
    def system_topics(self) -> list[str]: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def running(self) -> bool:
        """False once the store began to stop (a restart or a role change rebuilds it)."""
        ...

    def ensure_retry_topic(self, topic: str, queue_nums: int = 1) -> int:
        """Create ``%RETRY%group`` with ``queue_nums`` queues if missing; its write queues."""
        ...

    # subscription groups (persisted; a group needs none to consume)
    def create_subscription_group(self, config: SubscriptionGroupConfig) -> None: ...
    def subscription_group(self, group: str) -> SubscriptionGroupConfig | None: ...
    def all_subscription_groups(self) -> SubscriptionGroupWrapper: ...
    def delete_subscription_group(self, group: str) -> bool: ...
    def remove_group_offsets(self, group: str) -> bool:
        """Forget every consumer offset ``group`` committed (on every topic)."""
        ...

    # write path
    def put(self, records: list[PutRecord]) -> PutOutcome: ...

    # read path
    def get_messages(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        max_bytes: int,
        tag_codes: frozenset[int] | None,
    ) -> GetOutcome: ...
    def wait_arrival(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool: ...
    def min_offset(self, topic: str, queue_id: int) -> int: ...
    def max_offset(self, topic: str, queue_id: int) -> int: ...
    def offset_by_time(self, topic: str, queue_id: int, timestamp: int) -> int: ...
    def earliest_store_time(self, topic: str, queue_id: int) -> int: ...
    def message_at(self, physical_offset: int) -> bytes | None: ...
    def consume_queue(
        self, topic: str, queue_id: int, start: int, count: int
    ) -> QueueEntries | None: ...
    def queue_topics(self) -> list[str]:
        """The topics that have a consume queue in this store."""
        ...

    def trim_consume_queues(self) -> int:
        """Drop consume-queue files pointing only below the commit log's minimum; the number
        of queues looked at."""
        ...

    def query_by_key(
        self, topic: str, key: str, max_num: int, begin: int, end: int
    ) -> list[bytes]: ...

    # consumer offsets
    def query_offset(self, group: str, topic: str, queue_id: int) -> int | None: ...
    @property
    def tail_guard(self) -> TailLossGuard:
        """Keeps running consumers from passing offsets a lost tail gives to new messages."""
        ...

    def commit_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None: ...
    def consumed_topics(self, group: str) -> list[str]: ...
    def group_offsets(self, group: str) -> dict[str, dict[int, int]]: ...
    def all_offsets(self) -> dict[str, dict[int, int]]: ...
