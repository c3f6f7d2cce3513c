"""R20, clock jumps and strobing (``scenarios_clock.py``): one fast seed for CI, like
``test_scenarios.py``; the clock shim is checked on a plain Python process.

Longer runs:

    CHAOS_SECONDS=60 CHAOS_SEED=7 pytest tests/chaos/test_scenarios_clock.py -k r20
    python -m tests.chaos.soak --scenario R20 --seconds 120 --seeds 1,2,3
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pytest

from tests.chaos.clock import ClockShift
from tests.chaos.test_scenarios import SECONDS, faults, scenario

pytestmark = pytest.mark.serial

PROBE = "import time; print(time.time(), time.monotonic())"


def test_the_shim_shifts_only_the_wall_clock_of_the_nodes_it_is_given_to(
    tmp_path: pathlib.Path,
) -> None:
    # Given a node's clock file stepped back by ten minutes
    shift = ClockShift(tmp_path)
    env = shift.env_for("node")
    shift.set("node", -600.0)
    # When a Python process started with the node's environment reads its clocks
    before = time.time()
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    after = time.time()
    wall, mono = float(out[0]), float(out[1])
    # Then its wall clock is ten minutes behind and its monotonic clock is the machine's
    assert before - 600 - 1 <= wall <= after - 600 + 1
    assert abs(mono - time.monotonic()) < 30


@pytest.mark.timeout(120 + 3 * SECONDS)
def test_r20_clock_jumps_and_strobes_cause_no_failover_and_no_loss(tmp_path: pathlib.Path) -> None:
    # Given a controller-mode SYNC_MASTER and its slave under load, every node's wall clock
    # under the harness's control
    # When clocks jump ±10 min and strobe on the controller, the master and the slave, and
    # the slave is then killed -9 and restarted
    result = scenario("R20", tmp_path)
    # Then nothing acked is lost, nothing failed, no failover happened, the slave stayed in
    # sync, and every replica's log equals the master's (the verdict)
    assert faults(result, "clock-jump") + faults(result, "clock-strobe") >= 3
    assert result.facts["replicas_checked"] == 2
