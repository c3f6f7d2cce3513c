"""Smoke test: every example runs against a real ``python -m runtime`` and exits 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.harness import REPO, RuntimeProcess

pytestmark = pytest.mark.timeout(180)

TOPIC = "ExampleSmoke"


@pytest.fixture(scope="module")
def namesrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("examples")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()["namesrv"]
        assert node.terminate() == 0, node.stderr_text()


def run_example(namesrv: str, script: str, *args: str, timeout: float = 90) -> str:
    env = dict(os.environ, NAMESRV_ADDR=namesrv, HOME=os.environ.get("HOME", "/tmp"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def received(out: str) -> int:
    match = re.search(r"received (\d+) message", out)
    assert match, out
    return int(match.group(1))


def test_producer_then_consumers(namesrv: str, tmp_path) -> None:
    # Given the producer example sent 5 messages each way (sync, async, oneway, batch)
    out = run_example(namesrv, "producer.py", "--topic", TOPIC, "--count", "5")
    assert out.count("sync ") == 5 and "async: 5/5 stored" in out
    assert "oneway: 5 written" in out and "batch: SEND_OK 5 messages" in out
    # Then the push consumer example receives them (20 in all), filtering works by tag
    out = run_example(namesrv, "push_consumer.py", "--topic", TOPIC, "--count", "20")
    assert received(out) == 20
    out = run_example(
        namesrv,
        "push_consumer.py",
        "--topic",
        TOPIC,
        "--count",
        "5",
        "--tags",
        "batch",
        "--group",
        "example-batch-only",
    )
    assert "tags=batch" in out and "tags=sync" not in out
    # And the lite pull consumer polls, commits, seeks back
    out = run_example(namesrv, "pull_consumer.py", "--topic", TOPIC, "--count", "20")
    assert re.search(r"polled 2\d message", out) and "after seek:" in out
    # And two broadcast consumers each get everything
    for name in ("a", "b"):
        out = run_example(
            namesrv,
            "broadcast_consumer.py",
            "--topic",
            TOPIC,
            "--count",
            "20",
            "--instance",
            name,
            "--offset-dir",
            str(tmp_path),
        )
        assert received(out) >= 20
    assert sorted(p.parent.parent.name.split("@")[1] for p in tmp_path.rglob("offsets.json")) == [
        "a",
        "b",
    ]


def test_ordered_producer_keeps_each_order_on_one_queue(namesrv: str) -> None:
    out = run_example(namesrv, "ordered_producer.py", "--topic", "ExampleOrders", "--count", "4")
    assert out.count("4 steps on") == 4
