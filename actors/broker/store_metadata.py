"""The facade's metadata: consumer offsets, topic configs (and deleting a topic's data), and
subscription groups.

``StoreMetadata`` is a part of ``actors.broker.store_service.BrokerStore``. Each method asks the
actor that owns the table (``ConsumerOffsets``, ``TopicConfig``, ``SubscriptionGroups``; the
writer appends deletion markers, the Dispatcher says when they are applied) and returns its
future; an actor that is not running gives a future that raises ``ActorFailure``.
"""

from __future__ import annotations

import pykka

from actors.broker.messages import (
    AllOffsets,
    AllTopics,
    CommitOffset,
    DeleteTopic,
    DeleteTopicData,
    EnsureTopic,
    GetTopic,
    GroupOffsets,
    OffsetsSince,
    QueryOffset,
    RemoveGroup,
    RemoveOffsets,
    RemoveTopicOffsets,
    UpdateTopic,
    WhenDispatched,
)
from actors.broker.store_base import Future, StoreFacadeBase, failed_future
from actors.broker.subscription_groups import AllGroups, DeleteGroup, GetGroup, UpdateGroup
from actors.broker.topic_config_data import TopicConfigData
from runtime.actor import new_future
from runtime.remoting.bodies import SubscriptionGroupConfig


class StoreMetadata(StoreFacadeBase):
    """Consumer offsets, topics and subscription groups. See the module docstring."""

    # -- consumer offsets ----------------------------------------------------------------------

    def commit_offset(self, group: str, topic: str, queue_id: int, offset: int) -> Future:
        # every pull commits: answered inline when the offsets actor is idle (never yields)
        return self._ask(self.names.offsets, CommitOffset(group, topic, queue_id, offset), True)

    def query_offset(self, group: str, topic: str, queue_id: int) -> Future:
        """Committed offset, -1 when the group never committed one for this queue."""
        return self._ask(self.names.offsets, QueryOffset(group, topic, queue_id), True)

    def group_offsets(self, group: str) -> Future:
        """{topic: {queue_id: offset}} for ``group``."""
        return self._ask(self.names.offsets, GroupOffsets(group))

    def all_offsets(self) -> Future:
        """{"topic@group": {queue_id: offset}}: every committed offset (slaves copy it)."""
        return self._ask(self.names.offsets, AllOffsets())

    def offsets_since(self, since: str) -> Future:
        """``OffsetsDelta``: the offsets changed since ``since``, or all (a slave's poll)."""
        return self._ask(self.names.offsets, OffsetsSince(since))

    def remove_group_offsets(self, group: str) -> Future:
        return self._ask(self.names.offsets, RemoveGroup(group))

    def remove_offsets(self, keys: tuple[str, ...]) -> Future:
        """Forget these ``topic@group`` entries: future of how many there were."""
        return self._ask(self.names.offsets, RemoveOffsets(keys))

    # -- topics --------------------------------------------------------------------------------

    def get_topic(self, topic: str) -> Future:
        """Future of TopicConfigData, or None."""
        return self._ask(self.names.topics, GetTopic(topic))

    def update_topic(self, config: TopicConfigData) -> Future:
        return self._ask(self.names.topics, UpdateTopic(config))

    def delete_topic(self, topic: str) -> Future:
        """Remove the topic's config: future of an AsyncResult that becomes True once
        ``topics.json`` without it is on disk. Its data stays until ``delete_topic_data``."""
        return self._ask(self.names.topics, DeleteTopic(topic))

    def delete_topic_data(self, topic: str) -> Future:
        """Append the topic's deletion marker -> future of TopicDataDeleted (``fence``: wait
        for ``when_dispatched(fence)`` to know its queues and files are gone)."""
        return self._ask(self.names.writer, DeleteTopicData(topic))

    def when_dispatched(self, offset: int) -> Future:
        """Future of the dispatched offset once it reached ``offset`` (deletions applied)."""
        reply = new_future()
        ref = self.ctx.directory.get(self.names.dispatcher)
        if ref is None:
            return failed_future(self.names.dispatcher, "not running")
        try:
            ref.tell(WhenDispatched(offset, reply))
        except pykka.ActorDeadError:
            return failed_future(self.names.dispatcher, "stopped")
        return reply

    def remove_topic_offsets(self, topic: str) -> Future:
        """Forget every group's committed offsets of ``topic``: future of an AsyncResult that
        becomes True once that is on disk (False when the write failed)."""
        return self._ask(self.names.offsets, RemoveTopicOffsets(topic))

    def ensure_topic(self, config: TopicConfigData) -> Future:
        return self._ask(self.names.topics, EnsureTopic(config))

    def ensure_retry_topic(self, topic: str, queue_nums: int = 1) -> Future:
        """Create ``%RETRY%group`` (read/write, ``queue_nums`` queues) if missing."""
        return self.ensure_topic(
            TopicConfigData(
                topic_name=topic, read_queue_nums=queue_nums, write_queue_nums=queue_nums
            )
        )

    def all_topics(self, names: tuple[str, ...] | None = None) -> Future:
        """Future of TopicTable (topics and data version, for broker registration): only those
        of ``names`` that exist, when given."""
        return self._ask(self.names.topics, AllTopics(names))

    # -- subscription groups -------------------------------------------------------------------

    def get_group(self, name: str) -> Future:
        """Future of the group's SubscriptionGroupConfig, or None."""
        return self._ask(self.names.groups, GetGroup(name))

    def update_group(self, config: SubscriptionGroupConfig) -> Future:
        return self._ask(self.names.groups, UpdateGroup(config))

    def delete_group(self, name: str) -> Future:
        return self._ask(self.names.groups, DeleteGroup(name))

    def all_groups(self) -> Future:
        """Future of SubscriptionGroupWrapper (every group's config and the data version)."""
        return self._ask(self.names.groups, AllGroups())
