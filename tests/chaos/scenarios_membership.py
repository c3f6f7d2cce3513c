"""Replication membership scenario (RELIABILITY.md §4 B): R15, slaves added to and removed
from a group under load.

Cluster as R9 (``scenarios_ha.HaRun``): a name server with the controller, a SYNC_MASTER
``broker-a/0`` and its slave ``broker-a/1``, each its own process; two producers, a push and a
lite-pull consumer. The nemesis changes the group's membership while they run:

- ``AddSlave``: a new process, a new brokerId of broker-a, an empty store, its
  ``haMasterAddress`` the current master's HA port (in controller mode the controller names the
  master anyway). It must catch up under load and join the master's in-sync set (docs/
  ha-design.md: only once it holds ``HAState.visible``); the heal waits for that (bounded).
- ``RemoveSlave``: a slave leaves for good, by SIGTERM (``remove-slave-stop``) or SIGKILL
  (``remove-slave-kill``); it is never one whose leaving would leave no live in-sync slave.
- ``KillMaster`` (R9's): kill -9 the master; an election among the changed membership; the old
  master restarts and rejoins as a slave.

The schedule always begins add -> remove the original slave -> add -> remove one of the two
added slaves -> kill the master: both removal variants (in a seeded order), each added slave
catching up under load, and an election that must pick an added slave, which must hold every
PUT_OK. While the fault phase lasts, more seeded steps follow (add / remove / kill the master).

Before the workload the master's log gets ``FILL_MB`` of incompressible records on another
topic (``ChaosFill``), so an added slave has a real backlog to copy while producers run.

Criteria: R9's (zero acked loss, unexpected = aborted-read = ∅, inconsistent-offsets = ∅,
offsets contiguous, a failover after every master kill, writes resumed), every added slave
joined the in-sync set, an added slave was never elected before it joined, and lost-on-node =
∅ over every node alive at the end (added ones included): each node's commit log is
byte-identical to the final master's, and its queues, read from its store, equal the master's.
Facts: each added slave's time to link and to join, the elections, the removals.

``R15-replace``: the other way to add a slave — a dead slave's machine replaced, same brokerId,
empty store — with the master killed -9 the moment it lists the replacement in sync (the
replacement must be electable only once it holds every PUT_OK). It found (docs/chaos.md
findings) that the master's HAService kept the previous link's acked offset for that node id
(``_joined``: ``max(offset, old.acked)``), so the replacement counted as in sync at once, the
controller elected it holding a fraction of the log and acknowledged records were lost; fixed:
a new link starts at its HELLO.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from actors.client import Message, Producer
from runtime.remoting.bodies import KVTable, decode_body
from runtime.remoting.codes import RequestCode
from tests.chaos import admin, transport
from tests.chaos import checker as C
from tests.chaos import membership_logs as L
from tests.chaos.cluster import BrokerSpec, Node
from tests.chaos.nemesis import Fault, Schedule, Timing
from tests.chaos.scenarios import TOPIC, Result, RunConfig, _check
from tests.chaos.scenarios_ha import BROKER, RTO_BOUND, HaRun, KillMaster, _ha_common, require
from tests.harness import REPO

JOIN_BOUND = 20.0  # seconds an added slave may take to join the in-sync set
LEAVE_BOUND = 10.0  # seconds until the master drops a removed slave from its in-sync set
SETTLE_BOUND = 15.0  # seconds to wait for a live in-sync slave before a step that needs one
QUIET = (0.3, 0.8)  # seconds between steps
MAX_SLAVES = 2  # live slaves at most (an add needs fewer)
FILL_TOPIC = "ChaosFill"
FILL_MB = 8  # R15: backlog an added slave copies under load
REPLACE_FILL_MB = 48  # R15-replace: long enough to copy that the kill lands mid-copy


class MembershipRun(HaRun):
    """An R9 cluster whose membership the nemesis changes (see the module docstring)."""

    def __init__(self, name: str, cfg: RunConfig) -> None:
        if cfg.log_level.upper() not in ("TRACE", "DEBUG", "INFO"):
            cfg.log_level = "INFO"  # the in-sync set is read from the brokers' INFO lines
        super().__init__(name, cfg)
        self.added: dict[str, float] = {}  # label -> wall time its process was started
        self.removed: dict[str, str] = {}  # label -> "stop" / "kill"
        self.live_at_end: set[str] = set()

    # -- who is who --------------------------------------------------------------------------

    def broker_id(self, node: Node) -> int:
        for label, n in self.cluster.brokers.items():
            if n is node:
                return self.cluster.specs[label].broker_id
        raise KeyError(node.name)

    def live(self) -> dict[int, Node]:
        """{node id: node} of the broker processes running now."""
        return {
            self.cluster.specs[label].broker_id: node
            for label, node in self.cluster.brokers.items()
            if node.alive
        }

    def live_slaves(self) -> dict[int, Node]:
        master = self.cluster.master_address(BROKER)
        return {
            i: node
            for i, node in self.live().items()
            if self.cluster.specs[f"{BROKER}/{i}"].address != master
        }

    def in_sync(self, master: Node | None = None) -> frozenset[int]:
        """The in-sync set of ``master`` (default: the current master), from its log (empty
        when unknown)."""
        node = master or self.node_at(self.cluster.master_address(BROKER))
        if node is None or node.proc is None:
            return frozenset()
        return L.current_in_sync(node.proc.stderr) or frozenset()

    def live_in_sync(self) -> frozenset[int]:
        return self.in_sync() & frozenset(self.live_slaves())

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
    ) -> float | None:
        """Seconds until ``predicate()`` held, or None when ``timeout`` passed first."""
        start = time.monotonic()
        try:
            admin.wait_until(predicate, timeout, what, interval=interval)
        except TimeoutError:
            return None
        return round(time.monotonic() - start, 3)

    def new_broker_id(self) -> int:
        """An id no node was configured with and the name server does not list; one apart from
        them, since the controller registers a rejoining old master as the highest id + 1."""
        ids = {spec.broker_id for spec in self.cluster.specs.values()}
        with contextlib.suppress(admin.AdminError):
            ids |= set(admin.broker_addresses(self.cluster.namesrv, BROKER))
        return max(ids) + 2

    def fill(self, megabytes: int) -> None:
        """Before the workload: ``megabytes`` of incompressible 256 KiB records on
        ``FILL_TOPIC`` (acknowledged, so replicated to the in-sync slave), a backlog for any
        slave added later."""
        master = self.broker_label(self.current_master())
        self.cluster.create_topic(master, FILL_TOPIC, 1)
        producer = Producer(
            "chaos-fill",
            namesrv=self.cluster.namesrv,
            tls=transport.client_tls(),
            retries=2,
            send_timeout=10.0,
            instance_name=f"chaos-fill-{os.getpid()}",
        )
        producer.start()
        body = random.Random(self.cfg.seed).randbytes(256 * 1024)
        start = time.monotonic()
        try:
            for _ in range(megabytes * 4):
                producer.send(Message(FILL_TOPIC, body), timeout=10.0)
        finally:
            producer.shutdown()
        self.facts["fill_mb"] = megabytes
        self.facts["fill_s"] = round(time.monotonic() - start, 3)

    def broker_label(self, node: Node) -> str:
        return f"{BROKER}/{self.broker_id(node)}"

    # -- the end -----------------------------------------------------------------------------

    def catch_up_logs(self, verdict: C.Verdict) -> None:
        """Before stopping: every live node holds the master's whole commit log (its
        ``commitLogMaxOffset``), and the queues (``HaRun.catch_up``)."""
        self.catch_up(verdict)
        self.live_at_end = {label for label, node in self.cluster.brokers.items() if node.alive}
        seen: dict[str, int] = {}

        def same_end() -> bool:
            for label in self.live_at_end:
                seen[label] = commit_log_max(self.cluster.specs[label].address)
            return len(set(seen.values())) == 1

        waited = self.wait_for(same_end, 30.0, "every node at the master's commit-log end")
        verdict.require(
            "every live node holds the master's whole commit log", waited is not None, seen
        )
        self.facts["commit_log_end"] = max(seen.values(), default=0)

    def compare_members(self, verdict: C.Verdict) -> None:
        """After stopping: lost-on-node over the nodes alive at the end — each one's commit log
        byte-identical to the final master's, and each one's queues (read from its store) equal
        to the master's, no gap, no duplicate. A removed slave's log is only reported: a prefix
        of the master's, or where it diverges (records never acknowledged)."""
        master = next(
            (
                label
                for label in self.live_at_end
                if self.cluster.specs[label].address == getattr(self, "final_master", None)
            ),
            None,
        )
        if master is None:
            verdict.require("a master at the end", False, getattr(self, "final_master", None))
            return
        want = commit_log_files(self, master)
        compared = {
            label: compare_logs(commit_log_files(self, label), want) for label in self.cluster.specs
        }
        differ = {
            label: c
            for label in sorted(self.live_at_end)
            if (c := compared[label])["first_diff"] is not None or c["bytes"] != c["master"]
        }
        verdict.require(
            "every live node's commit log is byte-identical to the master's", not differ, differ
        )
        self.facts["log_sha256"] = compared[master]["sha"][:16]
        removed_logs = {}
        for label in self.removed:
            c = compared[label]
            prefix = c["first_diff"] is None and c["bytes"] <= c["master"]
            removed_logs[label] = (
                f"prefix ({c['bytes']} of {c['master']} bytes)"
                if prefix
                else f"diverges at byte {c['first_diff']} ({c['bytes']} bytes)"
            )
        self.facts["removed_logs"] = removed_logs
        queues = read_stores(self, sorted(self.live_at_end))
        diverged: dict[str, Any] = {}
        for label, per_queue in queues.items():
            if isinstance(per_queue, str):
                diverged[label] = per_queue
                continue
            for q, log in per_queue.items():
                master_q = queues[master].get(q, {}) if isinstance(queues[master], dict) else {}
                if log != master_q:
                    diff = sorted(
                        int(o) for o in set(log) | set(master_q) if log.get(o) != master_q.get(o)
                    )
                    diverged[f"{label} q{q}"] = {"offsets": diff[:10]}
                values = list(log.values())
                if len(values) != len(set(values)):
                    diverged[f"{label} q{q} duplicate values"] = len(values) - len(set(values))
                offsets = sorted(int(o) for o in log)
                if offsets != list(range(len(offsets))):
                    diverged[f"{label} q{q} gap"] = sorted(
                        set(range(offsets[-1] + 1)) - set(offsets)
                    )[:20]
        verdict.require(
            "lost-on-node = ∅ (every live node's queues equal the master's)", not diverged, diverged
        )
        self.facts["replicas_checked"] = len(queues)
        self.facts["stored_per_node"] = {
            label: sum(len(v) for v in per_q.values())
            for label, per_q in queues.items()
            if isinstance(per_q, dict)
        }


