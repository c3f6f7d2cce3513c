"""Message-semantics scenarios (RELIABILITY.md §4 C): R18 ordered messages and R19 retry,
delay and dead-letter topics, each on one broker under a nemesis.

- R18 ordered messages: one producer doing sync sends with a sharding key (8 keys over the
  topic's queues, ``key_of``: the key is the value's counter mod 8, so a queue holds several
  keys), an orderly push consumer (queue locks, one message at a time per queue); the broker
  is killed -9 and restarted, or paused (SIGSTOP / SIGCONT). Pass: R1's criteria (zero acked
  loss against the final log, offsets contiguous, nonmonotonic-send = ∅, ...), the group's
  (drained, no gap, stored offsets never skip), the orderly consumer read every queue in
  offset order — never forward past an offset, never back except as the first read after the
  queue was (re)assigned to it — and, per key, the acked values were first consumed in ack
  order (OpenChaos's OrderChecker: ``semantics_checker.key_order``).
- R19 retry / delay / dead-letter topics: the broker's delay levels are ``1s 2s 1s 1s ...``
  (18 levels: retries, at level 3 + reconsume times, come back after 1 s); two producers send
  values of which, by counter (``plan`` / ``delay_level``), some are delayed (level 1 or 2) and
  some the consumer's listener fails always (they must reach ``%DLQ%chaos`` after
  ``MAX_RECONSUME`` = 2 retries) or once (then succeed); the broker is killed -9 and
  restarted. Pass: R1's criteria; every acked value ends exactly one way — consumed
  successfully, or in the dead-letter queue (duplicates of either allowed, counted) — and
  the way its plan says, a dead-lettered value having failed 1 + MAX_RECONSUME times first; no
  delivery of a delayed value before born time + its delay, no redelivery from the retry topic
  before the retry delay after a failure (both with a 50 ms tolerance for ms rounding); the
  group's reads have no gap (topic and retry topic), its stored offsets never skip, the
  dead-letter queue read from 0 has no gap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.chaos import checker as C
from tests.chaos import semantics_checker as SC
from tests.chaos.cluster import BrokerSpec, Node
from tests.chaos.history import split_value
from tests.chaos.nemesis import Fault, KillRestart, Pause, Timing
from tests.chaos.scenarios import (
    GROUP,
    TOPIC,
    Result,
    Run,
    RunConfig,
    _check,
    _common_criteria,
    _group_criteria,
)
from tests.chaos.semantics_workload import (
    DlqReader,
    KeyedProducer,
    OrderlyConsumer,
    PlannedProducer,
    RetryConsumer,
)

BROKER = "broker-a"
LABEL = "broker-a/0"
DLQ_READER = "chaos-dlq"

# -- R18 ----------------------------------------------------------------------------------------

KEYS = 8


def key_of(value: str) -> str:
    """R18's sharding key of a value: ``k<counter mod 8>`` (``p0-17`` -> ``k1``)."""
    return f"k{split_value(value)[1] % KEYS}"


# -- R19 ----------------------------------------------------------------------------------------

DELAY_LEVELS = "1s 2s " + " ".join(["1s"] * 16)
"""messageDelayLevel of R19's broker: level 1 = 1 s, level 2 = 2 s, levels 3..18 = 1 s (the
retry levels, 3 + reconsume times), instead of RocketMQ's 1s 5s 10s 30s 1m ... 2h."""
LEVEL_SECONDS = {1: 1.0, 2: 2.0}
RETRY_DELAY_S = 1.0
MAX_RECONSUME = 2
DELAY_TOLERANCE_S = 0.05


def plan(value: str) -> str:
    """R19's listener plan for a value, by counter: ``dlq`` (always fails: ends in the
    dead-letter queue) when counter mod 7 = 3, ``once`` (fails its first delivery, then
    succeeds) when 5, else ``ok``."""
    rest = split_value(value)[1] % 7
    return "dlq" if rest == 3 else "once" if rest == 5 else "ok"


def delay_level(value: str) -> int:
    """R19's delay level of a value, by counter: 1 (1 s) when counter mod 5 = 1, 2 (2 s) when
    4, else none (independent of ``plan``: every combination occurs)."""
    rest = split_value(value)[1] % 5
    return 1 if rest == 1 else 2 if rest == 4 else 0


def delay_seconds(value: str) -> float:
    return LEVEL_SECONDS.get(delay_level(value), 0.0)


