"""R14 and R14-classic for CI: the master's machine loses power while its in-sync slave is
down, and the master comes back first, short of what it acknowledged
(``tests.chaos.scenarios_power``); one fast seed each, as ``test_scenarios.py``'s."""

from __future__ import annotations

import pathlib

import pytest

from tests.chaos.test_scenarios import SECONDS, scenario

pytestmark = [pytest.mark.serial, pytest.mark.timeout(180 + 3 * SECONDS)]


def test_r14_a_master_back_from_a_power_loss_is_not_elected_over_its_slave(
    tmp_path: pathlib.Path,
) -> None:
    # Given a SYNC_MASTER (ASYNC_FLUSH) and its slave under load
    # When both die, the master's unflushed tail is cut and its machine "rebooted", and the
    # master restarts alone before the slave
    result = scenario("R14", tmp_path, seconds=max(SECONDS, 8.0))
    # Then the short master is never listed while the slave is away, the slave is elected on
    # its return, and every acknowledged message is read (no truncation off the slave)
    assert result.facts["short_master_listed"] and not any(result.facts["short_master_listed"])
    assert result.report.total.acked > 0 and not result.report.total.lost


def test_r14_classic_a_master_back_from_a_power_loss_reconciles_from_its_slave(
    tmp_path: pathlib.Path,
) -> None:
    # Given a classic SYNC_MASTER (ASYNC_FLUSH, no controller) and its slave under load
    # When both die, the master's unflushed tail is cut and its machine "rebooted", and the
    # master runs alone for a while before the slave returns
    result = scenario("R14-classic", tmp_path, seconds=max(SECONDS, 8.0))
    # Then the short master acknowledges nothing while alone, takes writes again once it has
    # fetched the slave's tail, and every acknowledged message is read from both replicas
    assert result.facts["acked_while_alone"] == 0
    assert result.facts["resumed_after_slave_s"]
    assert result.report.total.acked > 0 and not result.report.total.lost