def commit_log_max(address: str) -> int:
    cmd = admin.call(address, RequestCode.GET_BROKER_RUNTIME_INFO, timeout=2.0)
    return int(decode_body(KVTable, cmd.body).table["commitLogMaxOffset"])


def commit_log_files(run: MembershipRun, label: str) -> list[pathlib.Path]:
    """A stopped node's commit-log segment files, in offset order."""
    root = run.cfg.workdir / "store" / label.replace("/", "-") / "commitlog"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.isdigit())


class _LogReader:
    """The bytes of a commit log's segment files, in order, read in chunks."""

    def __init__(self, files: list[pathlib.Path]) -> None:
        self.files = list(files)
        self.length = sum(f.stat().st_size for f in files)
        self._handle: Any = None

    def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            if self._handle is None:
                if not self.files:
                    break
                self._handle = self.files.pop(0).open("rb")
            chunk = self._handle.read(n - len(out))
            if not chunk:
                self._handle.close()
                self._handle = None
                continue
            out += chunk
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def compare_logs(node: list[pathlib.Path], master: list[pathlib.Path]) -> dict[str, Any]:
    """Byte comparison of two commit logs: their lengths, the first byte where their common
    prefix differs (None: one is a prefix of the other), and the master's sha256 (prefix)."""
    a, b = _LogReader(node), _LogReader(master)
    digest = hashlib.sha256()
    first: int | None = None
    pos = 0
    try:
        while True:
            x, y = a.read(1 << 20), b.read(1 << 20)
            digest.update(y)
            if first is None and x[: len(y)] != y[: len(x)]:
                first = pos + next(i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q)
            if not y:
                break
            pos += len(y)
    finally:
        a.close()
        b.close()
    return {"bytes": a.length, "master": b.length, "first_diff": first, "sha": digest.hexdigest()}


