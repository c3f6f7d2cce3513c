"""R14 (RELIABILITY.md, "last replica standing"): the master's machine loses power while its
in-sync slave is down, and the master comes back first, short of what it acknowledged.

Cluster: R9's (``scenarios_ha.HaRun``: the controller in the name server, a SYNC_MASTER and
its slave, ASYNC_FLUSH), producers and push / pull consumers.

Fault (``PowerLossWhileSlaveDown``): kill -9 the master and the slave at once; cut a seeded
1 - 16 KiB off the end of the master's commit log (what a power loss under ASYNC_FLUSH takes:
records written, acknowledged once the slave held them, not yet fsync'd) and make its store's
record of the boot it ran on an earlier one (the machine restarted); start the master
alone and watch the name server for ``DOWN_S`` (past the lease, the margin and a few
heartbeats); then start the slave and wait (bounded) for a master. The controller must not
elect the short master while the slave that holds the cut records is away (it would truncate
them off the slave when it returns: silent loss), and must elect the slave once it is back.

Criteria: R9's loss criteria (zero acked loss, unexpected = aborted-read = ∅,
inconsistent-offsets = ∅), every replica's log equal to the final master's (lost-on-node =
∅), the short master never listed while the slave was down, a master listed within
``RTO_BOUND`` of the slave's restart after every fault, and at least one fault that cut
acknowledged records (else the run proves nothing).

R14-classic: the same fault without a controller (R12's cluster: a classic SYNC_MASTER and its
slave, the slave's replication link through the TcpProxy). There is no failover: the master
must reconcile from the slave before it takes a write (RELIABILITY.md §5;
``actors.broker.ha_reconcile``). Criteria: the same loss criteria and lost-on-node = ∅, no
send acknowledged while the short master ran alone, writes resumed within ``RTO_BOUND`` of the
slave's restart after every fault, at least one power loss, and the consumer group read every
value of the final log (a consumer past offsets the master reuses is moved back to them by the
tail-loss guard, ``runtime.store.tail_guard``: none skipped).

R14-all, R14-all-classic (soak only; RELIABILITY.md §5, "power loss of all replicas at once",
ASYNC_FLUSH + SYNC_MASTER: possible loss): both machines lose power at once, each log losing
its own seeded tail, and both start again. Criteria: acked values lost only as the tail before
a power loss, one value per read offset (the lost values' offsets excepted: new messages take
them), contiguous offsets, replicas equal, a master back within ``RTO_BOUND`` after every
fault (the controller elects the best log once every in-sync replica is back without the lost
records), and the group read every value of the final log.
"""

from __future__ import annotations

import os
import pathlib
import random
import time
from typing import Any

import msgspec

from runtime.ha import boot
from tests.chaos import admin
from tests.chaos import checker as C
from tests.chaos import membership_logs as L
from tests.chaos.cluster import Node
from tests.chaos.nemesis import Timing
from tests.chaos.scenarios import GROUP, VERIFY, Result, RunConfig
from tests.chaos.scenarios_ha import (
    BROKER,
    RTO_BOUND,
    SYNC_FLUSH,
    HaRun,
    _check,
    _failover_scenario,
    _ha_common,
    classic_scenario,
)
from tests.chaos.workload import read_values

DOWN_S = 6.0
"""How long the short master runs alone (lease 3 s + margin + heartbeats)."""
CUT_BYTES = (1024, 16 * 1024)
TERM_S = (4.0, 6.0)
"""R14-all's quiet time after a master is back, before the next power loss: long enough for
the consumers to pull from that master (the tail-loss guard moves a stale position only on
the master of the term that reused its offsets; a consumer that pulls first from a later term,
after another loss, may skip them: docs/store.md "Recovery" step 8)."""


def power_loss(store_root: pathlib.Path, rng: random.Random) -> dict[str, int]:
    """Cut a seeded tail off the newest commit-log segment under ``store_root`` (the process
    is dead): what the page cache held and the disk did not; and make the store's record of
    the boot it last ran on an earlier one (``runtime.ha.boot``), as after the machine's
    restart."""
    segments = sorted((store_root / "commitlog").iterdir())
    last = segments[-1]
    size = last.stat().st_size
    cut = min(size, rng.randint(*CUT_BYTES))
    os.truncate(last, size - cut)
    (store_root / boot.FILE).write_text("a-boot-before-the-power-loss\n")
    return {"segment_end": int(last.name) + size, "cut": cut}


