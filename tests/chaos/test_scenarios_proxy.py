"""R24 for CI: RocketMQ 5's gRPC clients through a standalone proxy while the broker is killed
(``tests.chaos.scenarios_proxy``); one fast seed, as ``test_scenarios.py``'s."""

from __future__ import annotations

import pathlib

import pytest

from tests.chaos.test_scenarios import SECONDS, faults, scenario

pytestmark = [pytest.mark.serial, pytest.mark.timeout(120 + 3 * SECONDS)]


def test_r24_grpc_clients_through_the_proxy_lose_nothing_when_the_broker_dies(
    tmp_path: pathlib.Path,
) -> None:
    # Given gRPC producers and a gRPC simple consumer (receive + ack) through a proxy
    # When the broker is killed -9 and restarted every few seconds
    result = scenario("R24", tmp_path)
    # Then every send answered OK is in the final log and reached the gRPC consumer, and
    # nothing it read was never sent
    assert faults(result, "kill") >= 1
    assert result.report.total.acked > 0
    assert not result.report.total.lost and not result.report.total.unexpected