def read_stores(
    run: MembershipRun, labels: list[str]
) -> dict[str, dict[str, dict[str, str]] | str]:
    """Each stopped node's queues read from its store (``read_store``, one process each, in
    parallel): {label: {queue: {offset: value}}}, or the error text."""
    procs = {
        label: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.chaos.read_store",
                str(run.cfg.workdir / f"{label.replace('/', '-')}.properties"),
                TOPIC,
                str(run.cfg.queues),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for label in labels
    }
    out: dict[str, dict[str, dict[str, str]] | str] = {}
    for label, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        out[label] = (
            json.loads(stdout) if proc.returncode == 0 else f"read_store failed: {stderr[-1500:]}"
        )
    return out


# -- faults ------------------------------------------------------------------------------------


class AddSlave:
    """Start a slave of broker-a with a new brokerId and an empty store; heal waits (bounded)
    until the master lists it in sync."""

    kind = "add-slave"

    def __init__(self, run: MembershipRun) -> None:
        self.run = run
        self.target = "new-slave"
        self.node_id = -1

    def inject(self) -> dict[str, Any]:
        run = self.run
        self.node_id = run.new_broker_id()
        master = run.cluster.specs[run.broker_label(run.current_master())]
        first = run.cluster.specs[f"{BROKER}/1"]
        spec = BrokerSpec(
            BROKER,
            self.node_id,
            "SLAVE",
            first.flush,
            ha_master=master.ha_address,
            extra=dict(first.extra),
        )
        node = run.cluster.add_broker(spec)
        self.target = node.name
        started = time.time()
        run.added[spec.label] = started
        node.start()
        return {
            "node": node.name,
            "broker_id": self.node_id,
            "address": spec.address,
            "started_wall": started,
            "ready_after": round(time.time() - started, 3),
        }

    def heal(self) -> dict[str, Any]:
        joined = self.run.wait_for(
            lambda: self.node_id in self.run.in_sync(), JOIN_BOUND, f"slave {self.node_id} in sync"
        )
        return {"node": self.target, "joined_wait": joined, "in_sync": sorted(self.run.in_sync())}


