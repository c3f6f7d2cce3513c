"""Replication scenarios R9-R13 (RELIABILITY.md §4 B) on a master + slave across processes.

Cluster: a name server process (with the controller when the scenario needs failover), a
master (brokerId 0) and a slave (brokerId 1) of ``broker-a``, each its own process. The slave's
``haMasterAddress`` points at a ``TcpProxy`` in front of the master's HA port, so R12 can cut
the replication link alone. Routes and the current master come from the name server.

- R9  SYNC_MASTER, kill -9 the master, the slave is promoted: zero loss, RTO bounded.
- R10 ASYNC_MASTER, same: loss only at the tail of what was acked before the kill
  (lost-postfix), counted; the rejoining old master never exposes its divergent suffix.
- R11 SIGSTOP the master past the failover, then SIGCONT (zombie): zero loss, nothing it
  acknowledged after losing the lease is lost.
- R12 SYNC_MASTER, partition the replication link (blackhole or reset): no send invoked during
  the partition is acked, consumers never read such a record before the heal, zero loss after.
- R13 SYNC_MASTER, kill -9 + restart the slave: the slave catches up with no gap and no
  duplicate offsets; zero loss.

Every scenario ends comparing each node's store, read from disk after the run, with the
final master's (lost-on-node).

When the build has no HA (no replication service, or no controller for the failover
scenarios) these raise ``SkipScenario`` naming what is missing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from runtime.acl.signature import SessionCredentials
from tests.chaos import admin
from tests.chaos import checker as C
from tests.chaos import membership_logs as L
from tests.chaos.cluster import BrokerSpec, Node
from tests.chaos.history import split_value
from tests.chaos.nemesis import Fault, KillRestart, Partition, Pause, Timing
from tests.chaos.partition_reads import fault_windows, join_walls, partition_reads
from tests.chaos.proxy import TcpProxy
from tests.chaos.scenarios import (
    GROUP,
    TOPIC,
    VERIFY,
    Result,
    Run,
    RunConfig,
    SkipScenario,
    _check,
    _common_criteria,
)
from tests.harness import REPO

BROKER = "broker-a"
RTO_BOUND = 10.0  # seconds; the design's target is 5 s (reported as rto_s)
SLAVE_TIMEOUT_MS = 3000


def has_replication() -> bool:
    return importlib.util.find_spec("actors.broker.ha_service") is not None


def has_controller() -> bool:
    return any(
        importlib.util.find_spec(name) is not None
        for name in ("actors.namesrv.controller", "actors.controller", "runtime.ha.controller")
    )


def require(failover: bool) -> None:
    if not has_replication():
        raise SkipScenario("this build has no HA replication (actors/broker/ha_service.py)")
    if failover and not has_controller():
        raise SkipScenario("this build has no failover controller (issue 6 item 3)")


INNER = SessionCredentials("chaos-inner", "chaos-inner-secret")
"""The HA runs' inner account (``innerClientAuthenticationCredentials``): the harness's own
writes to the name server (R26's electMaster) are signed with it."""
INNER_KEY = "innerClientAuthenticationCredentials"
INNER_JSON = json.dumps({"accessKey": INNER.access_key, "secretKey": INNER.secret_key})


class HaRun(Run):
    """A Run on a master + slave group with a proxy on the replication link."""

    def __init__(self, name: str, cfg: RunConfig) -> None:
        super().__init__(name, cfg)
        self.proxy: TcpProxy | None = None
        self.nodes: dict[str, Node] = {}

    def ha_cluster(
        self,
        role: str,
        *,
        controller: bool,
        flush: str = "ASYNC_FLUSH",
        extra: dict[str, str] | None = None,
    ) -> None:
        """Start the name server, the master and its slave (``extra``: more broker keys)."""
        # Every node has the inner account: registrations, controller heartbeats, the slave's
        # metadata copy and its HA link are signed or proven under every fault.
        conf = self.cfg.workdir / "namesrv.properties"
        text = f"{INNER_KEY}={INNER_JSON}\n"
        if controller:
            text += (
                "enableControllerInNamesrv=true\ncontrollerStartupGraceMillis=300\n"
                f"controllerStorePath={self.cfg.workdir / 'controller'}\n"
            )
        conf.write_text(text)
        self.cluster.start_namesrv(["-c", str(conf)])
        common = {
            "slaveTimeout": str(SLAVE_TIMEOUT_MS),
            "haSendHeartbeatInterval": "1000",
            INNER_KEY: INNER_JSON,
            **(extra or {}),
        }
        if controller:
            common["controllerAddr"] = self.cluster.namesrv
        master = BrokerSpec(BROKER, 0, role, flush, extra=dict(common))
        self.proxy = TcpProxy(master.ha_address, seed=self.cfg.seed, name="replication").start()
        self._closers.append(self.proxy.close)
        slave = BrokerSpec(BROKER, 1, "SLAVE", flush, ha_master=self.proxy.address, extra=common)
        self.nodes["master"] = self.cluster.add_broker(master)
        self.nodes["slave"] = self.cluster.add_broker(slave)
        self.cluster.start_broker(master.label)
        self.cluster.wait_registered(master.label)
        self.cluster.start_broker(slave.label)
        self.cluster.wait_registered(slave.label)
        self.cluster.create_topic(master.label, TOPIC, self.cfg.queues)

    # -- who is who --------------------------------------------------------------------------

    def node_at(self, address: str | None) -> Node | None:
        for label, spec in self.cluster.specs.items():
            if spec.address == address:
                return self.cluster.brokers[label]
        return None

    def current_master(self) -> Node:
        node = self.node_at(self.cluster.master_address(BROKER))
        if node is None:
            raise RuntimeError("the name server lists no master for broker-a")
        return node

    def addresses(self) -> list[str]:
        return [spec.address for spec in self.cluster.specs.values()]

    def wait_caught_up(
        self, timeout: float = 30.0, *, producers_running: bool = True
    ) -> dict[str, dict[int, int]]:
        """Wait until every live node holds as many messages per queue as the master;
        returns {address: {queue: max offset}} as last seen.

        The master is read first, then the others. While producers run (before the faults),
        a node has caught up once it holds what the master held when asked (it may hold more
        by the time it is read); with the producers stopped (``catch_up``) every node must
        hold exactly the master's. Requiring equality under load asks for no send to land
        between the reads, one fresh connection each: at 2 x 200 sends/s that failed for 30 s
        (R10 seed 6, R15 seed 4, session 11 soak) with the slave in sync throughout."""
        seen: dict[str, dict[int, int]] = {}

        def caught_up() -> bool:
            seen.clear()
            master = self.cluster.master_address(BROKER)
            if master is None:
                return False
            for addr in [master, *(a for a in self.addresses() if a != master)]:
                node = self.node_at(addr)
                if node is None or not node.alive:
                    continue
                seen[addr] = {
                    q: admin.max_offset(addr, TOPIC, q, timeout=2.0) for q in range(self.cfg.queues)
                }
            if master not in seen:
                return False
            want = seen[master]
            if producers_running:
                return all(all(s[q] >= n for q, n in want.items()) for s in seen.values())
            return all(s == want for s in seen.values())

        try:
            admin.wait_until(caught_up, timeout, "every replica caught up with the master", 0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; max offsets last read, master first: {seen}") from None
        return seen

    def catch_up(self, verdict: C.Verdict) -> None:
        """Before stopping: every live node must reach the master's max offset per queue."""
        self.final_master = self.cluster.master_address(BROKER)
        try:
            self.wait_caught_up(producers_running=False)
        except TimeoutError as exc:
            verdict.require("replicas caught up with the master", False, exc)

    def compare_stores(self, verdict: C.Verdict) -> None:
        """After stopping: read each node's store from disk (``read_store``) and compare it
        with the final master's, offset by offset: lost-on-node = ∅, no gap, no duplicate."""
        logs: dict[str, dict[str, dict[str, str]]] = {}
        # One reader process per node, all at once (each reads its own stopped store).
        procs = {
            label: subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.chaos.read_store",
                    str(self.cfg.workdir / f"{label.replace('/', '-')}.properties"),
                    TOPIC,
                    str(self.cfg.queues),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for label in self.cluster.specs
        }
        done: dict[str, tuple[int | None, str, str]] = {}
        for label, proc in procs.items():
            try:
                stdout, stderr = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            done[label] = (proc.returncode, stdout, stderr)
        for label, spec in self.cluster.specs.items():
            code, stdout, stderr = done[label]
            if code != 0:
                verdict.require(f"the store of {label} reads", False, stderr[-1500:])
                return
            logs[spec.address] = json.loads(stdout)
        master = getattr(self, "final_master", None)
        if master not in logs:
            verdict.require("a master at the end", False, master)
            return
        diverged: dict[str, Any] = {}
        for addr, per_queue in logs.items():
            for q, log in per_queue.items():
                want = logs[master].get(q, {})
                if log != want:
                    diff = sorted(int(o) for o in set(log) | set(want) if log.get(o) != want.get(o))
                    diverged[f"{addr} q{q}"] = {
                        "offsets": diff[:10],
                        "node": [log.get(str(o)) for o in diff[:5]],
                        "master": [want.get(str(o)) for o in diff[:5]],
                    }
                values = list(log.values())
                if len(values) != len(set(values)):
                    diverged[f"{addr} q{q} duplicate values"] = len(values) - len(set(values))
                offsets = sorted(int(o) for o in log)
                if offsets != list(range(len(offsets))):
                    diverged[f"{addr} q{q} gap"] = sorted(
                        set(range(offsets[-1] + 1)) - set(offsets)
                    )[:20]
        verdict.require(
            "lost-on-node = ∅ (every replica's log equals the master's)", not diverged, diverged
        )
        self.facts["replicas_checked"] = len(logs)
        self.facts["stored_per_node"] = {
            a: sum(len(v) for v in per_q.values()) for a, per_q in logs.items()
        }


class KillMaster:
    """kill -9 whichever node is master now; heal waits (bounded) until the name server lists
    another master, then restarts the killed node (it rejoins as a slave)."""

    kind = "kill-master"

    def __init__(self, run: HaRun) -> None:
        self.run = run
        self.target = "master"
        self.killed: Node | None = None
        self.old: str | None = None

    def inject(self) -> dict[str, Any]:
        node = self.run.current_master()
        self.old = self.run.cluster.master_address(BROKER)
        self.killed = node
        node.kill()
        self.target = node.name
        return {"node": node.name, "address": self.old}

    def heal(self) -> dict[str, Any]:
        assert self.killed is not None
        start = time.monotonic()
        failover: float | None
        try:
            admin.wait_until(
                lambda: self.run.cluster.master_address(BROKER) not in (None, self.old),
                RTO_BOUND,
                "a new master",
            )
            failover = round(time.monotonic() - start, 3)
        except TimeoutError:
            failover = None
        new = self.run.cluster.master_address(BROKER)
        self.killed.start()
        return {"node": self.killed.name, "new_master": new, "failover_wait": failover}


class PauseMaster:
    """SIGSTOP the master for the window (longer than lease + election), then SIGCONT."""

    kind = "pause-master"

    def __init__(self, run: HaRun) -> None:
        self.run = run
        self.target = "master"
        self.pause: Pause | None = None

    def inject(self) -> dict[str, Any]:
        node = self.run.current_master()
        self.pause = Pause(node)
        self.target = node.name
        facts = self.pause.inject()
        facts["address"] = self.run.cluster.master_address(BROKER)
        return facts

    def heal(self) -> dict[str, Any]:
        assert self.pause is not None
        facts = self.pause.heal()
        facts["master_now"] = self.run.cluster.master_address(BROKER)
        return facts


def _ha_common(run: HaRun, report: C.Report, verdict: C.Verdict, ends: dict[str, int]) -> None:
    _common_criteria(run, report, verdict, ends=ends)
    run.facts["acks_by_broker"] = _acks_by_broker(run)


def _acks_by_broker(run: HaRun) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in run.history.snapshot():
        if e.f == "send" and e.type == "ok":
            out[e.broker or "?"] = out.get(e.broker or "?", 0) + 1
    return out


def _resumed(run: HaRun) -> list[float | None]:
    """Per fault: seconds until a send invoked after it was stored (ok, or stored without
    the slave: a SYNC_MASTER whose only slave is the failed node answers SLAVE_NOT_AVAILABLE
    until that node rejoins). ``rto_ok_s`` in the facts is the time to the next PUT_OK."""
    entries = run.history.snapshot()
    run.facts["rto_ok_s"] = [r.rto for r in C.recovery(entries)]
    return [r.rto for r in C.recovery(entries, stored=True)]


def _failover_facts(run: HaRun, report: C.Report, verdict: C.Verdict) -> None:
    rto = _resumed(run)
    run.facts["rto_s"] = rto
    waits = [
        (e.data or {}).get("failover_wait")
        for e in run.history.snapshot()
        if e.type == "event" and e.f == "heal"
    ]
    run.facts["failover_wait_s"] = waits
    verdict.require("every fault was followed by a failover", None not in waits, waits)
    verdict.require(
        f"writes resumed within {RTO_BOUND}s of each fault",
        all(r is not None and r <= RTO_BOUND for r in rto),
        rto,
    )


def _failover_scenario(
    name: str,
    cfg: RunConfig,
    role: str,
    faults_of: Any,
    window: tuple[float, float],
    *,
    broker_extra: dict[str, str] | None = None,
    setup: Any = None,
    interval: tuple[float, float] = (1.0, 2.0),
) -> tuple[HaRun, C.Report, dict[str, int], C.Verdict]:
    """Set up with the controller (``broker_extra``: more broker keys; ``setup(run)``: more
    nodes), run the faults (``interval``: the quiet time before each), heal, drain, verify,
    compare replicas."""
    require(failover=True)
    run = HaRun(name, cfg)
    verdict = C.Verdict()
    try:
        run.ha_cluster(role, controller=True, extra=broker_extra)
        if setup is not None:
            setup(run)
        run.start_consumers(["push", "pull"])
        run.start_producers()
        run.wait_for_acks()
        run.wait_caught_up()
        run.nemesis(faults_of(run), Timing(interval=interval, window=window))
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
        run.catch_up(verdict)
    finally:
        run.close()
    run.compare_stores(verdict)
    return run, _check(run), ends, verdict


SYNC_FLUSH = {"flushDiskType": "SYNC_FLUSH"}
"""The -syncflush variants (soak only): every node fsyncs before it acknowledges (RELIABILITY.md
§5's SYNC_FLUSH rows, "the master dies, the slave is promoted")."""


def r9(cfg: RunConfig) -> Result:
    return _r9("R9", cfg)


def r9_sync_flush(cfg: RunConfig) -> Result:
    return _r9("R9-syncflush", cfg, SYNC_FLUSH)


def _r9(name: str, cfg: RunConfig, extra: dict[str, str] | None = None) -> Result:
    run, report, ends, verdict = _failover_scenario(
        name, cfg, "SYNC_MASTER", lambda r: [KillMaster(r)], (0.5, 1.0), broker_extra=extra
    )
    verdict.require("at least one master kill", run.facts.get("faults", 0) >= 1, run.facts)
    _ha_common(run, report, verdict, ends)
    _failover_facts(run, report, verdict)
    return run.result(verdict, report)


def r10(cfg: RunConfig) -> Result:
    return _r10("R10", cfg)


def r10_sync_flush(cfg: RunConfig) -> Result:
    return _r10("R10-syncflush", cfg, SYNC_FLUSH)


def _r10(name: str, cfg: RunConfig, extra: dict[str, str] | None = None) -> Result:
    run, report, _ends, verdict = _failover_scenario(
        name, cfg, "ASYNC_MASTER", lambda r: [KillMaster(r)], (0.5, 1.0), broker_extra=extra
    )
    entries = run.history.snapshot()
    stored = C.total_queue(entries, [VERIFY])
    kills = [e.mono for e in entries if e.type == "event" and e.f == "fault"]
    # lost acked values only from the replication lag window before a kill: per writer, each
    # lost value is after the last value of that writer read among those acked before the
    # first kill after its ack (judged at that kill only: at later ones the writer's values
    # the new master acked and that were read would make it "middle"; R10 seed 6, session 11)
    bad = C.lost_outside_postfix(entries, [VERIFY], kills)
    verdict.require("lost only as lost-postfix before a kill", not bad, bad)
    everyone = report.total
    verdict.require("unexpected = ∅", not everyone.unexpected, everyone.unexpected)
    verdict.require("aborted-read = ∅", not everyone.aborted_read, everyone.aborted_read)
    # the new master reuses the lost tail's offsets: only reads must agree with each other
    # and with the acks of values that survived
    inconsistent = C.inconsistent_offsets(entries, ignore_values=stored.lost)
    verdict.require("inconsistent-offsets = ∅ (lost tail excepted)", not inconsistent, inconsistent)
    gaps = C.group_gaps(entries, VERIFY, from_zero=True)
    verdict.require("offsets contiguous from 0 in every queue", not gaps, gaps)
    verdict.require("at least one master kill", run.facts.get("faults", 0) >= 1, run.facts)
    run.facts["lost_postfix"] = len(stored.lost)
    run.facts["lost_per_writer"] = {
        w: len([v for v in stored.lost if split_value(v)[0] == w])
        for w in {split_value(v)[0] for v in stored.lost}
    }
    run.facts["acks_by_broker"] = _acks_by_broker(run)
    _failover_facts(run, report, verdict)
    return run.result(verdict, report)


def r11(cfg: RunConfig) -> Result:
    run, report, ends, verdict = _failover_scenario(
        "R11", cfg, "SYNC_MASTER", lambda r: [PauseMaster(r)], (7.0, 8.0)
    )
    verdict.require("at least one master pause", run.facts.get("faults", 0) >= 1, run.facts)
    _ha_common(run, report, verdict, ends)
    entries = run.history.snapshot()
    # the paused master must not answer SEND_OK once resumed and fenced: every ok it gave
    # after the resume must have survived (zero loss covers it); count them for the report
    resumes = [e for e in entries if e.type == "event" and e.f == "heal"]
    zombie_oks = 0
    for heal in resumes:
        data = heal.data or {}
        faults = [f for f in entries if f.type == "event" and f.f == "fault"]
        fault = max(
            (f for f in faults if f.index < heal.index), key=lambda f: f.index, default=None
        )
        old = (fault.data or {}).get("address") if fault is not None else None
        if data.get("master_now") not in (None, old):
            zombie_oks += sum(
                1
                for e in entries
                if e.f == "send"
                and e.type == "ok"
                and e.broker == old
                and e.mono > heal.mono
                and _invoked_before(entries, e.op, heal.mono + 1.0)
            )
    run.facts["zombie_oks_right_after_resume"] = zombie_oks
    elected = [(e.data or {}).get("master_now") for e in resumes]
    olds = [(f.data or {}).get("address") for f in entries if f.type == "event" and f.f == "fault"]
    verdict.require(
        "a new master was elected during each pause",
        all(new not in (None, old) for new, old in zip(elected, olds, strict=False)),
        list(zip(olds, elected, strict=False)),
    )
    rto = _resumed(run)
    run.facts["rto_s"] = rto
    verdict.require(
        f"writes resumed within {RTO_BOUND}s of each pause",
        all(r is not None and r <= RTO_BOUND for r in rto),
        rto,
    )
    verdict.require(
        "the resumed old master acked nothing right after it woke", zombie_oks == 0, zombie_oks
    )
    return run.result(verdict, report)


def _invoked_before(entries: list[Any], op: int, t: float) -> bool:
    return any(e.op == op and e.type == "invoke" and e.mono < t for e in entries)


def classic_scenario(
    name: str,
    cfg: RunConfig,
    role: str,
    faults_of: Callable[[HaRun], list[Fault]],
    timing: Timing,
    *,
    consumers: tuple[str, ...] = ("push", "pull"),
) -> tuple[HaRun, dict[str, int], C.Verdict]:
    """A classic (no controller) master + slave run: set up with ``role`` on the master, load,
    the faults, heal, drain, verify, catch up and compare the replicas' logs."""
    require(failover=False)
    run = HaRun(name, cfg)
    verdict = C.Verdict()
    try:
        run.ha_cluster(role, controller=False)
        run.start_consumers(list(consumers))
        run.start_producers()
        run.wait_for_acks()
        run.wait_caught_up()
        run.nemesis(faults_of(run), timing)
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
        run.catch_up(verdict)
    finally:
        run.close()
    run.compare_stores(verdict)
    return run, ends, verdict


def r12(cfg: RunConfig) -> Result:
    cfg.send_timeout = max(cfg.send_timeout, SLAVE_TIMEOUT_MS / 1000 + 2.0)

    def partitions(r: HaRun) -> list[Fault]:
        assert r.proxy is not None
        return [Partition(r.proxy, "blackhole"), Partition(r.proxy, "reset")]

    timing = Timing(interval=(1.0, 2.0), window=(3.5, 5.0))
    run, ends, verdict = classic_scenario("R12", cfg, "SYNC_MASTER", partitions, timing)
    bound = SLAVE_TIMEOUT_MS / 1000 + 1.5
    report = C.check(run.history.snapshot(), gap_groups=[GROUP, VERIFY], latency_bound=bound)
    _ha_common(run, report, verdict, ends)
    entries = run.history.snapshot()
    windows = fault_windows(entries)
    invoked = {e.op: e.mono for e in entries if e.f == "send" and e.type == "invoke"}
    # nothing appended after the cut can be replicated before the heal: an ack completing
    # inside a partition for a send invoked inside it is a PUT_OK without the slave
    acked_in_partition = [
        e.value
        for e in entries
        if e.f == "send"
        and e.type == "ok"
        and any(a <= invoked.get(e.op, 0) and e.mono <= b for a, b in windows)
    ]
    verdict.require(
        "no send invoked during a partition was acked before the heal",
        not acked_in_partition,
        acked_in_partition,
    )
    # a slave can hold a record appended during a partition only once it links again: a read
    # during a partition of such a record is early unless a slave joined in between (R12 seed
    # 18, session 13: replicated in the quiet time, read as the next partition began)
    master_log = L.read_dir(run.cfg.workdir / "logs", run.nodes["master"].name)
    reads = partition_reads(entries, windows, join_walls(master_log), GROUP)
    verdict.require(
        "no unreplicated record was read during a partition", not reads.early, reads.early
    )
    run.facts["unreplicated_reads_in_partition"] = len(reads.early)
    run.facts["partition_reads_after_rejoin"] = len(reads.after_rejoin)
    verdict.require(
        f"every send completed within {bound}s", not report.latency.slow, report.latency.slow
    )
    verdict.require("at least one partition", run.facts.get("faults", 0) >= 1, run.facts)
    statuses = {k: v for k, v in report.counts.items() if k.startswith("status:")}
    run.facts["statuses"] = statuses
    return run.result(verdict, report)


def r13(cfg: RunConfig) -> Result:

    def slave_kill(r: HaRun) -> list[Fault]:
        def registered() -> None:
            r.cluster.wait_registered("broker-a/1")

        return [KillRestart(r.nodes["slave"], after_restart=registered)]

    timing = Timing(interval=(1.0, 3.0), window=(0.3, 1.5))
    run, ends, verdict = classic_scenario(
        "R13", cfg, "SYNC_MASTER", slave_kill, timing, consumers=("push",)
    )
    report = _check(run)
    verdict.require("at least one slave kill", run.facts.get("faults", 0) >= 1, run.facts)
    _ha_common(run, report, verdict, ends)
    statuses = {k: v for k, v in report.counts.items() if k.startswith("status:")}
    run.facts["statuses"] = statuses
    return run.result(verdict, report)


HA_SCENARIOS = {
    "R9": r9,
    "R10": r10,
    "R11": r11,
    "R12": r12,
    "R13": r13,
    "R9-syncflush": r9_sync_flush,
    "R10-syncflush": r10_sync_flush,
}
