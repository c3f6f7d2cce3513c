"""Controller: decides, per broker group, who is master, in which term (epoch), until when (the
lease), and which slaves may succeed it (the in-sync set). Runs in the name server named by the
brokers' ``controllerAddr`` (``enableControllerInNamesrv``); exactly one controller decides.

Messages:
- ``Heartbeat(hb, session)`` (ask, from the name-server processor) -> ``ControllerReply``:
  MASTER to the group's master (with a lease once it runs the current epoch; its in-sync set is
  recorded), SLAVE to the others (with where the master is and the id to register with), WAIT
  during the grace period after this controller started (it grants nothing until every lease a
  previous incarnation granted has run out); ``Refused`` past the limits (``MAX_GROUPS``,
  ``MAX_MEMBERS``) or for a heartbeat naming a live member from another connection and
  address (``Member.impostor``).
- ``BrokerDown(group, node)`` (tell; in one process the supervisor reports a dead broker
  subtree at once): the node is not live; if it was master its lease is void (its writer died
  with it) and the election runs at once, before the restarted node can claim the term.
- ``SessionClosed(session_id)`` (tell): a broker's connection closed (kept for the record;
  elections still wait for the lease, since a closed connection does not prove a dead writer).
- ``ControllerTick`` (timer, 0.1 s): a master whose lease ran out (+ margin) is lost; elect.
- ``Groups()`` (ask) -> {group: {"epoch", "master", "isr", "members", "confirmed"}} (tests
  and tools).
- ``Replicas(groups)`` (ask) -> {group: ``GroupView``} of the groups named that it knows
  (CONTROLLER_GET_SYNC_STATE_DATA, mqadmin getSyncStateSet).
- ``ElectMaster(group, node)`` (ask, mqadmin electMaster) -> an ``ElectOutcome`` now, or a
  gevent ``AsyncResult`` that gets one when a handover ends (``actors.namesrv.handover``).
  ``node`` None: elect whoever the rules choose, only when the group has no master; ``node``
  the master: nothing to do; another live in-sync member: a handover to it.
- ``CleanBrokerData(group, nodes, clean_living)`` (ask, mqadmin cleanBrokerMetadata) -> an
  ``ElectOutcome``: members forgotten (``actors.namesrv.handover``).

Election (``actors.namesrv.election``; after a lost lease, or a dead master): among live members
(heard from within one lease) that the last master reported in sync — or the last master itself,
back with the same term (running as master or not: a restarted process of it is configured as a
slave) — the one with the highest commit-log offset; the epoch goes up by one. A term whose
master never ran it (never heartbeated claiming it) counts as not begun: the previous term's in-
sync set and master stay the candidates. A controller that has not seen the group's in-sync set
(a new group, or no ``controllerStorePath``) only adopts a broker that claims to be master with
the newest epoch any live member reports. Whatever the rule, a candidate whose log (as its last
heartbeat told) ends before the highest offset a master of the group reported acknowledged
(``ControllerHeartbeat.confirmed``: PUT_OK'd or shown to consumers) is passed over, and so is
one whose machine lost power since its store last ran (``ControllerHeartbeat.power_cut``: an
unclean stop on an earlier boot) while another member of the in-sync set, or the last master, is
away: a last master or slave back from a power loss with a shorter log is not elected over
records a replica still holds (RELIABILITY.md R14); a WARNING says so when that leaves nobody.
Such a master back within its own lease gets no lease. No candidate: no election (the group
keeps no master until one returns), unless every member that may hold the acknowledged records
(the in-sync set and the last master) has been back for a lease without them: every replica
lost power at once (RELIABILITY.md §5, ASYNC_FLUSH + SYNC_MASTER: "possible loss"), and
waiting cannot bring them back. The best of the candidates then wins, with an ERROR saying how
many acknowledged bytes are lost, and the group's acknowledged offset becomes its end.

State: per group the term, its master and last master, the in-sync set and the members' ids,
kept in ``controller_store`` (``controllerStorePath``; without one, memory only) and restored
at start; liveness, offsets and leases are rebuilt from heartbeats. A restored master is
treated as holding a lease until one lease after the grace ends (the previous incarnation may
have granted one just before it died; its heartbeats are answered WAIT until then), so nobody
else is elected before it could renew.
Durability point: a change is saved (fsync'd) before the message that made it is answered:
an answer that would carry an unsaved change comes as a ``group_commit.Flushed`` future, set
after the one fsync that covers every message handled meanwhile (``settled`` waits for it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pykka
from loguru import logger

from actors.namesrv.controller_groups import Group, Member, record_of, restored
from actors.namesrv.controller_store import ControllerStore, GroupRecord
from actors.namesrv.election import WARN_EVERY_S, BrokerDown, Elections
from actors.namesrv.group_commit import GroupCommit
from actors.namesrv.handover import (
    CleanBrokerData,
    ElectMaster,
    Handovers,
)
from runtime.actor import GeventActor
from runtime.errors import ActorFailure
from runtime.ha.control import (
    GRACE_S,
    LEASE_S,
    ControllerHeartbeat,
    ControllerReply,
    ControlRole,
)

TICK_S = 0.1
MAX_GROUPS = 4096
"""Broker groups one controller decides for (a flood of heartbeats naming new groups grew its
memory and store without bound)."""
MAX_MEMBERS = 64
"""Members of one group."""
FORGET_SILENT_S = 3600.0
"""At the groups' limit, a group none of whose members was heard from for this long is
forgotten to make room (``Controller._forget_silent``)."""


class Heartbeat(msgspec.Struct, frozen=True, tag=True):
    hb: ControllerHeartbeat
    session: Any = None  # the SessionHandle it came on (for CONTROLLER_NOTIFY)


class SessionClosed(msgspec.Struct, frozen=True, tag=True):
    session_id: int


class ControllerTick(msgspec.Struct, frozen=True, tag=True):
    pass


class Groups(msgspec.Struct, frozen=True, tag=True):
    pass


class Refused(msgspec.Struct, frozen=True):
    """A heartbeat's answer when the controller takes no more groups or members."""

    remark: str


