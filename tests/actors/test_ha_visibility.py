"""What consumers of an ASYNC_MASTER in controller mode may see (R10's "no inconsistent
offsets"): only what every in-sync slave holds, so a failover never takes back a record
somebody read; a slave joins the in-sync set only once it holds everything consumers saw; a
slave that stops catching up leaves the set after ``haMaxTimeSlaveNotCatchup``.

One Node per role, the controller in the name server's Node, a hand-driven slave
(``FakeSlave``) whose reports the test decides."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.actor import actor_of
from runtime.remoting.codes import ResponseCode
from tests.actors.ha_support import (
    FakeSlave,
    T,
    broker_config,
    ha_state,
    label,
    send,
    start_broker,
    start_namesrv,
    stop_node,
    store_ctx,
    wait_in_sync,
    wait_queue,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("actors.namesrv.node.GRACE_S", 0.3)


class Master:
    """A controller-mode ASYNC_MASTER with its name server (and controller)."""

    def __init__(self, tmp: pathlib.Path, **extra: Any) -> None:
        self.ns = start_namesrv(controller=True)
        namesrv = self.ns.addresses["namesrv"]
        cfg = broker_config(
            "broker-a", 0, "ASYNC_MASTER", namesrv, controller_addr=namesrv, **extra
        )
        self.node = start_broker(cfg, tmp / "m")
        self.state = ha_state(self.node)
        assert self.state.wait_until(lambda s: s.accepting_writes(), T), "no master lease"
        self.ha = self.node.ha_addresses[label(self.node)]
        self.client = WireClient(self.node.addresses[label(self.node)])
        self.ctx = store_ctx(self.node)
        self.log = self.ctx.require_open().log

    def replica_confirmed(self) -> int:
        """How far the Dispatcher may show the log as far as replication goes."""
        dispatcher = actor_of(self.node.directory.require(self.ctx.names.dispatcher))
        assert dispatcher is not None
        return int(dispatcher.confirmed_by["replica"])  # type: ignore[attr-defined]

    def close(self) -> None:
        self.client.close()
        stop_node(self.node)
        stop_node(self.ns)


@pytest.fixture
def master(tmp_path: pathlib.Path) -> Iterator[Master]:
    m = Master(tmp_path, ha_max_time_slave_not_catchup=60_000)
    yield m
    m.close()


def test_consumers_see_only_what_the_in_sync_slave_holds(master: Master) -> None:
    # Given a slave in sync with the (empty) master
    slave = FakeSlave(master.ha, node=5)
    wait_in_sync(master.node, 5)
    # When a message is sent, Then ASYNC answers at once
    assert send(master.client, "V", b"one").code == ResponseCode.SUCCESS
    end = master.log.write_offset
    # and the slave receives it, but consumers do not see it before the slave holds it
    assert slave.data_until(end) >= end
    assert master.replica_confirmed() == 0 and master.ctx.dispatched == 0
    # When the slave reports it, Then consumers see it
    slave.report(end)
    assert wait_queue(master.ctx, "V", 0, 1) == 1
    assert master.replica_confirmed() == end
    slave.close()


def test_a_master_alone_shows_each_append_at_once(master: Master) -> None:
    # Given no slave, When messages are sent, Then consumers see them without any replica
    for body in (b"a", b"b", b"c"):
        assert send(master.client, "V", body).code == ResponseCode.SUCCESS
    assert wait_queue(master.ctx, "V", 0, 3) == 3
    assert master.state.visible == master.log.write_offset


def test_a_slave_joins_only_once_it_holds_what_consumers_saw(master: Master) -> None:
    # Given records consumers already saw on a master alone
    for body in (b"a", b"b"):
        assert send(master.client, "V", body).code == ResponseCode.SUCCESS
    assert wait_queue(master.ctx, "V", 0, 2) == 2
    seen = master.state.visible
    assert seen == master.log.write_offset > 0
    # When a slave links from offset 0
    slave = FakeSlave(master.ha, node=5)
    assert master.state.wait_until(lambda s: 5 in s.joining, T), master.state.joining
    # Then it is not in sync (electing it would take back what consumers read)
    assert 5 not in master.state.in_sync
    # and while it is about to join, new records wait for it
    assert send(master.client, "V", b"c").code == ResponseCode.SUCCESS
    end = master.log.write_offset
    assert slave.data_until(end) >= end
    assert master.replica_confirmed() == seen
    # When it reports what consumers saw, Then it is in sync; the rest shows once it holds it
    slave.report(seen)
    wait_in_sync(master.node, 5)
    assert master.replica_confirmed() == seen
    slave.report(end)
    assert wait_queue(master.ctx, "V", 0, 3) == 3
    slave.close()


def test_a_stalled_slave_stops_holding_consumers_back(tmp_path: pathlib.Path) -> None:
    m = Master(tmp_path, ha_max_time_slave_not_catchup=500)
    try:
        # Given a slave in sync that stops reporting
        slave = FakeSlave(m.ha, node=5)
        wait_in_sync(m.node, 5)
        # When a message is sent, Then consumers see it once the slave has failed to catch up
        # for haMaxTimeSlaveNotCatchup (0.5 s): it left the in-sync set
        assert send(m.client, "V", b"stuck").code == ResponseCode.SUCCESS
        assert wait_queue(m.ctx, "V", 0, 1) == 1
        assert 5 not in m.state.in_sync
        slave.close()
    finally:
        m.close()


def test_a_slave_replaced_under_the_same_id_starts_from_what_it_holds(master: Master) -> None:
    # Given slave 5 in sync holding everything the master wrote
    first = FakeSlave(master.ha, node=5)
    wait_in_sync(master.node, 5)
    assert send(master.client, "V", b"held").code == ResponseCode.SUCCESS
    end = master.log.write_offset
    assert first.data_until(end) >= end
    first.report(end)
    assert wait_queue(master.ctx, "V", 0, 1) == 1
    # When its machine is replaced: the same id links again with an empty store
    first.close()
    second = FakeSlave(master.ha, node=5)
    assert master.state.wait_until(lambda s: 5 in s.slaves and s.slaves[5].urn != "", T)
    assert master.state.wait_until(lambda s: s.slaves[5].acked == 0, T), "kept the old acks"
    # Then it does not count as in sync (the controller could elect it) until it holds it all
    assert 5 not in master.state.in_sync
    assert second.data_until(end) >= end
    second.report(end)
    wait_in_sync(master.node, 5)
    second.close()