class PowerLossWhileSlaveDown:
    """See the module docstring."""

    kind = "power-loss-while-slave-down"

    def __init__(self, run: HaRun, rng: random.Random) -> None:
        self.run = run
        self.rng = rng
        self.target = "master+slave"
        self.master: Node | None = None
        self.slave: Node | None = None
        self.old: str | None = None

    def inject(self) -> dict[str, Any]:
        run = self.run
        self.master = run.current_master()
        self.old = run.cluster.master_address(BROKER)
        self.slave = next(n for n in run.cluster.brokers.values() if n is not self.master)
        self.target = f"{self.master.name}+{self.slave.name}"
        self.master.kill()
        self.slave.kill()
        cut = power_loss(run.cluster.workdir / "store" / self.master.name, self.rng)
        return {"master": self.master.name, "slave": self.slave.name, **cut}

    def heal(self) -> dict[str, Any]:
        assert self.master is not None and self.slave is not None
        cluster = self.run.cluster
        self.master.start()
        listed_alone = False
        deadline = time.monotonic() + DOWN_S
        while time.monotonic() < deadline:
            listed_alone = listed_alone or cluster.master_address(BROKER) is not None
            time.sleep(0.2)  # (sampling the name server's view while the slave is down)
        self.slave.start()
        start = time.monotonic()
        failover: float | None
        try:
            admin.wait_until(
                lambda: cluster.master_address(BROKER) is not None, RTO_BOUND, "a master"
            )
            failover = round(time.monotonic() - start, 3)
        except TimeoutError:
            failover = None
        return {
            "short_master_listed": listed_alone,
            "new_master": cluster.master_address(BROKER),
            "failover_wait": failover,
        }


def r14(cfg: RunConfig) -> Result:
    rng = random.Random(cfg.seed)
    run, report, ends, verdict = _failover_scenario(
        "R14",
        cfg,
        "SYNC_MASTER",
        lambda r: [PowerLossWhileSlaveDown(r, rng)],
        (0.5, 1.0),
    )
    _ha_common(run, report, verdict, ends)
    events = run.history.snapshot()
    injected = [e.data or {} for e in events if e.type == "event" and e.f == "fault"]
    healed = [e.data or {} for e in events if e.type == "event" and e.f == "heal"]
    listed = [h.get("short_master_listed") for h in healed]
    waits = [h.get("failover_wait") for h in healed]
    run.facts["cuts"] = [d.get("cut") for d in injected]
    run.facts["short_master_listed"] = listed
    run.facts["failover_wait_s"] = waits
    verdict.require("at least one power loss", bool(injected), injected)
    verdict.require(
        "the short master was never listed while the slave was down", not any(listed), listed
    )
    verdict.require(
        f"a master within {RTO_BOUND}s of the slave's return after every fault",
        None not in waits,
        waits,
    )
    return run.result(verdict, report)


class PowerLossClassic:
    """R14-classic's fault: both die, the master's tail is cut and its reboot faked; the
    master runs alone for ``DOWN_S`` (it must take no write), then the slave returns."""

    kind = "power-loss-classic"

    def __init__(self, run: HaRun, rng: random.Random) -> None:
        self.run = run
        self.rng = rng
        self.target = "master+slave"

    def inject(self) -> dict[str, Any]:
        master, slave = self.run.nodes["master"], self.run.nodes["slave"]
        master.kill()  # (the master first: it never sees its slave leave)
        slave.kill()
        cut = power_loss(self.run.cluster.workdir / "store" / master.name, self.rng)
        return {"master": master.name, **cut}

    def heal(self) -> dict[str, Any]:
        master, slave = self.run.nodes["master"], self.run.nodes["slave"]
        master.start()
        alone_from = time.monotonic()
        time.sleep(DOWN_S)  # (the fault: the master runs without its slave)
        alone_until = time.monotonic()
        slave.start()
        return {"alone": [alone_from, alone_until], "slave_back": time.monotonic()}


def r14_classic(cfg: RunConfig) -> Result:
    return _r14_classic("R14-classic", cfg, "SYNC_MASTER")


