"""The RELIABILITY.md §4 scenarios as functions: set up processes, run the workload under a
seeded nemesis, heal, drain, read everything back, check, and judge the scenario's criteria.

``run(name, RunConfig(...)) -> Result``; ``Result.verdict`` names each failed criterion with
its evidence and ``Result.render()`` adds the checker report. The CI tests
(``test_scenarios.py``) and the soak (``python -m tests.chaos.soak``) both call ``run``.

Phases (§3.6): start the cluster and the workload, wait until every producer has an ack
(warm-up), run the nemesis for ``seconds`` (it always ends healed), wait for the first ack
after the heal (recovery), stop the producers, drain the consumer group until it has read every
acked value, then a fresh group reads every queue from offset 0 to its max offset (verify).
"""

from __future__ import annotations

import contextlib
import pathlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.client import MessageQueue
from tests.chaos import admin
from tests.chaos import checker as C
from tests.chaos.cluster import BrokerSpec, Cluster, Node
from tests.chaos.history import History, queue_key
from tests.chaos.nemesis import CrashConsumer, Fault, KillRestart, Pause, Schedule, Timing
from tests.chaos.workload import (
    ConsumerProcess,
    InProcessConsumer,
    OffsetProbe,
    ProducerThread,
    drain,
    verify_read,
)

TOPIC = "ChaosTopic"
GROUP = "chaos"
VERIFY = "chaos-verify"


@dataclass
class RunConfig:
    seed: int
    seconds: float  # fault phase
    workdir: pathlib.Path
    producers: int = 2
    rate: float = 100.0  # sends per second per producer
    queues: int = 4
    send_timeout: float = 3.0
    drain_timeout: float = 45.0
    log_level: str = "INFO"


@dataclass
class Result:
    name: str
    seed: int
    history_path: pathlib.Path
    report: C.Report
    verdict: C.Verdict
    facts: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self.facts.items())
        return (
            f"scenario {self.name} seed={self.seed} history={self.history_path}\n"
            f"facts: {facts}\n{self.report.render()}\n{self.verdict.render()}"
        )


class SkipScenario(Exception):
    """The cluster cannot run this scenario (e.g. no HA yet); the message says why."""


