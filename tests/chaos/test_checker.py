"""The checkers on hand-made histories: each anomaly is detected, clean histories pass."""

from __future__ import annotations

import pathlib

import pytest

from tests.chaos import checker as C
from tests.chaos.history import Entry, History, Outcome, Read, load

pytestmark = pytest.mark.timeout(30)

Q0 = "T/broker-a/0"
Q1 = "T/broker-a/1"


class H:
    """Builds a history with a synthetic clock (1 ms per entry unless given)."""

    def __init__(self) -> None:
        self.h = History()
        self.t = 0.0

    def _tick(self, at: float | None) -> float:
        self.t = self.t + 0.001 if at is None else at
        return self.t

    def send(
        self,
        value: str,
        type: str = "ok",
        queue: str | None = Q0,
        offset: int | None = None,
        status: str | None = None,
        *,
        process: str | None = None,
        at: float | None = None,
        took: float = 0.0005,
    ) -> H:
        process = process or value.rpartition("-")[0]
        start = self._tick(at)
        op = self.h.invoke_send(process, value)
        # patch the invoke time to the synthetic clock
        self.h.entries[-1] = _with(self.h.entries[-1], mono=start)
        status = (
            status
            or {"ok": "SEND_OK", "info": "CLIENT_TIMEOUT", "fail": "SERVICE_NOT_AVAILABLE"}[type]
        )
        self.h.complete_send(process, op, value, Outcome(type, status), queue=queue, offset=offset)
        self.h.entries[-1] = _with(self.h.entries[-1], mono=start + took)
        self.t = start + took
        return self

    def invoke_only(self, value: str) -> H:
        self.h.invoke_send(value.rpartition("-")[0], value)
        self.h.entries[-1] = _with(self.h.entries[-1], mono=self._tick(None))
        return self

    def poll(
        self,
        process: str,
        reads: list[tuple[str, int, str]],
        *,
        group: str = "g",
        mode: str = "pull",
        at: float | None = None,
    ) -> H:
        self.h.reads(
            process,
            group,
            mode,
            [Read(q, off, v) for q, off, v in reads],
            f="poll" if mode == "pull" else "read",
            mono=self._tick(at),
        )
        return self

    def event(self, f: str, process: str = "nemesis", at: float | None = None, **data: object) -> H:
        self.h.event(f, process, mono=self._tick(at), **data)
        return self

    @property
    def entries(self) -> list[Entry]:
        return self.h.entries


def _with(e: Entry, **changes: object) -> Entry:
    import msgspec

    return msgspec.structs.replace(e, **changes)


def clean() -> H:
    h = H()
    for i in range(4):
        h.send(f"p0-{i}", offset=i)
    h.poll("c0", [(Q0, 0, "p0-0"), (Q0, 1, "p0-1")])
    h.poll("c0", [(Q0, 2, "p0-2"), (Q0, 3, "p0-3")])
    return h


# -- total queue ------------------------------------------------------------------------------


def test_a_clean_history_passes_every_checker() -> None:
    h = clean()
    report = C.check(h.entries, gap_groups=["g"])
    assert report.total.valid and report.kafka.valid
    assert report.total.acked == 4 and report.total.read == 4
    assert report.breakout == {} and report.group_gaps == {"g": {}}
    assert report.committed_skips == [] and report.latency.incomplete == []
    assert "valid" in report.render() and "INVALID" not in report.render()


def test_lost_is_acked_minus_read() -> None:
    h = clean().send("p0-4", offset=4)
    t = C.total_queue(h.entries)
    assert t.lost == ["p0-4"] and not t.valid


def test_unexpected_is_read_but_never_attempted() -> None:
    h = clean().poll("c0", [(Q0, 4, "ghost-1")])
    t = C.total_queue(h.entries)
    assert t.unexpected == ["ghost-1"] and not t.valid


def test_duplicated_counts_extra_reads_within_a_group_not_across_groups() -> None:
    h = clean()
    h.poll("c1", [(Q0, 0, "p0-0")])  # same group again: a redelivery
    h.poll("v", [(Q0, 1, "p0-1")], group="verify")  # another group: not a duplicate
    t = C.total_queue(h.entries)
    assert t.duplicated == {"p0-0": 1}
    assert t.valid  # duplicates are allowed (at-least-once)


def test_recovered_is_an_indeterminate_send_that_was_read() -> None:
    h = H().send("p0-0", "info", offset=None).poll("c", [(Q0, 0, "p0-0")]).invoke_only("p0-1")
    h.poll("c", [(Q0, 1, "p0-1")])
    t = C.total_queue(h.entries)
    assert t.recovered == ["p0-0", "p0-1"] and t.valid
    assert t.pending == ["p0-1"]


