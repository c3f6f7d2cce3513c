"""The store service: child specs for the broker supervisor and the ``BrokerStore`` facade.

Build once per broker node::

    store = BrokerStore.build(StoreSettings.from_broker_config(cfg), directory, prefix=name)
    children = store.child_specs() + [...]          # start order: writer first
    Supervisor.start(name, children=children, directory=directory)
    ...
    result = store.put([PutRecord(topic, queue_id, body, properties)]).get(timeout=5)

``store_child_specs(settings, directory)`` is the same without keeping the facade.

Children, in start order (the supervisor stops them in reverse, so the writer — which owns the
lock and the abort marker — stops last):

====================  ===================  ===========  ==========================================
name                  actor                restart      role
====================  ===================  ===========  ==========================================
<p>/store/commitlog   CommitLogWriter      FAIL_STOP    recovery, appends, offsets
<p>/store/flusher     Flusher              FAIL_STOP    fsync, group commit, flush timeouts
<p>/store/dispatcher  Dispatcher           PERMANENT    reput to Queue actors + key index
<p>/store/topic-con.. TopicConfig          PERMANENT    topic table
<p>/store/consumer-.. ConsumerOffsets      PERMANENT    committed offsets
<p>/store/retention   Retention            PERMANENT    segment deletion, disk thresholds
====================  ===================  ===========  ==========================================

Queue actors (one per topic/queue) are created on demand by the QueueTable and stopped by the
Dispatcher. Recovery runs in the writer's start function, in the hub's thread pool: a store that
cannot recover makes the start fail with a StoreError that says why.

Every facade method is thin: it forwards one message to one actor and returns a future
(``.get(timeout=...)`` it in edge code). When the actor is not running (restarting, or the store
fail-stopped) the future holds an answer that says so instead of blocking: ``put`` gets
SERVICE_NOT_AVAILABLE (nothing was appended); other calls raise ``ActorFailure`` from ``get``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

import gevent
import pykka

from actors.broker.commitlog_writer import CommitLogWriter
from actors.broker.consumer_offsets import ConsumerOffsets
from actors.broker.dispatcher import Dispatcher
from actors.broker.flusher import Flusher
from actors.broker.messages import (
    AllOffsets,
    AllTopics,
    AppendBatch,
    AutoCreateTopic,
    CommitOffset,
    DeleteTopic,
    DeleteTopicData,
    EarliestStoreTime,
    EnsureTopic,
    GetMessages,
    GetResult,
    GetStatus,
    GetTopic,
    GroupOffsets,
    OffsetForTime,
    PutResult,
    PutStatus,
    QueryByKey,
    QueryOffset,
    QueryResult,
    QueueRange,
    ReadEntries,
    RemoveGroup,
    RemoveTopicOffsets,
    TopicConfigData,
    TopicTable,
    TrimBelow,
    UpdateTopic,
    WaitArrival,
    WhenDispatched,
)
from actors.broker.queue import QueueTable
from actors.broker.retention import Retention
from actors.broker.subscription_groups import (
    AllGroups,
    DeleteGroup,
    GetGroup,
    SubscriptionGroups,
    UpdateGroup,
)
from actors.broker.topic_config import TopicConfig
from runtime.actor import (
    ask_now,
    new_future,
    offload,
    others_ready,
    tell_now,
)
from runtime.directory import Directory
from runtime.errors import ActorFailure
from runtime.remoting.bodies import SubscriptionGroupConfig
from runtime.store.context import ReplicationCondition, StoreContext
from runtime.store.record import PutRecord, StoredRecord, decode_record, java_hash
from runtime.store.recovery import open_store
from runtime.store.settings import StoreSettings
from runtime.store.storage import OS_FS, FileSystem
from runtime.supervisor import ChildSpec, Restart

Future = pykka.Future[Any]


def tag_codes(tags: Iterable[str] | str | None) -> frozenset[int] | None:
    """Subscription tags ("TagA || TagB", or a list) -> tag hash codes; None means all ("*")."""
    if tags is None:
        return None
    items = [t.strip() for t in tags.split("||")] if isinstance(tags, str) else list(tags)
    items = [t for t in items if t]
    if not items or "*" in items:
        return None
    return frozenset(java_hash(t) for t in items)


def _resolved(value: Any) -> Future:
    fut = new_future()
    fut.set(value)
    return fut


def _failed(name: str, reason: str) -> Future:
    fut = new_future()
    try:
        raise ActorFailure(name, reason)
    except ActorFailure:
        fut.set_exception()
    return fut


class BrokerStore:
    """The store API the remoting handlers call. See the module docstring."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.names = ctx.names
        self._standalone: list[tuple[str, pykka.ActorRef[Any]]] = []

    @classmethod
    def build(
        cls,
        settings: StoreSettings,
        directory: Directory,
        *,
        prefix: str | None = None,
        fs: FileSystem = OS_FS,
        replication: ReplicationCondition | None = None,
    ) -> BrokerStore:
        """A facade and its context. ``replication`` is the HA hook (default: none needed)."""
        ctx = StoreContext(settings, directory, prefix=prefix, fs=fs, replication=replication)
        ctx.queues = QueueTable(ctx)
        return cls(ctx)

    # -- supervision ---------------------------------------------------------------------------

    def child_specs(self) -> list[ChildSpec]:
        ctx = self.ctx
        n = ctx.names
        return [
            ChildSpec(name=n.writer, start=self._start_writer, restart=Restart.FAIL_STOP),
            ChildSpec(name=n.flusher, start=lambda: Flusher.start(ctx), restart=Restart.FAIL_STOP),
            ChildSpec(name=n.dispatcher, start=lambda: Dispatcher.start(ctx)),
            ChildSpec(name=n.topics, start=lambda: TopicConfig.start(ctx)),
            ChildSpec(name=n.offsets, start=lambda: ConsumerOffsets.start(ctx)),
            ChildSpec(name=n.groups, start=lambda: SubscriptionGroups.start(ctx)),
            ChildSpec(name=n.retention, start=lambda: Retention.start(ctx)),
        ]

    def _start_writer(self) -> pykka.ActorRef[Any]:
        ctx = self.ctx
        if ctx.opened is None:
            if gevent.getcurrent() is gevent.get_hub():
                ctx.opened = open_store(ctx.settings, ctx.fs)
            else:
                ctx.opened = offload(open_store, ctx.settings, ctx.fs)
        return CommitLogWriter.start(ctx)

    def start(self) -> BrokerStore:
        """Start every child without a supervisor (tests, benchmarks, tools); see ``stop``."""
        for spec in self.child_specs():
            ref = spec.start()
            self.ctx.directory.put(spec.name, ref)
            self._standalone.append((spec.name, ref))
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop what ``start`` started, in reverse order (a clean shutdown)."""
        while self._standalone:
            name, ref = self._standalone.pop()
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=True, timeout=timeout)
            self.ctx.directory.remove(name, ref)

    def simulate_crash(self) -> None:
        """Tests: stop like a killed process — no flush, no checkpoint, abort marker kept."""
        self.ctx.failed = "simulated crash"
        self.stop()

    # -- writes --------------------------------------------------------------------------------

    def put(self, records: Sequence[PutRecord]) -> Future:
        """Append ``records`` as one batch -> future of PutResult.

        All records are validated before anything is written (MESSAGE_ILLEGAL /
        PROPERTIES_SIZE_EXCEEDED refuse the whole batch). PUT_OK means the flush mode's
        durability condition holds (SYNC_FLUSH: fsynced) and the replication condition.
        """
        reply = new_future()
        ref = self.ctx.directory.get(self.names.writer)
        if ref is None:
            reply.set(PutResult(status=PutStatus.SERVICE_NOT_AVAILABLE, reason="store not running"))
            return reply
        message = AppendBatch(records, reply, time.monotonic())
        try:
            # An idle writer appends in this greenlet (its AppendBatch handler never yields):
            # the reply is set before this returns, two greenlet switches saved per send. Not
            # while other greenlets are about to run: their appends then join this one in the
            # writer's next group (one write, one dispatch for all).
            if others_ready():
                ref.tell(message)
            else:
                tell_now(ref, message)
        except pykka.ActorDeadError:
            reply.set(PutResult(status=PutStatus.SERVICE_NOT_AVAILABLE, reason="store stopped"))
        return reply

    def put_one(self, record: PutRecord) -> Future:
        return self.put((record,))

    # -- reads by queue ------------------------------------------------------------------------

    def _queue_ask(self, topic: str, queue_id: int, message: Any, missing: Any) -> Future:
        table: QueueTable = self.ctx.queues
        ref = table.get(topic, queue_id)
        if ref is None:
            if self.ctx.opened is None:
                return _failed(self.names.writer, "store not running")
            return _resolved(missing)
        try:
            return ask_now(ref, message)  # reads never yield: answered inline when idle
        except pykka.ActorDeadError:
            return _failed(f"queue {topic}/{queue_id}", "stopped")

    def get_messages(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        max_bytes: int | None = None,
        tag_filter: Iterable[int] | None = None,
    ) -> Future:
        """Read by queue offset -> future of GetResult (raw records, RocketMQ's statuses).

        ``tag_filter``: tag hash codes to keep (see ``tag_codes``); None keeps all. ``group`` is
        accepted for RocketMQ parity (filtering/statistics hooks); the store does not use it.
        """
        del group
        msg = GetMessages(
            offset,
            max_nums,
            self.settings.max_get_bytes if max_bytes is None else max_bytes,
            None if tag_filter is None else frozenset(tag_filter),
        )
        missing = GetResult(
            status=GetStatus.NO_MATCHED_LOGIC_QUEUE,
            next_begin_offset=0,
            min_offset=0,
            max_offset=0,
        )
        return self._queue_ask(topic, queue_id, msg, missing)

    def wait_arrival(self, topic: str, queue_id: int, offset: int, timeout: float) -> Future:
        """Future resolved with the queue's max offset once it exceeds ``offset`` (a message at
        ``offset`` arrived), or with the max offset then after ``timeout`` seconds. Park a long
        poll on it; it never raises for an unknown queue (it waits for the queue to appear)."""
        reply = new_future()
        table: QueueTable = self.ctx.queues
        ref = table.get(topic, queue_id, create=self.ctx.opened is not None)
        if ref is None:
            reply.set(0)
            return reply
        try:  # parked inline when the queue is idle (the handler never yields)
            tell_now(ref, WaitArrival(offset, reply, time.monotonic() + timeout))
        except pykka.ActorDeadError:
            reply.set(0)
        return reply

    def min_offset(self, topic: str, queue_id: int) -> Future:
        return self._queue_ask(topic, queue_id, QueueRange(), (0, 0)).map(lambda r: r[0])

    def max_offset(self, topic: str, queue_id: int) -> Future:
        return self._queue_ask(topic, queue_id, QueueRange(), (0, 0)).map(lambda r: r[1])

    def queue_range(self, topic: str, queue_id: int) -> Future:
        """Future of (min_offset, max_offset)."""
        return self._queue_ask(topic, queue_id, QueueRange(), (0, 0))

    def offset_by_time(self, topic: str, queue_id: int, timestamp_ms: int) -> Future:
        """First queue offset stored at or after ``timestamp_ms`` (the max offset if none)."""
        return self._queue_ask(topic, queue_id, OffsetForTime(timestamp_ms), 0)

    def earliest_store_time(self, topic: str, queue_id: int) -> Future:
        """Store timestamp (ms) of the queue's first message, -1 when empty."""
        return self._queue_ask(topic, queue_id, EarliestStoreTime(), -1)

    def read_entries(self, topic: str, queue_id: int, start: int, count: int) -> Future:
        """Future of (min_offset, max_offset, raw entries from ``start``), or of None when the
        queue has no consume queue here."""
        return self._queue_ask(topic, queue_id, ReadEntries(start, count), None)

    def queue_topics(self) -> list[str]:
        """The topics that have a consume queue here, sorted."""
        table: QueueTable = self.ctx.queues
        return sorted({topic for topic, _ in table.known_keys()})

    def trim_queues(self) -> list[Future]:
        """Every consume queue (and the index) drops the files that only point below the
        commit log's minimum, as after retention: futures, one per queue, set once done."""
        log_min = self.commit_log_min_offset
        ref = self.ctx.directory.get(self.names.dispatcher)
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(TrimBelow(log_min))
        table: QueueTable = self.ctx.queues
        done = []
        for topic, queue_id in table.known_keys():
            queue = table.get(topic, queue_id)
            if queue is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    done.append(queue.ask(TrimBelow(log_min), block=False))
        return done

    # -- reads by physical offset and key ------------------------------------------------------

    def look_message_by_offset(self, physical_offset: int) -> StoredRecord | None:
        """The record at a commit-log offset (e.g. from an offset message id), or None.

        Synchronous: a ``pread`` of an immutable region, checked (CRC) before it is decoded.
        """
        raw = self.read_message_bytes(physical_offset)
        return None if raw is None else decode_record(raw)

    def read_message_bytes(self, physical_offset: int) -> bytes | None:
        opened = self.ctx.opened
        if opened is None or physical_offset >= self.ctx.dispatched:
            return None
        return opened.log.read_record_bytes(physical_offset, verify_crc=True)

    def query_by_key(
        self, topic: str, key: str, max_num: int, begin: int = 0, end: int = 2**63 - 1
    ) -> Future:
        """Records with ``key`` (a KEYS entry or the UNIQ_KEY) stored in [begin, end] ms ->
        future of QueryResult (raw records, newest first)."""
        return self._ask(self.names.dispatcher, QueryByKey(topic, key, max_num, begin, end))

    @property
    def commit_log_min_offset(self) -> int:
        opened = self.ctx.opened
        return opened.log.min_offset if opened is not None else 0

    @property
    def commit_log_max_offset(self) -> int:
        """Offset just past the last dispatched (consumable) record."""
        return self.ctx.dispatched

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

    def remove_group_offsets(self, group: str) -> Future:
        return self._ask(self.names.offsets, RemoveGroup(group))

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
            return _failed(self.names.dispatcher, "not running")
        try:
            ref.tell(WhenDispatched(offset, reply))
        except pykka.ActorDeadError:
            return _failed(self.names.dispatcher, "stopped")
        return reply

    def remove_topic_offsets(self, topic: str) -> Future:
        """Forget every group's committed offsets of ``topic``: future of an AsyncResult that
        becomes True once that is on disk (False when the write failed)."""
        return self._ask(self.names.offsets, RemoveTopicOffsets(topic))

    def auto_create_topic(
        self, topic: str, queue_nums: int = 4, perm: int = 6, topic_sys_flag: int = 0
    ) -> Future:
        """The topic's config, created if auto-creation allows; None otherwise."""
        return self._ask(
            self.names.topics, AutoCreateTopic(topic, queue_nums, perm, topic_sys_flag)
        )

    def ensure_topic(self, config: TopicConfigData) -> Future:
        return self._ask(self.names.topics, EnsureTopic(config))

    def ensure_retry_topic(self, topic: str, queue_nums: int = 1) -> Future:
        """Create ``%RETRY%group`` (read/write, ``queue_nums`` queues) if missing."""
        return self.ensure_topic(
            TopicConfigData(
                topic_name=topic, read_queue_nums=queue_nums, write_queue_nums=queue_nums
            )
        )

    def all_topics(self) -> Future:
        """Future of TopicTable (topics and data version, for broker registration)."""
        return self._ask(self.names.topics, AllTopics())

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

    # -- status --------------------------------------------------------------------------------

    @property
    def failed(self) -> str | None:
        """Why the store fail-stopped, or None."""
        return self.ctx.failed

    def _ask(self, name: str, message: Any, inline: bool = False) -> Future:
        """Ask the actor ``name``; ``inline``: in this greenlet when it is idle (``ask_now``:
        only for handlers that never yield)."""
        ref = self.ctx.directory.get(name)
        if ref is None:
            return _failed(name, "not running")
        try:
            return ask_now(ref, message) if inline else ref.ask(message, block=False)
        except pykka.ActorDeadError:
            return _failed(name, "stopped")


def store_child_specs(
    settings: StoreSettings,
    directory: Directory,
    *,
    prefix: str | None = None,
    fs: FileSystem = OS_FS,
) -> list[ChildSpec]:
    """The store's children in start order (see the module docstring). Use
    ``BrokerStore.build(...).child_specs()`` to keep the facade as well."""
    return BrokerStore.build(settings, directory, prefix=prefix, fs=fs).child_specs()


__all__ = [
    "BrokerStore",
    "GetResult",
    "PutRecord",
    "PutResult",
    "QueryResult",
    "StoreSettings",
    "TopicConfigData",
    "TopicTable",
    "store_child_specs",
    "tag_codes",
]