class RemoveSlave:
    """A slave leaves the group for good: SIGTERM (``stop``) or SIGKILL (``kill``)."""

    def __init__(self, run: MembershipRun, node_id: int, how: str) -> None:
        self.run = run
        self.node_id = node_id
        self.how = how
        self.kind = f"remove-slave-{how}"
        self.label = f"{BROKER}/{node_id}"
        self.target = run.cluster.brokers[self.label].name

    def inject(self) -> dict[str, Any]:
        node = self.run.cluster.brokers[self.label]
        pid = node.pid
        in_sync = sorted(self.run.in_sync())
        code = node.stop() if self.how == "stop" else node.kill()
        self.run.removed[self.label] = self.how
        return {
            "node": node.name,
            "broker_id": self.node_id,
            "pid": pid,
            "exit": code,
            "in_sync": in_sync,
        }

    def heal(self) -> dict[str, Any]:
        left = self.run.wait_for(
            lambda: self.node_id not in self.run.in_sync(), LEAVE_BOUND, f"slave {self.node_id} out"
        )
        return {"node": self.target, "left_wait": left, "in_sync": sorted(self.run.in_sync())}


class ReplaceSlave:
    """A slave's machine dies (kill -9) and a new one takes its place: same brokerId and
    address, empty store. Heal waits (bounded, polling the master's log every 10 ms) until the
    master lists the replacement in sync, and notes how much of the log each held then."""

    kind = "replace-slave"

    def __init__(self, run: MembershipRun, node_id: int) -> None:
        self.run = run
        self.node_id = node_id
        self.label = f"{BROKER}/{node_id}"
        self.target = run.cluster.brokers[self.label].name
        self.master: Node | None = None

    def inject(self) -> dict[str, Any]:
        run, node = self.run, self.run.cluster.brokers[self.label]
        self.master = run.current_master()
        pid = node.pid
        node.kill()
        left = run.wait_for(
            lambda: self.node_id not in run.in_sync(self.master), LEAVE_BOUND, "slave out"
        )
        shutil.rmtree(run.cfg.workdir / "store" / self.label.replace("/", "-"))
        started = time.time()
        run.added[self.label] = started
        node.start()
        return {"node": node.name, "pid": pid, "left_wait": left, "started_wall": started}

    def heal(self) -> dict[str, Any]:
        run = self.run
        joined = run.wait_for(
            lambda: self.node_id in run.in_sync(self.master),
            JOIN_BOUND,
            f"slave {self.node_id} in sync",
            interval=0.01,
        )
        facts: dict[str, Any] = {"node": self.target, "joined_wait": joined}
        with contextlib.suppress(admin.AdminError):
            facts["replacement_log_end"] = commit_log_max(run.cluster.specs[self.label].address)
            master = run.cluster.specs[run.broker_label(self.master)] if self.master else None
            if master is not None:
                facts["master_log_end"] = commit_log_max(master.address)
        return facts