def test_aborted_read_is_a_definite_failure_that_was_read() -> None:
    h = H().send("p0-0", "fail", queue=None).poll("c", [(Q0, 0, "p0-0")])
    t = C.total_queue(h.entries)
    assert t.aborted_read == ["p0-0"] and not t.valid


def test_total_queue_counts_only_the_groups_asked_for() -> None:
    h = H().send("p0-0", offset=0).poll("v", [(Q0, 0, "p0-0")], group="verify")
    assert C.total_queue(h.entries, ["g"]).lost == ["p0-0"]
    assert C.total_queue(h.entries, ["verify"]).lost == []


# -- kafka ------------------------------------------------------------------------------------


def test_inconsistent_offsets_from_two_reads_or_a_read_and_an_ack() -> None:
    h = clean().poll("c1", [(Q0, 1, "p0-9")], group="other")
    assert C.kafka(h.entries).inconsistent_offsets == {f"{Q0}@1": ["p0-1", "p0-9"]}
    h2 = H().send("p0-0", offset=0).send("p1-0", offset=0)
    assert C.inconsistent_offsets(h2.entries) == {f"{Q0}@0": ["p0-0", "p1-0"]}
    # an ignored (e.g. lost-tail) send does not count
    assert C.inconsistent_offsets(h2.entries, ignore_values=["p0-0"]) == {}


def test_duplicate_is_one_value_at_two_offsets() -> None:
    h = clean().poll("c0", [(Q1, 0, "p0-2")])
    assert C.kafka(h.entries).duplicate == {"p0-2": [f"{Q0}@2", f"{Q1}@0"]}


def test_lost_write_needs_a_later_offset_read() -> None:
    h = H().send("p0-0", offset=0).send("p0-1", offset=1).send("p0-2", offset=2)
    h.poll("c", [(Q0, 0, "p0-0"), (Q0, 2, "p0-2")])
    k = C.kafka(h.entries)
    assert k.lost_write == ["p0-1"]
    # the tail that nobody read past is unseen, not a lost write
    h2 = H().send("p0-0", offset=0).send("p0-1", offset=1).poll("c", [(Q0, 0, "p0-0")])
    k2 = C.kafka(h2.entries)
    assert k2.lost_write == [] and k2.unseen == ["p0-1"]


def test_nonmonotonic_send_is_a_later_ack_at_an_earlier_offset() -> None:
    h = H().send("p0-0", offset=5).send("p0-1", offset=3).send("p0-2", offset=6, queue=Q1)
    k = C.kafka(h.entries)
    assert [(a.value, a.offset, a.prev_offset) for a in k.nonmonotonic_send] == [("p0-1", 3, 5)]


def test_poll_skip_and_nonmonotonic_poll_between_polls() -> None:
    h = clean()
    h.poll("c0", [(Q0, 6, "p0-6")])  # skipped 4 and 5
    h.poll("c0", [(Q0, 2, "p0-2")])  # went back
    k = C.kafka(h.entries)
    assert [(a.prev_offset, a.offset) for a in k.poll_skip] == [(3, 6)]
    assert [(a.prev_offset, a.offset) for a in k.nonmonotonic_poll] == [(6, 2)]


def test_a_reassignment_between_polls_excuses_jumps() -> None:
    h = clean()
    h.event("assign", process="c0", queues=[Q0])
    h.poll("c0", [(Q0, 6, "p0-6")])
    h.poll("c0", [(Q0, 7, "p0-7")])
    k = C.kafka(h.entries)
    assert k.poll_skip == [] and k.nonmonotonic_poll == []
    # an assign recorded right after the poll that already had the new assignment's data
    h2 = clean()
    h2.poll("c0", [(Q0, 9, "p0-9")])
    h2.event("assign", process="c0", queues=[Q0])
    h2.poll("c0", [(Q0, 10, "p0-10")])
    assert C.kafka(h2.entries).poll_skip == []
    # another consumer's reassignment excuses nothing
    h3 = clean()
    h3.event("assign", process="c9", queues=[Q0])
    h3.poll("c0", [(Q0, 9, "p0-9")])
    assert len(C.kafka(h3.entries).poll_skip) == 1


def test_int_poll_anomalies_inside_one_poll_are_never_excused() -> None:
    h = H()
    h.event("assign", process="c0")
    h.poll("c0", [(Q0, 0, "a-0"), (Q0, 2, "a-2"), (Q0, 1, "a-1"), (Q1, 0, "b-0")])
    k = C.kafka(h.entries)
    assert [(a.prev_offset, a.offset) for a in k.int_poll_skip] == [(0, 2)]
    assert [(a.prev_offset, a.offset) for a in k.int_nonmonotonic_poll] == [(2, 1)]


