"""``bench latency`` against a cluster of two broker groups (the ``2m-noslave`` profile): the
bench creates its topic on every master before its consumer starts, so the consumer
(ConsumeFrom.LAST) receives every message, not only those of the group the first send chose."""

from __future__ import annotations

import pathlib

import pytest

from actors.client import Admin
from tests.harness import RuntimeProcess
from tests.integration.test_bench_smoke import summary

pytestmark = pytest.mark.timeout(120)


def test_latency_benchmark_receives_every_message_from_two_groups(tmp_path: pathlib.Path) -> None:
    # Given a cluster of two master groups, and a topic no broker has yet
    args = ["cluster", "--profile", "2m-noslave", "--ephemeral-ports", "--data-dir", str(tmp_path)]
    with RuntimeProcess(args) as node:
        namesrv = node.wait_ready()["namesrv"]
        # When the latency benchmark runs 1 s at 100 msg/s against it
        bench = ["--namesrv", namesrv, "--topic", "BenchTwoGroups", "--rate", "100"]
        result = summary(["-m", "runtime", "bench", "latency", *bench, "--seconds", "1"])
        # Then the consumer received every measured message
        assert result["sent"] == 100 and result["received"] == 100
        # and the topic is on both groups
        with Admin(namesrv=namesrv) as admin:
            route = admin.topic_route("BenchTwoGroups")
        assert {q.broker_name for q in route.queue_datas} == {"broker-a", "broker-b"}
        assert node.terminate() == 0, node.stderr_text()
