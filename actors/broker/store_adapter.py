"""StoreAdapter: the handlers' StorePort over the store's BrokerStore facade.

Each method forwards to the facade and waits for its future with a timeout: handlers are edge
code, actors never wait here. Topic configs cross from the store's ``TopicConfigData`` to the
wire's ``TopicConfig`` (same fields, RocketMQ's names).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pykka

from actors.broker.store_port import GetOutcome, PutOutcome, QueueEntries
from actors.broker.store_service import BrokerStore
from actors.broker.topic_config import is_system_topic, system_topic_names
from actors.broker.topic_config_data import TopicConfigData
from runtime.remoting.bodies import SubscriptionGroupConfig, SubscriptionGroupWrapper, TopicConfig
from runtime.request_context import end_turn
from runtime.store.consumequeue import ENTRY
from runtime.store.record import PutRecord
from runtime.store.tail_guard import TailLossGuard

ASK_TIMEOUT = 5.0
DELETE_TIMEOUT = 60.0
"""How long a topic deletion may wait for its marker's fsync and the queues' removal."""
TOPIC_CACHE_S = 1.0
"""How long a topic config read from the TopicConfig actor is reused."""
TOPIC_CACHE_MAX = 100_000


def to_wire(config: TopicConfigData) -> TopicConfig:
    return TopicConfig(**msgspec.structs.asdict(config))


def to_store(config: TopicConfig) -> TopicConfigData:
    return TopicConfigData(**msgspec.structs.asdict(config))


class _Cache:
    """Values read from an actor, reused for ``TOPIC_CACHE_S``; our own writes ``drop`` them."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> tuple[bool, Any]:
        """(True, value) while fresh, else (False, None)."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] < TOPIC_CACHE_S:
            return True, entry[1]
        return False, None

    def put(self, key: str, value: Any) -> None:
        if len(self._entries) > TOPIC_CACHE_MAX:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), value)

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)


class StoreAdapter:
    """StorePort for the broker's request handlers."""

    def __init__(self, store: BrokerStore, *, put_timeout: float) -> None:
        self.store = store
        self.put_timeout = put_timeout
        self._groups = _Cache()  # group -> SubscriptionGroupConfig | None
        self._topics = _Cache()  # topic -> TopicConfig (a missing topic is not cached)

    def _get(self, future: Any, timeout: float = ASK_TIMEOUT) -> Any:
        return future.get(timeout=timeout)

    # -- topics -------------------------------------------------------------------------------

    def topic(self, topic: str) -> TopicConfig | None:
        """The topic's config, from a cache that our own changes invalidate and that otherwise
        lives ``TOPIC_CACHE_S`` (every send and pull asks; the table changes rarely)."""
        fresh, cached = self._topics.get(topic)
        if fresh:
            return cached
        config = self._get(self.store.get_topic(topic))
        wire = None if config is None else to_wire(config)
        if wire is not None:  # a missing topic is asked again: it may be created any moment
            self._topics.put(topic, wire)
        return wire

    def all_topics(self) -> dict[str, TopicConfig]:
        table = self._get(self.store.all_topics())
        return {name: to_wire(c) for name, c in table.topics.items()}

    def create_topic(self, config: TopicConfig) -> None:
        self._get(self.store.update_topic(to_store(config)))
        self._topics.drop(config.topic_name)

    def ensure_topic(self, config: TopicConfig) -> TopicConfig:
        """The topic's config: the existing one, else ``config`` created, in one step of the
        TopicConfig actor (a send's auto-creation keeps a topic an admin or another send made
        since its lookup, as RocketMQ creates under the table's lock)."""
        made = self._get(self.store.ensure_topic(to_store(config)))
        self._topics.drop(config.topic_name)
        return to_wire(made)

    def is_system_topic(self, topic: str) -> bool:
        return is_system_topic(topic, self.store.ctx)

    def system_topics(self) -> list[str]:
        return sorted(system_topic_names(self.store.ctx))

    @property
    def read_only(self) -> bool:
        """A slave's store (it refuses client writes and deletions)."""
        return self.store.settings.read_only

    def delete_topic(self, topic: str) -> str | None:
        """Delete ``topic``: its config first (sends then find no topic), then its data (the
        deletion marker; queues and files go once it is fsynced), then every group's offsets
        of it. Returns why it failed, or None."""
        config_gone = self._get(self.store.delete_topic(topic))
        self._topics.drop(topic)
        if not config_gone.wait(DELETE_TIMEOUT):
            return "the topic's config could not be persisted without it: nothing deleted"
        done = self._get(self.store.delete_topic_data(topic))
        if done.error is not None:
            return done.error
        try:
            reached = self._get(self.store.when_dispatched(done.fence), DELETE_TIMEOUT)
        except pykka.Timeout:
            return (
                f"the deletion marker is written but was not dispatched within "
                f"{DELETE_TIMEOUT:g} s (under SYNC_MASTER records, this one too, wait for an "
                "in-sync slave); the deletion completes once it is: ask again to confirm"
            )
        if reached < done.fence:
            return (
                "the deletion marker is written, but the store stopped (or its dispatcher "
                "restarted) before applying it; it is applied when the store dispatches it "
                "again: ask again to confirm"
            )
        durable = self._get(self.store.remove_topic_offsets(topic))
        if not durable.wait(DELETE_TIMEOUT):
            return "the topic is deleted, but its consumer offsets could not be persisted"
        return None

    def ensure_retry_topic(self, topic: str, queue_nums: int = 1) -> int:
        config = self._get(self.store.ensure_retry_topic(topic, max(1, queue_nums)))
        self._topics.drop(topic)
        return max(1, config.write_queue_nums) if config is not None else max(1, queue_nums)

    # -- subscription groups ------------------------------------------------------------------

    def create_subscription_group(self, config: SubscriptionGroupConfig) -> None:
        self._get(self.store.update_group(config))
        self._groups.drop(config.group_name)

    def subscription_group(self, group: str) -> SubscriptionGroupConfig | None:
        """The group's config (None: it has none), cached like topics: every pull asks."""
        fresh, cached = self._groups.get(group)
        if fresh:
            return cached
        config = self._get(self.store.get_group(group))
        self._groups.put(group, config)
        return config

    def all_subscription_groups(self) -> SubscriptionGroupWrapper:
        return self._get(self.store.all_groups())

    def delete_subscription_group(self, group: str) -> bool:
        existed = bool(self._get(self.store.delete_group(group)))
        self._groups.drop(group)
        return existed

    def remove_group_offsets(self, group: str) -> bool:
        return bool(self._get(self.store.remove_group_offsets(group)))

    # -- write path ---------------------------------------------------------------------------

    def put(self, records: list[PutRecord]) -> PutOutcome:
        """Store ``records`` as one batch. The request's turn (``request_context.wait_turn``)
        ends once they are queued for the CommitLog, before the wait for their durability, so
        the connection's next send is queued right behind them and both share a flush."""
        future = self.store.put(records)
        end_turn()
        result = self._get(future, self.put_timeout)
        return PutOutcome(
            status=result.status.value,
            queue_offset=result.queue_offset,
            msg_ids=tuple(result.msg_ids),
            remark=result.reason,
            wrote_bytes=result.wrote_bytes,
        )

    # -- read path ----------------------------------------------------------------------------

    def get_messages(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        max_bytes: int,
        tag_codes: frozenset[int] | None,
    ) -> GetOutcome:
        r = self._get(
            self.store.get_messages(group, topic, queue_id, offset, max_nums, max_bytes, tag_codes)
        )
        return GetOutcome(
            status=r.status.value,
            next_begin_offset=r.next_begin_offset,
            min_offset=r.min_offset,
            max_offset=r.max_offset,
            messages=r.messages,
        )

    @property
    def put_counts(self) -> dict[str, int]:
        """Messages appended per topic since the store started."""
        return dict(self.store.ctx.put_counts)

    @property
    def put_bytes(self) -> dict[str, int]:
        """Bytes appended per topic since the store started (``StoreContext.put_bytes``)."""
        return dict(self.store.ctx.put_bytes)

    @property
    def running(self) -> bool:
        return self.store.running

    def wait_arrival(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        max_offset = self._get(
            self.store.wait_arrival(topic, queue_id, offset, timeout), timeout + ASK_TIMEOUT
        )
        return max_offset > offset

    def min_offset(self, topic: str, queue_id: int) -> int:
        return int(self._get(self.store.min_offset(topic, queue_id)))

    def max_offset(self, topic: str, queue_id: int) -> int:
        return int(self._get(self.store.max_offset(topic, queue_id)))

    def offset_by_time(self, topic: str, queue_id: int, timestamp: int) -> int:
        return int(self._get(self.store.offset_by_time(topic, queue_id, timestamp)))

    def earliest_store_time(self, topic: str, queue_id: int) -> int:
        return int(self._get(self.store.earliest_store_time(topic, queue_id)))

    def message_at(self, physical_offset: int) -> bytes | None:
        return self.store.read_message_bytes(physical_offset)

    def consume_queue(
        self, topic: str, queue_id: int, start: int, count: int
    ) -> QueueEntries | None:
        """Up to ``count`` entries of the queue from ``start`` (none when ``start`` is outside
        its range); None when this broker has no such consume queue."""
        got = self._get(self.store.read_entries(topic, queue_id, start, count))
        if got is None:
            return None
        low, high, raw = got
        return QueueEntries(low, high, tuple(ENTRY.iter_unpack(raw)))

    def queue_topics(self) -> list[str]:
        return self.store.queue_topics()

    def trim_consume_queues(self) -> int:
        done = self.store.trim_queues()
        for future in done:
            self._get(future)
        return len(done)

    def query_by_key(self, topic: str, key: str, max_num: int, begin: int, end: int) -> list[bytes]:
        return list(self._get(self.store.query_by_key(topic, key, max_num, begin, end)).messages)

    # -- consumer offsets ---------------------------------------------------------------------

    def query_offset(self, group: str, topic: str, queue_id: int) -> int | None:
        offset = self._get(self.store.query_offset(group, topic, queue_id))
        return None if offset is None or offset < 0 else int(offset)

    @property
    def tail_guard(self) -> TailLossGuard:
        return self.store.ctx.tail_guard

    def commit_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        self._get(self.store.commit_offset(group, topic, queue_id, offset))

    def consumed_topics(self, group: str) -> list[str]:
        """The topics ``group`` committed an offset for, sorted."""
        return sorted(self.group_offsets(group))

    def group_offsets(self, group: str) -> dict[str, dict[int, int]]:
        """{topic: {queue_id: committed offset}} of ``group``."""
        return self._get(self.store.group_offsets(group))

    def all_offsets(self) -> dict[str, dict[int, int]]:
        """{"topic@group": {queue_id: offset}}: every committed offset (a copy)."""
        return self._get(self.store.all_offsets())
