"""R15, replication membership changes under load (``scenarios_membership.py``): one fast
seed each for CI, like ``test_scenarios.py``; the log parsing the scenario relies on is
checked without processes.

Longer runs:

    CHAOS_SECONDS=60 CHAOS_SEED=7 pytest tests/chaos/test_scenarios_membership.py -k r15
    python -m tests.chaos.soak --scenario R15 --seconds 120 --seeds 1,2,3
"""

from __future__ import annotations

import pathlib

import pytest

from tests.chaos import membership_logs as L
from tests.chaos.history import load
from tests.chaos.scenarios import Result
from tests.chaos.test_scenarios import SECONDS, scenario

pytestmark = pytest.mark.serial
TIMEOUT = pytest.mark.timeout(120 + 3 * SECONDS)


def fault_kinds(result: Result) -> list[str]:
    return [
        str((e.data or {}).get("kind"))
        for e in load(result.history_path)
        if e.type == "event" and e.f == "fault"
    ]


@TIMEOUT
def test_r15_slaves_added_and_removed_under_load_lose_nothing(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER with a few MB in its log and its slave (controller mode), producers
    # and consumers under load
    # When slaves with new brokerIds and empty stores are added, the original slave and one
    # added slave are removed (one by SIGTERM, one by kill -9), and the master is killed -9
    result = scenario("R15", tmp_path)
    # Then each added slave caught up and joined the in-sync set, the election picked an added
    # one (the only in-sync slave left), nothing acked is lost, no offset holds two values, and
    # every live node's commit log is byte-identical to the final master's
    kinds = fault_kinds(result)
    assert kinds[:5] == ["add-slave", kinds[1], "add-slave", kinds[3], "kill-master"]
    assert {kinds[1], kinds[3]} == {"remove-slave-stop", "remove-slave-kill"}
    assert len(result.facts["joins"]) >= 2
    assert all(j["joined_s"] is not None for j in result.facts["joins"].values())
    assert result.facts["failover_elections"] >= 1
    assert result.facts["added_slaves_elected"] >= 1
    assert result.facts["replicas_checked"] >= 2


@TIMEOUT
def test_r15_replaced_slave_is_elected_only_once_caught_up(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER with a long log and its slave, producers and a consumer
    # When the slave's machine is replaced (same brokerId, empty store) and the master is
    # killed -9 the moment it counts the replacement in sync
    result = scenario("R15-replace", tmp_path)
    # Then the replacement is elected only once it holds the master's whole log: nothing
    # acknowledged is lost, no offset holds two values (R9's criteria, in the verdict)
    assert fault_kinds(result) == ["replace-slave", "kill-master"]
    assert result.facts["elections"][-1][0] == 1
    assert not result.verdict.known
    # (its log end and the master's are read one after the other while producers send: a few
    # records apart at most; the old bug had it join holding a tenth of the 50 MB log)
    at_join = result.facts["replacement_at_join"]
    assert at_join["replacement_log_end"] >= at_join["master_log_end"] - 1024 * 1024


# -- the log parsing (no processes) -------------------------------------------------------------

BROKER_LOG = [
    "2026-11-22 20:08:39.913 INFO    actors.broker.controller_client broker-a/0: master of "
    "epoch 1, lease held",
    "2026-11-22 20:08:40.159 INFO    actors.broker.ha_service broker-a/0/ha-service: slave 1 "
    "linked from offset 0",
    "2026-11-22 20:08:40.160 INFO    actors.broker.ha_service broker-a/0/ha-service: in-sync "
    "slaves now [1]",
    "Traceback (most recent call last):",
    "2026-11-22 20:08:43.565 INFO    actors.broker.ha_service broker-a/0/ha-service: slave 3 "
    "linked from offset 4096",
    "2026-11-22 20:08:43.900 INFO    actors.broker.ha_service broker-a/0/ha-service: in-sync "
    "slaves now [1, 3]",
]
CONTROLLER_LOG = [
    "2026-11-22 20:08:39.909 WARNING actors.namesrv.controller controller: broker-a elects 0 "
    "(offset 0) as master for epoch 1",
    "2026-11-22 20:08:43.901 INFO    actors.namesrv.controller controller: broker-a in-sync "
    "set now [1, 3] (master 0, epoch 1)",
    "2026-11-22 20:08:46.809 WARNING actors.namesrv.controller controller: broker-a elects 3 "
    "(offset 13376841) as master for epoch 2",
]


def test_current_in_sync_is_the_last_line_of_the_current_term() -> None:
    # Given a master's log
    # When it is read at different points
    # Then the in-sync set is the last one logged after the term's lease, none before a lease
    assert L.current_in_sync(BROKER_LOG) == frozenset({1, 3})
    assert L.current_in_sync(BROKER_LOG[:2]) == frozenset()
    assert L.current_in_sync(BROKER_LOG[1:3]) == frozenset({1})
    assert L.current_in_sync([]) is None


def test_join_and_elections_are_read_with_their_times() -> None:
    # Given the broker and controller logs of a run where slave 3 was added
    lines = L.parse(BROKER_LOG, "broker-a-0.1")
    controller = L.parse(CONTROLLER_LOG, "namesrv.1")
    since = lines[2].wall + 1.0
    # When slave 3's join and the elections are read
    join = L.join_of(lines, 3, since)
    elected = L.elections(controller)
    # Then the join is timed from the lines after its start, and both elections are found
    assert join.linked_from == 4096
    assert join.joined_wall is not None and join.linked_wall is not None
    assert round(join.joined_wall - join.linked_wall, 3) == 0.335
    assert L.join_of(lines, 4, since).joined_wall is None
    assert [(e.node, e.epoch, e.offset) for e in elected] == [(0, 1, 0), (3, 2, 13376841)]
    isr = L.controller_isr_joins(controller, 3, since)
    assert isr is not None and round(isr - join.joined_wall, 3) == 0.001