# -- the schedule ------------------------------------------------------------------------------


def removable(run: MembershipRun) -> list[int]:
    """Live slaves whose leaving keeps another live slave in the master's in-sync set."""
    in_sync = run.live_in_sync()
    return sorted(i for i in run.live_slaves() if in_sync - {i})


def membership_nemesis(run: MembershipRun) -> None:
    """Add a slave, remove the original one, add another, remove one of the two added (the
    removals: stop and kill, in a seeded order), kill the master; then, while the fault phase
    lasts, seeded steps among those possible now."""
    cfg = run.cfg
    rng = random.Random(cfg.seed)
    quiet_timer = threading.Event()  # never set: the pauses between steps
    schedule = Schedule(run.history, [KillMaster(run)], cfg.seed, Timing())
    end = time.monotonic() + cfg.seconds
    hows = ["stop", "kill"]
    rng.shuffle(hows)
    kills_after_change = 0
    changes = 0
    run.history.event("nemesis-start", seed=cfg.seed, duration=cfg.seconds)

    def settle() -> bool:
        """Wait (bounded) until a live slave is in the master's in-sync set."""
        return (
            run.wait_for(lambda: bool(run.live_in_sync()), SETTLE_BOUND, "a live in-sync slave")
            is not None
        )

    def step(kind: str) -> None:
        nonlocal kills_after_change, changes
        fault: Fault
        if kind == "add":
            fault, window = AddSlave(run), rng.uniform(0.1, 0.3)
            changes += 1
        elif kind.startswith("remove"):
            victims = removable(run)
            if f"{BROKER}/1" in run.cluster.brokers and 1 in victims and not run.removed:
                victim = 1  # the first removal takes the original slave
            else:
                victim = rng.choice(victims)
            how = hows.pop(0) if hows else rng.choice(["stop", "kill"])
            fault, window = RemoveSlave(run, victim, how), rng.uniform(0.1, 0.3)
            changes += 1
        else:
            fault, window = KillMaster(run), rng.uniform(0.5, 1.0)
            kills_after_change += 1 if changes else 0
        schedule.apply(fault, window)

    plan = ["add", "remove", "add", "remove", "kill-master"]
    for kind in plan:
        quiet_timer.wait(rng.uniform(*QUIET))
        if kind != "add" and not settle():
            run.history.event("step-skipped", step=kind, in_sync=sorted(run.in_sync()))
            continue
        if kind == "remove" and not removable(run):
            run.history.event("step-skipped", step=kind, in_sync=sorted(run.in_sync()))
            continue
        step(kind)
    while True:
        quiet = rng.uniform(*QUIET)
        if time.monotonic() + quiet >= end:
            break
        quiet_timer.wait(quiet)
        if not settle():
            break
        options = []
        if len(run.live_slaves()) < MAX_SLAVES:
            options.append("add")
        if removable(run):
            options.append("remove")
        options.append("kill-master")
        step(rng.choice(options))
    run.history.event("nemesis-end", seed=cfg.seed, faults=schedule.injected)
    run.facts["faults"] = schedule.injected
    run.facts["master_kills_after_a_change"] = kills_after_change


