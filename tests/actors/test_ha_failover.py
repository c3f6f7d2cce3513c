"""Failover in one process (one Node per role, the controller in the name server's Node): the
in-sync slave is promoted on the same store when its master dies and takes writes within the
target; the old master comes back as a slave and cuts its divergent tail at the epoch boundary;
a master that cannot renew its lease stops acknowledging (fencing) and resumes with it."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from actors.broker.messages import AppendBatch
from config import load_profile
from runtime.actor import actor_of
from runtime.node import Node
from runtime.remoting.codes import ResponseCode
from runtime.store import record as R
from runtime.store.commitlog import AppendedBatch
from runtime.store.recovery import open_store
from tests.actors.ha_support import (
    T,
    broker_config,
    broker_node,
    free_port,
    ha_state,
    label,
    queue_records,
    same_commit_log,
    send,
    send_until_not_busy,
    start_broker,
    start_namesrv,
    stop_node,
    store_ctx,
    wait_queue,
    wait_rebuilt,
)
from tests.actors.test_ha_replication import close_store
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    # A controller that starts waits this long before granting leases (the real one: 4 s)
    monkeypatch.setattr("actors.namesrv.node.GRACE_S", 0.3)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    running: list[Node] = []
    yield running
    for node in reversed(running):
        if node._root is not None and node._root.is_alive():
            stop_node(node)


def writable(node: Node, timeout: float = T) -> Any:
    state = ha_state(node)
    assert state.wait_until(lambda s: s.accepting_writes(), timeout), "no master lease"
    return state


def wait_replicating(node: Node, timeout: float = 20.0) -> None:
    """Wait until the node's current incarnation (it may be rebuilt meanwhile) was accepted by
    its master (an ACCEPT: the link is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = ha_state(node)
        except AssertionError:  # (between two incarnations: no HA actor for a moment)
            gevent.sleep(0.05)
            continue
        if state.wait_until(lambda s: s.master_link_up, 0.5):
            return
    raise AssertionError("the node never replicated from its master")


def test_failover_promotes_the_slave_and_the_old_master_rejoins(
    tmp_path: pathlib.Path, nodes: list[Node]
) -> None:
    ns = start_namesrv(controller=True)
    nodes.append(ns)
    namesrv = ns.addresses["namesrv"]
    master_cfg = broker_config("broker-a", 0, "ASYNC_MASTER", namesrv, controller_addr=namesrv)
    slave_cfg = broker_config("broker-a", 1, "SLAVE", namesrv, controller_addr=namesrv)
    master = start_broker(master_cfg, tmp_path / "m")
    slave = start_broker(slave_cfg, tmp_path / "s")
    nodes += [master, slave]
    # Given a master holding its lease with its slave in sync, and 30 messages replicated
    state = writable(master)
    assert state.wait_until(lambda s: 1 in s.isr_acknowledged, T)
    client = WireClient(master.addresses[label(master)])
    for i in range(30):
        assert send(client, "F", f"before-{i}".encode()).code == ResponseCode.SUCCESS
    client.close()
    wait_queue(store_ctx(slave), "F", 0, 30)
    old_settings = store_ctx(master).settings
    slave_tree = broker_node(slave)
    # When the master dies
    killed_at = time.monotonic()
    stop_node(master)
    nodes.remove(master)
    # Then the slave is rebuilt as master on its own store and takes writes within 5 s
    wait_rebuilt(slave, slave_tree)
    writable(slave)
    resumed = time.monotonic() - killed_at
    assert resumed < 5.0, f"writes resumed {resumed:.2f}s after the master died"
    client = WireClient(slave.addresses[label(slave)])
    for i in range(10):
        assert send(client, "F", f"after-{i}".encode()).code == ResponseCode.SUCCESS
    client.close()
    # Given the dead master's log has 3 records nobody else has (written past the failover)
    opened = open_store(old_settings)
    strays = [R.PutRecord("F", 0, b"stray", "") for _ in range(3)]
    assert isinstance(
        opened.log.append_batch(strays, opened.next_offsets, 1, 1 << 20), AppendedBatch
    )
    close_store(opened)
    # When it restarts (its config still says master)
    master = start_broker(master_cfg, tmp_path / "m")
    nodes.append(master)
    # Then the controller makes it a slave; it cuts its tail at epoch 2's start and catches up
    wait_replicating(master)
    wait_queue(store_ctx(master), "F", 0, 40)
    got = queue_records(store_ctx(master), "F", 0, 64)
    want = [f"before-{i}".encode() for i in range(30)] + [f"after-{i}".encode() for i in range(10)]
    assert [r.body for r in got] == want
    assert [r.queue_offset for r in got] == list(range(40))
    same_commit_log(store_ctx(slave), store_ctx(master))
    assert ha_state(master).epoch == 2


def test_a_master_without_its_lease_stores_nothing_until_the_controller_is_back(
    tmp_path: pathlib.Path, nodes: list[Node]
) -> None:
    port = free_port()
    ns = start_namesrv(controller=True, port=port, store=str(tmp_path / "controller"))
    nodes.append(ns)
    namesrv = ns.addresses["namesrv"]
    cfg = broker_config("broker-a", 0, "ASYNC_MASTER", namesrv, controller_addr=namesrv)
    master = start_broker(cfg, tmp_path / "m")
    nodes.append(master)
    state = writable(master)
    client = WireClient(master.addresses[label(master)])
    assert send(client, "L", b"leased").code == ResponseCode.SUCCESS
    log = store_ctx(master).require_open().log
    end = log.write_offset
    # When the controller goes away, the lease runs out (3 s)
    stop_node(ns)
    nodes.remove(ns)
    assert state.wait_until(lambda s: not s.accepting_writes(), 5.0)
    # Then sends are refused before anything is stored (a definite failure)
    reply = send(client, "L", b"fenced")
    assert reply.code == ResponseCode.SERVICE_NOT_AVAILABLE
    assert log.write_offset == end
    # When the controller is back (same address, remembering the group), Then the master gets
    # a lease again
    ns = start_namesrv(controller=True, port=port, store=str(tmp_path / "controller"))
    nodes.append(ns)
    state = writable(master)
    assert state.epoch == 1  # the same term: the controller remembers it (controller_store)
    assert send(client, "L", b"again").code == ResponseCode.SUCCESS
    client.close()
    got = queue_records(store_ctx(master), "L", 0, 8)
    assert [r.body for r in got] == [b"leased", b"again"]


def test_in_one_process_a_failed_master_subtree_is_replaced_by_its_slave(
    tmp_path: pathlib.Path, nodes: list[Node]
) -> None:
    # Given the 2m-2s-async profile in one process (the controller in its name server)
    p = load_profile("2m-2s-async")
    node = Node(
        namesrvs=list(p.namesrvs),
        brokers=list(p.brokers),
        data_dir=tmp_path,
        cluster_mode=True,
        ephemeral_ports=True,
    )
    node.start()
    nodes.append(node)
    state = ha_state(node, "broker-a/0")
    assert state.wait_until(lambda s: s.accepting_writes() and 1 in s.isr_acknowledged, T)
    client = WireClient(node.addresses["broker-a/0"])
    assert send(client, "P", b"before").code == ResponseCode.SUCCESS
    client.close()
    wait_queue(store_actor_ctx(node, "broker-a/1"), "P", 0, 1)
    slave_tree = broker_node(node, "broker-a/1")
    # When broker-a/0's commit-log writer fails (fail-stop: its subtree goes down)
    node.directory.require("broker-a/0/store/commitlog").tell(AppendBatch(None, None))  # type: ignore[arg-type]
    # Then the supervisor's report lets the controller promote broker-a/1 at once
    started = time.monotonic()
    wait_rebuilt(node, slave_tree, broker="broker-a/1")
    assert ha_state(node, "broker-a/1").wait_until(lambda s: s.accepting_writes(), T)
    assert time.monotonic() - started < 3.0  # no lease to wait for: the writer is gone
    client = WireClient(node.addresses["broker-a/1"])
    # (its first send may wait past waitTimeMillsInSendQueue on a loaded machine: SYSTEM_BUSY,
    # unstored, seen once in CI on 2026-11-23; sent again as a client would)
    assert send_until_not_busy(client, "P", b"after").code == ResponseCode.SUCCESS
    client.close()
    # and consumers see it once the in-sync slaves hold it (the old master may have rejoined)
    ctx = store_actor_ctx(node, "broker-a/1")
    wait_queue(ctx, "P", 0, 2)
    got = queue_records(ctx, "P", 0, 8)
    assert [r.body for r in got] == [b"before", b"after"]


def store_actor_ctx(node: Node, broker: str) -> Any:
    actor = actor_of(node.directory.require(f"{broker}/store/commitlog"))
    return actor.ctx  # type: ignore[union-attr]


def test_a_slave_links_for_replication_only_once_it_holds_the_masters_metadata(
    tmp_path: pathlib.Path, nodes: list[Node]
) -> None:
    # Given a controller-mode master with a topic
    ns = start_namesrv(controller=True)
    nodes.append(ns)
    namesrv = ns.addresses["namesrv"]
    master = start_broker(
        broker_config("broker-a", 0, "ASYNC_MASTER", namesrv, controller_addr=namesrv),
        tmp_path / "m",
    )
    nodes.append(master)
    writable(master)
    client = WireClient(master.addresses[label(master)])
    assert send(client, "Meta", b"x").code == ResponseCode.SUCCESS
    client.close()
    # When a slave starts
    slave = start_broker(
        broker_config("broker-a", 1, "SLAVE", namesrv, controller_addr=namesrv), tmp_path / "s"
    )
    nodes.append(slave)
    state = ha_state(slave)
    at_link: list[bool] = []

    def linked(s: Any) -> bool:
        if s.master_link_up and not at_link:
            at_link.append(s.metadata_synced)
        return bool(s.master_link_up)

    # Then its replication link comes up only after its first metadata round (an in-sync slave
    # is electable: promoted, it must know the topics and the groups' offsets)
    assert state.wait_until(linked, T)
    assert at_link == [True]


def test_all_ack_sends_go_on_at_once_when_one_of_two_slaves_dies(
    tmp_path: pathlib.Path, nodes: list[Node]
) -> None:
    # (review of allAckInSyncStateSet in controller mode: the set shrinks on the master's
    # next heartbeat, and the waiting sends are answered at the HAService's next tick)
    ns = start_namesrv(controller=True)
    nodes.append(ns)
    namesrv = ns.addresses["namesrv"]
    extra = {"controller_addr": namesrv, "all_ack_in_sync_state_set": True}
    master = start_broker(
        broker_config("broker-a", 0, "SYNC_MASTER", namesrv, **extra), tmp_path / "m"
    )
    nodes.append(master)
    slaves = [
        start_broker(broker_config("broker-a", i, "SLAVE", namesrv, **extra), tmp_path / f"s{i}")
        for i in (1, 2)
    ]
    nodes += slaves
    # Given a SYNC_MASTER whose controller counts both slaves in sync
    state = writable(master)
    assert state.wait_until(lambda s: {1, 2} <= s.isr_acknowledged, 20)
    client = WireClient(master.addresses[label(master)])
    try:
        assert send(client, "AA", b"both").code == ResponseCode.SUCCESS
        # When slave 2 dies
        stop_node(slaves[1])
        nodes.remove(slaves[1])
        # Then sends are acknowledged by slave 1 alone well before slaveTimeout (3 s)
        started = time.monotonic()
        answer = send(client, "AA", b"one")
        took = time.monotonic() - started
        assert answer.code == ResponseCode.SUCCESS, answer.remark
        assert took < 1.0, f"the first send after the slave died took {took:.2f}s"
        assert state.wait_until(lambda s: 2 not in s.all_ack_set(), T)
    finally:
        client.close()
