"""``HAState``: what one broker node's HA actors share (the master's replication condition,
``actors.broker.ha_service.HACondition``, reads it too).

One ``HAState`` per broker node, created by the node's start function and read or updated by
the HA actors (HAService, HAConnection, HAClient, ControllerClient) and the request handlers.
All of a process's actors share one hub thread, so plain attributes need no lock (as for the
StoreContext); only the actor that owns a field writes it:

- ``role``, ``epoch``, ``lease_until``, ``fenced``, ``isr_acknowledged``, ``isr_reported``:
  ControllerClient (or fixed in classic mode, where the lease never expires);
- ``slaves``, ``in_sync``, ``joining``, ``reconciling``: HAService (master); ``visible``:
  HAService and, for
  ASYNC_MASTER in controller mode, ``HACondition.wait`` (the writer's greenlet);
- ``master_link_up``, ``master_ha_addr``, ``last_read_ms``, ``last_report_ms``,
  ``received``: HAClient (slave); ``metadata_synced``: SlaveSynchronize (slave).

The lease: in controller mode a master accepts writes only while ``lease_valid()`` — a lease is
granted by the controller for ``lease_s`` seconds measured on this node's monotonic clock from
the moment the heartbeat that earned it was *sent*, so it always ends before the controller's
own view of it does. Classic mode (no controller) has no lease: ``lease_until`` is infinite.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

import gevent.event

INFINITE = float("inf")


class Role(enum.Enum):
    MASTER = "MASTER"
    SLAVE = "SLAVE"


class ByteRate:
    """Bytes a second of a growing total (``note(total, now)`` as it grows: the figure of the
    last whole second or more; the first note only marks where counting starts unless a start
    was given); ``current(now)`` is 0 once nothing was noted for 2 s."""

    __slots__ = ("_mark", "_mark_at", "_noted_at", "per_second")

    def __init__(self, total: int = 0, now: float | None = None) -> None:
        self._mark, self._mark_at = total, now
        self._noted_at = now if now is not None else -INFINITE
        self.per_second = 0

    def note(self, total: int, now: float) -> None:
        self._noted_at = now
        if self._mark_at is None:
            self._mark, self._mark_at = total, now
            return
        elapsed = now - self._mark_at
        if elapsed >= 1.0:
            self.per_second = max(int((total - self._mark) / elapsed), 0)
            self._mark, self._mark_at = total, now

    def current(self, now: float) -> int:
        return self.per_second if now - self._noted_at < 2.0 else 0


class SlaveLink:
    """The master's view of one slave (by node id): ``addr`` where its link comes from,
    ``since`` the offset its link began at, ``rate`` its acks' bytes a second, ``acked`` what
    it holds (its HELLO's end, then its REPORTs), which counts as acknowledged (``ack``) only
    once the link ``reported``."""

    __slots__ = (
        "acked",
        "addr",
        "caught_up_at",
        "connected",
        "held_end",
        "joined",
        "rate",
        "reported",
        "since",
        "target",
        "urn",
    )

    def __init__(
        self, urn: str, acked: int, *, target: int = 0, now: float = 0.0, addr: str = ""
    ) -> None:
        self.urn = urn
        self.acked = acked
        self.addr = addr
        self.since = acked
        self.rate = ByteRate(acked, now)
        self.connected = True
        self.target = target  # the master's write offset at the last catch-up check
        self.caught_up_at = now  # when it last held ``target``
        self.held_end = acked >= target
        """It has held the master's end (at its join or at a check) since its link began."""
        self.joined = False  # in the in-sync set at the last recompute (HAService)
        self.reported = False
        """The slave REPORTed on this link. Until then ``acked`` is its HELLO's end: what it
        wrote, not what it acknowledged (a SYNC_FLUSH slave may not have fsync'd it yet: its
        append's fsync outlived its previous link), so it vouches for no PUT_OK and shows
        consumers nothing."""

    @property
    def ack(self) -> int:
        """What the slave acknowledged on this link (-1: nothing yet, it has not reported)."""
        return self.acked if self.reported else -1


class HAState:
    """See the module docstring."""

    def __init__(
        self,
        *,
        node_id: int,
        role: Role,
        sync: bool,
        controller_mode: bool = False,
        fallbehind_max: int = 256 * 1024 * 1024,
        not_catchup_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.role = role
        self.sync = sync
        self.controller_mode = controller_mode
        self.fallbehind_max = fallbehind_max
        self.not_catchup_s = not_catchup_s
        self.clock = clock
        self.epoch = 0
        self.lease_until = 0.0 if controller_mode else INFINITE
        self.fenced = False
        self.slaves: dict[int, SlaveLink] = {}
        self.in_sync: frozenset[int] = frozenset()
        self.isr_acknowledged: frozenset[int] = frozenset()
        self.leased = False
        """Controller mode: this node has held a lease, or a master accepted its log, since it
        started (``serves_reads``)."""
        self.reconciling = False
        """Classic SYNC_MASTER back from a power loss: it takes no write until every slave its
        acks counted is back and it holds what they hold (``actors.broker.ha_reconcile``)."""
        self.power_cut: bool | None = None
        """Its store came back from an unclean stop on an earlier boot (``runtime.ha.boot``):
        it may lack what it acknowledged. None: not known yet; False once it holds a log a
        master accepted (a slave's ACCEPT) or it was elected for a new term."""
        # Controller mode, master: slaves named in sync by heartbeats sent since the last reply
        # that set ``isr_acknowledged`` (the controller may already hold them: electable).
        self.isr_reported: frozenset[int] = frozenset()
        # Controller mode: the highest offset consumers may see or a PUT_OK vouched for; a slave
        # joins the in-sync set only once it holds that much (``may_join``), so an electable
        # slave never lacks a record somebody read or was acknowledged.
        self.visible = 0
        # Controller mode, ASYNC_MASTER: slaves out of sync but close to ``visible``; while any
        # is, new records wait for replication before consumers see them, so it can catch up.
        self.joining: frozenset[int] = frozenset()
        self.master_link_up = False
        # A slave: a metadata round (topics, groups, offsets) from its master has succeeded;
        # in controller mode it links for replication only then, so it is never electable
        # without the master's topics and consumer offsets.
        self.metadata_synced = False
        self.master_addr: str | None = None
        self.master_ha_addr: str | None = None
        # A slave's link (mqadmin haStatus): when it last read from its master and reported
        # its end (ms since the epoch), and the bytes it appended, a second.
        self.last_read_ms = 0
        self.last_report_ms = 0
        self.received = ByteRate()
        self._grew = gevent.event.Event()
        self._changed = gevent.event.Event()

    # -- writes ---------------------------------------------------------------------------

    def lease_valid(self) -> bool:
        return self.clock() < self.lease_until

    def accepting_writes(self) -> bool:
        """A master that may append now (classic: unless it reconciles its log after a power
        loss; controller mode: holds a lease)."""
        return (
            self.role is Role.MASTER
            and not self.fenced
            and not self.reconciling
            and self.lease_valid()
        )

    def serves_reads(self) -> bool:
        """Whether pulls may read this node's log. Not in controller mode before the node
        held a lease or a master accepted its log (a slave's ACCEPT) since it started:
        recovery made all of its log visible, also a tail the group never confirmed, which the
        master the controller elects instead may cut and give to other messages (two messages
        read at one queue offset: chaos R14-all-async-syncflush), and a consumer whose
        position the power loss made stale would read past the offsets a new term reuses
        without meeting that term's tail-loss guard (R14-all). Once settled, its log is the
        group's; a lease lapsing or a master lost later changes nothing (consumers then see
        only what was confirmed; a slave serves while its master is unreachable)."""
        return self.leased or not self.controller_mode

    def registrable(self) -> bool:
        """A master that may register with the name servers: one that accepts writes, or one
        reconciling its log (registered with its topics read-only: its slaves find its HA
        address through the name server)."""
        return self.accepting_writes() or (self.role is Role.MASTER and self.reconciling)

    # -- in-sync slaves (master) ------------------------------------------------------------

    def electable_acks(self) -> frozenset[int]:
        """Slaves whose acks count for SYNC_MASTER: in sync now and, in controller mode, known
        to the controller as in sync (so a PUT_OK is always on a slave it may elect)."""
        if self.controller_mode:
            return self.in_sync & self.isr_acknowledged
        return self.in_sync

    def all_ack_set(self) -> frozenset[int]:
        """Slaves that must all hold a record for a PUT_OK under allAckInSyncStateSet: every
        slave the controller counts in sync or may count so by now (it may elect any of them:
        those it acknowledged, those this master reported since, those in sync now, which the
        next heartbeat reports; RocketMQ 5 waits for the union of its local and remote sets
        while a change is being synchronized). In classic mode the in-sync slaves that caught
        up within ``not_catchup_s`` (or all of them when none did): there the set keeps a slave
        until it is ``fallbehind_max`` behind, and a slow one kept reporting would otherwise
        turn every send into FLUSH_SLAVE_TIMEOUT for as long (controller mode drops such a
        slave from the set itself). A link that has not held the master's end since it began
        has not caught up (a slave relinking far behind, after a restart: its link's start
        time is no catch-up)."""
        if self.controller_mode:
            return self.confirm_set()
        slaves = self.slaves
        caught_up = frozenset(
            n
            for n in self.in_sync
            if n in slaves and slaves[n].held_end and self.recently_caught_up(slaves[n])
        )
        return caught_up or self.in_sync

    def confirm_set(self) -> frozenset[int]:
        """Slaves that must hold a record before consumers may see it: every slave in sync now
        and every slave the controller still believes (or may have been told) in sync."""
        if self.controller_mode:
            return (self.in_sync | self.isr_acknowledged | self.isr_reported) - {self.node_id}
        return self.in_sync

    def note_catch_up(self, end: int) -> None:
        """A periodic check: a slave that holds what was written at the previous check has
        caught up now (RocketMQ 5's ``lastCaughtUpTime``)."""
        now = self.clock()
        for link in self.slaves.values():
            if link.acked >= link.target:
                link.caught_up_at = now
                link.held_end = True
            link.target = end

    def counts_in_sync(self, node: int, link: SlaveLink, end: int) -> bool:
        """Linked and less than ``fallbehind_max`` behind; in controller mode also caught up
        within ``not_catchup_s`` (haMaxTimeSlaveNotCatchup) and allowed to join
        (``may_join``), so a stalled slave neither holds consumers back for long nor becomes
        electable while it lacks what consumers saw."""
        if not link.connected or end - link.acked >= self.fallbehind_max:
            return False
        if not self.controller_mode:
            return True
        return self.recently_caught_up(link) and self.may_join(link)

    def recently_caught_up(self, link: SlaveLink) -> bool:
        return self.clock() - link.caught_up_at <= self.not_catchup_s

    def may_join(self, link: SlaveLink) -> bool:
        """Whether a connected slave within the lag limit counts as in sync: in classic mode
        always; in controller mode once its link held ``visible`` (it then stays while within
        the lag limit), as RocketMQ 5 lets a slave into the sync-state set only once it reached
        the confirm offset and Kafka a follower into the ISR once it reached the high
        watermark. Membership belongs to the link, not the node id: a new link of the same
        node (a restarted or replaced slave) earns it again."""
        return not self.controller_mode or link.joined or link.acked >= self.visible

    def shows_appends_at_once(self) -> bool:
        """ASYNC_MASTER in controller mode with no slave to wait for: consumers see an append
        as soon as it is written (RocketMQ 5's confirm offset of a master alone)."""
        return not self.sync and not self.confirm_set() and not self.joining

    # -- log growth (wakes the HA senders) -----------------------------------------------------

    def wake(self) -> None:
        grew, self._grew = self._grew, gevent.event.Event()
        grew.set()

    def wait_grew(self, timeout: float) -> None:
        self._grew.wait(timeout)

    def growth(self) -> gevent.event.Event:
        """The event the next ``wake`` sets: taken before a look at the log, waited on after,
        so an append in between (while the looker yielded) is not missed."""
        return self._grew

    # -- changes of role, lease, links, in-sync set (for waiters: tests, tools) -------------

    def notify(self) -> None:
        """Something observable changed (called by the field's owner)."""
        changed, self._changed = self._changed, gevent.event.Event()
        changed.set()

    def wait_until(self, predicate: Callable[[HAState], bool], timeout: float) -> bool:
        """Block this greenlet until ``predicate(self)`` holds (True) or ``timeout`` (False)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.wait(remaining)
        return True
