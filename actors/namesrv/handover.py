"""The operator's side of the ``Controller`` (a mixin): handing a broker group's mastership
to a chosen member (``ElectMaster``, mqadmin electMaster), forgetting members that are gone
(``CleanBrokerData``, mqadmin cleanBrokerMetadata), and the view of a group that
CONTROLLER_GET_SYNC_STATE_DATA and the election's answer show.

Cleaning: the members named (none: every member) leave the controller's memory of the group,
and the group itself once none is left; refused (CONTROLLER_INVALID_CLEAN_BROKER_METADATA)
for a member heard from within a lease unless ``clean_living`` (a living broker heartbeats
again and comes back), and always for the master while its lease may hold or a member a
handover involves. A decommissioned slave otherwise stays listed (not alive) until the
controller restarts. The acknowledged offset a candidate must reach (``Group.confirmed``)
comes down to the longest log a remaining member reported (``_forget_acknowledged``): what only
forgotten members held is given up, so a survivor short of it is elected (RELIABILITY.md R14).

A handover: the master's lease is no longer renewed, and it is asked to resign (a
CONTROLLER_NOTIFY makes it heartbeat at once; the reply's ``resign`` is the handover's token:
it drops its lease and heartbeats again, echoing the token in ``ControllerHeartbeat.resigned``).
Once it reported its final commit-log end — a heartbeat echoing the token, built after it gave
its lease up (no lease is granted while the handover runs); a master that does not echo it:
once its lease ran out (+ ``MARGIN_S``), before which nobody is elected — the target (which must be
electable: in the in-sync set) is elected as soon as its own end reaches that, so a planned
switchover loses no acknowledged record, even under ASYNC_MASTER. Writes pause for a few
heartbeat round trips and the target's catch-up (well under a second when it is in sync),
not for a lease. A target that died, or has not caught up within ``HANDOVER_CATCHUP_S`` of the
old lease's end, is not elected: the usual election runs instead, and the outcome says so.

``isr_epoch`` (RocketMQ's syncStateSetEpoch) lives in memory only, as the rest of the
controller's state: after a controller restart it counts from 0 again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import msgspec
from gevent.event import AsyncResult
from loguru import logger

from runtime.ha.control import MARGIN_S
from runtime.remoting.codes import ResponseCode

HANDOVER_CATCHUP_S = 5.0
"""After the old master's lease ran out, how long an ``ElectMaster`` target may take to hold
everything the old master wrote."""


class ElectMaster(msgspec.Struct, frozen=True, tag=True):
    """Make ``node`` master of ``group`` (None: whoever the rules choose, when it has none)."""

    group: str
    node: int | None = None


class CleanBrokerData(msgspec.Struct, frozen=True, tag=True):
    """Forget ``nodes`` of ``group`` (empty: all of them); living ones only if
    ``clean_living``."""

    group: str
    nodes: tuple[int, ...] = ()
    clean_living: bool = False


class GroupView(msgspec.Struct, frozen=True):
    """A broker group as the controller sees it: the master's node id (None: none now) and
    address, its term (``epoch``), the in-sync set's version (``isr_epoch``: one up with each
    election and each change the master reports), members' node id -> (address, alive), the
    in-sync set (the master and the slaves it reports in sync)."""

    cluster: str
    master: int | None
    master_addr: str
    epoch: int
    isr_epoch: int
    members: dict[int, tuple[str, bool]]
    isr: list[int]


class ElectOutcome(msgspec.Struct, frozen=True):
    """``code``: a ``ResponseCode`` (SUCCESS, or the CONTROLLER_* refusal); ``view`` after."""

    code: int
    remark: str = ""
    view: GroupView | None = None


class Handover:
    """An ``ElectMaster`` under way: its target, when the old master's lease is over, the
    old master, until when the target may catch up, who waits for the outcome."""

    __slots__ = ("deadline", "fenced_at", "nudged", "old", "target", "token", "waiters")

    def __init__(self, target: int, fenced_at: float, old: int | None) -> None:
        self.target = target
        self.fenced_at = fenced_at
        """When the old master's lease is over at the latest (its last one + ``MARGIN_S``)."""
        self.deadline = fenced_at + HANDOVER_CATCHUP_S
        self.old = old
        self.token = secrets.randbits(62) | 1
        """Sent to the old master with ``resign``; a heartbeat of it carrying this token was
        built after it gave its lease up for this handover (no lease is granted until it ends),
        so its end is final."""
        self.nudged = False
        self.waiters: list[AsyncResult] = []


