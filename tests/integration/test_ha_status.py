"""Replication seen from outside: GET_BROKER_HA_STATUS (``admin haStatus``, mqadmin's), the
HA gauges of the metrics endpoint and the (empty) epoch cache, on a real SYNC_MASTER + SLAVE
group without a controller."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import Admin, Message, Producer, SendStatus
from tests import forked_cli
from tests.client_support import wait_until
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(90)

REPO = pathlib.Path(__file__).resolve().parents[2]
PROFILE = """
[[namesrv]]
listenPort = 9876

[[broker]]
brokerName = "broker-a"
brokerId = 0
brokerRole = "SYNC_MASTER"
listenPort = 10911
haListenPort = 10912
metricsExporterType = "PROM"

[[broker]]
brokerName = "broker-a"
brokerId = 1
brokerRole = "SLAVE"
listenPort = 10921
haListenPort = 10922
metricsExporterType = "PROM"
"""


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("ha-status")
    profile = root / "sync.toml"
    profile.write_text(PROFILE)
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as node:
        addresses = node.wait_ready(timeout=30)
        yield addresses
        assert node.terminate() == 0, node.stderr_text()


def _in_sync(admin: Admin, master: str) -> bool:
    info = admin.ha_status(master)
    return info.in_sync_slave_nums == 1


def test_a_master_and_its_slave_report_their_link(group: dict[str, str]) -> None:
    master, slave = group["broker-a/0"], group["broker-a/1"]
    with Admin(group["namesrv"]) as admin:
        wait_until(lambda: _in_sync(admin, master), timeout=30, what="the slave in sync")
        # Given messages stored on the master (SYNC_MASTER: acknowledged once the slave has them)
        with Producer("ha-status-producer", namesrv=group["namesrv"]) as producer:
            for i in range(5):
                sent = producer.send(Message("HaStatusTopic", b"replicated %d" % i))
                assert sent.status is SendStatus.SEND_OK
        # When the master is asked, Then its one slave is in sync, holding the whole log (the
        # slave's last ack may trail a write the broker made itself by a moment)
        wait_until(lambda: admin.ha_status(master).ha_connection_info[0].diff == 0, timeout=10)
        info = admin.ha_status(master)
        assert info.master and info.in_sync_slave_nums == 1
        [link] = info.ha_connection_info
        assert link.in_sync and link.addr.startswith("127.0.0.1:")
        assert link.slave_ack_offset == info.master_commit_log_max_offset > 0
        assert link.diff == 0 and 0 <= link.transfer_from_where <= link.slave_ack_offset
        # And the slave names its master's HA port, its log's end the master's, a recent read
        seen = admin.ha_status(slave)
        client = seen.ha_client_runtime_info
        assert not seen.master and client.activated
        assert client.master_addr.startswith("127.0.0.1:")
        assert client.max_offset == info.master_commit_log_max_offset
        assert client.last_read_timestamp > 0 and client.last_write_timestamp > 0


def test_the_admin_command_prints_mqadmins_lines(group: dict[str, str]) -> None:
    # Given the group in sync
    with Admin(group["namesrv"]) as admin:
        wait_until(lambda: _in_sync(admin, group["broker-a/0"]), timeout=30, what="in sync")
    # When haStatus is asked for the cluster's masters and for the slave
    command = [sys.executable, "-m", "runtime", "admin", "haStatus", "-n", group["namesrv"]]
    masters = _run([*command, "-c", "DefaultCluster"])
    slave = _run([*command, "-b", group["broker-a/1"]])
    # Then the master's lines list its slave in sync, the slave's its master and reads
    assert f"#MasterAddr\t{group['broker-a/0']}" in masters
    assert "#SlaveNum\t1" in masters and "#InSyncSlaveNum\t1" in masters
    assert any(line.split()[-2:-1] == ["OK"] for line in masters)
    assert "#Linked\tyes" in slave
    assert any(line.startswith("#LastReadTime\t20") for line in slave)


def _run(command: list[str]) -> list[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_metrics_show_the_slaves_lag_and_the_link(group: dict[str, str]) -> None:
    with Admin(group["namesrv"]) as admin:
        wait_until(lambda: _in_sync(admin, group["broker-a/0"]), timeout=30, what="in sync")
    # When both brokers' metrics are scraped
    master = _scrape(group["metrics@broker-a/0"])
    slave = _scrape(group["metrics@broker-a/1"])
    # Then the master counts one slave in sync and how far behind it is, the slave its link
    assert _value(master, "actormq_ha_in_sync_slaves") == 1
    assert _value(master, "actormq_ha_slave_behind_bytes", 'slave_id="1"') >= 0
    assert _value(slave, "actormq_ha_master_link_up") == 1


def _scrape(address: str) -> list[str]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        return str(response.read().decode()).splitlines()


def _value(lines: list[str], name: str, label: str = "") -> Any:
    for line in lines:
        if line.startswith(name + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {label} in the scrape")


def test_without_a_controller_epochs_are_empty_and_the_controller_commands_say_why(
    group: dict[str, str],
) -> None:
    # Given classic master/slave replication (no controller mode)
    with Admin(group["namesrv"]) as admin:
        # Then a broker's epoch file is empty (no terms), its log's end still reported
        cache = admin.broker_epoch_cache(group["broker-a/0"])
        assert (cache.cluster_name, cache.broker_name, cache.broker_id) == (
            "DefaultCluster",
            "broker-a",
            0,
        )
        assert cache.epoch_list == [] and cache.max_offset >= 0
    # And the controller's commands say that this name server runs none
    shown = forked_cli.run(["admin", "getSyncStateSet", "-n", group["namesrv"], "-b", "broker-a"])
    assert shown.returncode == 1 and "runs no controller" in shown.stderr
