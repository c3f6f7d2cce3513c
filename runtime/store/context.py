"""``StoreContext``: the state one store's actors share, and the replication hook.

One context per store, created with the child specs and outliving actor restarts. It holds the
settings, the directory names of the store's actors, the opened store (after the writer's
recovery), where dispatch got to (so a restarted Dispatcher resumes), and the replication
condition. All of a process's actors share one hub thread, so plain attributes need no lock.

Ownership stays with the actors: the CommitLogWriter is the only one that appends to the
commit log; the Flusher only fsyncs its files; the Dispatcher owns the key index; each Queue
actor owns its consume queue. Readers use ``pread`` on the log (never past what was dispatched).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol

import gevent.event

from runtime.store.group_sync import GroupSync
from runtime.store.settings import StoreSettings
from runtime.store.storage import OS_FS, FileSystem
from runtime.store.tail_guard import TailLossGuard

if TYPE_CHECKING:
    import pykka

    from runtime.store.recovery import OpenStore


class ReplicationStatus(enum.Enum):
    """What the replication condition says about an offset (the HA work plugs in here)."""

    REPLICATED = "REPLICATED"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"
    IN_SYNC_REPLICAS_NOT_ENOUGH = "IN_SYNC_REPLICAS_NOT_ENOUGH"


class ReplicationCondition(Protocol):
    """The replication half of an append's durability condition.

    ``wait(offset)`` returns a future that resolves with a ``ReplicationStatus`` once the
    commit log up to ``offset`` is replicated as the broker role requires (or the slave timeout
    passes). ``required`` False means appends need not wait at all (ASYNC_MASTER, or no HA).
    ``confirm_source`` names the Dispatcher confirmation source the replicator sends
    (``Confirm(offset, source)``) when consumers must only see replicated data (SYNC_MASTER,
    and ASYNC_MASTER in controller mode).
    """

    required: bool
    confirm_source: str | None

    def wait(self, offset: int) -> pykka.Future[Any]: ...

    def still_holds(self) -> bool:
        """Whether a REPLICATED answer still stands now, when a reply that waited for its
        fsync too is finally sent (controller mode: the master still holds its lease)."""
        ...

    def may_append(self) -> bool:
        """Whether the writer may append now (controller mode: a master holding its lease).
        Asked for every group of appends, so that nothing, the broker's own writers (timer
        and delay deliveries, transaction ops) included, lands in a master's log once it
        cannot acknowledge: its final end (what a handover waits for) stays final."""
        ...

    def replicas_enough(self) -> bool:
        """Whether enough replicas are in sync to take an append (RocketMQ 5's
        minInSyncReplicas: else IN_SYNC_REPLICAS_NOT_ENOUGH, nothing appended)."""
        ...


class AlwaysReplicated:
    """The default condition: nothing to wait for."""

    required = False
    confirm_source: str | None = None

    def wait(self, offset: int) -> pykka.Future[Any]:
        from runtime.actor import new_future

        fut = new_future()
        fut.set(ReplicationStatus.REPLICATED)
        return fut

    def still_holds(self) -> bool:
        return True

    def may_append(self) -> bool:
        return True

    def replicas_enough(self) -> bool:
        return True


class StoreNames:
    """Directory names of a store's actors, under a prefix (e.g. the broker's name)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.writer = f"{prefix}/store/commitlog"
        self.flusher = f"{prefix}/store/flusher"
        self.dispatcher = f"{prefix}/store/dispatcher"
        self.topics = f"{prefix}/store/topic-config"
        self.offsets = f"{prefix}/store/consumer-offsets"
        self.groups = f"{prefix}/store/subscription-groups"
        self.retention = f"{prefix}/store/retention"


class StoreContext:
    def __init__(
        self,
        settings: StoreSettings,
        directory: Any,
        *,
        prefix: str | None = None,
        fs: FileSystem = OS_FS,
        replication: ReplicationCondition | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.names = StoreNames(prefix or settings.broker_name)
        self.fs = fs
        self.replication: ReplicationCondition = replication or AlwaysReplicated()
        self.opened: OpenStore | None = None
        self.failed: str | None = None
        """Set when the store fail-stopped (a failed fsync): nothing may be acknowledged."""
        self._dispatched = 0
        self._dispatch_moved: gevent.event.Event | None = None
        self.unsynced: tuple[Any, str] | None = None
        """(the OpenStore, why): an fsync of a consume queue or the index failed while that
        opening of the store ran. The kernel may have dropped the pages it could not write and
        a later fsync succeed without them, so no checkpoint may claim them durable: the
        Dispatcher writes none for that opening (the next start re-dispatches from the last
        good one)."""
        self.put_messages: int = 0
        """Messages the CommitLogWriter appended since start (admin statistics)."""
        self.put_counts: dict[str, int] = {}
        """Messages appended per topic since start (VIEW_BROKER_STATS_DATA's TOPIC_PUT_NUMS);
        a lite topic's queue counts as its parent topic; a deleted topic's entry goes."""
        self.put_bytes: dict[str, int] = {}
        """Bytes appended per topic since start (a batch counts for its first record's topic:
        a client's batch is one topic; keyed as ``put_counts``); the metrics'
        ``rocketmq_throughput_in_total``."""
        self.topic_fences: dict[str, int] = {}
        """Deleted topics' fences (``runtime.store.fences``), as saved; kept by the Dispatcher."""
        self.queue_next: dict[tuple[str, int], int] = {}
        self.final_dispatch: tuple[int, dict[tuple[str, int], int]] | None = None
        """Set by the Dispatcher at a clean stop: (offset, queue next offsets), all durable."""
        self.queues: Any = None
        """The QueueTable (actors.broker.queue_table), set when the store service is built."""
        self.group_sync = GroupSync(settings.root, enabled=fs is OS_FS)
        """Runs the consume queues' flushes, many at once by one syncfs (``group_sync``)."""
        self.tail_guard = TailLossGuard()
        """Keeps running consumers from passing offsets a lost tail gives to new messages
        (``runtime.store.tail_guard``; raised by ConsumerOffsets). A broker node shares one
        across its rebuilds."""
        self.parked_queues: set[tuple[str, int]] = set()
        """The (topic, queueId) with a long poll parked (kept by the Queue actors): the writer
        dispatches a group that appends to one of them before it acks, so the waiting consumer
        is answered first."""

    @property
    def dispatched(self) -> int:
        """The commit-log offset up to which records were handed to queues and the index
        (what consumers may read; a master's HA links send it to their slaves)."""
        return self._dispatched

    @dispatched.setter
    def dispatched(self, offset: int) -> None:
        if offset == self._dispatched:
            return
        self._dispatched = offset
        moved, self._dispatch_moved = self._dispatch_moved, None
        if moved is not None:
            moved.set()

    def dispatch_moved(self) -> gevent.event.Event:
        """The event the next change of ``dispatched`` sets: taken before a look at it, waited
        on after, so a change in between is not missed."""
        if self._dispatch_moved is None:
            self._dispatch_moved = gevent.event.Event()
        return self._dispatch_moved

    @property
    def confirm_sources(self) -> set[str]:
        """What must confirm an offset before consumers may see it (a slave: its master's
        ``CONFIRM``, which the HAClient passes on as "master")."""
        sources = set()
        if self.settings.sync_flush:
            sources.add("flush")
        if self.settings.read_only:
            sources.add("master")
        if self.replication.confirm_source:
            sources.add(self.replication.confirm_source)
        return sources

    def require_open(self) -> OpenStore:
        if self.opened is None:
            raise RuntimeError(f"store {self.settings.root} is not open")
        return self.opened
