"""R26 for CI: planned switchovers (electMaster) back and forth under load on an ASYNC_MASTER
group (``tests.chaos.scenarios_switchover``); one fast seed, as ``test_scenarios.py``'s."""

from __future__ import annotations

import pathlib

import pytest

from tests.chaos.test_scenarios import SECONDS, faults, scenario

pytestmark = [pytest.mark.serial, pytest.mark.timeout(120 + 3 * SECONDS)]


def test_r26_planned_switchovers_lose_nothing_even_under_async_master(
    tmp_path: pathlib.Path,
) -> None:
    # Given an ASYNC_MASTER and its slave (controller in the name server), producers, consumers
    # When the operator hands the group to the other node every few seconds (electMaster)
    result = scenario("R26", tmp_path)
    # Then each switchover elects its target, and every PUT_OK is in the final master's log
    # (no lag window lost, unlike a kill), read by the consumers; the replicas' logs are equal
    assert faults(result, "switchover") >= 1
    assert result.report.total.acked > 0 and not result.report.total.lost
