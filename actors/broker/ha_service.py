"""HAService: a master's replication bookkeeping, and ``HACondition``, the store's replication
hook on a master.

Messages accepted (all told):
- ``AwaitReplica(offset, reply)`` (from ``HACondition.wait``, SYNC_MASTER): ``reply`` gets
  REPLICATED once an in-sync slave (distinct node id) acknowledged ``offset`` (with
  allAckInSyncStateSet: once every slave of ``HAState.all_ack_set`` did);
  SLAVE_NOT_AVAILABLE at once when no slave is in sync; FLUSH_SLAVE_TIMEOUT after
  ``slaveTimeout``. In controller mode REPLICATED also needs the lease to still hold (else
  FLUSH_SLAVE_TIMEOUT: stored, outcome unknown, never PUT_OK).
- ``SlaveJoined`` / ``SlaveAck`` / ``SlaveLeft`` (from HAConnections): per node id, the offset
  the slave holds. A new link's start (its HELLO's end: what the slave wrote, which a SYNC_FLUSH
  slave may not have fsync'd yet) counts as acknowledged only once the slave REPORTs on it
  (``SlaveLink.reported``). A second link from the same node replaces the first (which is
  closed), so a reconnecting slave never counts twice. An ack from a live link this
  incarnation never saw join (this actor was restarted) joins it. A link whose ACCEPT carried
  the entries before the newest epoch (accepted while ``NewEpoch`` wrote it) is told to link
  again.
- ``ServiceTick`` (timer): expire waiters, recompute the in-sync set.
- ``NewEpoch(epoch, reply)`` (from the ControllerClient): append ``(epoch, write offset, node)``
  to the epoch file before the term's first write (entries of terms that began past the
  write offset, mirrored while this node was a slave, dropped first); slave links restart to
  mirror it. ``reply`` gets True once written, False when the file could not be written
  (logged; the next heartbeat asks again).

A classic master back from a power loss reconciles first (``HAContext.reconciliation``,
``actors.broker.ha_reconcile``: started here, told of joins and ticks; a classic master's in-sync
set is saved through it before a joining slave's acks count).

State owned: the waiters (in offset order), per-slave links (``HAState.slaves``), the in-sync
set (``HAState.counts_in_sync``: connected, less than ``haSlaveFallbehindMax`` behind; in
controller mode also caught up within ``haMaxTimeSlaveNotCatchup`` and, to join, holding
``HAState.visible``), the offset confirmed to the Dispatcher. Under SYNC_MASTER, and under
ASYNC_MASTER in controller mode, it tells the Dispatcher ``Confirm(offset, "replica")`` with the
lowest offset every slave in ``HAState.confirm_set()`` holds, so consumers see only replicated
records, which a failover keeps. While that set is empty a SYNC_MASTER confirms nothing more
(records answered SLAVE_NOT_AVAILABLE stay invisible until a slave holds them); an ASYNC_MASTER
with no slave joining confirms its own log (``HACondition`` confirms each append at once).

Durability point: the epoch file (atomic rewrite); a classic master's in-sync file. The
HA listen socket is served by a sibling ``Acceptor`` that starts one ``HAConnection`` per slave.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
import pykka
from loguru import logger

from actors.broker.ha_messages import (
    AwaitReplica,
    HeartbeatNow,
    LinkClosed,
    NewEpoch,
    ServiceTick,
    SlaveAck,
    SlaveJoined,
    SlaveLeft,
)
from actors.broker.ha_reconcile import Reconciliation
from actors.broker.messages import Confirm
from runtime.acl.signature import SessionCredentials
from runtime.actor import GeventActor, new_future, offload
from runtime.ha import boot
from runtime.ha.epoch import EpochFile
from runtime.ha.state import HAState, SlaveLink
from runtime.store.context import ReplicationStatus, StoreContext

TICK_S = 0.05
# Controller mode, ASYNC_MASTER: a slave out of sync this close to ``HAState.visible`` is about
# to join; new records then wait for replication so that it can reach it under load.
JOIN_GAP = 1024 * 1024


class HAContext:
    """What the HA actors of one broker node share: the store, the state, the epoch file,
    directory names and timings (seconds)."""

    def __init__(
        self,
        store: StoreContext,
        state: HAState,
        epochs: EpochFile,
        *,
        prefix: str,
        slave_timeout_s: float = 3.0,
        heartbeat_s: float = 5.0,
        housekeeping_s: float = 20.0,
        batch_size: int = 32 * 1024,
        credentials: SessionCredentials | None = None,
        all_ack: bool = False,
        min_in_sync_replicas: int = 1,
        reconcile_wait_s: float = 30.0,
    ) -> None:
        self.all_ack = all_ack
        """allAckInSyncStateSet: a SYNC_MASTER's PUT_OK needs every in-sync slave's ack."""
        self.min_in_sync_replicas = min_in_sync_replicas
        """minInSyncReplicas: fewer replicas in sync (this master counted) refuse appends."""
        self.unaccepted: dict[str, int] = {}
        """Host -> this master's HA links from it not accepted yet (``HAConnection``)."""
        self.credentials = credentials
        """The broker's inner account: a master challenges every slave to prove it holds the
        secret (``runtime.ha.protocol`` CHALLENGE / PROOF), a slave answers with it."""
        self.store = store
        self.state = state
        self.epochs = epochs
        self.service = f"{prefix}/ha-service"
        self.client = f"{prefix}/ha-client"
        self.controller_client = f"{prefix}/controller-client"
        self.slave_timeout_s = slave_timeout_s
        self.heartbeat_s = heartbeat_s
        self.housekeeping_s = housekeeping_s
        self.batch_size = batch_size
        self.reconcile_wait_s = reconcile_wait_s
        """haReconcileWaitMillis: how long a classic ASYNC_MASTER back from a power loss
        waits for its slaves (``actors.broker.ha_reconcile``)."""
        self.on_writable: Callable[[], None] | None = None
        """Called when a reconciling master takes writes again (the node re-registers)."""
        self.reconciliation: Reconciliation | None = None
        """Made by the HAService's first start (it outlives the actor's restarts)."""

    def clear_power_cut(self) -> None:
        """This node's log is the group's again (a master accepted it, or it won a new term):
        no longer suspected of a power loss (``runtime.ha.boot``)."""
        if self.state.power_cut:
            self.state.power_cut = False
            root = self.store.require_open().settings.root
            try:
                offload(boot.clear, root)
            except OSError as exc:  # (the callers are handlers: it must not fail them)
                logger.warning(
                    "store {}: cannot remove the power-cut marker ({}): a restart will suspect "
                    "this node of a power loss again",
                    root,
                    exc,
                )

    def tell(self, name: str, message: Any) -> None:
        ref = self.store.directory.get(name)
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(message)