def r14_classic_async(cfg: RunConfig) -> Result:
    """R14-classic on an ASYNC_MASTER (soak only): it waits for its slave too
    (haReconcileWaitMillis, 30 s, longer than the slave is away), so nothing it acknowledged
    before a power loss is lost. After a reconciliation it acknowledges alone until the slave
    links again (about a second): a power loss then takes those acks (ASYNC_MASTER's
    replication-lag loss), counted as lost-postfix, and their offsets go to new messages."""
    return _r14_classic("R14-classic-async", cfg, "ASYNC_MASTER")


def _r14_classic(name: str, cfg: RunConfig, role: str) -> Result:
    rng = random.Random(cfg.seed)
    timing = Timing(interval=(1.0, 2.0), window=(0.5, 1.0))
    run, ends, verdict = classic_scenario(
        name, cfg, role, lambda r: [PowerLossClassic(r, rng)], timing
    )
    report = _check(run)
    events = run.history.snapshot()
    # A send answered SLAVE_NOT_AVAILABLE (stored on the master alone: its slave was not back
    # yet), or one whose answer never came, that a power loss then took is gone, and the master
    # gives its queue offset to the next message: only sends in the final log must agree at one
    # offset (one a consumer read before the loss is gone all the same: seed 3003, an unanswered
    # send read at 162 before the power loss, not on the slave, 162 reused)
    final = read_values(run.history, VERIFY)
    taken = {v for v, s in C.sends(events).items() if s.type == "info"} - final
    if role == "ASYNC_MASTER":
        # acks given alone after a reconciliation, before the slave linked again, that a power
        # loss then took: lost only as the postfix of a fault, and their offsets reused (R10's
        # criteria; reads of them count as theirs)
        lost = set(C.total_queue(events, [VERIFY]).lost)
        run.facts["lost_postfix"] = len(lost)
        _lost_as_tails(events, verdict, taken | lost)
    else:
        clash = C.inconsistent_offsets(events, ignore_values=taken)
        kafka = msgspec.structs.replace(report.kafka, inconsistent_offsets=clash)
        report = msgspec.structs.replace(report, kafka=kafka)
        _ha_common(run, report, verdict, ends)
    _group_read_the_log(run, verdict, final)
    injected = [e.data or {} for e in events if e.type == "event" and e.f == "fault"]
    healed = [e.data or {} for e in events if e.type == "event" and e.f == "heal"]
    windows = [h["alone"] for h in healed if "alone" in h]
    alone_oks = [
        e.value
        for e in events
        if e.f == "send" and e.type == "ok" and any(a <= e.mono <= b for a, b in windows)
    ]
    backs = [h["slave_back"] for h in healed if "slave_back" in h]
    oks = sorted(e.mono for e in events if e.f == "send" and e.type == "ok")
    resumed = [next((round(t - back, 3) for t in oks if t >= back), None) for back in backs]
    run.facts["cuts"] = [d.get("cut") for d in injected]
    run.facts["acked_while_alone"] = len(alone_oks)
    run.facts["resumed_after_slave_s"] = resumed
    master_log = L.read_dir(run.cfg.workdir / "logs", run.nodes["master"].name)
    fetches = sum(1 for line in master_log if "; fetching it" in line.text)
    run.facts["tails_fetched"] = fetches
    verdict.require("at least one power loss", bool(injected), injected)
    if role == "ASYNC_MASTER":
        # (it acks alone whenever its slave is not linked: after a loss that found the slave
        # away since before the last fsync, nothing was waited for)
        verdict.require("the master fetched a lost tail from its slave", fetches > 0, fetches)
    else:
        verdict.require("no send acked while the short master ran alone", not alone_oks, alone_oks)
    verdict.require(
        f"writes resumed within {RTO_BOUND}s of the slave's return after every fault",
        bool(resumed) and all(r is not None and r <= RTO_BOUND for r in resumed),
        resumed,
    )
    return run.result(verdict, report)


