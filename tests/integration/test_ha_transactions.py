"""Transactions across a failover, with the shipped 2m-2s-sync files (the controller in the name
server, a SYNC_MASTER and its slave, each its own process): a half message acknowledged by the
master is committed on the slave the controller promotes after the master's kill -9.

The slave copies the master's transaction table every 10 s (and when the master's topics
change), so half messages sent since its last copy were unknown to it once promoted: their
COMMIT was answered SUCCESS with nothing stored. The promoted node's TransactionManager reads
the log from the copy's ``scanFrom`` when it starts (docs/broker.md "Transactions")."""

from __future__ import annotations

import pathlib
import signal
import time

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.integration.test_broker_admin_codes import create_topic
from tests.integration.test_broker_transactions import send_half
from tests.integration.test_ha_process import Cluster, clusters, read_all, start_group
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(120)

__all__ = ["clusters"]  # (the fixture, used by name)

TOPIC = "HA-FAILOVER"
COMMIT = 8


def wait_topic(address: str, topic: str, timeout: float) -> None:
    """Until the broker at ``address`` has ``topic``'s config (a slave's copy)."""
    client = WireClient(address)
    deadline = time.monotonic() + timeout
    try:
        while client.call(RequestCode.GET_TOPIC_CONFIG, {"topic": topic}).code != 0:
            assert time.monotonic() < deadline, f"{topic} not on {address} in {timeout}s"
            time.sleep(0.05)  # (polling the slave's copy; no event to wait on across processes)
    finally:
        client.close()


def end(client: WireClient, offset: int, decision: int) -> int:
    ext = {
        "producerGroup": "tx-pg",
        "tranStateTableOffset": 0,
        "commitLogOffset": offset,
        "commitOrRollback": decision,
        "fromTransactionCheck": False,
        "msgId": "x",
    }
    return client.call(RequestCode.END_TRANSACTION, ext).code


def test_a_half_message_sent_just_before_a_failover_is_committed_on_the_new_master(
    tmp_path: pathlib.Path, clusters: list[Cluster]
) -> None:
    # Given a SYNC_MASTER group under the controller, a topic its slave has copied
    c, master, master_addr = start_group(tmp_path, "2m-2s-sync", clusters)
    slave_addr = c.procs[2].addresses["broker-a/1"]
    client = WireClient(master_addr)
    create_topic(client, TOPIC, 4)
    wait_topic(slave_addr, TOPIC, 20)
    # And three half messages acknowledged by the master (so held by its slave), seconds
    # before the failover: after the slave's last copy of the transaction table
    halves = [send_half(client, TOPIC, "tx-pg", f"tx-{i}".encode(), f"u{i}") for i in range(3)]
    client.close()
    # When the master is killed and the slave promoted
    master.signal(signal.SIGKILL)
    master.wait(10)
    c.procs[2].wait_line(r"master of epoch 2", 20)
    # Then the producer's commits, sent to the new master, are stored
    promoted = WireClient(slave_addr)
    try:
        for offset in halves:
            assert end(promoted, offset, COMMIT) == ResponseCode.SUCCESS
    finally:
        promoted.close()
    # And once the old master is back as its slave (a SYNC_MASTER shows consumers only what an
    # in-sync slave holds), all three are delivered
    c.broker("broker-a.properties", "a0")
    deadline = time.monotonic() + 30
    while (got := sorted(read_all(slave_addr))) != ["tx-0", "tx-1", "tx-2"]:
        assert time.monotonic() < deadline, f"read {got}"
        time.sleep(0.1)  # (polling what another process makes visible)