class HACondition:
    """The replication condition of a master (``runtime.store.context.ReplicationCondition``).

    ASYNC_MASTER: nothing to wait for, except that in controller mode the reply re-checks the
    lease, and consumers see only what the in-sync slaves hold; with no slave in sync or joining
    (``HAState.shows_appends_at_once``) the appends are confirmed to the Dispatcher at once, in
    one ``Confirm`` per writer group (a hub callback after the group's replies). SYNC_MASTER:
    ``AwaitReplica`` to the HAService; consumers see only what the in-sync slaves hold
    (``confirm_source`` "replica"). ``required`` is also true while slaves are connected, so
    every append wakes the senders streaming to them.
    """

    def __init__(self, ha: HAContext) -> None:
        self.ha = ha
        self.state = ha.state
        self.confirm_source: str | None = (
            "replica" if ha.state.sync or ha.state.controller_mode else None
        )
        self._confirm_due = False  # a callback will confirm ``state.visible`` (ASYNC, alone)

    @property
    def required(self) -> bool:
        s = self.state
        return s.sync or s.controller_mode or any(link.connected for link in s.slaves.values())

    def wait(self, offset: int) -> pykka.Future[Any]:
        state = self.state
        state.wake()
        fut = new_future()
        if not state.sync:
            if state.controller_mode and state.shows_appends_at_once():
                # no slave to wait for: consumers see it now (see HAState.visible)
                state.visible = max(state.visible, offset)
                if not self._confirm_due:
                    self._confirm_due = True
                    gevent.get_hub().loop.run_callback(self._confirm_visible)
            ok = state.lease_valid() and not state.fenced
            fut.set(ReplicationStatus.REPLICATED if ok else ReplicationStatus.FLUSH_SLAVE_TIMEOUT)
            return fut
        ref = self.ha.store.directory.get(self.ha.service)
        try:
            if ref is None:
                raise pykka.ActorDeadError("no HA service")
            ref.tell(AwaitReplica(offset, fut))
        except pykka.ActorDeadError:
            fut.set(ReplicationStatus.SLAVE_NOT_AVAILABLE)
        return fut

    def still_holds(self) -> bool:
        """A REPLICATED answer stands only while this master holds its lease (controller mode;
        classic mode: always) and is not fenced: asked again when a reply that also waited
        for its fsync is sent."""
        return self.state.lease_valid() and not self.state.fenced

    def may_append(self) -> bool:
        """A master holding its lease (classic mode: always) and not fenced."""
        return self.state.accepting_writes()

    def replicas_enough(self) -> bool:
        """minInSyncReplicas: this master and its slaves whose acks count (in controller
        mode those the controller also counts in sync) are at least that many."""
        need = self.ha.min_in_sync_replicas
        return need <= 1 or 1 + len(self.state.electable_acks()) >= need

    def _confirm_visible(self) -> None:
        """One Confirm for the appends of a writer group (they all raised ``visible``)."""
        self._confirm_due = False
        offset = self.state.visible
        self.ha.tell(self.ha.store.names.dispatcher, Confirm(offset, "replica", False))


