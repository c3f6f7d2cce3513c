"""Message-semantics chaos scenarios (RELIABILITY.md §4 C: R18 ordered messages, R19 retry /
delay / dead-letter topics), one fast seed each for CI, and their checkers on hand-made
histories. Same settings and environment variables as ``test_scenarios.py``:

    CHAOS_SECONDS=120 CHAOS_SEED=7 pytest tests/chaos/test_scenarios_semantics.py -k r18
    python -m tests.chaos.soak --scenario R19 --seconds 300 --seeds 1,2,3
"""

from __future__ import annotations

import pathlib
import time

import pytest

from tests.chaos import semantics_checker as SC
from tests.chaos.history import History, Outcome, Read
from tests.chaos.scenarios_semantics import delay_level, key_of, plan
from tests.chaos.test_scenarios import SECONDS, faults, scenario

pytestmark = [pytest.mark.serial, pytest.mark.timeout(90 + 3 * SECONDS)]

# -- the scenarios -------------------------------------------------------------------------------


def test_r18_ordered_messages_keep_key_order_through_kill9_and_pause(
    tmp_path: pathlib.Path,
) -> None:
    # Given one producer sending values of 8 sharding keys with sync sends, and an orderly
    # push consumer of the group
    # When the broker is killed -9 and restarted, or paused and resumed
    result = scenario("R18", tmp_path)
    # Then nothing acked is lost, offsets are contiguous, the consumer read each queue in
    # offset order (going back only right after a reassignment), and each key's acked values
    # were first consumed in the order they were acked
    assert faults(result, "kill") + faults(result, "pause") >= 1
    assert result.report.total.acked > 0
    assert sum(result.facts["keys"].values()) == result.report.total.acked


def test_r19_retry_delay_and_dead_letter_survive_kill9(tmp_path: pathlib.Path) -> None:
    # Given a broker with 1-2 s delay levels, producers sending some delayed values, and a
    # push consumer (2 reconsumes at most) failing some values always and some once
    # When the broker is killed -9 and restarted
    result = scenario("R19", tmp_path)
    # Then every acked value ended exactly as planned — consumed, or in %DLQ%chaos after its
    # retries — no delayed message or retry came early, and nothing was lost
    assert faults(result, "kill") >= 1
    planned = result.facts["planned"]
    assert planned["dlq"] > 0 and planned["once"] > 0 and result.facts["delayed_acked"] > 0
    assert result.facts["dead_lettered"] >= planned["dlq"]


# -- the checkers ----------------------------------------------------------------------------------


def _ack(h: History, value: str, queue: str = "T/b/0", offset: int = 0) -> None:
    op = h.invoke_send(value.rpartition("-")[0], value)
    h.complete_send(
        value.rpartition("-")[0], op, value, Outcome("ok", "SEND_OK"), queue=queue, offset=offset
    )


def _read(h: History, value: str, queue: str = "T/b/0", offset: int = 0, **data: object) -> None:
    h.append(
        "ok", "read", "c0", group="g", mode="push", reads=[Read(queue, offset, value)], data=data
    )


def test_key_order_allows_redelivery_but_not_a_later_value_first() -> None:
    # Given p0-0, p0-8, p0-16 acked in that order (all key k0) and p0-1 (key k1)
    h = History()
    for v in ("p0-0", "p0-1", "p0-8", "p0-16"):
        _ack(h, v)
    # When they are consumed in order, then again from p0-8 after a restart
    for v in ("p0-0", "p0-8", "p0-1", "p0-8", "p0-16", "p0-16"):
        _read(h, v)
    # Then the order holds (duplicates and redelivery allowed)
    ok = SC.key_order(h.snapshot(), ["g"], key_of)
    assert ok.violations == [] and ok.keys == {"k0": 3, "k1": 1} and ok.repeated == 2
    # When a value acked later is first consumed before an earlier one
    h2 = History()
    for v in ("p0-0", "p0-8", "p0-16"):
        _ack(h2, v)
    for v in ("p0-0", "p0-16", "p0-8", "p0-16"):
        _read(h2, v)
    # Then that pair is a violation, although the consumed sequence contains the acked one
    bad = SC.key_order(h2.snapshot(), ["g"], key_of)
    assert [(x.earlier, x.later) for x in bad.violations] == [("p0-8", "p0-16")]