def test_push_reads_are_not_held_to_poll_order() -> None:
    h = clean()
    h.poll("c5", [(Q0, 3, "p0-3")], mode="push")
    h.poll("c5", [(Q0, 0, "p0-0")], mode="push")
    k = C.kafka(h.entries)
    assert k.poll_skip == [] and k.nonmonotonic_poll == []


# -- lost breakout -----------------------------------------------------------------------------


def test_lost_breakout_splits_prefix_middle_postfix_per_writer() -> None:
    h = H()
    for i in range(10):
        h.send(f"p0-{i}", offset=i)
    h.send("p1-0", offset=10, queue=Q1)
    h.poll("c", [(Q0, i, f"p0-{i}") for i in (2, 3, 5, 7)])
    b = C.lost_breakout(h.entries)
    assert b["p0"] == C.Breakout(
        prefix=["p0-0", "p0-1"], middle=["p0-4", "p0-6"], postfix=["p0-8", "p0-9"]
    )
    # a writer none of whose values was read: all of it counts as prefix
    assert b["p1"] == C.Breakout(prefix=["p1-0"], middle=[], postfix=[])


def test_lost_breakout_before_a_fault_considers_only_earlier_acks() -> None:
    h = H()
    for i in range(6):
        h.send(f"p0-{i}", offset=i, at=float(i))
    # the fault at t=3.5: p0-3 was acked but lost; later values were read
    h.poll("c", [(Q0, 0, "p0-0"), (Q0, 1, "p0-1"), (Q0, 2, "p0-2"), (Q0, 3, "p0-4")], at=10.0)
    h.poll("c", [(Q0, 4, "p0-5")], at=10.1)
    assert C.lost_breakout(h.entries)["p0"].middle == ["p0-3"]
    assert C.lost_breakout(h.entries, before=3.5)["p0"] == C.Breakout([], [], ["p0-3"])


def test_a_loss_is_judged_at_the_first_kill_after_its_ack_only() -> None:
    # Given p0-0..3 acked before a kill at t=3.5 that lost the unreplicated tail p0-2, p0-3,
    # and p0-4..6 acked by the new master and read, before a second kill at t=7.5
    h = H()
    for i in range(7):
        h.send(f"p0-{i}", offset=i, at=float(i))
    h.poll("c", [(Q0, 0, "p0-0"), (Q0, 1, "p0-1"), (Q0, 2, "p0-4"), (Q0, 3, "p0-5")], at=8.0)
    h.poll("c", [(Q0, 4, "p0-6")], at=8.1)
    # Then the loss is the first kill's postfix (at the second, p0-2 and p0-3 are "middle":
    # R10 seed 6, session 11, failed on that)
    assert C.lost_breakout(h.entries, before=7.5)["p0"].middle == ["p0-2", "p0-3"]
    assert C.lost_outside_postfix(h.entries, None, [3.5, 7.5]) == {}
    # When a value acked between the kills is lost while a later one was read: unexplained
    h2 = H()
    for i in range(7):
        h2.send(f"p0-{i}", offset=i, at=float(i))
    h2.poll("c", [(Q0, i, f"p0-{i}") for i in (0, 1, 4, 6)], at=8.0)
    assert C.lost_outside_postfix(h2.entries, None, [3.5, 7.5]) == {
        "p0@7.5": {"prefix": [], "middle": ["p0-5"]}
    }
    # And a value acked after the last kill and lost is never explained by one
    assert C.lost_outside_postfix(h2.entries, None, [3.5, 4.5]) == {
        "p0@end": {"after_last_kill": ["p0-5"]}
    }


# -- groups and committed offsets ------------------------------------------------------------------


def test_group_gaps_finds_offsets_the_group_never_read() -> None:
    h = clean()
    h.poll("c1", [(Q0, 6, "p0-6")], mode="push")
    h.poll("c1", [(Q1, 2, "p1-2")], mode="push")
    assert C.group_gaps(h.entries, "g") == {Q0: [4, 5]}
    assert C.group_gaps(h.entries, "g", from_zero=True) == {Q0: [4, 5], Q1: [0, 1]}


def test_committed_skip_is_a_stored_offset_past_unread_messages() -> None:
    h = clean()  # the group read 0..3 of Q0
    h.event("offsets", group="g", queue=Q0, offset=4)  # fine: everything below 4 was read
    h.event("offsets", group="g", queue=Q0, offset=2)  # a regression is allowed
    h.event("offsets", group="g", queue=Q0, offset=6)  # 4 and 5 unread: a skip
    h.event("offsets", group="g", queue=Q1, offset=None)  # nothing stored yet
    skips = C.committed_skips(h.entries)
    assert [(s.committed, s.missing) for s in skips] == [(6, 4)]


