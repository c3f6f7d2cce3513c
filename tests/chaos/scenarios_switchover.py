"""R26: planned switchovers (mqadmin electMaster) under load, back and forth.

Cluster: R10's (``scenarios_ha.HaRun``: the controller in the name server, an ASYNC_MASTER and
its slave of ``broker-a``, each its own process), producers and push / pull consumers.

Fault ``Switchover``: wait (bounded) until the controller lists the other node in the in-sync
set, then CONTROLLER_ELECT_MASTER it (the request returns once it is master: the old master's
lease ran out and the new one holds everything the old one wrote); heal waits (bounded) until
the name server lists it as master. The old master rejoins as its slave by itself, so the
next switchover goes back.

Criteria: R9's (zero acked loss even though the group is ASYNC_MASTER: a switchover waits for
the target to hold the old master's whole log, unlike a kill; unexpected = aborted-read = ∅,
inconsistent-offsets = ∅), every switchover answered SUCCESS naming the target, writes stored
again within ``RTO_BOUND`` of each, every replica's log equal to the final master's
(lost-on-node = ∅).
"""

from __future__ import annotations

import json
import time
from typing import Any

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.chaos import admin
from tests.chaos.scenarios import Result, RunConfig
from tests.chaos.scenarios_ha import (
    BROKER,
    INNER,
    RTO_BOUND,
    HaRun,
    _failover_facts,
    _failover_scenario,
    _ha_common,
)

IN_SYNC_WAIT_S = 20.0
"""How long a switchover waits for its target to be in the in-sync set (the previous one's old
master rejoining and catching up)."""
ELECT_TIMEOUT_S = 15.0


class Switchover:
    """electMaster to whichever node is not master now (see the module docstring)."""

    kind = "switchover"

    def __init__(self, run: HaRun) -> None:
        self.run = run
        self.target = "slave"
        self.old: str | None = None
        self.to: str | None = None

    def _replicas(self) -> dict[str, Any]:
        body = json.dumps([BROKER]).encode()
        cmd = admin.call(
            self.run.cluster.namesrv, RequestCode.CONTROLLER_GET_SYNC_STATE_DATA, body=body
        )
        if cmd.code != ResponseCode.SUCCESS:
            return {}
        table: dict[str, Any] = json.loads(cmd.body).get("replicasInfoTable", {})
        return table.get(BROKER, {})

    def inject(self) -> dict[str, Any]:
        self.old = self.run.cluster.master_address(BROKER)
        spec = next(s for s in self.run.cluster.specs.values() if s.address != self.old)
        self.to, self.target = spec.address, spec.label
        start = time.monotonic()

        def target_in_sync() -> bool:
            members = self._replicas().get("inSyncReplicas") or []
            return any(m.get("brokerId") == spec.broker_id for m in members)

        try:
            admin.wait_until(target_in_sync, IN_SYNC_WAIT_S, f"{spec.label} in sync", 0.2)
        except TimeoutError:
            return {"from": self.old, "to": self.to, "code": None, "error": "never in sync"}
        waited = round(time.monotonic() - start, 3)
        ext = {"clusterName": "", "brokerName": BROKER, "brokerId": spec.broker_id}
        asked = time.monotonic()
        try:
            cmd = admin.call(
                self.run.cluster.namesrv,
                RequestCode.CONTROLLER_ELECT_MASTER,
                ext,
                timeout=ELECT_TIMEOUT_S,
                credentials=INNER,
            )
        except admin.AdminError as exc:
            return {"from": self.old, "to": self.to, "code": None, "error": str(exc)[:300]}
        return {
            "from": self.old,
            "to": self.to,
            "in_sync_wait": waited,
            "took": round(time.monotonic() - asked, 3),
            "code": cmd.code,
            "remark": cmd.remark,
            "master": (cmd.ext_fields or {}).get("masterAddress"),
            "epoch": (cmd.ext_fields or {}).get("masterEpoch"),
        }

    def heal(self) -> dict[str, Any]:
        start = time.monotonic()
        failover: float | None
        try:
            admin.wait_until(
                lambda: self.run.cluster.master_address(BROKER) == self.to,
                RTO_BOUND,
                "the target listed as master",
            )
            failover = round(time.monotonic() - start, 3)
        except TimeoutError:
            failover = None
        return {"node": self.target, "failover_wait": failover}


def r26(cfg: RunConfig) -> Result:
    run, report, ends, verdict = _failover_scenario(
        "R26", cfg, "ASYNC_MASTER", lambda r: [Switchover(r)], (0.5, 1.0)
    )
    _ha_common(run, report, verdict, ends)
    _failover_facts(run, report, verdict)
    switches = [
        e.data or {}
        for e in run.history.snapshot()
        if e.type == "event" and e.f == "fault" and (e.data or {}).get("kind") == "switchover"
    ]
    bad = [s for s in switches if s.get("code") != 0 or s.get("master") != s.get("to")]
    verdict.require("at least one switchover", bool(switches), run.facts)
    verdict.require("every switchover elected its target", not bad, bad)
    run.facts["switchover_s"] = [s.get("took") for s in switches]
    run.facts["in_sync_wait_s"] = [s.get("in_sync_wait") for s in switches]
    return run.result(verdict, report)


SWITCHOVER_SCENARIOS = {"R26": r26}