class SemanticRun(Run):
    """A Run on one broker with the semantic scenarios' producers and consumers."""

    def broker(self, extra: dict[str, str] | None = None) -> Node:
        self.cluster.start_namesrv()
        spec = BrokerSpec(BROKER, 0, "ASYNC_MASTER", "ASYNC_FLUSH", extra=dict(extra or {}))
        node = self.cluster.add_broker(spec)
        self.cluster.start_broker(spec.label)
        self.cluster.wait_registered(spec.label)
        self.cluster.create_topic(spec.label, TOPIC, self.cfg.queues)
        return node

    def kill(self, node: Node) -> KillRestart:
        return KillRestart(node, after_restart=lambda: self.cluster.wait_registered(LABEL))

    def start_keyed_producer(self) -> None:
        p = KeyedProducer(
            self.history,
            self.cluster.namesrv,
            TOPIC,
            "p0",
            rate=self.cfg.rate,
            send_timeout=self.cfg.send_timeout,
            key=key_of,
        )
        self.producers.append(p.start())

    def start_planned_producers(self) -> None:
        for i in range(self.cfg.producers):
            p = PlannedProducer(
                self.history,
                self.cluster.namesrv,
                TOPIC,
                f"p{i}",
                rate=self.cfg.rate,
                send_timeout=self.cfg.send_timeout,
                delay_level=delay_level,
            )
            self.producers.append(p.start())

    def settle(self, dlq: DlqReader) -> bool:
        """Wait until every acked value has the end its plan says (consumed, or read from the
        dead-letter queue), recording the count still waiting each tick (``drain`` events; every
        0.1 s for the first 2 s, then every half second); False at ``drain_timeout``."""
        start = time.monotonic()
        deadline = start + self.cfg.drain_timeout
        tick = threading.Event()
        while True:
            dlq.poll()
            entries = self.history.snapshot()
            f = SC.fates(entries, GROUP, DLQ_READER, plan, deliveries_before_dlq=MAX_RECONSUME + 1)
            waiting = sorted(
                v
                for v, s in C.sends(entries).items()
                if s.type == "ok" and (v not in f.dead if plan(v) == "dlq" else v not in f.consumed)
            )
            self.history.event("drain", "workload", group=GROUP, unseen=len(waiting))
            if not waiting:
                self.facts["drained"] = True
                return True
            if time.monotonic() > deadline:
                self.history.event("drain-timeout", "workload", group=GROUP, sample=waiting[:20])
                self.facts["drained"] = False
                return False
            wait = 0.1 if time.monotonic() - start < 2.0 else 0.5
            tick.wait(wait)  # polling the broker's dead-letter queue, not synchronisation


def _fault_kinds(run: Run) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for e in run.history.snapshot():
        if e.type == "event" and e.f == "fault":
            kind = str((e.data or {}).get("kind"))
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


# -- the scenarios ---------------------------------------------------------------------------------


def r18(cfg: RunConfig) -> Result:
    """R18: ordered messages. One producer, sync sends with a sharding key; an orderly push
    consumer; the broker is killed -9 and restarted, or paused. Per-key acked order is the
    first-seen consumed order; the consumer reads each queue in offset order except right
    after a reassignment; zero acked loss; offsets contiguous."""
    run = SemanticRun("R18", cfg)
    try:
        # Given one broker, an orderly push consumer of the group and one producer sending
        # values of 8 sharding keys (2 per queue), each send waiting for its ack
        node = run.broker()
        consumer = OrderlyConsumer(run.history, run.cluster.namesrv, GROUP, TOPIC, "c0-orderly")
        run.consumers.append(consumer.start())  # type: ignore[arg-type]
        run.start_probe()
        run.start_keyed_producer()
        run.wait_for_acks()
        # When the broker is killed -9 and restarted, or SIGSTOPped and resumed, while both run
        faults: list[Fault] = [run.kill(node), Pause(node)]
        run.nemesis(faults, Timing(interval=(1.0, 2.5), window=(0.3, 1.5)))
        run.recover_and_stop_producers()
        run.drain_group()
        ends = run.verify()
    finally:
        run.close()
    # Then nothing acked is lost, the group read everything in order per queue and per key
    report = _check(run)
    entries = run.history.snapshot()
    verdict = C.Verdict()
    verdict.require("at least one fault", run.facts.get("faults", 0) >= 1, run.facts)
    _common_criteria(run, report, verdict, ends=ends)
    _group_criteria(run, report, verdict)
    order = SC.orderly_queue_order(entries, [GROUP])
    verdict.require(
        "orderly poll-skip = ∅ (never past an unconsumed offset)", not order.skip, order.skip
    )
    verdict.require(
        "orderly nonmonotonic-poll = ∅ except right after a reassignment",
        not order.back,
        order.back,
    )
    keys = SC.key_order(entries, [GROUP], key_of)
    verdict.require(
        "per-key acked order is a subsequence of the first-seen consumed order",
        not keys.violations,
        keys.violations,
    )
    run.facts["fault_kinds"] = _fault_kinds(run)
    run.facts["keys"] = keys.keys
    run.facts["reassignments"] = order.reassignments
    run.facts["restarts_after_reassignment"] = [
        f"{a.queue}@{a.prev_offset}->{a.offset}" for a in order.restarts
    ]
    run.facts["redelivered"] = keys.repeated
    return run.result(verdict, report)


