"""R28 for CI: kill -9 the master together with one of its two slaves under load, on a
SYNC_MASTER group with allAckInSyncStateSet (``tests.chaos.scenarios_double``); one fast seed,
as ``test_scenarios.py``'s."""

from __future__ import annotations

import pathlib

import pytest

from tests.chaos.test_scenarios import SECONDS, scenario

pytestmark = [pytest.mark.serial, pytest.mark.timeout(120 + 3 * SECONDS)]


def test_r28_losing_the_master_and_a_slave_together_loses_nothing_with_all_acks(
    tmp_path: pathlib.Path,
) -> None:
    # Given a SYNC_MASTER, two slaves, every in-sync slave's ack required for SEND_OK
    # When the master and one slave are killed at once (both slaves in sync before each)
    result = scenario("R28", tmp_path, seconds=max(SECONDS, 8.0))
    # Then the other slave is elected holding every acknowledged message: none lost
    assert all(result.facts["both_in_sync_before_each_fault"])
    assert result.report.total.acked > 0 and not result.report.total.lost
