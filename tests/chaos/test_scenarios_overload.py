"""R23 overload / slow consumer (RELIABILITY.md §4 D), one fast seed for CI, and the pieces of
its workload on their own. Same settings and environment variables as ``test_scenarios.py``:

    CHAOS_SECONDS=60 CHAOS_SEED=7 pytest tests/chaos/test_scenarios_overload.py -k r23
    python -m tests.chaos.soak --scenario R23 --seconds 60 --seeds 1,2,3
    python -m tests.chaos.soak --scenario R23 --seconds 6 --producers 6   # past the client timeout
"""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.chaos.history import History, Outcome
from tests.chaos.overload_workload import body_of, busy_kinds, read_status, value_of
from tests.chaos.scenarios_overload import FLOODER, READER
from tests.chaos.test_scenarios import SECONDS, faults, scenario

pytestmark = [pytest.mark.serial, pytest.mark.timeout(90 + 3 * SECONDS)]


def test_r23_overload_and_slow_consumer_bounded_busy_and_nothing_lost(
    tmp_path: pathlib.Path,
) -> None:
    # Given one broker, a slow push consumer, a probe client and the broker's memory sampled
    # When two producers send 16-64 KiB bodies as fast as 512 sends in flight each allow, a
    # flood producer pipelines 5,096 sends on one connection, and a slow reader parks long
    # polls, blocks its socket with pull answers and sends past the in-flight cap
    result = scenario("R23", tmp_path)
    # Then nothing acked is lost or refused-but-stored, every send completed (ok, SYSTEM_BUSY
    # or a client timeout) without hanging, the slow reader's sends past the cap got
    # SYSTEM_BUSY, the probe was answered throughout, the broker's RSS stayed bounded, and the
    # consumer read everything once the overload ended
    assert faults(result, "flood") == 1 and faults(result, "slow-reader") == 1
    facts = result.facts
    assert result.report.total.acked > 0 and facts["drained"]
    assert facts["refusals"][READER]["SYSTEM_BUSY"] > 0
    assert facts["slow_reader"]["unanswered"] == 0
    assert facts["rss"]["samples"] > 0 and facts["rss"]["hwm_mib"] > facts["baseline_rss_mib"]
    assert all(p["n"] > 0 for p in facts["probe_during"].values())
    assert facts["backlog_at_end"] > 0  # the consumer really was behind


# -- the pieces ------------------------------------------------------------------------------------


def test_bodies_carry_their_value_and_size() -> None:
    body = body_of("p0-17", 16 * 1024)
    assert len(body) == 16 * 1024
    assert value_of(body) == "p0-17"
    assert value_of(body_of("p1-3", 1)) == "p1-3"  # never shorter than the value


def test_busy_kinds_counts_refusals_by_the_brokers_remark() -> None:
    h = History()
    for process, error in (
        ("p0", "BrokerError: send to 127.0.0.1:1 failed with code 2: append waited too long"),
        (FLOODER, "code 2: too many requests in flight (> 4096)"),
        (READER, "code 2: too many requests in flight (> 4096)"),
    ):
        op = h.invoke_send(process, f"{process}-0")
        h.complete_send(process, op, f"{process}-0", Outcome("fail", "SYSTEM_BUSY", error))
    assert busy_kinds(h.snapshot()) == {
        "append waited too long": 1,
        "too many requests in flight (> 4096)": 2,
    }


def test_read_status_reads_this_process() -> None:
    status = read_status(os.getpid())
    assert status["VmRSS"] > 0 and status["VmHWM"] >= status["VmRSS"]
    assert read_status(2**22 + 12345) == {}  # no such process
