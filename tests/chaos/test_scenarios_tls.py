"""Two chaos scenarios over TLS (``tests/chaos/transport.py``): the whole cluster enforcing TLS,
every client of the harness connecting over it, one fast seed each for CI. Longer runs:

    python -m tests.chaos.soak --scenario R9 --seconds 300 --seeds 1,2,3 --tls
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.chaos import transport
from tests.chaos.test_scenarios import SECONDS, faults, scenario
from tests.tls_support import needs_openssl

pytestmark = [needs_openssl, pytest.mark.serial, pytest.mark.timeout(90 + 3 * SECONDS)]


@pytest.fixture(autouse=True)
def over_tls(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(transport.ENV, str(transport.setup(tmp_path / "tls")))
    yield


def test_r9_failover_over_tls(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER and its slave enforcing TLS (registrations, the controller's
    # requests and every client over TLS; replication plain)
    # When the master is killed -9, the slave promoted, the old master restarted as a slave
    result = scenario("R9", tmp_path)
    # Then the scenario's criteria hold as in plain TCP: nothing acked is lost, writes resume
    # within the bound, the replicas agree
    assert faults(result, "kill-master") >= 1
    assert result.report.total.acked > 0


def test_r16_consumer_processes_over_tls(tmp_path: pathlib.Path) -> None:
    # Given a group of consumer processes (push and lite pull) reading over TLS
    # When consumers are killed -9 and restarted (new TLS sessions, rebalances)
    result = scenario("R16", tmp_path)
    # Then the group read every acked value and no consumer skipped an offset
    assert faults(result, "crash-consumer") >= 1
    assert result.facts["offset_probes"] > 0
