"""R20 clock jumps and strobing (RELIABILITY.md §4) on a controller-mode master + slave.

Cluster: R9's (the controller in the name server; a SYNC_MASTER and its slave of ``broker-a``
in controller mode), every process started with the clock shim (``tests.chaos.clock``): its
``time.time()`` is the real clock plus an offset the nemesis writes, ``time.monotonic()`` is
untouched, as when an operator or NTP steps a machine's clock. Producers and consumers (not
shifted) run throughout.

Faults, seeded, on any node (name server + controller, master, slave): the clock jumps +10 min
or -10 min for the fault window and back, or strobes between the two every 50 ms. After the
faults the slave is killed -9 and restarted: its recovery reads a log whose store timestamps
jumped back and forth.

Pass: no safety anomaly (R1's criteria: nothing acked lost, nothing unexpected, one value per
offset, offsets contiguous, no hung request); no spurious failover (the controller elected
once, at start; the master at the end is the first one); the slave never left the master's
in-sync set while the clocks moved; no send failed or timed out; the group read every acked
value without skipping; the restarted slave caught up and every replica's log equals the
master's. Store timestamps may be wrong; offsets and order may not be.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any

from tests.chaos import checker as C
from tests.chaos import membership_logs as L
from tests.chaos.clock import ClockJump, ClockShift, ClockStrobe
from tests.chaos.nemesis import Fault, Schedule
from tests.chaos.scenarios import Result, RunConfig, _check, _common_criteria, _group_criteria
from tests.chaos.scenarios_ha import BROKER, HaRun, require

JUMP_S = 600.0  # RELIABILITY R20: ±10 min
_IN_SYNC = re.compile(r"in-sync slaves now \[([\d, ]*)\]")


def _clock_faults(run: HaRun, shift: ClockShift, nodes: list[str]) -> int:
    """Strobe, jump forward, jump back, over and over, each on a seeded node, until the fault
    phase is over (at least one of each), a short quiet time between; returns how many."""
    rng = random.Random(run.cfg.seed)
    schedule = Schedule(run.history, [ClockJump(shift, nodes[0], 0.0)], run.cfg.seed)
    end = time.monotonic() + run.cfg.seconds
    run.history.event("nemesis-start", seed=run.cfg.seed, duration=run.cfg.seconds)
    count = 0
    while count < 3 or time.monotonic() < end:
        node = rng.choice(nodes)
        fault: Fault = [
            ClockStrobe(shift, node, JUMP_S),
            ClockJump(shift, node, JUMP_S),
            ClockJump(shift, node, -JUMP_S),
        ][count % 3]
        schedule.apply(fault, rng.uniform(0.6, 1.2))
        count += 1
        time.sleep(rng.uniform(0.2, 0.4))  # quiet time between faults (the fault plan)
    run.history.event("nemesis-end", seed=run.cfg.seed, faults=count)
    run.facts["faults"] = count
    return count


def _in_sync_departures(run: HaRun, slave_id: int, before: float) -> list[str]:
    """The master's in-sync announcements before wall time ``before`` that lack the slave
    after it first joined."""
    master = run.cluster.brokers[f"{BROKER}/0"].name
    lines = L.read_dir(run.cfg.workdir / "logs", master)
    joined, left = False, []
    for line in lines:
        m = _IN_SYNC.search(line.text)
        if m is None or line.wall >= before:
            continue
        members = {int(t) for t in m.group(1).replace(" ", "").split(",") if t}
        if slave_id in members:
            joined = True
        elif joined:
            left.append(line.text)
    return left


def r20(cfg: RunConfig) -> Result:
    require(failover=True)
    run = HaRun("R20", cfg)
    shift = ClockShift(cfg.workdir)
    run.cluster.env_for = shift.env_for
    verdict = C.Verdict()
    try:
        run.ha_cluster("SYNC_MASTER", controller=True)
        first_master = run.cluster.master_address(BROKER)
        run.start_consumers(["push", "pull"])
        run.start_producers()
        run.wait_for_acks()
        run.wait_caught_up()
        nodes = [run.cluster.namesrv_node.name] + [n.name for n in run.cluster.brokers.values()]
        _clock_faults(run, shift, nodes)
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
        # the slave restarts on a log whose store timestamps jumped
        slave = run.cluster.brokers[f"{BROKER}/1"]
        killed_wall = time.time()  # the harness's clock is not shifted
        slave.kill()
        slave.start()
        run.history.event("slave-restarted", "nemesis", node=slave.name)
        last_master = run.cluster.master_address(BROKER)
        run.catch_up(verdict)
    finally:
        run.close()
    run.compare_stores(verdict)
    report = _check(run)
    _common_criteria(run, report, verdict, ends=ends)
    _group_criteria(run, report, verdict)
    fault_data = [
        e.data or {} for e in run.history.snapshot() if e.type == "event" and e.f == "fault"
    ]
    kinds = [str(d.get("kind")) for d in fault_data]
    run.facts["clock_faults"] = {k: kinds.count(k) for k in sorted(set(kinds))}
    run.facts["targets"] = sorted({str(d.get("target")) for d in fault_data})
    verdict.require("clock faults were injected", len(kinds) >= 3, kinds)
    entries = run.history.snapshot()
    start = min(e.mono for e in entries if e.type == "event" and e.f == "nemesis-start")
    failed = [
        (e.type, e.value, e.status)
        for e in entries
        if e.f == "send" and e.type in ("fail", "info") and e.mono >= start
    ]
    verdict.require("no send failed or timed out once the clocks moved", not failed, failed[:10])
    elected = L.elections(L.read_dir(run.cfg.workdir / "logs", "namesrv"))
    run.facts["elections"] = [(e.node, e.epoch) for e in elected]
    verdict.require("no failover: one election, at start", len(elected) == 1, elected)
    verdict.require(
        "the first master is the master at the end",
        first_master is not None and last_master == first_master,
        {"first": first_master, "last": last_master},
    )
    left = _in_sync_departures(run, slave_id=1, before=killed_wall)
    verdict.require("the slave never left the in-sync set", not left, left[:5])
    return run.result(verdict, report)


CLOCK_SCENARIOS: dict[str, Any] = {"R20": r20}
