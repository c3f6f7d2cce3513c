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

The facade's methods live in two parts: reads by queue, by physical offset and by key in
``StoreReads`` (``actors.broker.store_reads``, with ``tag_codes``), consumer offsets, topics and
subscription groups in ``StoreMetadata`` (``actors.broker.store_metadata``); this module keeps
what makes a store (children, start and stop) and ``put``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import gevent
import pykka

from actors.broker.commitlog_writer import CommitLogWriter
from actors.broker.consumer_offsets import ConsumerOffsets
from actors.broker.dispatcher import Dispatcher
from actors.broker.flusher import Flusher
from actors.broker.messages import AppendBatch
from actors.broker.queue_table import QueueTable
from actors.broker.retention import Retention
from actors.broker.store_base import Future
from actors.broker.store_metadata import StoreMetadata
from actors.broker.store_reads import StoreReads
from actors.broker.store_results import GetResult, PutResult, PutStatus, QueryResult
from actors.broker.subscription_groups import SubscriptionGroups
from actors.broker.topic_config import TopicConfig
from actors.broker.topic_config_data import TopicConfigData, TopicTable
from runtime.actor import new_future, offload, others_ready, tell_now
from runtime.directory import Directory
from runtime.store.context import ReplicationCondition, StoreContext
from runtime.store.record import PutRecord
from runtime.store.recovery import open_store
from runtime.store.settings import StoreSettings
from runtime.store.storage import OS_FS, FileSystem
from runtime.supervisor import ChildSpec, Restart

STORE_STOP_S = 60.0
"""How long the writer, flusher and dispatcher may take to stop: the dispatcher's last
checkpoint syncs every consume queue written since the one before (seconds with tens of
thousands), and a stop cut short leaves the store to crash recovery."""


class BrokerStore(StoreReads, StoreMetadata):
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
            ChildSpec(
                name=n.writer,
                start=self._start_writer,
                restart=Restart.FAIL_STOP,
                shutdown_timeout=STORE_STOP_S,
            ),
            ChildSpec(
                name=n.flusher,
                start=lambda: Flusher.start(ctx),
                restart=Restart.FAIL_STOP,
                shutdown_timeout=STORE_STOP_S,
            ),
            ChildSpec(
                name=n.dispatcher,
                start=lambda: Dispatcher.start(ctx),
                shutdown_timeout=STORE_STOP_S,
            ),
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

    # -- status --------------------------------------------------------------------------------

    @property
    def failed(self) -> str | None:
        """Why the store fail-stopped, or None."""
        return self.ctx.failed


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
]
