"""R27: kill -9 the controller (the name server running it) under load, alone and together
with the master ("kill -9 any node, restart": RELIABILITY.md §5's first column, for the node
that decides failovers).

Cluster: R9's (``scenarios_ha.HaRun``: the controller in the name server, a SYNC_MASTER and
its slave of ``broker-a``, each its own process), producers and push / pull consumers.

Faults, in turn (so even a short run covers the case only a remembering controller survives):
- ``KillController``: kill -9 the name server; heal restarts it on the same port (brokers and
  clients know only that address) and waits (bounded) until it lists a master again. While it
  is down the master's lease runs out (it stops acknowledging); the restarted controller
  grants nothing for lease + 1 s, then gives the lease back to the master.
- ``KillMaster``: R9's.
- ``KillControllerThenMaster``: kill -9 the name server, then the master while it is down;
  heal restarts the name server and waits (bounded) for a new master, then restarts the old
  one. Only a controller that remembers the group's in-sync set can elect the slave here.

Criteria: R9's (zero acked loss, unexpected = aborted-read = ∅, inconsistent-offsets = ∅), a
master listed within ``RTO_BOUND`` after each heal, writes stored again within ``RTO_BOUND`` of
each fault's end, every replica's log equal to the final master's (lost-on-node = ∅).
"""

from __future__ import annotations

import time
from typing import Any

from tests.chaos import admin
from tests.chaos.cluster import Node, wait_port_free
from tests.chaos.scenarios import Result, RunConfig
from tests.chaos.scenarios_ha import (
    BROKER,
    RTO_BOUND,
    HaRun,
    KillMaster,
    _failover_facts,
    _failover_scenario,
    _ha_common,
)


def restart_on_same_port(node: Node, address: str) -> None:
    """Start the killed name server again on the port it had (the first start took a free one:
    every broker and client was given that address)."""
    port = int(address.rpartition(":")[2])
    if "--ephemeral-ports" in node.args:
        node.args.remove("--ephemeral-ports")
        node.args += ["--listen-port", str(port)]
    wait_port_free(port)
    node.start()


class KillController:
    """kill -9 the name server (and the controller in it); heal restarts it on its port and
    waits until it lists a master again."""

    kind = "kill-controller"

    def __init__(self, run: HaRun) -> None:
        self.run = run
        self.target = "namesrv"

    def inject(self) -> dict[str, Any]:
        node = self.run.cluster.namesrv_node
        pid = node.pid
        node.kill()
        return {"pid": pid}

    def heal(self) -> dict[str, Any]:
        start = time.monotonic()
        restart_on_same_port(self.run.cluster.namesrv_node, self.run.cluster.namesrv)
        ready = round(time.monotonic() - start, 3)
        failover: float | None
        try:
            admin.wait_until(
                lambda: self.run.cluster.master_address(BROKER) is not None,
                RTO_BOUND,
                "a master listed",
            )
            failover = round(time.monotonic() - start, 3)
        except TimeoutError:
            failover = None
        return {
            "ready_after": ready,
            "master": self.run.cluster.master_address(BROKER),
            "failover_wait": failover,
        }


class KillControllerThenMaster(KillMaster):
    """kill -9 the name server, then the master while it is down; heal restarts the name
    server, then heals as ``KillMaster`` (waits for a new master, restarts the old one)."""

    kind = "kill-controller-then-master"

    def inject(self) -> dict[str, Any]:
        node = self.run.current_master()  # (asked of the name server before it is killed)
        self.old = self.run.cluster.master_address(BROKER)
        self.run.cluster.namesrv_node.kill()
        self.killed, self.target = node, node.name
        node.kill()
        return {"node": node.name, "address": self.old}

    def heal(self) -> dict[str, Any]:
        restart_on_same_port(self.run.cluster.namesrv_node, self.run.cluster.namesrv)
        return super().heal()


class InTurn:
    """One fault after another of ``faults``, in order, round and round (the schedule's seeded
    choice among one fault is no choice); ``kind`` and ``target`` are the current one's."""

    def __init__(self, faults: list[Any]) -> None:
        self.faults = faults
        self.next = 0
        self.current = faults[0]

    @property
    def kind(self) -> str:
        return str(self.current.kind)

    @property
    def target(self) -> str:
        return str(self.current.target)

    def inject(self) -> dict[str, Any]:
        self.current = self.faults[self.next % len(self.faults)]
        self.next += 1
        return dict(self.current.inject())

    def heal(self) -> dict[str, Any]:
        return dict(self.current.heal())


def r27(cfg: RunConfig) -> Result:
    run, report, ends, verdict = _failover_scenario(
        "R27",
        cfg,
        "SYNC_MASTER",
        lambda r: [InTurn([KillControllerThenMaster(r), KillController(r), KillMaster(r)])],
        (0.5, 1.0),
    )
    _ha_common(run, report, verdict, ends)
    _failover_facts(run, report, verdict)
    kinds = [
        (e.data or {}).get("kind")
        for e in run.history.snapshot()
        if e.type == "event" and e.f == "fault"
    ]
    verdict.require(
        "the controller was killed at least once",
        any(k in ("kill-controller", "kill-controller-then-master") for k in kinds),
        kinds,
    )
    run.facts["fault_kinds"] = kinds
    return run.result(verdict, report)


CONTROLLER_SCENARIOS = {"R27": r27}
