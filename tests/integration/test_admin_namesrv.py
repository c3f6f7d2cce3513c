"""The name server's admin commands against a real ``python -m runtime`` process, through
``python -m runtime admin`` as an operator runs them: KV config (kept across a restart in the
data directory), order conf in routes (``orderMessageEnable``), a broker's write perm, the
clusters of a topic; exit codes and mqadmin's output lines."""

from __future__ import annotations

import json
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from actors.client import Admin, BrokerError
from runtime.remoting.codes import RequestCode
from tests import forked_cli
from tests.harness import RuntimeProcess
from tests.profiles import one_broker

pytestmark = pytest.mark.timeout(120)

PROFILE = one_broker(namesrv={"orderMessageEnable": True})


def start(root: pathlib.Path) -> RuntimeProcess:
    profile = root / "p.toml"
    profile.write_text(PROFILE)
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    return RuntimeProcess([*args, "--data-dir", str(root / "data")])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pathlib.Path]]:
    root = tmp_path_factory.mktemp("admin-namesrv")
    with start(root) as node:
        yield node.wait_ready()["namesrv"], root
        assert node.terminate() == 0, node.stderr_text()


def mqadmin(namesrv: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m runtime admin <command> -n <namesrv> <args>``, forked from a process that
    already imported the CLI (``tests.forked_cli``: the same exit code and output, ~0.35 s less
    a command)."""
    return forked_cli.run(["admin", args[0], "-n", namesrv, *args[1:]], timeout=60)


def test_kv_config_put_read_delete(cluster: tuple[str, pathlib.Path]) -> None:
    namesrv, root = cluster
    # Given a value put from the command line
    put = mqadmin(namesrv, "updateKvConfig", "-s", "ops", "-k", "owner", "-v", "team-a")
    assert put.returncode == 0, put.stderr
    assert put.stdout == "create or update kv config to namespace success.\n"
    # Then it reads back and is in the process's data directory, in RocketMQ's shape
    got = mqadmin(namesrv, "getKvConfig", "-s", "ops", "-k", "owner")
    assert got.stdout == "get kv config success, namespace: ops, key: owner, value: team-a.\n"
    kept = json.loads((root / "data" / "namesrv" / "kvConfig.json").read_text())
    assert kept["configTable"]["ops"] == {"owner": "team-a"}
    # When it is deleted
    gone = mqadmin(namesrv, "deleteKvConfig", "-s", "ops", "-k", "owner")
    assert (gone.returncode, gone.stdout) == (0, "delete kv config from namespace success.\n")
    # Then reading it fails with the name server's reason
    missing = mqadmin(namesrv, "getKvConfig", "-s", "ops", "-k", "owner")
    assert missing.returncode == 1
    assert "No config item, Namespace: ops Key: owner" in missing.stderr


def test_order_conf_reaches_the_topics_route(cluster: tuple[str, pathlib.Path]) -> None:
    namesrv, _root = cluster
    # Given an order conf put for the broker's TBW102 topic
    put = mqadmin(namesrv, "updateOrderConf", "-t", "TBW102", "-m", "put", "-v", "broker-a:4")
    assert put.returncode == 0, put.stderr
    assert put.stdout == "update orderConf success. topic=[TBW102], orderConf=[broker-a:4]\n"
    got = mqadmin(namesrv, "updateOrderConf", "-t", "TBW102", "-m", "get")
    assert got.stdout == "get orderConf success. topic=[TBW102], orderConf=[broker-a:4]\n"
    # Then the topic's route carries it (this name server has orderMessageEnable)
    route = mqadmin(namesrv, "topicRoute", "-t", "TBW102")
    assert json.loads(route.stdout)["orderTopicConf"] == "broker-a:4"
    # When it is deleted, Then the route has none
    gone = mqadmin(namesrv, "updateOrderConf", "-t", "TBW102", "-m", "delete")
    assert gone.stdout == "delete orderConf success. topic=[TBW102]\n"
    assert "orderTopicConf" not in json.loads(mqadmin(namesrv, "topicRoute", "-t", "TBW102").stdout)
    # And a put without a conf is a usage error
    assert mqadmin(namesrv, "updateOrderConf", "-t", "TBW102", "-m", "put").returncode == 2


def test_wipe_then_add_write_perm_of_a_broker(cluster: tuple[str, pathlib.Path]) -> None:
    namesrv, _root = cluster
    with Admin(namesrv) as admin:
        topics = admin.topics_by_cluster("DefaultCluster")
        assert "TBW102" in topics
        # When the broker's write perm is wiped
        wiped = mqadmin(namesrv, "wipeWritePerm", "-b", "broker-a")
        assert wiped.returncode == 0, wiped.stderr
        expected = f"wipe write perm of broker[broker-a] in name server[{namesrv}] OK, "
        assert wiped.stdout == f"{expected}{len(topics)}\n"
        # Then its routes lose the WRITE bit (TBW102: READ|WRITE|INHERIT 7 -> 5)
        assert admin.topic_route("TBW102").queue_datas[0].perm == 5
        # When it is added back
        added = mqadmin(namesrv, "addWritePerm", "-b", "broker-a")
        expected = f"add write perm of broker[broker-a] in name server[{namesrv}] OK, "
        assert added.stdout == f"{expected}{len(topics)}\n"
        # Then the routes are READ|WRITE (RocketMQ 5 sets 6, whatever the perm was)
        assert admin.topic_route("TBW102").queue_datas[0].perm == 6


def test_write_perm_reports_each_name_server_and_fails_when_one_does(
    cluster: tuple[str, pathlib.Path],
) -> None:
    namesrv, _root = cluster
    # Given a name server list whose second entry does not answer
    both = f"{namesrv};127.0.0.1:1"
    done = mqadmin(both, "addWritePerm", "-b", "broker-a")
    # Then each gets its line, and the command fails
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"add write perm of broker[broker-a] in name server[{namesrv}] OK")
    assert lines[1] == "add write perm of broker[broker-a] in name server[127.0.0.1:1] Failed"
    assert done.returncode == 1 and "127.0.0.1:1" in done.stderr


def test_topic_cluster_list(cluster: tuple[str, pathlib.Path]) -> None:
    namesrv, _root = cluster
    listed = mqadmin(namesrv, "topicClusterList", "-t", "TBW102")
    assert (listed.returncode, listed.stdout) == (0, "DefaultCluster\n")
    unknown = mqadmin(namesrv, "topicClusterList", "-t", "NoSuchTopic")
    assert unknown.returncode == 1 and "17" in unknown.stderr


def test_namesrv_config_is_read_and_not_changed_while_running(
    cluster: tuple[str, pathlib.Path],
) -> None:
    namesrv, _root = cluster
    # Given the running name server; When an admin asks its config (mqadmin getNamesrvConfig)
    shown = mqadmin(namesrv, "getNamesrvConfig")
    # Then it prints its keys under its address
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"============{namesrv}============"
    assert any(line.split()[0] == "orderMessageEnable" for line in lines[1:])
    with Admin(namesrv) as admin:
        # (the port it listens on, here an ephemeral one, not the profile's 9876)
        assert admin.namesrv_config()[namesrv]["listenPort"] == namesrv.rpartition(":")[2]
        # And a change is refused with the reason (the config is read at start)
        with pytest.raises(BrokerError, match="config file"):
            admin._namesrv(RequestCode.UPDATE_NAMESRV_CONFIG, {}, "update namesrv config")


def test_kv_config_outlives_the_process(tmp_path: pathlib.Path) -> None:
    # Given a value put in one process
    with start(tmp_path) as node:
        namesrv = node.wait_ready()["namesrv"]
        put = mqadmin(namesrv, "updateKvConfig", "-s", "ops", "-k", "owner", "-v", "team-b")
        assert put.returncode == 0, put.stderr
        assert node.terminate() == 0, node.stderr_text()
    # When the process starts again on the same data directory
    with start(tmp_path) as node:
        namesrv = node.wait_ready()["namesrv"]
        # Then the name server still has it
        got = mqadmin(namesrv, "getKvConfig", "-s", "ops", "-k", "owner")
        assert got.returncode == 0, got.stderr
        assert got.stdout == "get kv config success, namespace: ops, key: owner, value: team-b.\n"
        assert node.terminate() == 0, node.stderr_text()