class PowerLossAll:
    """R14-all's fault: the machines of the master and the slave lose power at once (both
    killed, each log's tail cut by its own seeded amount, each reboot faked); both start again
    together, and the heal waits (bounded) for a master."""

    kind = "power-loss-all"

    def __init__(self, run: HaRun, rng: random.Random, *, cut: bool = True) -> None:
        self.run = run
        self.rng = rng
        self.cut = cut
        """False (SYNC_FLUSH): what was acknowledged was fsync'd; only the reboot is faked."""
        self.target = "all"

    def inject(self) -> dict[str, Any]:
        master = self.run.cluster.master_address(BROKER)
        nodes = list(self.run.cluster.brokers.values())
        for node in nodes:
            node.kill()
        store = self.run.cluster.workdir / "store"
        cuts = {}
        for node in nodes:
            if self.cut:
                cuts[node.name] = power_loss(store / node.name, self.rng)["cut"]
            else:  # (an earlier boot; what the run said of itself, SYNC_FLUSH, stays)
                path = store / node.name / boot.FILE
                said = path.read_text().split("\n")[1:] if path.exists() else []
                path.write_text("\n".join(["a-boot-before-the-power-loss", *said]))
        return {"cuts": cuts, "old_master": master}

    def heal(self) -> dict[str, Any]:
        cluster = self.run.cluster
        for node in cluster.brokers.values():
            node.start()
        start = time.monotonic()
        try:
            admin.wait_until(
                lambda: cluster.master_address(BROKER) is not None, RTO_BOUND, "a master"
            )
            waited: float | None = round(time.monotonic() - start, 3)
        except TimeoutError:
            waited = None
        return {"master": cluster.master_address(BROKER), "failover_wait": waited}


def r14_all(cfg: RunConfig) -> Result:
    """R14-all (soak only; RELIABILITY.md §5, "power loss of all replicas at once", ASYNC_FLUSH
    + SYNC_MASTER: possible loss) with the controller."""
    return _all_with_controller("R14-all", cfg, "SYNC_MASTER")


def r14_all_async(cfg: RunConfig) -> Result:
    """R14-all on an ASYNC_MASTER (§5, ASYNC_FLUSH + ASYNC_MASTER: tail loss)."""
    return _all_with_controller("R14-all-async", cfg, "ASYNC_MASTER")


def r14_all_sync_flush(cfg: RunConfig) -> Result:
    """R14-all with SYNC_FLUSH on every node (§5, SYNC_FLUSH + SYNC_MASTER: 0 loss, slaves
    fsync before they acknowledge): nothing acknowledged was unsynced, so nothing is cut; the
    reboot is faked (a SYNC_FLUSH run is not suspected of a loss)."""
    return _all_with_controller("R14-all-syncflush", cfg, "SYNC_MASTER", sync_flush=True)


def r14_all_async_sync_flush(cfg: RunConfig) -> Result:
    """R14-all-syncflush on an ASYNC_MASTER (§5, SYNC_FLUSH + ASYNC_MASTER: 0 loss if the
    master's log is the one kept: the controller elects only a replica holding what the
    master acknowledged)."""
    return _all_with_controller("R14-all-async-syncflush", cfg, "ASYNC_MASTER", sync_flush=True)


def _all_with_controller(
    name: str, cfg: RunConfig, role: str, *, sync_flush: bool = False
) -> Result:
    """An R14-all run with the controller; ``sync_flush``: every node fsyncs before it
    acknowledges, nothing is cut, and no acknowledged value may be lost (an ASYNC_MASTER's:
    as long as the controller kept the master at every fault)."""
    rng = random.Random(cfg.seed)
    run, _report, ends, verdict = _failover_scenario(
        name,
        cfg,
        role,
        lambda r: [PowerLossAll(r, rng, cut=not sync_flush)],
        (0.5, 1.0),
        broker_extra=SYNC_FLUSH if sync_flush else None,
        interval=TERM_S,
    )
    if not sync_flush:
        return _all_lost(run, ends, verdict)
    zero_loss: bool | str = True if role == "SYNC_MASTER" else "if-master-kept"
    return _all_lost(run, ends, verdict, zero_loss=zero_loss)


def r14_all_classic(cfg: RunConfig) -> Result:
    """R14-all without a controller: the classic master reconciles from its slave (which
    lost its own tail) before it takes writes."""
    rng = random.Random(cfg.seed)
    timing = Timing(interval=TERM_S, window=(0.5, 1.0))
    run, ends, verdict = classic_scenario(
        "R14-all-classic", cfg, "SYNC_MASTER", lambda r: [PowerLossAll(r, rng)], timing
    )
    return _all_lost(run, ends, verdict)


