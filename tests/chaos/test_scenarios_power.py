"""R14 for CI: the master's machine loses power while its in-sync slave is down, and the
master comes back first, short of what it acknowledged (``tests.chaos.scenarios_power``); one
fast seed, as ``test_scenarios.py``'s."""

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
