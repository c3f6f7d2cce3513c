"""``python -m runtime`` as a real process: ready line, clean shutdown, refusals."""

from __future__ import annotations

import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.harness import REPO, RuntimeProcess

pytestmark = pytest.mark.timeout(60)


def connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def test_default_cluster_is_ready_fast_accepts_and_exits_zero_on_sigterm(
    tmp_path: pathlib.Path,
) -> None:
    # Given the default profile on free ports
    started = time.monotonic()
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path)]) as node:
        addresses = node.wait_ready()
        elapsed = time.monotonic() - started
        # Then one ready line names the name server and the master broker
        assert set(addresses) >= {"namesrv", "broker-a/0", "data"}, node.ready_line
        assert elapsed < 10, f"ready after {elapsed:.1f}s"
        # And both listeners accept TCP connections
        for key in ("namesrv", "broker-a/0"):
            connect(addresses[key]).close()
        # When SIGTERM arrives, Then it shuts down cleanly with exit code 0
        assert node.terminate() == 0, node.stderr_text()


def test_sigint_also_exits_zero(tmp_path: pathlib.Path) -> None:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path)]) as node:
        node.wait_ready()
        node.signal(signal.SIGINT)
        assert node.wait() == 0, node.stderr_text()


def test_second_process_on_same_data_dir_refuses(tmp_path: pathlib.Path) -> None:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path)]) as first:
        first.wait_ready()
        # When a second process uses the same data dir
        second = RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path)])
        code = second.wait()
        # Then it refuses with a clear message naming the directory and the holder
        assert code == 2
        assert "in use by another process" in second.stderr_text()
        assert str(tmp_path) in second.stderr_text()
        assert first.proc.poll() is None
        assert first.terminate() == 0


def test_port_in_use_is_reported_with_the_address(tmp_path: pathlib.Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        node = RuntimeProcess(["namesrv", "--listen-port", str(port)])
        assert node.wait() == 2
        assert f"127.0.0.1:{port}" in node.stderr_text()
        assert "address already in use" in node.stderr_text()
    finally:
        blocker.close()


@pytest.mark.parametrize("profile", ["2m-noslave", "2m-2s-async", "2m-2s-sync"])
def test_shipped_profiles_start(profile: str, tmp_path: pathlib.Path) -> None:
    args = ["cluster", "--profile", profile, "--ephemeral-ports", "--data-dir", str(tmp_path)]
    with RuntimeProcess(args) as node:
        addresses = node.wait_ready()
        brokers = [k for k in addresses if "/" in k]
        assert len(brokers) == (2 if profile == "2m-noslave" else 4), node.ready_line
        for key in brokers:
            connect(addresses[key]).close()
        assert node.terminate() == 0, node.stderr_text()
        # Each broker got its own store directory under the data dir
        assert {p.name for p in tmp_path.iterdir() if p.is_dir()} >= {"broker-a-0", "broker-b-0"}


def test_separate_namesrv_and_broker_processes(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "broker.properties"
    conf.write_text("brokerClusterName=DefaultCluster\nbrokerName=broker-x\nbrokerId=0\n")
    with RuntimeProcess(["namesrv", "--ephemeral-ports"]) as namesrv:
        ns = namesrv.wait_ready()["namesrv"]
        with RuntimeProcess(
            [
                "broker",
                "-c",
                str(conf),
                "--namesrv-addr",
                ns,
                "--ephemeral-ports",
                "--data-dir",
                str(tmp_path / "store"),
            ]
        ) as broker:
            addresses = broker.wait_ready()
            assert "broker-x/0" in addresses
            assert broker.terminate() == 0, broker.stderr_text()
        assert namesrv.terminate() == 0


def test_config_mistake_names_file_key_and_problem(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "bad.properties"
    conf.write_text("brokerName=broker-x\nbrokerRole=MASTERX\n")
    node = RuntimeProcess(["broker", "-c", str(conf), "--ephemeral-ports"])
    assert node.wait() == 2
    err = node.stderr_text()
    assert "bad.properties" in err and "brokerRole" in err and "MASTERX" in err


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "runtime", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for word in ("cluster", "namesrv", "broker", "--data-dir", "--log-level"):
        assert word in out
