"""How a process's stop ends: exit 0 when every part stopped, 1 when one did not in time."""

from __future__ import annotations

import pytest

from tests.actors.ha_support import start_namesrv

pytestmark = pytest.mark.timeout(20)


def test_a_clean_stop_exits_0() -> None:
    node = start_namesrv()
    node.stop()
    assert node.run() == 0
    assert node.directory.stop_timeouts == []


def test_a_part_that_did_not_stop_in_time_makes_the_process_exit_1() -> None:
    # Given a running process, one of whose supervisors recorded a child that did not stop
    # within its shutdown timeout (test_supervisor shows that supervisors record it)
    node = start_namesrv()
    node.directory.stop_timeouts.append("broker-a/0/store/dispatcher")
    # When the process stops
    node.stop()
    # Then it exits 1, not 0
    assert node.run() == 1
