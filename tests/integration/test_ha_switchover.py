"""A planned switchover across processes (mqadmin electMaster) in controller mode, with the
shipped ``2m-2s-async`` files: while a producer keeps sending, the operator makes the slave
master; the old master's lease runs out, the slave takes over once it holds everything, the
old master rejoins as its slave, and no acknowledged message is lost even under ASYNC_MASTER.
The controller's view (getSyncStateSet, getControllerMetaData) and the brokers' epoch files
(getBrokerEpoch) are read with the command line before and after."""

from __future__ import annotations

import pathlib
import re
import subprocess
import time

import pytest

from actors.client import Admin, BrokerError, Producer
from runtime.remoting.codes import ResponseCode
from tests import forked_cli
from tests.client_support import wait_until
from tests.integration.test_ha_process import (  # noqa: F401 (clusters: a fixture)
    Cluster,
    Workload,
    clusters,
    read_all,
    start_group,
)

pytestmark = pytest.mark.timeout(120)


def mqadmin(namesrv: str, *args: str) -> subprocess.CompletedProcess[str]:
    return forked_cli.run(["admin", args[0], "-n", namesrv, *args[1:]], timeout=60)


def fields(text: str) -> dict[str, list[str]]:
    """``#Key\\tvalue`` lines as key -> values (in order)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("\t")
        if sep:
            out.setdefault(key, []).append(value)
    return out


def test_elect_master_hands_over_to_the_slave_without_losing_an_ack(
    tmp_path: pathlib.Path,
    clusters: list[Cluster],  # noqa: F811 (the fixture)
) -> None:
    # Given an ASYNC_MASTER (node 0) and its in-sync slave (node 1) under a steady producer
    c, master, master_addr = start_group(tmp_path, "2m-2s-async", clusters)
    slave = c.procs[2]
    slave_addr = slave.addresses["broker-a/1"]
    before = mqadmin(c.namesrv, "getSyncStateSet", "-b", "broker-a")
    assert before.returncode == 0, before.stderr
    seen = fields(before.stdout)
    assert seen["#MasterBrokerId"] == ["0"] and seen["#MasterAddr"] == [master_addr]
    assert seen["#MasterEpoch"] == ["1"] and seen["#SyncStateSetNums"] == ["2"]
    assert f"brokerAddress='{slave_addr}', alive=true" in before.stdout
    meta = mqadmin(c.namesrv, "getControllerMetaData")
    assert fields(meta.stdout)["#ControllerLeaderAddress"] == [c.namesrv], meta.stderr
    producer = Producer("switch-pg", c.namesrv, send_timeout=2.0).start()
    load = Workload(producer)
    load.start()
    try:
        load.wait(lambda: load.ok_count() >= 200, 30, "200 acks before the switchover")
        # When the operator makes node 1 master
        asked_at = time.monotonic()
        shown = mqadmin(
            c.namesrv, "electMaster", "-c", "DefaultCluster", "-bn", "broker-a", "-b", "1"
        )
        # Then the answer names it, in epoch 2, once it is master
        assert shown.returncode == 0, shown.stderr
        answer = fields(shown.stdout)
        assert answer["#BrokerMasterAddr"] == [slave_addr] and answer["#MasterEpoch"] == ["2"]
        assert sorted(answer["#Broker"]) == sorted([f"0\t{master_addr}", f"1\t{slave_addr}"])
        print(f"\nelectMaster answered after {time.monotonic() - asked_at:.2f}s")
        slave.wait_line(r"master of epoch 2", 15)
        # And the old master rebuilds itself as the new master's slave
        master.wait_line(r"rebuilding this node as SLAVE", 15)
        c.ns.wait_line(r"broker-a in-sync set now \[0\] \(master 1, epoch 2\)", 30)
        # And SEND_OK comes back from the new master
        load.wait(
            lambda: sum(s.at > asked_at and s.status == "SEND_OK" for s in load.log) >= 50,
            30,
            "50 SEND_OK after the switchover",
        )
    finally:
        load.finish()
        producer.shutdown()
    # Then every acknowledged message is on the new master (ASYNC_MASTER, yet nothing lost)
    acked = {s.body for s in load.log if s.status == "SEND_OK"}
    read = read_all(slave_addr)
    assert acked <= set(read), f"lost: {sorted(acked - set(read))[:10]}"
    assert len(read) == len(set(read)), "a message stored twice"
    # And the controller and both epoch files tell the story
    after = fields(mqadmin(c.namesrv, "getSyncStateSet", "-c", "DefaultCluster").stdout)
    assert after["#MasterBrokerId"] == ["1"] and after["#MasterEpoch"] == ["2"]
    epochs = mqadmin(c.namesrv, "getBrokerEpoch", "-b", "broker-a")
    assert epochs.returncode == 0, epochs.stderr
    terms = re.findall(r"#Epoch: EpochEntry\{epoch=(\d+), startOffset=(\d+)", epochs.stdout)
    assert [t[0] for t in terms] == ["1", "2", "1", "2"], epochs.stdout
    assert terms[:2] == terms[2:]  # the same terms, the same start offsets on both


def test_elect_master_refusals_are_plain(
    tmp_path: pathlib.Path,
    clusters: list[Cluster],  # noqa: F811 (the fixture)
) -> None:
    c, _master, master_addr = start_group(tmp_path, "2m-2s-async", clusters)
    with Admin(c.namesrv) as admin:
        # A group the controller does not know, a broker id that is not alive
        for name, bid, code in (
            ("broker-z", 1, ResponseCode.CONTROLLER_BROKER_METADATA_NOT_EXIST),
            ("broker-a", 5, ResponseCode.CONTROLLER_BROKER_NOT_ALIVE),
            ("broker-a", None, ResponseCode.CONTROLLER_ELECT_MASTER_FAILED),
        ):
            with pytest.raises(BrokerError) as refused:
                admin.elect_master(c.namesrv, name, bid)
            assert refused.value.code == code, refused.value
        # The master itself: nothing to do, the answer says who it is
        same = admin.elect_master(c.namesrv, "broker-a", 0)
        assert same.header.master_address == master_addr and same.header.master_epoch == 1
    # On the command line: exit status 1 and the reason
    shown = mqadmin(c.namesrv, "electMaster", "-c", "DefaultCluster", "-bn", "broker-a", "-b", "5")
    assert shown.returncode == 1 and "not alive" in shown.stderr


def test_a_slave_taken_out_of_service_is_forgotten_on_request(
    tmp_path: pathlib.Path,
    clusters: list[Cluster],  # noqa: F811 (the fixture)
) -> None:
    # Given a master and its slave, the slave alive
    c, _master, _ = start_group(tmp_path, "2m-2s-async", clusters)
    slave = c.procs[2]
    clean = ["cleanBrokerMetadata", "-bn", "broker-a", "-b", "1", "-c", "DefaultCluster"]
    # When the operator asks the controller to forget it while it runs: refused (exit 1)
    refused = mqadmin(c.namesrv, *clean)
    assert refused.returncode == 1 and "alive" in refused.stderr
    # When the slave is taken out of service and has been silent for a lease
    slave.kill()
    with Admin(c.namesrv) as admin:
        wait_until(lambda: _listed_dead(admin, c.namesrv), timeout=20, what="the slave dead")
        # Then cleaning it succeeds, and the group lists the master alone
        done = mqadmin(c.namesrv, *clean)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "clear broker broker-a metadata from controller success!"
        info = admin.sync_state_set(c.namesrv, ["broker-a"]).replicas_info_table["broker-a"]
        members = info.in_sync_replicas + info.not_in_sync_replicas
        assert [m.broker_id for m in members] == [0]
    # And -c is needed unless -l, as in mqadmin (a usage error)
    assert mqadmin(c.namesrv, "cleanBrokerMetadata", "-bn", "broker-a").returncode == 2


def _listed_dead(admin: Admin, controller: str) -> bool:
    """The controller lists broker-a's slave (id 1) as not alive."""
    info = admin.sync_state_set(controller, ["broker-a"]).replicas_info_table["broker-a"]
    members = info.in_sync_replicas + info.not_in_sync_replicas
    return any(m.broker_id == 1 and not m.alive for m in members)
