"""What the controller knows of a broker group and its members (``Group``, ``Member``), and
their records in the controller's store (``record_of``, ``restored``: liveness, offsets,
leases and sessions are not kept; they come back with heartbeats).

    record_of(group) -> GroupRecord
    restored(name, record) -> Group    (no lease: the controller sets it)
"""

from __future__ import annotations

from typing import Any

from actors.namesrv.controller_store import GroupRecord, MemberRecord
from actors.namesrv.handover import Handover


class Member:
    """One broker of a group, as its last heartbeat told it (and the connection it came on)."""

    __slots__ = (
        "addr",
        "claim",
        "epoch",
        "ha_addr",
        "incarnation",
        "last_seen",
        "max_offset",
        "power_cut",
        "resigned",
        "retired",
        "seq",
        "session",
        "writable",
    )

    def __init__(self) -> None:
        self.addr = ""
        self.ha_addr = ""
        self.last_seen = float("-inf")
        self.max_offset = 0
        self.epoch = 0
        self.claim = False
        self.power_cut = False
        self.writable = False
        self.resigned = 0
        self.session: Any = None
        self.incarnation = 0  # of the broker's ControllerClient whose heartbeats it takes
        self.seq = 0  # the newest of its heartbeats taken
        self.retired: tuple[int, ...] = ()  # incarnations it saw replaced (the last few)

    def takes(self, incarnation: int, seq: int) -> bool:
        """Whether a heartbeat (its sender's ``incarnation`` and ``seq``) is newer than every
        one taken from this member, noting it if so: one sent earlier on another connection
        may arrive later, and its in-sync set is stale. A new incarnation (the broker's
        ControllerClient restarted, or its node rebuilt) replaces the old one, whose late
        heartbeats are not taken either. 0: an older broker, no order."""
        if not incarnation:
            return True
        if incarnation == self.incarnation:
            if seq <= self.seq:
                return False
        elif incarnation in self.retired:
            return False
        elif self.incarnation:
            self.retired = (*self.retired[-3:], self.incarnation)
        self.incarnation, self.seq = incarnation, seq
        return True

    def impostor(self, addr: str, ha_addr: str, session: Any, live_since: float) -> bool:
        """Whether a heartbeat naming this member from ``addr`` / ``ha_addr`` on ``session``
        takes a live member's identity (heard from since ``live_since``, its connection
        open, other addresses on another connection): refused, so nobody takes a live
        broker's identity (a forged master heartbeat pointed its slave at a fake HA port,
        which truncated it: a hostile-input probe). The same broker reconnecting keeps its
        addresses; a broker restarted elsewhere waits until the old one went silent."""
        if session is None or self.session is None or self.session is session:
            return False
        if (self.addr, self.ha_addr) == (addr, ha_addr):
            return False
        return self.last_seen >= live_since and bool(getattr(self.session, "alive", True))


class Group:
    """One broker group: its term, master, lease, in-sync set, members, a handover under way,
    and the previous term's in-sync set and master while the current one is not claimed."""

    __slots__ = (
        "claimed",
        "cluster",
        "confirmed",
        "confirmed_saved",
        "confirmed_saved_at",
        "epoch",
        "handover",
        "isr",
        "isr_epoch",
        "isr_known",
        "last_master",
        "lease_until",
        "master",
        "members",
        "name",
        "prev_epoch",
        "prev_isr",
        "prev_master",
        "short_since",
        "sync",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.cluster = ""
        self.isr_epoch = 0
        self.handover: Handover | None = None
        self.epoch = 0
        self.master: int | None = None
        self.last_master: int | None = None
        self.lease_until = float("-inf")
        self.isr: frozenset[int] = frozenset()
        self.isr_known = False
        self.sync = False
        self.members: dict[int, Member] = {}
        self.claimed = True
        self.prev_epoch = 0
        self.prev_isr: frozenset[int] = frozenset()
        self.prev_master: int | None = None
        self.confirmed = 0
        """The highest offset a master of this group reported acknowledged."""
        self.short_since: float | None = None
        """Since when every member that may hold the acknowledged records has been back
        without them (the election's last resort, ``Elections._decide``); None: not so."""
        self.confirmed_saved = 0
        """What the group's record holds of it (it is saved at most every few seconds)."""
        self.confirmed_saved_at = float("-inf")

    def live(self, now: float, within: float) -> dict[int, Member]:
        """The members heard from within ``within`` seconds of ``now``."""
        return {n: m for n, m in self.members.items() if now - m.last_seen <= within}

    def holds_confirmed(self, node: int, live: set[int]) -> bool:
        """Whether ``node``'s log (as its last heartbeat told) holds every acknowledged record
        as far as the controller can tell: it reaches the highest offset a master reported
        acknowledged, and, if its machine lost power since it last ran (``power_cut``), no
        other member of the in-sync set or the last master (who may hold more) is away
        (``live``: the members heard from within a lease; after a term whose master never ran
        it, the previous term's set and master too, as in ``Controller._candidates``)."""
        m = self.members[node]
        if m.max_offset < self.confirmed:
            return False
        if not m.power_cut:
            return True
        return not self.away(live) - {node}

    def away(self, live: set[int]) -> set[int]:
        """The members that may hold the acknowledged records (the in-sync set and the last
        master; after a term never run, the previous term's too) not heard from lately."""
        others: set[int | None] = {*self.isr, self.last_master}
        if not self.claimed:  # (a term never run: the previous one's set and master stand)
            others |= self.prev_isr | {self.prev_master}
        return {n for n in others if n is not None and n in self.members} - live

    def last_heard(self) -> float:
        """When a member was last heard from (-inf: none since the controller started)."""
        return max((m.last_seen for m in self.members.values()), default=float("-inf"))


def record_of(g: Group) -> GroupRecord:
    return GroupRecord(
        cluster=g.cluster,
        epoch=g.epoch,
        master=g.master,
        last_master=g.last_master,
        isr=tuple(sorted(g.isr)),
        isr_epoch=g.isr_epoch,
        isr_known=g.isr_known,
        sync=g.sync,
        members={n: MemberRecord(m.addr, m.ha_addr) for n, m in g.members.items()},
        claimed=g.claimed,
        prev_epoch=g.prev_epoch,
        prev_isr=tuple(sorted(g.prev_isr)),
        prev_master=g.prev_master,
        confirmed=g.confirmed_saved,
    )


def restored(name: str, r: GroupRecord) -> Group:
    g = Group(name)
    g.cluster, g.epoch, g.master, g.last_master = r.cluster, r.epoch, r.master, r.last_master
    g.isr, g.isr_epoch, g.isr_known, g.sync = frozenset(r.isr), r.isr_epoch, r.isr_known, r.sync
    g.claimed, g.prev_epoch, g.prev_master = r.claimed, r.prev_epoch, r.prev_master
    g.prev_isr = frozenset(r.prev_isr)
    g.confirmed = g.confirmed_saved = r.confirmed
    for node, mr in r.members.items():
        m = g.members[node] = Member()
        m.addr, m.ha_addr = mr.addr, mr.ha_addr
    return g
