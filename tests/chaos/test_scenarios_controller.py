"""R27 for CI: kill -9 the controller (the name server running it), alone and together with
the master, under load on a SYNC_MASTER group (``tests.chaos.scenarios_controller``); one fast
seed, as ``test_scenarios.py``'s."""

from __future__ import annotations

import pathlib

import pytest

from tests.chaos.test_scenarios import SECONDS, scenario

pytestmark = [pytest.mark.serial, pytest.mark.timeout(120 + 3 * SECONDS)]


def test_r27_killing_the_controller_loses_nothing_and_the_group_keeps_a_master(
    tmp_path: pathlib.Path,
) -> None:
    # Given a SYNC_MASTER and its slave (controller in the name server), producers, consumers
    # When the name server is killed and restarted, alone or with the master while it is down
    result = scenario("R27", tmp_path, seconds=max(SECONDS, 10.0))
    # Then after every fault a master is listed again (a restarted controller remembers the
    # group: it elects the slave when the master died meanwhile), and every PUT_OK is read
    kinds = result.facts["fault_kinds"]
    assert kinds[0] == "kill-controller-then-master", kinds
    assert result.report.total.acked > 0 and not result.report.total.lost