class Run:
    """One scenario's processes, workload and history; ``close()`` always tears down."""

    def __init__(self, name: str, cfg: RunConfig) -> None:
        self.name = name
        self.cfg = cfg
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        self.history_path = cfg.workdir / "history.jsonl"
        self.history = History(self.history_path)
        self.history.event("run", "workload", scenario=name, seed=cfg.seed, seconds=cfg.seconds)
        self.cluster = Cluster(cfg.workdir, cfg.log_level)
        self.producers: list[ProducerThread] = []
        self.consumers: list[InProcessConsumer | ConsumerProcess] = []
        self.probe: OffsetProbe | None = None
        self.facts: dict[str, Any] = {"seed": cfg.seed}
        self._closers: list[Callable[[], None]] = []

    # -- setup ---------------------------------------------------------------------------------

    def single_broker(self, role: str = "ASYNC_MASTER", flush: str = "ASYNC_FLUSH") -> Node:
        self.cluster.start_namesrv()
        spec = BrokerSpec(role=role, flush=flush)
        node = self.cluster.add_broker(spec)
        self.cluster.start_broker(spec.label)
        self.cluster.wait_registered(spec.label)
        self.cluster.create_topic(spec.label, TOPIC, self.cfg.queues)
        return node

    def queues(self, broker_name: str = "broker-a") -> list[MessageQueue]:
        return [
            MessageQueue(topic=TOPIC, broker_name=broker_name, queue_id=i)
            for i in range(self.cfg.queues)
        ]

    def master_address(self, broker_name: str) -> str | None:
        return self.cluster.master_address(broker_name)

    def start_producers(self) -> None:
        for i in range(self.cfg.producers):
            p = ProducerThread(
                self.history,
                self.cluster.namesrv,
                TOPIC,
                f"p{i}",
                rate=self.cfg.rate,
                send_timeout=self.cfg.send_timeout,
            )
            self.producers.append(p.start())

    def start_consumers(self, modes: list[str], *, subprocess: bool = False) -> None:
        made: list[InProcessConsumer | ConsumerProcess] = []
        for i, mode in enumerate(modes):
            name = f"c{i}-{mode}"
            cls = ConsumerProcess if subprocess else InProcessConsumer
            made.append(cls(self.history, self.cluster.namesrv, GROUP, TOPIC, name, mode))
        errors: list[BaseException] = []

        def start(c: InProcessConsumer | ConsumerProcess) -> None:
            try:
                c.start()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(c,)) for c in made]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.consumers.extend(made)
        if errors:
            raise errors[0]

    def start_probe(self) -> None:
        self.probe = OffsetProbe(self.history, GROUP, self.queues(), self.master_address).start()

    # -- phases --------------------------------------------------------------------------------

    def wait_for_acks(self, timeout: float = 30.0, after: float | None = None) -> float:
        """Wait until every producer has an ok send invoked after ``after``; returns the
        time it took."""
        start = time.monotonic()
        since = start if after is None else after
        names = {p.name for p in self.producers}

        def acked() -> bool:
            done = set()
            invoked_at: dict[int, float] = {}
            for e in self.history.snapshot():
                if e.f != "send":
                    continue
                if e.type == "invoke":
                    invoked_at[e.op] = e.mono
                elif e.type == "ok" and invoked_at.get(e.op, 0.0) >= since:
                    done.add(e.process)
            return names <= done

        admin.wait_until(acked, timeout, "an ack from every producer", interval=0.05)
        return time.monotonic() - start

    def nemesis(self, faults: list[Fault], timing: Timing) -> Schedule:
        schedule = Schedule(self.history, faults, self.cfg.seed, timing)
        schedule.run(self.cfg.seconds)
        self.facts["faults"] = schedule.injected
        return schedule

    def recover_and_stop_producers(self) -> None:
        healed = time.monotonic()
        self.facts["recovered_after_s"] = round(self.wait_for_acks(after=healed), 3)
        for p in self.producers:
            p.stop()
        self.history.event("producers-stopped", "workload")

    def drain_group(self) -> bool:
        ok = drain(self.history, GROUP, self.cfg.drain_timeout)
        self.facts["drained"] = ok
        return ok

    def verify(self) -> dict[str, int]:
        ends = verify_read(
            self.history, self.cluster.namesrv, self.queues(), self.master_address, group=VERIFY
        )
        self.facts["stored"] = sum(ends.values())
        return ends

    # -- teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        if self.probe is not None:
            self.probe.stop()
        for p in self.producers:
            with contextlib.suppress(Exception):
                p.close()
        for c in self.consumers:
            with contextlib.suppress(Exception):
                c.stop(30)
            if isinstance(c, ConsumerProcess):
                with contextlib.suppress(Exception):
                    c.kill()
        for fn in reversed(self._closers):
            with contextlib.suppress(Exception):
                fn()
        codes = self.cluster.stop()
        self.facts["exit_codes"] = codes
        self.history.close()

    # -- judging -------------------------------------------------------------------------------

    def result(self, verdict: C.Verdict, report: C.Report) -> Result:
        return Result(self.name, self.cfg.seed, self.history_path, report, verdict, self.facts)


def _verify_reached(run: Run, ends: dict[str, int], verdict: C.Verdict) -> None:
    entries = run.history.snapshot()
    reached: dict[str, int] = {}
    for e in entries:
        if e.type == "event" and e.f == "verify-end" and e.data:
            reached = e.data["reached"]
    short = {q: (reached.get(q, 0), end) for q, end in ends.items() if reached.get(q, 0) < end}
    verdict.require("verify read reached every queue's max offset", not short, short)


def _common_criteria(
    run: Run, report: C.Report, verdict: C.Verdict, *, ends: dict[str, int]
) -> None:
    """Zero loss against what the broker holds at the end, nothing unexpected, no definite
    failure read, one value per offset, contiguous offsets, no hung request."""
    entries = run.history.snapshot()
    stored = C.total_queue(entries, [VERIFY])
    everyone = report.total
    verdict.require("lost = ∅ (acked, not in the final log)", not stored.lost, stored.lost)
    verdict.require("unexpected = ∅", not everyone.unexpected, everyone.unexpected)
    verdict.require("aborted-read = ∅", not everyone.aborted_read, everyone.aborted_read)
    verdict.require(
        "inconsistent-offsets = ∅",
        not report.kafka.inconsistent_offsets,
        report.kafka.inconsistent_offsets,
    )
    verdict.require(
        "nonmonotonic-send = ∅", not report.kafka.nonmonotonic_send, report.kafka.nonmonotonic_send
    )
    gaps = C.group_gaps(entries, VERIFY, from_zero=True)
    verdict.require("offsets contiguous from 0 in every queue", not gaps, gaps)
    _verify_reached(run, ends, verdict)
    verdict.require("every send completed", not report.latency.incomplete, report.latency)
    run.facts["acked"] = everyone.acked
    run.facts["info"] = report.counts.get("send:info", 0)
    run.facts["fail"] = report.counts.get("send:fail", 0)
    run.facts["recovered"] = len(everyone.recovered)
    run.facts["duplicated"] = len(everyone.duplicated)