# -- the scenario ------------------------------------------------------------------------------


def r15(cfg: RunConfig) -> Result:
    """R15: slaves added to and removed from a SYNC_MASTER group under load, the master killed
    after the change. See the module docstring."""
    require(failover=True)
    run = MembershipRun("R15", cfg)
    verdict = C.Verdict()
    try:
        # Given a SYNC_MASTER and its slave (controller mode), producers and consumers under load
        run.ha_cluster("SYNC_MASTER", controller=True)
        run.fill(FILL_MB)
        run.start_consumers(["push", "pull"])
        run.start_producers()
        run.wait_for_acks()
        run.wait_caught_up()
        # When slaves join (empty stores) and leave (SIGTERM / SIGKILL) and the master is
        # killed -9 after the membership changed
        membership_nemesis(run)
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
        run.catch_up_logs(verdict)
    finally:
        run.close()
    run.compare_members(verdict)
    report = _check(run)
    # Then nothing acked is lost, no offset holds two values, every master kill was followed
    # by an election, writes resumed, and every live node's log equals the master's
    _ha_common(run, report, verdict, ends)
    _membership_criteria(run, verdict)
    return run.result(verdict, report)


def _membership_criteria(run: MembershipRun, verdict: C.Verdict) -> None:
    entries = run.history.snapshot()
    faults = [e for e in entries if e.type == "event" and e.f == "fault"]
    heals = [e for e in entries if e.type == "event" and e.f == "heal"]
    kinds = [str((e.data or {}).get("kind")) for e in faults]
    run.facts["steps"] = kinds
    verdict.require("a slave was added", "add-slave" in kinds, kinds)
    verdict.require(
        "a slave was removed by SIGTERM and one by kill -9",
        {"remove-slave-stop", "remove-slave-kill"} <= set(kinds),
        kinds,
    )
    verdict.require(
        "the master was killed after a membership change",
        run.facts.get("master_kills_after_a_change", 0) >= 1,
        kinds,
    )
    # every master kill: a new master listed within the bound, writes resumed
    waits = [
        (e.data or {}).get("failover_wait")
        for e in heals
        if (e.data or {}).get("kind") == "kill-master"
    ]
    run.facts["failover_wait_s"] = waits
    verdict.require("every master kill was followed by a failover", None not in waits, waits)
    rto = {f"{r.fault}@{r.at:.1f}": r.rto for r in C.recovery(entries, stored=True)}
    run.facts["rto_s"] = rto
    verdict.require(
        f"writes resumed within {RTO_BOUND}s of each fault",
        all(r is not None and r <= RTO_BOUND for r in rto.values()),
        rto,
    )
    # joins, from the logs: link accepted, first in a master's in-sync set, in the controller's
    logs = run.cfg.workdir / "logs"
    brokers = L.read_dir(logs, f"{BROKER}-")
    controller = L.read_dir(logs, "namesrv")
    joins: dict[str, Any] = {}
    not_joined = []
    for label, started in run.added.items():
        node_id = run.cluster.specs[label].broker_id
        j = L.join_of(brokers, node_id, started)
        isr = L.controller_isr_joins(controller, node_id, started)
        joins[label] = {
            "linked_s": None if j.linked_wall is None else round(j.linked_wall - started, 3),
            "from_offset": j.linked_from,
            "joined_s": None if j.joined_wall is None else round(j.joined_wall - started, 3),
            "controller_isr_s": None if isr is None else round(isr - started, 3),
        }
        if j.joined_wall is None:
            not_joined.append(label)
    run.facts["joins"] = joins
    verdict.require("every added slave joined the in-sync set", not not_joined, joins)
    # elections: the first one names the initial master; an added slave only after it joined
    elected = L.elections(controller)
    run.facts["elections"] = [(e.node, e.epoch) for e in elected]
    run.facts["failover_elections"] = max(0, len(elected) - 1)
    early = []
    for e in elected:
        label = f"{BROKER}/{e.node}"
        if label in run.added:
            j = L.join_of(brokers, e.node, run.added[label])
            if j.joined_wall is None or j.joined_wall > e.wall:
                early.append(
                    {"node": e.node, "epoch": e.epoch, "joined": j.joined_wall, "elected": e.wall}
                )
    run.facts["added_slaves_elected"] = sum(1 for e in elected if f"{BROKER}/{e.node}" in run.added)
    verdict.require(
        "an added slave was elected only after it joined the in-sync set", not early, early
    )
    run.facts["removed"] = dict(run.removed)