def test_a_read_after_the_probe_does_not_justify_the_commit() -> None:
    h = H().send("p0-0", offset=0)
    h.event("offsets", group="g", queue=Q0, offset=1, at=1.0)
    h.poll("c", [(Q0, 0, "p0-0")], at=2.0)
    assert len(C.committed_skips(h.entries)) == 1
    assert C.committed_skips(h.entries, slack=1.5) == []


# -- latencies and recovery ----------------------------------------------------------------------


def test_incomplete_and_slow_sends_are_reported() -> None:
    h = H().send("p0-0", offset=0, took=0.2).send("p0-1", "info", took=12.0).invoke_only("p0-2")
    lat = C.latencies(h.entries, bound=10.0)
    assert lat.incomplete == ["p0-2"]
    assert [v for v, _ in lat.slow] == ["p0-1"] and lat.max_seconds == pytest.approx(12.0)


def test_recovery_is_the_time_to_the_first_ack_after_a_fault() -> None:
    h = H().send("p0-0", offset=0, at=1.0)
    h.event("fault", kind="kill", at=2.0)
    h.send("p0-1", "fail", queue=None, at=2.1)
    h.send("p0-2", offset=1, at=4.0, took=0.5)
    h.event("fault", kind="pause", at=10.0)
    rec = C.recovery(h.entries)
    assert [(r.fault, r.rto) for r in rec] == [("kill", 2.5), ("pause", None)]
    # a stored-but-unreplicated answer counts as writes resumed when asked
    h.send("p0-3", "info", status="SLAVE_NOT_AVAILABLE", offset=2, at=11.0, took=0.25)
    assert C.recovery(h.entries)[1].rto is None
    assert [r.rto for r in C.recovery(h.entries, stored=True)] == [2.5, 1.25]


# -- history file ------------------------------------------------------------------------------


def test_the_jsonl_history_round_trips(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "history.jsonl"
    with History(path) as h:
        op = h.invoke_send("p0", "p0-0")
        h.complete_send("p0", op, "p0-0", Outcome("ok", "SEND_OK"), queue=Q0, offset=0)
        h.reads("c0", "g", "pull", [Read(Q0, 0, "p0-0")])
        h.event("fault", kind="kill", target="broker-a/0", seed=3)
        mem = h.snapshot()
    assert load(path) == mem
    assert [e.index for e in mem] == [0, 1, 2, 3]
    assert C.total_queue(load(path)).valid


def test_a_burst_of_sends_is_invoked_at_one_moment_and_completed_when_told(
    tmp_path: pathlib.Path,
) -> None:
    # Given a history with one send already invoked
    path = tmp_path / "history.jsonl"
    with History(path) as h:
        first = h.invoke_send("p0", "p0-0")
        # When a burst of three is invoked together and two complete at given moments
        ops, at = h.invoke_sends("f0", ["f0-0", "f0-1", "f0-2"])
        h.complete_send(
            "f0", ops[0], "f0-0", Outcome("ok", "SEND_OK"), queue=Q0, offset=0, mono=at + 0.5
        )
        timeout = Outcome("info", "CLIENT_TIMEOUT")
        h.complete_send("f0", ops[1], "f0-1", timeout, mono=at + 3.0)
        mem = h.snapshot()
    # Then the burst's ops follow on, share one invoke time, and the file holds what memory does
    assert ops == [first + 1, first + 2, first + 3]
    burst = [e for e in mem if e.process == "f0" and e.type == "invoke"]
    assert [e.mono for e in burst] == [at, at, at]
    assert [e.index for e in mem] == list(range(len(mem)))
    assert load(path) == mem
    lat = C.latencies(mem, bound=3.5)
    assert sorted(lat.incomplete) == ["f0-2", "p0-0"]
    assert lat.max_seconds == pytest.approx(3.0) and not lat.slow


def test_a_verdict_fails_on_a_criterion_and_reports_known_issues_without_failing() -> None:
    v = C.Verdict()
    v.require("holds", True, "never shown")
    v.require("waits for a fix", False, ["p0-1"], known="issue 6")
    assert v.ok and "KNOWN ISSUE waits for a fix: [issue 6] ['p0-1']" in v.render()
    v.require("broken", False, ["p0-2"])
    assert not v.ok and v.render().startswith("verdict: FAIL\n  broken: ['p0-2']")