def r19(cfg: RunConfig) -> Result:
    """R19: retry, delay and dead-letter topics under kill -9. Every acked value ends consumed
    or dead-lettered (exactly one, as planned; duplicates counted), delayed values and retries
    never come early, nothing is lost."""
    run = SemanticRun("R19", cfg)
    try:
        # Given one broker whose delay levels are 1-2 s, a push consumer (max 2 reconsumes)
        # whose listener fails some values always and some once, and producers sending values
        # of which some are delayed by level 1 or 2
        node = run.broker({"messageDelayLevel": DELAY_LEVELS})
        consumer = RetryConsumer(
            run.history,
            run.cluster.namesrv,
            GROUP,
            TOPIC,
            "c0-push",
            plan=plan,
            max_reconsume_times=MAX_RECONSUME,
        )
        run.consumers.append(consumer.start())  # type: ignore[arg-type]
        run.start_probe()
        run.start_planned_producers()
        run.wait_for_acks()
        # When the broker is killed -9 and restarted while messages are parked in the schedule
        # topic, retried through %RETRY%chaos and dead-lettered to %DLQ%chaos
        run.nemesis([run.kill(node)], Timing(interval=(1.5, 3.0), window=(0.1, 1.0)))
        run.recover_and_stop_producers()
        dlq = DlqReader(run.history, GROUP, BROKER, run.master_address, DLQ_READER)
        run.settle(dlq)
        ends = run.verify()
        dlq.poll()
    finally:
        run.close()
    # Then every acked value has exactly its planned end, no delivery came early, nothing lost
    report = _check(run)
    entries = run.history.snapshot()
    verdict = C.Verdict()
    verdict.require("at least one kill", run.facts.get("faults", 0) >= 1, run.facts)
    _common_criteria(run, report, verdict, ends=ends)
    f = SC.fates(entries, GROUP, DLQ_READER, plan, deliveries_before_dlq=MAX_RECONSUME + 1)
    verdict.require(
        "every acked value settled (consumed or dead-lettered)",
        bool(run.facts.get("drained")),
        f.lost,
    )
    verdict.require("lost = ∅ (acked, neither consumed nor dead-lettered)", not f.lost, f.lost)
    verdict.require("no value both consumed and dead-lettered", not f.both, f.both)
    verdict.require("every acked value ended as planned", not f.wrong_end, f.wrong_end)
    verdict.require(
        f"dead-lettered only after {MAX_RECONSUME + 1} failed deliveries",
        not f.dead_too_soon,
        f.dead_too_soon,
    )
    delays = SC.early_deliveries(entries, GROUP, delay_seconds, tolerance=DELAY_TOLERANCE_S)
    verdict.require(
        "no delayed message delivered before it was due", not delays.early, delays.early
    )
    retries = SC.early_retries(entries, GROUP, RETRY_DELAY_S, tolerance=DELAY_TOLERANCE_S)
    verdict.require("no retry delivered before its delay", not retries.early, retries.early)
    verdict.require(
        "every retry delivery follows a failed delivery",
        not retries.unexplained,
        retries.unexplained,
    )
    gaps = C.group_gaps(entries, GROUP, from_zero=True)
    verdict.require("group gaps = ∅ (topic and retry topic)", not gaps, gaps)
    skips = C.committed_skips(entries, slack=0.25)
    verdict.require("committed offsets never skip", not skips, skips)
    dlq_gaps = C.group_gaps(entries, DLQ_READER, from_zero=True)
    verdict.require("dead-letter queue contiguous from 0", not dlq_gaps, dlq_gaps)
    planned = {"dlq": 0, "once": 0, "ok": 0}
    delayed = 0
    for v, s in C.sends(entries).items():
        if s.type == "ok":
            planned[plan(v)] += 1
            delayed += delay_level(v) > 0
    run.facts["planned"] = planned
    run.facts["delayed_acked"] = delayed
    run.facts["dead_lettered"] = len(f.dead)
    run.facts["dlq_duplicates"] = sum(n - 1 for n in f.dead.values())
    run.facts["consumed_duplicates"] = sum(n - 1 for n in f.consumed.values())
    run.facts["failed_deliveries"] = sum(f.failed.values())
    run.facts["delay_margin_s"] = (delays.checked, delays.min_margin_s, delays.max_margin_s)
    run.facts["retry_margin_s"] = (retries.checked, retries.min_margin_s, retries.max_margin_s)
    return run.result(verdict, report)


SEMANTIC_SCENARIOS: dict[str, Callable[[RunConfig], Result]] = {"R18": r18, "R19": r19}