class _StoreFailed(msgspec.Struct, frozen=True, tag=True):
    error: str


class Replicas(msgspec.Struct, frozen=True, tag=True):
    groups: tuple[str, ...]


class Controller(Elections, Handovers, GeventActor):
    """See the module docstring."""

    def __init__(
        self,
        *,
        grace_s: float = GRACE_S,
        lease_s: float = LEASE_S,
        clock: Callable[[], float] = time.monotonic,
        store: ControllerStore | None = None,
    ) -> None:
        super().__init__()
        self.grace_s = grace_s
        self.lease_s = lease_s
        self.clock = clock
        self.store = store if store is not None else ControllerStore(None)
        self.commit = GroupCommit(self.store, self._store_failed)
        self.groups: dict[str, Group] = {}
        self._touched: set[str] = set()
        """Groups the message being handled may have changed (staged after it)."""
        self._forget_tried = float("-inf")
        self._warned: dict[tuple[str, int], float] = {}
        """(group, node) -> when a refused impostor was last logged."""
        self._deferred: list[Callable[[], None]] = []
        """Outcomes for other greenlets, handed over once the changes are on disk."""
        self.started = clock()

    def on_start(self) -> None:
        self.started = self.clock()
        for name, record in self.store.load().items():
            self.groups[name] = self._restored(name, record)
        self.send_every(TICK_S, ControllerTick())
        logger.info(
            "controller: started (grants nothing for {:g}s){}",
            self.grace_s,
            "".join(
                f"; {g.name}: epoch {g.epoch}, master {g.master}, in-sync set {sorted(g.isr)}"
                for g in self.groups.values()
            ),
        )

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _StoreFailed):
            raise ActorFailure(f"controller store: {message.error}")
        answer = self._on_message(message)
        for name in self._touched:
            g = self.groups.get(name)
            self.store.stage(name, None if g is None else record_of(g))
        self._touched.clear()
        deferred, self._deferred = self._deferred, []
        for fn in deferred:
            self.commit.later(fn)
        if isinstance(message, (Replicas, Groups)):
            return answer  # (reads: nothing to wait for)
        return self.commit.answer(answer)

    def on_stop(self) -> None:
        with contextlib.suppress(Exception):  # (a store that cannot write: nothing more to do)
            self.commit.close()
        self.store.close()

    def on_failure(self, *_exc: Any) -> None:
        self.store.close()

    def _later(self, fn: Callable[[], None]) -> None:
        self._deferred.append(fn)

    def _store_failed(self, exc: BaseException) -> None:
        logger.error("controller: its store failed: {}", exc)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_StoreFailed(str(exc)))

    def _restored(self, name: str, r: GroupRecord) -> Group:
        g = restored(name, r)
        if g.master is not None:
            # a lease the previous incarnation granted may run until lease_s after the start;
            # heartbeats get WAIT until the grace ends, so the master keeps its group until
            # lease_s after that (it renews then)
            g.lease_until = self.started + self.grace_s + self.lease_s
        return g

    def _on_message(self, message: Any) -> Any:
        if isinstance(message, Heartbeat):
            self._touched.add(message.hb.group)
            return self._heartbeat(message.hb, message.session)
        if isinstance(message, (BrokerDown, ElectMaster, CleanBrokerData)):
            self._touched.add(message.group)
        if isinstance(message, ControllerTick):
            self._tick()
        elif isinstance(message, BrokerDown):
            self._down(message)
        elif isinstance(message, SessionClosed):
            for g in self.groups.values():
                for m in g.members.values():
                    if getattr(m.session, "session_id", None) == message.session_id:
                        m.session = None
        elif isinstance(message, Replicas):
            now = self.clock()
            return {n: self._view(self.groups[n], now) for n in message.groups if n in self.groups}
        elif isinstance(message, ElectMaster):
            return self._elect_master(message)
        elif isinstance(message, CleanBrokerData):
            return self._clean(message)
        elif isinstance(message, Groups):
            return {
                name: {
                    "epoch": g.epoch,
                    "master": g.master,
                    "isr": sorted(g.isr),
                    "members": sorted(g.members),
                    "confirmed": g.confirmed,
                }
                for name, g in self.groups.items()
            }
        else:
            return super().on_receive(message)
        return None

    # -- heartbeats ----------------------------------------------------------------------------

    def _heartbeat(self, hb: ControllerHeartbeat, session: Any) -> ControllerReply | Refused:
        now = self.clock()
        g = self.groups.get(hb.group)
        if g is None:
            if len(self.groups) >= MAX_GROUPS and not self._forget_silent(now):
                return Refused(f"the controller decides for at most {MAX_GROUPS} broker groups")
            g = self.groups[hb.group] = Group(hb.group)
        m = g.members.get(hb.node)
        if m is None:
            if len(g.members) >= MAX_MEMBERS:
                return Refused(f"{hb.group} has {MAX_MEMBERS} members already")
            m = g.members[hb.node] = Member()
        elif m.impostor(hb.addr, hb.ha_addr, session, now - self.lease_s):
            if self._may_warn((hb.group, hb.node), now):
                logger.warning(
                    "controller: {} node {} heartbeats as {} (HA {}) while live at {} (HA {}) "
                    "on another connection: refused (at most one such line every {:g} s)",
                    hb.group,
                    hb.node,
                    hb.addr,
                    hb.ha_addr,
                    m.addr,
                    m.ha_addr,
                    WARN_EVERY_S,
                )
            return Refused(
                f"node {hb.node} of {hb.group} is live at {m.addr} on another connection "
                "(two brokers with one id?)"
            )
        if not m.takes(hb.incarnation, hb.seq):
            # sent before one already taken (another connection): its word is stale, and its
            # sender gave up waiting for this reply
            logger.debug("controller: {} node {}: an older heartbeat ignored", hb.group, hb.node)
            return ControllerReply(role=ControlRole.WAIT, epoch=g.epoch)
        m.addr, m.ha_addr, m.last_seen = hb.addr, hb.ha_addr, now
        m.max_offset, m.epoch, m.claim = hb.max_offset, hb.epoch, hb.claim_master
        m.power_cut = hb.power_cut
        m.writable = hb.writable
        m.resigned = hb.resigned
        m.session = session
        g.cluster = hb.cluster
        if now - self.started < self.grace_s:
            return ControllerReply(role=ControlRole.WAIT, epoch=g.epoch)
        if g.master is None and g.handover is None:
            self._decide(g, now)
        if g.master == hb.node:
            if hb.claim_master and hb.epoch == g.epoch and self._short(g, hb, now):
                return ControllerReply(role=ControlRole.MASTER, epoch=g.epoch, sync=g.sync)
            if hb.claim_master and hb.epoch == g.epoch:
                g.claimed = True
                if g.handover is None:  # a handover lets the lease run out
                    g.lease_until = now + self.lease_s
                if frozenset(hb.in_sync) != g.isr:
                    g.isr_epoch += 1
                    logger.info(
                        "controller: {} in-sync set now {} (master {}, epoch {})",
                        g.name,
                        sorted(hb.in_sync),
                        hb.node,
                        g.epoch,
                    )
                g.isr = frozenset(hb.in_sync)
                g.isr_known = True
                g.sync = hb.sync
                self._note_confirmed(g, hb.confirmed, now)
                return ControllerReply(
                    role=ControlRole.MASTER,
                    epoch=g.epoch,
                    lease_ms=0 if g.handover is not None else int(self.lease_s * 1000),
                    resign=g.handover.token if g.handover is not None else 0,
                    sync=g.sync,
                    master_node=hb.node,
                    master_addr=hb.addr,
                    master_ha_addr=hb.ha_addr,
                    in_sync=sorted(g.isr),
                )
            return ControllerReply(role=ControlRole.MASTER, epoch=g.epoch, sync=g.sync)
        master = g.members.get(g.master) if g.master is not None else None
        return ControllerReply(
            role=ControlRole.SLAVE,
            epoch=g.epoch,
            sync=g.sync,
            master_node=-1 if g.master is None else g.master,
            master_addr=master.addr if master is not None else "",
            master_ha_addr=master.ha_addr if master is not None else "",
            register_id=hb.node if hb.node > 0 else max(g.members) + 1,
        )

    def _forget_silent(self, now: float) -> bool:
        """At the groups' limit: forget the group silent longest, if none of its members was
        heard from for ``FORGET_SILENT_S`` (counted from this controller's start at most), so
        groups made by a flood of forged heartbeats do not keep new ones out for good. A real
        cluster never nears the limit; a group forgotten so is adopted afresh when it returns
        (its master claiming its term). True when one was forgotten."""
        if now - self._forget_tried < 1.0:
            return False  # (a scan of every group at most once a second: floods are refused)
        self._forget_tried = now
        name, g = min(self.groups.items(), key=lambda item: item[1].last_heard())
        silent = now - max(g.last_heard(), self.started)
        if silent < FORGET_SILENT_S or g.handover is not None:
            return False
        logger.warning(
            "controller: at its limit of {} groups: forgets {} (silent for {:g} s)",
            MAX_GROUPS,
            name,
            silent,
        )
        del self.groups[name]
        self._touched.add(name)
        return True
