"""The elections of the ``Controller`` (a mixin): who may succeed a group's master, when, and
what a new term starts with. The rules are the controller's module docstring's ("Election");
this module holds them:

- ``_tick``: a master whose lease ran out (+ ``MARGIN_S``) is lost; a group without a master
  elects (``_decide``); a handover under way moves on (``actors.namesrv.handover``).
- ``_down``: a dead master (in one process) is lost at once.
- ``_candidates``: the live members the rules allow; ``_decide`` keeps those that hold what
  was acknowledged (``Group.holds_confirmed``: the group's ``confirmed`` offset, and no power
  loss while a member that may hold more is away) and elects the one with the newest epoch and
  the longest log; nobody left: a WARNING (``_warn_short``), unless every member that may hold
  those records has been back without them for a lease (all lost power at once): then the best
  of them wins anyway, with an ERROR naming what is lost (``_elect_short``; ``confirmed``
  becomes its end).
- ``_short``: a master back within its lease short of ``confirmed`` or from a power loss gets
  no lease (``_note_confirmed`` keeps ``confirmed`` from the master's heartbeats).
- ``_elect``: a new term (epoch + 1), its master told at once (CONTROLLER_NOTIFY).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import msgspec
from loguru import logger

from actors.namesrv.controller_groups import Group
from actors.namesrv.handover import ElectOutcome
from runtime.ha.control import CONTROLLER_NOTIFY, MARGIN_S, ControllerHeartbeat
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand

WARN_EVERY_S = 10.0
CONFIRMED_SAVE_S = 5.0
"""A group's acknowledged offset grows with every master heartbeat; it is saved at most this
often (and with every other change of the group): a restarted controller knows one at most
this old."""


class BrokerDown(msgspec.Struct, frozen=True, tag=True):
    """In one process the supervisor reports a dead broker subtree at once (``_down``)."""

    group: str
    node: int


class Elections:
    """Mixin of ``Controller``, which supplies what is declared here."""

    groups: dict[str, Group]
    clock: Callable[[], float]
    started: float
    grace_s: float
    lease_s: float
    _warned: dict[tuple[str, int], float]
    _touched: set[str]
    # (``Handovers``'; annotations only, so they do not hide its methods)
    _hand_over: Callable[[Any, Any, float], None]
    _answer: Callable[[Any, ElectOutcome], None]
    _view: Callable[[Any, float], Any]

    def _may_warn(self, key: tuple[str, int], now: float) -> bool:
        """Whether the WARNING about ``key`` (a group and a node, or a negative kind) may be
        logged now: at most one every ``WARN_EVERY_S``."""
        if now - self._warned.get(key, float("-inf")) < WARN_EVERY_S:
            return False
        self._warned[key] = now
        return True

    def _short(self, g: Group, hb: ControllerHeartbeat, now: float) -> bool:
        """The master is back (within its lease) short of what a master of the group
        acknowledged, or from a power loss (``power_cut``): it may have lost records. No lease
        for it: the term ends when the current one runs out, and the election that follows
        waits for a replica that holds them."""
        if hb.max_offset >= g.confirmed and not hb.power_cut:
            return False
        if self._may_warn((g.name, -2), now):
            logger.warning(
                "controller: {} master {} is back with its log ending at {} (acknowledged: "
                "{}{}): no lease; the term ends (at most one such line every {:g} s)",
                g.name,
                hb.node,
                hb.max_offset,
                g.confirmed,
                ", after a power loss" if hb.power_cut else "",
                WARN_EVERY_S,
            )
        return True

    def _note_confirmed(self, g: Group, confirmed: int, now: float) -> None:
        """The master of the current term acknowledged up to ``confirmed``."""
        if confirmed <= g.confirmed:
            return
        g.confirmed = confirmed
        if now - g.confirmed_saved_at >= CONFIRMED_SAVE_S:
            g.confirmed_saved_at = now
            g.confirmed_saved = confirmed

    @staticmethod
    def _notify(member: Any) -> None:
        """Ask a member to heartbeat now (CONTROLLER_NOTIFY on its heartbeat connection)."""
        if member is not None and member.session is not None:
            with contextlib.suppress(Exception):
                member.session.send_oneway(RemotingCommand.request(CONTROLLER_NOTIFY))

    def _tick(self) -> None:
        now = self.clock()
        if now - self.started < self.grace_s:
            return
        for g in self.groups.values():
            if g.handover is not None:
                self._hand_over(g, g.handover, now)
            elif g.master is not None and now > g.lease_until + MARGIN_S:
                logger.warning(
                    "controller: {} lost its master {} (epoch {}): lease ran out",
                    g.name,
                    g.master,
                    g.epoch,
                )
                lost, g.master = g.master, None
                self._touched.add(g.name)
                self._decide(g, now, exclude=lost)
            elif g.master is None:
                self._decide(g, now)

    def _down(self, msg: BrokerDown) -> None:
        g = self.groups.get(msg.group)
        m = g.members.get(msg.node) if g is not None else None
        if g is None or m is None:
            return
        m.last_seen = float("-inf")
        if g.master == msg.node:
            # Its writer is gone with it: no lease to wait for. Elect now, before the
            # supervisor's restart of the same node can claim the term back.
            logger.warning("controller: {} master {} is down", g.name, msg.node)
            g.master = None
            self._decide(g, self.clock(), exclude=msg.node)

    def _decide(self, g: Group, now: float, exclude: int | None = None) -> None:
        """Elect the best candidate (see the module docstring), if there is one."""
        eligible = self._candidates(g, now, exclude)
        live = set(g.live(now, self.lease_s))
        candidates = [n for n in eligible if g.holds_confirmed(n, live)]
        if candidates or not eligible:
            g.short_since = None
        elif g.away(live):
            g.short_since = None
            self._warn_short(g, eligible, now)
        else:
            # Every member that may hold what was acknowledged is back without it (all lost
            # power at once): waiting cannot bring it back. After a lease of this, the best
            # log left wins, as RocketMQ's controller elects an in-sync replica it cannot
            # tell is short.
            if g.short_since is None:
                g.short_since = now
            if now - g.short_since < self.lease_s:
                self._warn_short(g, eligible, now)
                return
            # (also a live member out of the in-sync set with the newest epoch: it may hold
            # more than the set, having left it late)
            newest = max(g.members[n].epoch for n in eligible)
            others = [n for n in live if n != exclude and g.members[n].epoch >= newest]
            candidates = sorted(set(eligible) | set(others))
        if not candidates:
            return
        best = max(candidates, key=lambda n: (g.members[n].epoch, g.members[n].max_offset, -n))
        if g.short_since is not None:
            self._elect_short(g, best)
        self._elect(g, best, now)

    def _elect_short(self, g: Group, node: int) -> None:
        """``node`` is elected although its log ends before what was acknowledged: say what
        is lost, and make its end the group's acknowledged offset (or it would get no lease)."""
        member = g.members[node]
        logger.error(
            "controller: {} elects {} at offset {} although {} was acknowledged: every member "
            "that may have held {} bytes of acknowledged records came back without them (a "
            "power loss of every replica under ASYNC_FLUSH); they are lost",
            g.name,
            node,
            member.max_offset,
            g.confirmed,
            g.confirmed - member.max_offset,
        )
        g.confirmed = g.confirmed_saved = member.max_offset
        g.short_since = None

    def _warn_short(self, g: Group, eligible: list[int], now: float) -> None:
        """Nobody elected: every candidate's log ends before the acknowledged offset, or
        restarted after a power loss while a member that may hold more is away."""
        if not self._may_warn((g.name, -1), now):
            return
        logger.warning(
            "controller: {} elects nobody: its candidates may lack acknowledged records "
            "({}; the last offset a master acknowledged: {}): a replica that holds them must "
            "come back (at most one such line every {:g} s)",
            g.name,
            ", ".join(
                f"{n} at {g.members[n].max_offset}"
                + (" after a power loss" if g.members[n].power_cut else "")
                for n in sorted(eligible)
            ),
            g.confirmed,
            WARN_EVERY_S,
        )

    def _candidates(self, g: Group, now: float, exclude: int | None = None) -> list[int]:
        """The live members that may be elected: with a known in-sync set, its members and the
        last master (claiming the current term); else claimants of the newest term any live
        member reports."""
        live = g.live(now, self.lease_s)
        if exclude is not None:
            live.pop(exclude, None)
        if g.isr_known and not g.claimed:
            # the term's master never ran it: as if it had not been elected (that node was a
            # candidate of the previous term too)
            return [
                n
                for n, m in live.items()
                if n in g.prev_isr
                or n == g.last_master
                or (m.epoch == g.prev_epoch and (m.claim or n == g.prev_master))
            ]
        if g.isr_known:
            return [
                n
                for n, m in live.items()
                if n in g.isr or (m.epoch == g.epoch and (m.claim or n == g.last_master))
            ]
        newest = max((m.epoch for m in live.values()), default=0)
        return [n for n, m in live.items() if m.claim and m.epoch >= newest]

    def _elect(self, g: Group, node: int, now: float) -> None:
        """``node`` is master of a new term; a handover under way ends with it."""
        newest = max((m.epoch for m in g.members.values()), default=0)
        if g.claimed:  # (else the term before the unclaimed one stays the last that ran)
            g.prev_epoch, g.prev_isr, g.prev_master = g.epoch, g.isr, g.last_master
        g.claimed = False
        g.epoch = max(g.epoch, newest) + 1
        self._touched.add(g.name)
        g.confirmed_saved = g.confirmed  # (saved with the term)
        g.master = g.last_master = node
        g.lease_until = now + self.lease_s  # nobody else before the new master's first lease
        g.short_since = None  # (a later term's last resort waits a lease of its own)
        g.isr = frozenset()
        g.isr_known = True
        g.isr_epoch += 1
        member = g.members[node]
        logger.warning(
            "controller: {} elects {} (offset {}) as master for epoch {}",
            g.name,
            node,
            member.max_offset,
            g.epoch,
        )
        self._notify(member)
        h, g.handover = g.handover, None
        if h is not None:
            failed = f"{h.target} was not elected: {node} was" if node != h.target else ""
            code = ResponseCode.CONTROLLER_ELECT_MASTER_FAILED if failed else ResponseCode.SUCCESS
            self._answer(h, ElectOutcome(code, failed, self._view(g, now)))
