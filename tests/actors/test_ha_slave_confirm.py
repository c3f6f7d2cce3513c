"""A slave shows its consumers no record its master has not shown its own (the master's
CONFIRM, RocketMQ 5's confirm offset): a record a slave holds but the group may still lose in
a failover (the slave elected instead holds less) is never read from the slave.

A classic SYNC_MASTER, a real slave (node 1) and a hand-driven slave (``FakeSlave``, node 5)
in sync: the master shows consumers only what both hold, so the fake slave's reports decide."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from actors.broker.ha_client import held
from actors.broker.messages import WhenDispatched
from runtime.actor import new_future
from runtime.ha import protocol as P
from runtime.node import Node
from runtime.remoting.codes import ResponseCode
from runtime.store.context import StoreContext
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
from tests.client_support import wait_until
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


class Group:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.ns = start_namesrv()
        namesrv = self.ns.addresses["namesrv"]
        self.master = start_broker(broker_config("broker-a", 0, "SYNC_MASTER", namesrv), tmp / "m")
        self.ha = self.master.ha_addresses[label(self.master)]
        cfg = broker_config("broker-a", 1, "SLAVE", namesrv, ha_master_address=self.ha)
        self.slave: Node = start_broker(cfg, tmp / "s")
        wait_in_sync(self.master, 1)
        self.client = WireClient(self.master.addresses[label(self.master)])
        self.mctx = store_ctx(self.master)
        self.sctx = store_ctx(self.slave)

    def close(self) -> None:
        self.client.close()
        stop_node(self.slave)
        stop_node(self.master)
        stop_node(self.ns)


@pytest.fixture
def group(tmp_path: pathlib.Path) -> Iterator[Group]:
    g = Group(tmp_path)
    yield g
    g.close()


def test_a_slave_shows_only_what_its_master_showed(group: Group) -> None:
    # Given a second slave in sync that reports nothing yet
    fake = FakeSlave(group.ha, node=5)
    wait_in_sync(group.master, 1, 5)
    # When a message is sent (PUT_OK: the real slave holds it)
    assert send(group.client, "C", b"held").code == ResponseCode.SUCCESS
    end = group.mctx.require_open().log.write_offset
    assert fake.data_until(end) >= end
    wait_until(lambda: group.sctx.require_open().log.write_offset >= end, T)
    # Then the master shows it to nobody (the fake slave lacks it), nor does the real slave
    # (its dispatcher answers after the append's dispatch, which it was told first)
    assert group.mctx.dispatched < end
    assert _dispatched_now(group.sctx) < end, "the slave showed a record its master had not"
    # When the fake slave reports it, Then the master shows it, and then the slave does
    fake.report(end)
    assert wait_queue(group.mctx, "C", 0, 1) == 1
    assert wait_queue(group.sctx, "C", 0, 1) == 1
    assert group.sctx.dispatched == end
    assert fake.confirm_until(end) == end  # (CONFIRMs reach every slave taking them)
    fake.close()


def test_an_older_slave_gets_no_confirm_frames(group: Group) -> None:
    # Given a slave speaking HA version 2 (no CONFIRM) and one speaking the current version
    old = FakeSlave(group.ha, node=6, version=2)
    new = FakeSlave(group.ha, node=7)
    assert isinstance(old.next_frame(), P.Accept) and isinstance(new.next_frame(), P.Accept)
    # When a message is sent and both read it
    assert send(group.client, "C", b"x").code == ResponseCode.SUCCESS
    end = group.mctx.require_open().log.write_offset
    assert old.data_until(end) >= end and new.data_until(end) >= end
    # Then only the current one was told what the master shows (first right after ACCEPT)
    assert new.confirms and not old.confirms
    old.close()
    new.close()


def _dispatched_now(ctx: StoreContext) -> int:
    """The store's dispatched offset, asked of its Dispatcher (it first handles what it was
    told before: the append's dispatch)."""
    reply = new_future()
    ctx.directory.require(ctx.names.dispatcher).tell(WhenDispatched(0, reply))
    return int(reply.get(timeout=T))


def test_a_slave_reports_what_it_holds_as_soon_as_it_is_accepted(tmp_path: pathlib.Path) -> None:
    # Given a SYNC_MASTER and a slave with nothing new to copy
    ns = start_namesrv()
    namesrv = ns.addresses["namesrv"]
    quiet = {"ha_send_heartbeat_interval": 60_000}  # (no heartbeat REPORT within the test)
    master = start_broker(
        broker_config("broker-a", 0, "SYNC_MASTER", namesrv, **quiet), tmp_path / "m"
    )
    try:
        ha = master.ha_addresses[label(master)]
        cfg = broker_config("broker-a", 1, "SLAVE", namesrv, ha_master_address=ha, **quiet)
        slave = start_broker(cfg, tmp_path / "s")
        try:
            # When the slave links (its HELLO's end counts as no ack until it REPORTs)
            state = ha_state(master)
            # Then it reports at once, not at its next heartbeat a minute later
            assert state.wait_until(lambda s: 1 in s.slaves and s.slaves[1].reported, T)
        finally:
            stop_node(slave)
    finally:
        stop_node(master)
        stop_node(ns)


def test_a_sync_flush_slave_reports_no_further_than_its_fsync() -> None:
    # Given a slave's log written to 100, fsync'd to 60
    log = SimpleNamespace(write_offset=100, segments=SimpleNamespace(flushed_offset=60))
    # Then under SYNC_FLUSH it holds 60 (an append's fsync still pending is no ack), under
    # ASYNC_FLUSH what it wrote
    assert held(log, sync_flush=True) == 60
    assert held(log, sync_flush=False) == 100
