"""The benchmark commands run end to end (their figures are not checked: speed is measured by
hand, see docs/benchmarks.md). Each spawns its own ``python -m runtime``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness import REPO
from tests.tls_support import needs_openssl

pytestmark = pytest.mark.timeout(90)


def summary(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=80
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY ")]
    assert lines, proc.stdout[-2000:]
    return json.loads(lines[-1].removeprefix("SUMMARY "))


def test_client_produce_benchmark_reports_sends() -> None:
    # When the sync-produce benchmark runs for 0.3 s against a spawned cluster (long enough for
    # hundreds of sends: the figures are not checked, only that it sends and counts)
    result = summary(["-m", "runtime", "bench", "produce", "--spawn", "async", "--seconds", "0.3"])
    # Then it sent messages and none failed, and reports the machine's load at the start and
    # the CPU per message of the client and of the spawned broker
    assert result["messages"] > 0 and result["failed"] == 0
    assert isinstance(result["load_1m_at_start"], float)
    assert result["client_cpu_us_per_msg"] > 0 and result["broker_cpu_us_per_msg"] >= 0
    assert result["client_gc"] == "default"


def test_async_produce_benchmark_with_auto_batch_reports_sends() -> None:
    # When the produce benchmark sends asynchronously, auto batched, from two threads, 0.3 s
    args = ["--async", "--auto-batch", "--threads", "2", "--seconds", "0.3", "--gc-settle"]
    result = summary(["-m", "bench.client_bench", "produce", "--spawn", "async", *args])
    # Then it counted answered sends, none failed, and says how it sent them
    assert result["messages"] > 0 and result["failed"] == 0
    assert result["auto_batch"] is True and result["use_async"] is True
    assert result["threads"] == 2 and result["max_async_sends"] == 128
    assert result["client_gc"] == "settled"


@needs_openssl
def test_produce_benchmark_over_tls_reports_sends() -> None:
    # Given a spawned cluster enforcing TLS, When the benchmark sends over TLS, Then it stores
    args = ["--spawn", "async", "--tls", "--seconds", "0.3"]
    result = summary(["-m", "runtime", "bench", "produce", *args])
    assert result["messages"] > 0 and result["failed"] == 0
    assert result["cluster"] == "spawned ASYNC_FLUSH TLS"


def test_raw_broker_send_benchmark_reports_successes() -> None:
    # When the raw send-path benchmark sends batches for 0.3 s
    result = summary(["bench/broker_send.py", "--seconds", "0.3", "--batch", "10"])
    # Then every reply was SUCCESS (code 0)
    codes = result["codes"]
    assert isinstance(codes, dict) and set(codes) == {"0"} and result["sends"] > 0


@pytest.mark.parametrize("options", [[], ["--pacing", "precise", "--stamp", "due", "--runs", "2"]])
def test_latency_benchmark_reports_warmup_apart(options: list[str]) -> None:
    # When the latency benchmark runs 0.2 s of warm-up and 0.5 s measured at 400 msg/s
    args = ["--rate", "400", "--seconds", "0.5", "--warmup", "0.2", *options]
    result = summary(["-m", "runtime", "bench", "latency", "--spawn", "async", *args])
    # Then every measured message arrived, and the warm-up ones were counted apart
    assert result["sent"] == 200 and result["received"] == 200
    assert result["warmup_received"] == 80
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p99"]
    # and the producer's own lateness and each process's CPU are reported
    assert result["producer_late_ms_p50"] >= 0
    assert result["producer_cpu_us_per_msg"] > 0 and result["broker_cpu_us_per_msg"] > 0
    # and with --runs, every run's figures (the summary's own are the last run's)
    runs = 2 if "--runs" in options else 1
    assert result["runs"] == runs and len(result["runs_latency_ms_p99"]) == runs
    assert result["runs_latency_ms_p99"][-1] == result["latency_ms_p99"]


def test_client_benchmark_runs_against_the_null_broker() -> None:
    # Given the store-nothing server of bench/null_broker.py
    server = subprocess.Popen(
        [sys.executable, "bench/null_broker.py", "--seconds", "60"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert ready.startswith("ready namesrv="), ready
        namesrv = ready.strip().partition("=")[2]
        # When the sync-produce benchmark runs 0.3 s against it
        result = summary(
            ["-m", "runtime", "bench", "produce", "--namesrv", namesrv, "--seconds", "0.3"]
        )
        # Then every send got SEND_OK
        assert result["messages"] > 0 and result["failed"] == 0
    finally:
        server.terminate()
        server.wait(10)


def _available(server: str, client: str) -> bool:
    import importlib.util
    import shutil

    return shutil.which(server) is not None and importlib.util.find_spec(client) is not None


PEERS = [
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(
            not _available("redis-server", "redis"), reason="needs redis-server and redis-py"
        ),
    ),
    pytest.param(
        "nats",
        marks=pytest.mark.skipif(
            not _available("nats-server", "nats"), reason="needs nats-server and nats-py"
        ),
    ),
]


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize(
    "bench",
    [
        ["produce", "--seconds", "0.5"],
        ["batch", "--seconds", "0.5", "--batch", "10"],
        ["consume", "--messages", "500"],
        ["latency", "--rate", "400", "--seconds", "0.5", "--warmup", "0.2"],
    ],
)
def test_peer_benchmark_mirrors_ours(peer: str, bench: list[str]) -> None:
    # When a peer's baseline (bench-only clients) runs one of the four measurements against a
    # server of its own
    result = summary([f"bench/peer_{peer}.py", *bench])
    # Then it counted what it did the way ours does
    if bench[0] == "latency":
        assert result["received"] == 200 and result["warmup_received"] == 80
        assert 0 < result["latency_ms_p50"] <= result["latency_ms_p99"]
        assert result["server_cpu_us_per_msg"] > 0
    elif bench[0] == "consume":
        assert result["messages"] == 500
        # everything read was acknowledged
        assert result.get("pending_after", 0) == 0 and result.get("ack_floor", 500) == 500
    else:
        assert result["messages"] > 0 and result["failed"] == 0