def _group_criteria(run: Run, report: C.Report, verdict: C.Verdict) -> None:
    """The consumer group read every acked value, never skipped an offset, and the broker's
    stored offsets never passed what the group had read."""
    entries = run.history.snapshot()
    group = C.total_queue(entries, [GROUP])
    verdict.require("group drained every acked value", bool(run.facts.get("drained")), group.lost)
    verdict.require("group lost = ∅", not group.lost, group.lost)
    gaps = C.group_gaps(entries, GROUP, from_zero=True)
    verdict.require("group gaps = ∅ (no committed offset passed an unread message)", not gaps, gaps)
    k = report.kafka
    verdict.require("poll-skip = ∅", not k.poll_skip, k.poll_skip)
    verdict.require("nonmonotonic-poll = ∅", not k.nonmonotonic_poll, k.nonmonotonic_poll)
    verdict.require("int-poll-skip = ∅", not k.int_poll_skip, k.int_poll_skip)
    verdict.require(
        "int-nonmonotonic-poll = ∅", not k.int_nonmonotonic_poll, k.int_nonmonotonic_poll
    )
    skips = C.committed_skips(entries, slack=0.25)
    verdict.require("committed offsets never skip", not skips, skips)
    run.facts["group_duplicates"] = sum(group.duplicated.values())
    run.facts["offset_probes"] = report.counts.get("event:offsets", 0)


def _check(run: Run) -> C.Report:
    return C.check(run.history.snapshot(), gap_groups=[GROUP, VERIFY])


# -- single node scenarios ---------------------------------------------------------------------


def r1(cfg: RunConfig) -> Result:
    """R1: kill -9 the broker during sustained sends, ASYNC_FLUSH; restart. Zero loss, offsets
    contiguous after restart."""
    run = Run("R1", cfg)
    try:
        node = run.single_broker("ASYNC_MASTER", "ASYNC_FLUSH")
        label = "broker-a/0"
        run.start_producers()
        run.wait_for_acks()
        kill = KillRestart(node, after_restart=lambda: run.cluster.wait_registered(label))
        run.nemesis([kill], Timing(interval=(2.0, 5.0), window=(0.1, 1.0)))
        run.recover_and_stop_producers()
        ends = run.verify()
    finally:
        run.close()
    report = _check(run)
    verdict = C.Verdict()
    verdict.require("at least one kill", run.facts.get("faults", 0) >= 1, run.facts)
    _common_criteria(run, report, verdict, ends=ends)
    rto = [r.rto for r in report.recovery]
    run.facts["rto_s"] = rto
    verdict.require("every kill recovered (an ack after it)", None not in rto, rto)
    return run.result(verdict, report)


def r16(cfg: RunConfig) -> Result:
    """R16: consumers (push and lite pull, subprocesses) are killed -9 and restarted during
    consumption, so the group rebalances. poll-skip = ∅, no committed offset passes an
    unprocessed message; duplicates only from uncommitted progress (counted)."""
    run = Run("R16", cfg)
    try:
        run.single_broker()
        run.start_consumers(["push", "push", "pull"], subprocess=True)
        run.start_probe()
        run.start_producers()
        run.wait_for_acks()
        faults: list[Fault] = [
            CrashConsumer(c) for c in run.consumers if isinstance(c, ConsumerProcess)
        ]
        run.nemesis(faults, Timing(interval=(1.0, 3.0), window=(0.3, 1.5)))
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
    finally:
        run.close()
    report = _check(run)
    verdict = C.Verdict()
    verdict.require("at least one consumer crash", run.facts.get("faults", 0) >= 1, run.facts)
    _common_criteria(run, report, verdict, ends=ends)
    _group_criteria(run, report, verdict)
    return run.result(verdict, report)


