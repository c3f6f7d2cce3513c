"""R28: kill -9 the master together with one of its two slaves, under load, on a SYNC_MASTER
group with ``allAckInSyncStateSet=true``.

Cluster: R9's (``scenarios_ha.HaRun``: the controller in the name server, a SYNC_MASTER and
its slave ``broker-a/1``) plus a second slave ``broker-a/2``, every broker with
``allAckInSyncStateSet=true``; producers and push / pull consumers.

Fault (``KillMasterAndSlave``): wait (bounded) until the controller counts both slaves in sync,
freeze (SIGSTOP) the slave that will survive for a seeded 0.2 to 0.5 s under load, then kill -9
the master and the other slave at once and let the survivor go on (SIGCONT); heal waits
(bounded) until the name server lists the survivor as master, then restarts both killed nodes
(they rejoin as slaves). With one slave's ack enough (RocketMQ's default) the master
acknowledges, during the freeze, messages only the killed slave holds: lost when the survivor
is elected (or, once the master reported them acknowledged to the controller, nobody is
elected until the killed nodes return). With every in-sync slave's ack required those sends
wait for the frozen slave and are never acknowledged: whichever the controller elects holds
every acknowledged message. (Without the freeze the slaves lag each other by well under a
millisecond on loopback and the run could not tell the two apart.)

Criteria: R9's (zero acked loss, unexpected = aborted-read = ∅, inconsistent-offsets = ∅), a
failover after every fault, writes stored again within ``RTO_BOUND`` of each fault's end,
every replica's log equal to the final master's (lost-on-node = ∅), and both slaves in sync
before every fault (else the fault proves nothing).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.chaos import admin
from tests.chaos.cluster import BrokerSpec, Node
from tests.chaos.scenarios import Result, RunConfig
from tests.chaos.scenarios_ha import (
    BROKER,
    HaRun,
    KillMaster,
    _failover_facts,
    _failover_scenario,
    _ha_common,
)

IN_SYNC_WAIT_S = 20.0
FREEZE_S = (0.2, 0.5)
"""How long the surviving slave is frozen before the others are killed (seeded)."""
ALL_ACK = {"allAckInSyncStateSet": "true"}


def in_sync_ids(run: HaRun) -> set[int]:
    """The slave ids the controller counts in sync (empty when it cannot say)."""
    body = json.dumps([BROKER]).encode()
    try:
        cmd = admin.call(run.cluster.namesrv, RequestCode.CONTROLLER_GET_SYNC_STATE_DATA, body=body)
    except admin.AdminError:
        return set()
    if cmd.code != ResponseCode.SUCCESS:
        return set()
    info = json.loads(cmd.body).get("replicasInfoTable", {}).get(BROKER, {})
    master = info.get("masterBrokerId")
    return {m["brokerId"] for m in info.get("inSyncReplicas") or []} - {master}


class KillMasterAndSlave(KillMaster):
    """Once both slaves are in sync, freeze one (seeded) for a seeded ``FREEZE_S``, then
    kill -9 the master and the other slave at once and let the frozen one go on; heal waits
    for it to be listed as master (``KillMaster``'s), then restarts both."""

    kind = "kill-master-and-slave"

    def __init__(self, run: HaRun, rng: random.Random) -> None:
        super().__init__(run)
        self.rng = rng
        self.slave: Node | None = None

    def inject(self) -> dict[str, Any]:
        run = self.run
        start = time.monotonic()
        try:
            admin.wait_until(
                lambda: len(in_sync_ids(run)) >= 2, IN_SYNC_WAIT_S, "two slaves in sync"
            )
            both_in_sync = True
        except TimeoutError:
            both_in_sync = False
        waited = round(time.monotonic() - start, 3)
        master = run.current_master()
        self.old = run.cluster.master_address(BROKER)
        slaves = sorted(
            (n for n in run.cluster.brokers.values() if n is not master), key=lambda n: n.name
        )
        self.killed, self.slave = master, self.rng.choice(slaves)
        survivor = next(n for n in slaves if n is not self.slave)
        freeze = round(self.rng.uniform(*FREEZE_S), 3)
        self.target = f"{master.name}+{self.slave.name}"
        survivor.pause()
        try:
            time.sleep(freeze)  # (the fault itself: sends go on while it lags)
            master.kill()
            self.slave.kill()
        finally:
            survivor.resume()
        return {
            "master": master.name,
            "slave": self.slave.name,
            "survivor": survivor.name,
            "survivor_frozen_s": freeze,
            "both_in_sync": both_in_sync,
            "in_sync_wait": waited,
        }

    def heal(self) -> dict[str, Any]:
        healed = super().heal()
        assert self.slave is not None
        self.slave.start()
        return healed


def _with_second_slave(run: HaRun) -> None:
    """Add ``broker-a/2``, a slave like ``broker-a/1``, and wait until it registers."""
    first = run.cluster.specs[f"{BROKER}/1"]
    spec = BrokerSpec(
        BROKER, 2, "SLAVE", first.flush, ha_master=first.ha_master, extra=dict(first.extra)
    )
    run.nodes["slave2"] = run.cluster.add_broker(spec)
    run.cluster.start_broker(spec.label)
    run.cluster.wait_registered(spec.label)


def r28(cfg: RunConfig) -> Result:
    rng = random.Random(cfg.seed)
    run, report, ends, verdict = _failover_scenario(
        "R28",
        cfg,
        "SYNC_MASTER",
        lambda r: [KillMasterAndSlave(r, rng)],
        (0.5, 1.0),
        broker_extra=ALL_ACK,
        setup=_with_second_slave,
    )
    _ha_common(run, report, verdict, ends)
    _failover_facts(run, report, verdict)
    injected = [
        e.data or {} for e in run.history.snapshot() if e.type == "event" and e.f == "fault"
    ]
    in_sync = [d.get("both_in_sync") for d in injected]
    run.facts["both_in_sync_before_each_fault"] = in_sync
    run.facts["in_sync_wait_s"] = [d.get("in_sync_wait") for d in injected]
    run.facts["killed"] = [f"{d.get('master')}+{d.get('slave')}" for d in injected]
    verdict.require("at least one fault", bool(injected), injected)
    verdict.require("both slaves in sync before every fault", all(in_sync), in_sync)
    return run.result(verdict, report)


DOUBLE_SCENARIOS = {"R28": r28}