class HAService(GeventActor):
    """See the module docstring."""

    def __init__(self, ha: HAContext) -> None:
        super().__init__()
        self.ha = ha
        self.state = ha.state
        self._waiters: deque[tuple[int, float, Any]] = deque()
        self._confirmed = 0
        self._holding = False  # no slave in sync: consumers held back (warned once)

    def on_start(self) -> None:
        self.log = self.ha.store.require_open().log
        self._confirmed = self.ha.store.dispatched
        self.state.visible = min(max(self.state.visible, self._confirmed), self.log.write_offset)
        self.state.slaves.clear()
        self.state.in_sync = frozenset()
        self.state.joining = frozenset()
        if not self.state.controller_mode:
            self.state.epoch = self.ha.epochs.last_epoch
        if self.ha.reconciliation is None:
            self.ha.reconciliation = Reconciliation(self.ha)
        self.reconciliation = self.ha.reconciliation
        self.reconciliation.begin(self._new_epoch)
        self.send_every(TICK_S, ServiceTick())

    def on_stop(self) -> None:
        self._fail_waiters(ReplicationStatus.FLUSH_SLAVE_TIMEOUT)
        self._fail_queued()
        self.state.slaves.clear()
        self.state.in_sync = frozenset()

    def _fail_queued(self) -> None:
        """Answer the ``AwaitReplica`` still in the inbox (told before this actor stopped or
        failed): pykka drops told messages with the actor, and their puts hung until the
        store's put timeout (13 s by default) instead of completing at once (R22)."""
        inbox = self.actor_inbox
        kept = []
        while inbox.qsize():  # type: ignore[attr-defined]
            envelope = inbox.get_nowait()  # type: ignore[attr-defined]
            if isinstance(envelope.message, AwaitReplica):
                self._resolve(envelope.message.reply, ReplicationStatus.FLUSH_SLAVE_TIMEOUT)
            else:
                kept.append(envelope)
        for envelope in kept:  # (the teardown answers the asks among them)
            inbox.put(envelope)

    def on_failure(self, *_exc: Any) -> None:
        self.on_stop()

    # -- messages ------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AwaitReplica):
            self._await(message)
        elif isinstance(message, SlaveAck):
            self._acked(message)
        elif isinstance(message, SlaveJoined):
            self._joined(message)
        elif isinstance(message, SlaveLeft):
            link = self.state.slaves.get(message.node)
            if link is not None and link.urn == message.urn:
                link.connected = False
                logger.info("{}: slave {} disconnected", self.ha.service, message.node)
                self._recompute()
        elif isinstance(message, ServiceTick):
            self._expire()
            self.state.note_catch_up(self.log.write_offset)
            self._recompute()
            self.reconciliation.tick()
        elif isinstance(message, NewEpoch):
            self._told_new_epoch(message)
        else:
            return super().on_receive(message)
        return None

    def _await(self, msg: AwaitReplica) -> None:
        if self._best_ack() >= msg.offset:
            self._resolve(msg.reply, ReplicationStatus.REPLICATED, msg.offset)
        elif not self._ackers():
            self._resolve(msg.reply, ReplicationStatus.SLAVE_NOT_AVAILABLE)
        else:
            deadline = time.monotonic() + self.ha.slave_timeout_s
            self._waiters.append((msg.offset, deadline, msg.reply))
        self._confirm()

    def _acked(self, msg: SlaveAck) -> None:
        link = self.state.slaves.get(msg.node)
        if link is None:
            # A link this incarnation never heard join (this actor was restarted)
            if pykka.ActorRegistry.get_by_urn(msg.urn) is not None:
                self._joined(SlaveJoined(msg.node, msg.urn, msg.offset, msg.addr), reported=True)
        elif link.urn == msg.urn:
            if msg.offset > link.acked or not link.reported:
                link.acked = max(link.acked, msg.offset)
                link.reported = True
                self._recompute()
            link.rate.note(link.acked, self.state.clock())

    def _joined(self, msg: SlaveJoined, *, reported: bool = False) -> None:
        if msg.epoch is not None and msg.epoch < self.ha.epochs.last_epoch:
            # Accepted while a new epoch was being written (its link was not in ``slaves``
            # when ``_new_epoch`` closed them): the slave mirrored the entries without it and
            # would be cut back at the epoch's start on its next HELLO, acknowledged records
            # included. It links again and mirrors the new entry.
            _close_link(msg.urn, f"new epoch {self.ha.epochs.last_epoch}", relink=True)
            return
        old = self.state.slaves.get(msg.node)
        if old is not None and old.connected and old.urn != msg.urn:
            logger.warning(
                "{}: slave {} linked again; closing its older link", self.ha.service, msg.node
            )
            _close_link(old.urn, "replaced by a newer link from the same slave")
        # A new link counts from what its slave holds now (its HELLO, cut to the consistent
        # point): a slave replaced under the same id (say, an empty store) must not inherit
        # its predecessor's acks (chaos R15-replace). Only the same link keeps its acks (an
        # ack may have arrived before its join).
        # The HELLO's end is what the slave wrote, not what it acknowledged: a SYNC_FLUSH
        # slave's append whose fsync outlived its previous link (a slow disk: the append timed
        # out, the link ended, it linked again) is in it. It counts once the slave REPORTs.
        same_link = old is not None and old.urn == msg.urn
        acked = max(msg.offset, old.acked) if same_link and old is not None else msg.offset
        link = SlaveLink(
            msg.urn, acked, target=self.log.write_offset, now=self.state.clock(), addr=msg.addr
        )
        link.reported = reported or (same_link and old is not None and old.reported)
        self.state.slaves[msg.node] = link
        logger.info("{}: slave {} linked from offset {}", self.ha.service, msg.node, msg.offset)
        self._recompute()
        self.reconciliation.joined(msg.node)

    def _told_new_epoch(self, msg: NewEpoch) -> None:
        """``NewEpoch`` from the ControllerClient. An epoch file that cannot be written (an
        I/O error, a full disk) answers False: the term takes no lease until its entry is on
        disk, and the next heartbeat asks again. It used to fail this actor (its waiters
        answered FLUSH_SLAVE_TIMEOUT, its links' acks forgotten), once per heartbeat. (A
        reconciling master's own new epoch still fails it: its restart finishes again.)"""
        try:
            self._new_epoch(msg)
        except (OSError, ValueError) as exc:
            logger.error(
                "{}: cannot begin epoch {}: its entry was not written to {} ({}); no write is "
                "taken in that term until it is (retried at the next heartbeat)",
                self.ha.service,
                msg.epoch,
                self.ha.epochs.path,
                exc,
            )
            if msg.reply is not None:
                with contextlib.suppress(Exception):
                    msg.reply.set(False)

    def _new_epoch(self, msg: NewEpoch) -> None:
        epochs = self.ha.epochs
        if msg.epoch > epochs.last_epoch:
            end = self.log.write_offset
            last = epochs.last
            if last is not None and last.start > end:
                # A term this log holds nothing of (a slave mirrors its master's entries on
                # ACCEPT, also one that began past its end): the new term starts before it
                offload(epochs.truncate, end)
            offload(epochs.append, msg.epoch, end, self.state.node_id)
            logger.info(
                "{}: epoch {} begins at offset {}",
                self.ha.service,
                msg.epoch,
                self.log.write_offset,
            )
            for link in self.state.slaves.values():
                if link.connected:
                    _close_link(link.urn, f"new epoch {msg.epoch}", relink=True)
        self.state.epoch = max(self.state.epoch, epochs.last_epoch)
        if msg.reply is not None:
            with contextlib.suppress(Exception):
                msg.reply.set(epochs.last_epoch >= msg.epoch)

    # -- acknowledgements ------------------------------------------------------------------------

    def _ackers(self) -> frozenset[int]:
        """The slaves whose acks count (allAckInSyncStateSet: all of them are needed)."""
        state = self.state
        return state.all_ack_set() if self.ha.all_ack else state.electable_acks()

    def _best_ack(self) -> int:
        """The highest offset a PUT_OK may vouch for now (-1: none)."""
        slaves = self.state.slaves
        ackers = self._ackers()
        acked = [slaves[n].ack if n in slaves else -1 for n in ackers]
        if self.ha.all_ack:
            return min(acked, default=-1)
        return max(acked, default=-1)

    def _recompute(self) -> None:
        state = self.state
        end = self.log.write_offset
        in_sync = frozenset(
            n for n, link in state.slaves.items() if state.counts_in_sync(n, link, end)
        )
        for n, link in state.slaves.items():
            link.joined = n in in_sync  # a link that left must earn its way back in
        if state.controller_mode and not state.sync:
            state.joining = frozenset(
                n
                for n, link in state.slaves.items()
                if link.connected
                and n not in in_sync
                and state.visible - link.acked < JOIN_GAP
                and state.recently_caught_up(link)
            )
        if in_sync != state.in_sync and not self.reconciliation.persist(in_sync):
            # (saved before their acks count: a slave the in-sync file cannot name yet stays
            # out; one leaving leaves, the file still naming it)
            in_sync &= state.in_sync
            for n, link in state.slaves.items():
                link.joined = n in in_sync
        if in_sync != state.in_sync:
            logger.info("{}: in-sync slaves now {}", self.ha.service, sorted(in_sync))
            state.in_sync = in_sync
            state.notify()
            if state.controller_mode:
                self.ha.tell(self.ha.controller_client, HeartbeatNow())
            else:
                state.isr_acknowledged = in_sync
        best = self._best_ack()
        waiters = self._waiters
        while waiters and waiters[0][0] <= best:
            offset, _deadline, reply = waiters.popleft()
            self._resolve(reply, ReplicationStatus.REPLICATED, offset)
        self._confirm()

    def _resolve(self, reply: Any, status: ReplicationStatus, offset: int = 0) -> None:
        if status is ReplicationStatus.REPLICATED:
            if not (self.state.lease_valid() and not self.state.fenced):
                status = ReplicationStatus.FLUSH_SLAVE_TIMEOUT
            elif offset > self.state.visible:
                self.state.visible = offset  # a PUT_OK vouches for it: joiners must hold it
        with contextlib.suppress(Exception):
            reply.set(status)

    def _expire(self) -> None:
        now = time.monotonic()
        waiters = self._waiters
        while waiters and waiters[0][1] <= now:
            self._resolve(waiters.popleft()[2], ReplicationStatus.FLUSH_SLAVE_TIMEOUT)

    def _fail_waiters(self, status: ReplicationStatus) -> None:
        while self._waiters:
            self._resolve(self._waiters.popleft()[2], status)

    def _confirm(self) -> None:
        state = self.state
        if not (state.sync or state.controller_mode):
            return
        slaves = state.slaves
        need = state.confirm_set()
        if not need and state.shows_appends_at_once():
            # ASYNC_MASTER in controller mode, nobody to wait for: the log as written
            self._confirm_to(self.log.write_offset)
            return
        if not need:
            if not state.sync:
                return  # a slave is about to join: new records wait for it (HAState.joining)
            # No slave holds what follows: consumers wait for one to catch up (issue 6).
            if not self._holding and self.log.write_offset > self._confirmed:
                self._holding = True
                logger.warning(
                    "{}: SYNC_MASTER with no slave in sync; records after offset {} stay "
                    "invisible to consumers until a slave holds them",
                    self.ha.service,
                    self._confirmed,
                )
            return
        self._holding = False
        offset = min(slaves[n].ack if n in slaves else 0 for n in need)
        self._confirm_to(min(offset, self.log.write_offset))

    def _confirm_to(self, offset: int) -> None:
        if offset > self.state.visible:
            self.state.visible = offset
        if offset > self._confirmed:
            self._confirmed = offset
            self.ha.tell(self.ha.store.names.dispatcher, Confirm(offset, "replica", flushed=False))


def _close_link(urn: str, reason: str, *, relink: bool = False) -> None:
    ref = pykka.ActorRegistry.get_by_urn(urn)
    if ref is not None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(LinkClosed(reason, relink))