def r15_replace(cfg: RunConfig) -> Result:
    """R15-replace: a dead slave replaced by an empty one under the same brokerId, the master
    killed -9 the moment it lists the replacement in sync. See the module docstring."""
    require(failover=True)
    run = MembershipRun("R15-replace", cfg)
    verdict = C.Verdict()
    try:
        # Given a SYNC_MASTER with REPLACE_FILL_MB in its log, its slave, producers, a consumer
        run.ha_cluster("SYNC_MASTER", controller=True)
        run.fill(REPLACE_FILL_MB)
        run.start_consumers(["push"])
        run.start_producers()
        run.wait_for_acks()
        run.wait_caught_up()
        # When the slave's machine dies and a new one (same brokerId, empty store) takes its
        # place, and the master is killed -9 as soon as it counts the replacement in sync
        rng = random.Random(cfg.seed)
        schedule = Schedule(run.history, [KillMaster(run)], cfg.seed, Timing())
        run.history.event("nemesis-start", seed=cfg.seed, duration=cfg.seconds)
        threading.Event().wait(rng.uniform(*QUIET))
        schedule.apply(ReplaceSlave(run, 1), 0.0)
        schedule.apply(KillMaster(run), rng.uniform(0.5, 1.0))
        run.history.event("nemesis-end", seed=cfg.seed, faults=schedule.injected)
        run.facts["faults"] = schedule.injected
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
        run.catch_up_logs(verdict)
    finally:
        run.close()
    run.compare_members(verdict)
    report = _check(run)
    # Then the replacement was elected only holding every PUT_OK: nothing acked is lost, no
    # offset holds two values, and every live node's log equals the new master's
    # (it once was not: the master gave the new link the dead slave's acked offset, so the
    # replacement was in sync at once and elected holding a tenth of the log; fixed by
    # starting every new link at its HELLO)
    _ha_common(run, report, verdict, ends)
    heals = [e.data or {} for e in run.history.snapshot() if e.type == "event" and e.f == "heal"]
    replaced = next((h for h in heals if h.get("kind") == "replace-slave"), {})
    run.facts["replacement_at_join"] = {
        k: replaced.get(k) for k in ("joined_wait", "replacement_log_end", "master_log_end")
    }
    killed = [h for h in heals if h.get("kind") == "kill-master"]
    run.facts["failover_wait_s"] = [h.get("failover_wait") for h in killed]
    verdict.require(
        "the master kill was followed by a failover",
        bool(killed) and None not in run.facts["failover_wait_s"],
        killed,
    )
    elected = L.elections(L.read_dir(run.cfg.workdir / "logs", "namesrv"))
    run.facts["elections"] = [(e.node, e.epoch, e.offset) for e in elected]
    return run.result(verdict, report)


MEMBERSHIP_SCENARIOS: dict[str, Callable[[RunConfig], Result]] = {
    "R15": r15,
    "R15-replace": r15_replace,
}