def r17(cfg: RunConfig) -> Result:
    """R17: kill -9 the broker during consumption. The broker's stored consumer offsets never
    pass what the group acked (they may regress: duplicates, counted)."""
    run = Run("R17", cfg)
    try:
        node = run.single_broker()
        label = "broker-a/0"
        run.start_consumers(["push", "push", "pull"])
        run.start_probe()
        run.start_producers()
        run.wait_for_acks()
        kill = KillRestart(node, after_restart=lambda: run.cluster.wait_registered(label))
        run.nemesis([kill], Timing(interval=(2.0, 4.0), window=(0.1, 1.0)))
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
    finally:
        run.close()
    report = _check(run)
    verdict = C.Verdict()
    verdict.require("at least one kill", run.facts.get("faults", 0) >= 1, run.facts)
    _common_criteria(run, report, verdict, ends=ends)
    _group_criteria(run, report, verdict)
    return run.result(verdict, report)


def r22(cfg: RunConfig) -> Result:
    """R22 at process level: the broker dies (kill -9) or freezes (SIGSTOP past the send
    timeout) with requests in flight. Every request completes ok / fail / info within the
    client timeout (+ slack); no PUT_OK lost; consumers carry on."""
    run = Run("R22", cfg)
    try:
        node = run.single_broker()
        label = "broker-a/0"
        run.start_consumers(["push"])
        run.start_producers()
        run.wait_for_acks()
        window = (cfg.send_timeout + 0.5, cfg.send_timeout + 1.5)
        faults: list[Fault] = [
            KillRestart(node, after_restart=lambda: run.cluster.wait_registered(label)),
            Pause(node),
        ]
        run.nemesis(faults, Timing(interval=(1.0, 2.5), window=window))
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
    finally:
        run.close()
    bound = cfg.send_timeout + 1.5
    report = C.check(run.history.snapshot(), gap_groups=[GROUP, VERIFY], latency_bound=bound)
    verdict = C.Verdict()
    verdict.require("at least one fault", run.facts.get("faults", 0) >= 1, run.facts)
    _common_criteria(run, report, verdict, ends=ends)
    verdict.require(
        f"every send completed within {bound}s", not report.latency.slow, report.latency.slow
    )
    infos = report.counts.get("send:info", 0) + report.counts.get("send:fail", 0)
    run.facts["max_latency_s"] = report.latency.max_seconds
    run.facts["not_ok"] = infos
    verdict.require("the group drained", bool(run.facts.get("drained")), run.facts)
    return run.result(verdict, report)


SCENARIOS: dict[str, Callable[[RunConfig], Result]] = {
    "R1": r1,
    "R16": r16,
    "R17": r17,
    "R22": r22,
}


def all_scenarios() -> dict[str, Callable[[RunConfig], Result]]:
    """The single-node scenarios here, the replication ones of ``scenarios_ha``,
    ``scenarios_membership``, ``scenarios_switchover``, ``scenarios_controller``,
    ``scenarios_double`` and ``scenarios_power``, the
    message-semantics ones of ``scenarios_semantics``, and the overload, clock and proxy
    ones."""
    from tests.chaos.scenarios_clock import CLOCK_SCENARIOS
    from tests.chaos.scenarios_controller import CONTROLLER_SCENARIOS
    from tests.chaos.scenarios_double import DOUBLE_SCENARIOS
    from tests.chaos.scenarios_ha import HA_SCENARIOS
    from tests.chaos.scenarios_membership import MEMBERSHIP_SCENARIOS
    from tests.chaos.scenarios_overload import OVERLOAD_SCENARIOS as OVERLOAD
    from tests.chaos.scenarios_power import POWER_SCENARIOS
    from tests.chaos.scenarios_proxy import PROXY_SCENARIOS
    from tests.chaos.scenarios_semantics import SEMANTIC_SCENARIOS
    from tests.chaos.scenarios_switchover import SWITCHOVER_SCENARIOS

    return {
        **SCENARIOS,
        **HA_SCENARIOS,
        **MEMBERSHIP_SCENARIOS,
        **SEMANTIC_SCENARIOS,
        **OVERLOAD,
        **CLOCK_SCENARIOS,
        **PROXY_SCENARIOS,
        **SWITCHOVER_SCENARIOS,
        **CONTROLLER_SCENARIOS,
        **DOUBLE_SCENARIOS,
        **POWER_SCENARIOS,
    }


def run(name: str, cfg: RunConfig) -> Result:
    try:
        fn = all_scenarios()[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; known: {', '.join(all_scenarios())}"
        ) from None
    return fn(cfg)


def queue_names(queues: list[MessageQueue]) -> list[str]:
    return [queue_key(q.topic, q.broker_name, q.queue_id) for q in queues]