def _all_lost(
    run: HaRun, ends: dict[str, int], verdict: C.Verdict, *, zero_loss: bool | str = False
) -> Result:
    """R14-all's criteria: acknowledged values lost only as the tail before a power loss,
    nothing unexpected, one value per read offset (lost values' offsets excepted: new
    messages take them), contiguous offsets, a master back within ``RTO_BOUND`` after every
    fault, replicas equal at the end (checked by the run), and the group read every value of
    the final log (none skipped past a reused offset: the tail-loss guard)."""
    report = _check(run)
    events = run.history.snapshot()
    lost = set(C.total_queue(events, [VERIFY]).lost)
    injected = [e.data or {} for e in events if e.type == "event" and e.f == "fault"]
    healed = [e.data or {} for e in events if e.type == "event" and e.f == "heal"]
    kept = [f.get("old_master") == h.get("master") for f, h in zip(injected, healed, strict=False)]
    run.facts["master_kept"] = kept
    if zero_loss is True or (zero_loss == "if-master-kept" and all(kept)):
        # (-async-syncflush: "0 loss if the master's log is the one kept"; a slave elected
        # first, ahead of its master, loses the master's unreplicated acks: R10's tail loss)
        verdict.require("lost = ∅ (acked, not in the final log)", not lost, sorted(lost)[:20])
    # (values a power loss took: acked ones, and unknown ones not in the final log, even if a
    # consumer read them first: every replica lost them, and new messages took their offsets)
    final = read_values(run.history, VERIFY)
    _lost_as_tails(
        events,
        verdict,
        lost | ({v for v, s in C.sends(events).items() if s.type == "info"} - final),
    )
    _group_read_the_log(run, verdict, final)
    waits = [h.get("failover_wait") for h in healed]
    run.facts["lost_postfix"] = len(lost)
    run.facts["cuts"] = [d.get("cuts") for d in injected]
    run.facts["master_back_s"] = waits
    verdict.require("at least one power loss", bool(injected), injected)
    verdict.require(
        f"a master within {RTO_BOUND}s after every fault",
        bool(waits) and None not in waits,
        waits,
    )
    return run.result(verdict, report)


def _lost_as_tails(events: list[Any], verdict: C.Verdict, taken: set[str]) -> None:
    """Acknowledged values lost only as the postfix of a power loss; one value per read offset
    but for the ``taken`` ones (lost, or unknown and not in the final log: new messages took
    their offsets); nothing unexpected; offsets contiguous from 0."""
    faults = [e.mono for e in events if e.type == "event" and e.f == "fault"]
    bad = C.lost_outside_postfix(events, [VERIFY], faults)
    verdict.require("lost only as lost-postfix before a power loss", not bad, bad)
    clash = C.inconsistent_offsets(events, ignore_values=taken)
    clash = {at: vs for at, vs in clash.items() if len(set(vs) - taken) > 1}
    verdict.require("inconsistent-offsets = ∅ (lost tails excepted)", not clash, clash)
    unexpected = C.total_queue(events).unexpected
    verdict.require("unexpected = ∅", not unexpected, unexpected)
    gaps = C.group_gaps(events, VERIFY, from_zero=True)
    verdict.require("offsets contiguous from 0 in every queue", not gaps, gaps)


def _group_read_the_log(run: HaRun, verdict: C.Verdict, final: set[str]) -> None:
    """A consumer still running past offsets a master reuses is moved back to them (the
    tail-loss guard): the group read every value of the final log, none skipped."""
    unread = final - read_values(run.history, GROUP)
    run.facts["group_unread"] = len(unread)
    verdict.require("the group read every value of the final log", not unread, sorted(unread)[:20])


POWER_SCENARIOS = {
    "R14": r14,
    "R14-classic": r14_classic,
    "R14-classic-async": r14_classic_async,
    "R14-all": r14_all,
    "R14-all-classic": r14_all_classic,
    "R14-all-async": r14_all_async,
    "R14-all-syncflush": r14_all_sync_flush,
    "R14-all-async-syncflush": r14_all_async_sync_flush,
}