def test_orderly_queue_order_excuses_going_back_only_after_a_reassignment() -> None:
    h = History()
    for off in (0, 1, 2):
        _read(h, f"p0-{off}", offset=off)
    h.event("assign", "c0", added=["T/b/0"])
    _read(h, "p0-1", offset=1)  # restarted from the committed offset
    _read(h, "p0-2", offset=2)
    _read(h, "p0-1", offset=1)  # back again, no reassignment
    _read(h, "p0-3", offset=3)  # forward past offset 2
    got = SC.orderly_queue_order(h.snapshot(), ["g"])
    assert [(a.prev_offset, a.offset) for a in got.restarts] == [(2, 1)]
    assert [(a.prev_offset, a.offset) for a in got.back] == [(2, 1)]
    assert [(a.prev_offset, a.offset) for a in got.skip] == [(1, 3)]
    assert got.reassignments == 1


def test_fates_and_delays() -> None:
    # plan: counter mod 7 == 3 -> dlq, == 5 -> once; delay: mod 5 == 1 -> 1 s, == 4 -> 2 s
    assert (plan("p0-3"), plan("p0-5"), plan("p0-0")) == ("dlq", "once", "ok")
    assert (delay_level("p0-1"), delay_level("p0-4"), delay_level("p0-0")) == (1, 2, 0)
    h = History()
    for v in ("p0-0", "p0-3", "p0-5", "p0-10"):
        _ack(h, v)
    born = 1_000_000
    _read(h, "p0-0", outcome="ok", born=born)
    for _ in range(3):
        _read(h, "p0-3", outcome="fail", born=born)
    h.reads("dlq", "g-dlq", "pull", [Read("%DLQ%g/b/0", 0, "p0-3")])
    _read(h, "p0-5", outcome="fail", born=born)
    h.reads("dlq", "g-dlq", "pull", [Read("%DLQ%g/b/0", 1, "p0-5")])  # planned once: wrong
    got = SC.fates(h.snapshot(), "g", "g-dlq", plan, deliveries_before_dlq=3)
    assert got.lost == ["p0-10"]
    assert got.both == []
    assert list(got.wrong_end) == ["p0-5"]
    assert got.dead_too_soon == {}
    # a retry delivered 0.5 s after the failure, a delayed value delivered before its due time
    h2 = History()
    _read(h2, "p0-5", outcome="fail", born=born)
    first_fail = h2.snapshot()[-1].wall
    _read(h2, "p0-5", outcome="ok", born=born, retry=True)
    _read(h2, "p0-1", outcome="ok", born=int(first_fail * 1000))  # due 1 s after born
    retries = SC.early_retries(h2.snapshot(), "g", 1.0, tolerance=0.05)
    assert [e.value for e in retries.early] == ["p0-5"]
    early = SC.early_deliveries(h2.snapshot(), "g", lambda v: float(delay_level(v)), tolerance=0.05)
    assert [e.value for e in early.early] == ["p0-1"]


def test_a_retry_copy_the_client_sent_itself_is_not_due_by_its_own_born() -> None:
    # Given p0-4 (delay level 2: 2 s) delivered 2.1 s after its producer's born and failed,
    # the send-back failed, and the consumer's client sent the retry copy itself: a new message
    # born then, with the retry delay (1 s), delivered 1 s after that (R19 seed 4, 60 s: p1-4644)
    h = History()
    now = time.time()  # the wall clock History records reads at
    born = int((now - 2.1) * 1000)
    _read(h, "p0-4", outcome="fail", born=born)
    _read(h, "p0-4", queue="%RETRY%g/b/0", outcome="fail", born=born + 1100, retry=True)
    # Then no delivery of it came before the producer's born + 2 s
    early = SC.early_deliveries(h.snapshot(), "g", lambda v: float(delay_level(v)), tolerance=0.05)
    assert early.early == [] and early.checked == 2
    # When the delayed value's own delivery comes early, it still is one
    _read(h, "p0-9", outcome="ok", born=int(now * 1000))  # due 2 s after born
    early = SC.early_deliveries(h.snapshot(), "g", lambda v: float(delay_level(v)), tolerance=0.05)
    assert [e.value for e in early.early] == ["p0-9"]