class Handovers:
    """Mixin of ``Controller``, which supplies what is declared here."""

    groups: dict[str, Any]
    clock: Callable[[], float]
    started: float
    grace_s: float
    lease_s: float

    def _decide(self, g: Any, now: float, exclude: int | None = None) -> None:
        raise NotImplementedError

    def _elect(self, g: Any, node: int, now: float) -> None:
        raise NotImplementedError

    def _candidates(self, g: Any, now: float, exclude: int | None = None) -> list[int]:
        raise NotImplementedError

    def _later(self, fn: Callable[[], None]) -> None:
        raise NotImplementedError

    @staticmethod
    def _notify(member: Any) -> None:
        raise NotImplementedError

    def _elect_master(self, msg: ElectMaster) -> ElectOutcome | AsyncResult:
        now = self.clock()
        g = self.groups.get(msg.group)
        if g is None:
            return _unknown(msg.group)
        if now - self.started < self.grace_s:
            return ElectOutcome(
                ResponseCode.CONTROLLER_ELECT_MASTER_FAILED,
                "the controller has just started: it elects nobody for "
                f"{self.grace_s:g}s (every lease a previous run granted must run out)",
            )
        h = g.handover
        if h is not None and h.target != msg.node:
            return ElectOutcome(
                ResponseCode.CONTROLLER_ELECT_MASTER_FAILED,
                f"{g.name} is already handing over to {h.target}",
            )
        if h is None and msg.node is None:
            if g.master is not None and now <= g.lease_until + MARGIN_S:
                return ElectOutcome(
                    ResponseCode.CONTROLLER_ELECT_MASTER_FAILED,
                    f"the master {g.master} of {g.name} is alive: name the broker id to elect",
                    self._view(g, now),
                )
            lost, g.master = g.master, None  # (a lease run out: the tick would do the same)
            self._decide(g, now, exclude=lost)
            if g.master is None:
                return ElectOutcome(
                    ResponseCode.CONTROLLER_MASTER_NOT_AVAILABLE,
                    f"no live member of {g.name} can be master now",
                )
            return ElectOutcome(ResponseCode.SUCCESS, "", self._view(g, now))
        if h is None and msg.node == g.master:
            return ElectOutcome(ResponseCode.SUCCESS, "", self._view(g, now))
        if h is None:
            assert msg.node is not None
            target = g.members.get(msg.node)
            if target is None or now - target.last_seen > self.lease_s:
                return ElectOutcome(
                    ResponseCode.CONTROLLER_BROKER_NOT_ALIVE,
                    f"broker {msg.node} of {g.name} is not alive",
                )
            if msg.node not in self._candidates(g, now):
                why = f"in-sync set {sorted(g.isr)}" if g.isr_known else "newest term's claimants"
                return ElectOutcome(
                    ResponseCode.CONTROLLER_ELECT_MASTER_FAILED,
                    f"broker {msg.node} is not in {g.name}'s {why}: electing it could lose "
                    "acknowledged messages",
                )
            fenced_at = (g.lease_until if g.master is not None else now) + MARGIN_S
            h = g.handover = Handover(msg.node, fenced_at, g.master)
            logger.warning(
                "controller: {} hands over from {} to {}: the master is asked to resign",
                g.name,
                g.master,
                msg.node,
            )
            if g.master is not None:
                self._notify(g.members.get(g.master))  # its next heartbeat learns it now
        result: AsyncResult = AsyncResult()
        h.waiters.append(result)
        return result

    def _hand_over(self, g: Any, h: Handover, now: float) -> None:
        """A handover's step each tick. Nothing happens before the old master resigned (a
        heartbeat echoing the handover's token, built after it gave its lease up: every
        record it ever acknowledged lies below the end it gave) or its lease is surely over
        (``fenced_at``). A silent old master: the other electable members' ends stand in,
        and the target must hold what a master acknowledged as far as the controller can
        tell (``Group.holds_confirmed``, as in any election). Then the target, still
        electable, is elected as soon as its own end reaches that (it
        is asked to heartbeat at once). A target that died, or has not by the deadline: the
        usual election instead."""
        live = g.live(now, self.lease_s)
        target = live.get(h.target)
        old = live.get(h.old) if h.old is not None else None
        resigned = old is not None and old.resigned == h.token and not old.writable
        if not resigned and now <= h.fenced_at:
            return  # the old master may still hold a lease: nobody else may be elected
        if target is not None:
            if old is not None:
                final, need = resigned, old.max_offset
            else:
                final = True
                others = [g.members[n].max_offset for n in self._candidates(g, now)]
                need = max(others, default=0)
            electable = h.target in self._candidates(g, now)
            if old is None:  # (else it reaches the resigned master's final end: all it acked)
                electable = electable and g.holds_confirmed(h.target, set(live))
            if final and electable and target.max_offset >= need:
                self._elect(g, h.target, now)
                return
            if final and not h.nudged:
                h.nudged = True
                self._notify(target)  # its end, now: it may hold everything already
            if now <= h.deadline:
                return
        logger.warning(
            "controller: {} handover to {} gave up: {}",
            g.name,
            h.target,
            "it is not alive"
            if target is None
            else f"it did not catch up in {HANDOVER_CATCHUP_S:g}s",
        )
        self._decide(g, now)
        if g.handover is h:  # nobody could be elected: the lost lease's path goes on
            g.handover = None
            self._answer(
                h,
                ElectOutcome(
                    ResponseCode.CONTROLLER_MASTER_NOT_AVAILABLE,
                    f"{h.target} could not be elected and no other member could be",
                    self._view(g, now),
                ),
            )

    def _clean(self, msg: CleanBrokerData) -> ElectOutcome:
        now = self.clock()
        g = self.groups.get(msg.group)
        if g is None:
            return _unknown(msg.group)
        nodes = set(msg.nodes) if msg.nodes else set(g.members)
        unknown = sorted(nodes - set(g.members))
        if unknown:
            return ElectOutcome(
                ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                f"{g.name} has no member {unknown}",
            )
        living = sorted(n for n in nodes if now - g.members[n].last_seen <= self.lease_s)
        h = g.handover
        refusal = ""
        if g.master in nodes and now <= g.lease_until + MARGIN_S:
            refusal = f"broker {g.master} is the master of {g.name}"
        elif h is not None and nodes & {h.target, h.old}:
            refusal = f"{g.name} is handing over from {h.old} to {h.target}"
        elif living and not msg.clean_living:
            refusal = f"brokers {living} of {g.name} are alive (clean living brokers to force)"
        if refusal:
            return ElectOutcome(ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA, refusal)
        for node in nodes:
            del g.members[node]
        g.isr = g.isr - nodes
        if g.master in nodes:
            g.master = None  # its lease is over: the group elects as after a lost lease
        if g.last_master in nodes:
            g.last_master = None
        logger.warning("controller: {} forgets members {}", g.name, sorted(nodes))
        if not g.members:
            del self.groups[g.name]
            return ElectOutcome(ResponseCode.SUCCESS)
        _forget_acknowledged(g)
        return ElectOutcome(ResponseCode.SUCCESS, "", self._view(g, now))

    def _answer(self, h: Handover, outcome: ElectOutcome) -> None:
        """Set the handover's waiters once the change it made is on disk (``_later``)."""
        for waiter in h.waiters:
            self._later(lambda w=waiter: w.set(outcome))

    def _view(self, g: Any, now: float) -> GroupView:
        master = g.members.get(g.master) if g.master is not None else None
        return GroupView(
            cluster=g.cluster,
            master=g.master,
            master_addr=master.addr if master is not None else "",
            epoch=g.epoch,
            isr_epoch=g.isr_epoch,
            members={
                n: (m.addr, now - m.last_seen <= self.lease_s) for n, m in sorted(g.members.items())
            },
            isr=sorted(g.isr | {g.master}) if g.master is not None else [],
        )


def _forget_acknowledged(g: Any) -> None:
    """Members forgotten: records that only they may hold are given up (RELIABILITY.md R14,
    the loss accepted), so the acknowledged offset the group's candidates must reach comes
    down to the longest log a remaining member reported. Not while a remaining member has
    not been heard from since this controller started (it may hold more than it could say):
    then it stays."""
    if any(m.last_seen == float("-inf") for m in g.members.values()):
        return
    held = max(m.max_offset for m in g.members.values())
    if held >= g.confirmed:
        return
    logger.warning(
        "controller: {} gives up the acknowledged records from {} to {}: no remaining member "
        "holds them",
        g.name,
        held,
        g.confirmed,
    )
    g.confirmed = g.confirmed_saved = held


def _unknown(group: str) -> ElectOutcome:
    return ElectOutcome(
        ResponseCode.CONTROLLER_BROKER_METADATA_NOT_EXIST,
        f"the controller knows no broker group {group!r}",
    )
