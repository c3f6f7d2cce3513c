"""Process-level chaos scenarios (RELIABILITY.md §4), one fast seed each for CI.

Each test runs real ``python -m runtime`` processes under a seeded nemesis, records a history
and judges the scenario's criteria with the checkers; on failure the message holds the checker
report, the seed and the history path (kept under pytest's tmp dir). Longer runs:

    CHAOS_SECONDS=300 CHAOS_SEED=7 pytest tests/chaos/test_scenarios.py -k R17
    python -m tests.chaos.soak --scenario R17 --seconds 600 --seed 7

(``CHAOS_SECONDS`` also scales the pytest timeout.)
"""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.chaos.history import load
from tests.chaos.scenarios import Result, RunConfig, SkipScenario, run

SECONDS = float(os.environ.get("CHAOS_SECONDS", "6"))
SEED = int(os.environ.get("CHAOS_SEED", "1"))
RATE = float(os.environ.get("CHAOS_RATE", "80"))

pytestmark = [pytest.mark.serial, pytest.mark.timeout(90 + 3 * SECONDS)]


def scenario(name: str, tmp_path: pathlib.Path, **overrides: object) -> Result:
    cfg = RunConfig(seed=SEED, seconds=SECONDS, workdir=tmp_path / name, rate=RATE)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    try:
        result = run(name, cfg)
    except SkipScenario as exc:
        pytest.skip(str(exc))
    print(result.render())
    assert result.verdict.ok, result.render()
    return result


def faults(result: Result, kind: str) -> int:
    return sum(
        1
        for e in load(result.history_path)
        if e.type == "event" and e.f == "fault" and (e.data or {}).get("kind") == kind
    )


def test_r1_kill9_during_sustained_sends_loses_nothing(tmp_path: pathlib.Path) -> None:
    # Given one ASYNC_MASTER / ASYNC_FLUSH broker and two producers sending without pause
    # When the broker is killed -9 and restarted every few seconds
    result = scenario("R1", tmp_path)
    # Then every acked value is in the final log, offsets are contiguous from 0 in every queue,
    # no offset holds two values, and sends succeed again after each restart
    assert faults(result, "kill") >= 1
    assert result.report.total.acked > 0
    assert result.facts["stored"] >= result.report.total.acked


def test_r16_consumer_crashes_and_rebalances_never_skip(tmp_path: pathlib.Path) -> None:
    # Given a group of three consumer processes (two push, one lite pull) reading while
    # producers send
    # When consumers are killed -9 and restarted (the group rebalances each time)
    result = scenario("R16", tmp_path)
    # Then the group read every acked value, no consumer skipped an offset between polls
    # without a reassignment, the broker's stored offsets never passed an unread message;
    # duplicates (redelivered uncommitted progress) are only counted
    assert faults(result, "crash-consumer") >= 1
    assert result.facts["offset_probes"] > 0


def test_r17_broker_kill9_never_makes_consumer_offsets_skip(tmp_path: pathlib.Path) -> None:
    # Given a group consuming (push and pull) while producers send, its stored offsets probed
    # When the broker is killed -9 and restarted during consumption
    result = scenario("R17", tmp_path)
    # Then stored offsets may regress but never pass what the group had read, and the group
    # ends having read every acked value
    assert faults(result, "kill") >= 1
    assert result.facts["offset_probes"] > 0


def test_r22_requests_in_flight_when_the_broker_dies_or_freezes_all_complete(
    tmp_path: pathlib.Path,
) -> None:
    # Given producers with a 2 s send timeout and a consumer
    # When the broker is killed -9 or SIGSTOPped past the timeout with requests in flight
    result = scenario("R22", tmp_path, send_timeout=2.0)
    # Then every send completed (ok / fail / info) within the timeout plus slack, nothing
    # acked was lost, and the consumer group drained after the heal
    assert result.report.latency.incomplete == []
    assert result.report.latency.max_seconds <= 3.5
    assert result.facts["faults"] >= 1


# -- replication (master + slave processes); skipped with the reason when the build lacks HA --


def test_r9_sync_master_killed_fails_over_without_loss(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER and its slave (controller in the name server), producers, consumers
    # When the master is killed -9 (and later restarted: it rejoins as a slave)
    result = scenario("R9", tmp_path)
    # Then the slave is promoted, writes resume within the bound, every PUT_OK is in the new
    # master's log, and every replica's log equals the master's
    assert result.facts["faults"] >= 1
    assert all(r is not None for r in result.facts["rto_s"])


def test_r10_async_master_killed_loses_only_the_replication_tail(tmp_path: pathlib.Path) -> None:
    # Given an ASYNC_MASTER and its slave
    # When the master is killed -9 and the slave promoted
    result = scenario("R10", tmp_path)
    # Then acked values are lost only after each writer's last surviving value before the kill
    # (counted), the old master's suffix never shows at an offset, offsets stay contiguous
    assert "lost_postfix" in result.facts


def test_r11_paused_master_is_fenced_after_failover(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER and its slave
    # When the master is SIGSTOPped past the lease and election, then resumed (a zombie)
    result = scenario("R11", tmp_path)
    # Then nothing it acknowledged is lost, it acks nothing once resumed, and it rejoins with
    # the new master's log
    assert result.facts["zombie_oks_right_after_resume"] == 0


def test_r12_replication_partition_stops_put_ok(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER whose slave replicates through a proxy
    # When the replication link is blackholed or reset for a few seconds
    result = scenario("R12", tmp_path)
    # Then no send invoked during the partition is acked (FLUSH_SLAVE_TIMEOUT or
    # SLAVE_NOT_AVAILABLE instead, within slaveTimeout), consumers never read those records
    # before the heal, and nothing acked is lost afterwards
    statuses = result.facts["statuses"]
    assert statuses.get("status:SEND_OK", 0) > 0
    assert (
        statuses.get("status:FLUSH_SLAVE_TIMEOUT", 0)
        + statuses.get("status:SLAVE_NOT_AVAILABLE", 0)
        > 0
    )


def test_r13_slave_crash_and_restart_catches_up_without_gap(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER and its slave
    # When the slave is killed -9 and restarted during sends
    result = scenario("R13", tmp_path)
    # Then the slave's log equals the master's (no gap, no duplicate offset), nothing acked lost
    assert result.facts["replicas_checked"] == 2
