"""An empty slave and a master whose commit log no longer starts at 0 (retention deleted its
first segments, as on a master that ran past ``fileReservedTime``)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from actors.broker.ha_messages import NewEpoch
from actors.broker.messages import CleanTick
from actors.broker.slave_synchronize import SyncNow
from runtime.actor import actor_of, new_future
from runtime.ha import protocol as P
from runtime.ha.epoch import EpochFile
from runtime.node import Node
from runtime.remoting.codes import ResponseCode
from runtime.store import record as R
from runtime.store.raw import read_raw
from tests.actors.ha_support import (
    FakeSlave,
    T,
    broker_config,
    ha_state,
    label,
    same_commit_log,
    send,
    start_broker,
    stop_node,
    store_ctx,
    wait_in_sync,
    wait_until,
)
from tests.integration.test_broker_wire import pull, records
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

EVERY_HOUR = ";".join(f"{h:02d}" for h in range(24))
RETAINED = {
    # every segment expires at once, and only the test's CleanTick deletes them
    "file_reserved_time": 0,
    "delete_when": EVERY_HOUR,
    "clean_resource_interval": 3_600_000,
}


@pytest.fixture
def master(tmp_path: pathlib.Path, namesrv: str) -> Iterator[Node]:
    cfg = broker_config("broker-a", 0, "ASYNC_MASTER", namesrv, **RETAINED)
    node = start_broker(cfg, tmp_path / "m")
    yield node
    stop_node(node)


def fill(master: Node, count: int, body: bytes = b"x" * 700) -> None:
    """Send ``count`` messages (~700 bytes each: 300 fill several 64 KiB segments)."""
    client = WireClient(master.addresses[label(master)])
    try:
        for i in range(count):
            reply = send(client, "HA", body, queue_id=i % 2)
            assert reply.code == ResponseCode.SUCCESS, reply.remark
    finally:
        client.close()


def fill_and_expire(master: Node, count: int = 300) -> int:
    """``fill``, then let retention delete all but the last segment; the master's log start
    (> 0)."""
    fill(master, count)
    ctx = store_ctx(master)
    log = ctx.require_open().log
    retention = ctx.directory.require(ctx.names.retention)

    def expired() -> bool:  # (a segment goes once flushed: ASYNC_FLUSH's flusher runs on)
        retention.ask(CleanTick(), timeout=10.0)
        return len(log.segments.segments) == 1

    wait_until(expired, what="retention to delete the first segments")
    assert log.min_offset > 0
    return log.min_offset


def test_an_empty_slave_is_told_to_start_at_the_masters_first_segment(master: Node) -> None:
    # Given a master whose first segments retention deleted
    start = fill_and_expire(master)
    # When an empty slave says HELLO
    fake = FakeSlave(master.ha_addresses[label(master)], node=1, max_offset=0)
    try:
        frame = fake.next_frame()
        closed = fake.closed_by_master()
    finally:
        fake.close()
    # Then it is told to start its log at the master's first segment (an ACCEPT there, not
    # DIVERGED "not a record boundary ... rebuild the slave"), and the link closes: the slave
    # links again from there, not a member meanwhile
    assert frame == P.Accept(start, 0, ()), frame
    assert closed
    assert 1 not in ha_state(master).slaves


def test_a_slave_behind_the_masters_first_segment_is_told_what_to_do(master: Node) -> None:
    # Given a master whose first segments retention deleted
    start = fill_and_expire(master)
    # When a slave whose log ends before that says HELLO
    fake = FakeSlave(master.ha_addresses[label(master)], node=1, max_offset=1000)
    try:
        frame = fake.next_frame()
    finally:
        fake.close()
    # Then it is refused OFFSET_GONE saying how to bring it back
    assert isinstance(frame, P.Refused), frame
    assert frame.reason is P.RefuseReason.OFFSET_GONE, frame
    assert f"starts at {start}" in frame.text and "empty its store" in frame.text


def slave_log(slave: Node) -> Any:
    return store_ctx(slave).require_open().log


def caught_up(master: Node, slave: Node) -> None:
    end = store_ctx(master).require_open().log.write_offset
    wait_until(lambda: slave_log(slave).write_offset == end, what=f"the slave to reach {end}")


def first_record(node: Node, offset: int) -> R.StoredRecord:
    data = read_raw(store_ctx(node).require_open().log, offset, 1, 1 << 62).data
    return R.decode_record(data, 0)


def test_an_empty_slave_copies_the_log_from_the_masters_first_segment(
    master: Node, tmp_path: pathlib.Path, namesrv: str
) -> None:
    # Given a master whose first segments retention deleted
    start = fill_and_expire(master)
    head = first_record(master, start)
    # When an empty slave (slaveReadEnable) is added
    cfg = broker_config(
        "broker-a",
        1,
        "SLAVE",
        namesrv,
        ha_master_address=master.ha_addresses[label(master)],
        slave_read_enable=True,
        **RETAINED,
    )
    slave = start_broker(cfg, tmp_path / "s")
    try:
        # Then it starts its log there, links, catches up and is in sync
        wait_in_sync(master, 1)
        client = WireClient(master.addresses[label(master)])
        try:
            for i in range(20):
                assert send(client, "HA", b"after %d" % i, queue_id=0).code == 0
        finally:
            client.close()
        caught_up(master, slave)
        assert slave_log(slave).min_offset == start
        same_commit_log(store_ctx(master), store_ctx(slave))
        # and serves pulls of what it holds (its queue starts where its log does)
        assert sync_metadata(slave)
        to_slave = WireClient(slave.addresses[label(slave)])
        try:
            reply = pull(to_slave, "HA", head.queue_id, head.queue_offset, max_nums=1)
            assert reply.code == ResponseCode.SUCCESS, reply.remark
            assert [r.body for r in records(reply.body)] == [head.body]
            tail = pull(to_slave, "HA", 0, 150, max_nums=32)
            assert tail.code == ResponseCode.SUCCESS, tail.remark
            assert [r.body for r in records(tail.body)] == [b"after %d" % i for i in range(20)]
        finally:
            to_slave.close()
        # and, restarted, keeps its log (no second start) and replicates on
        stop_node(slave)
        slave = start_broker(cfg, tmp_path / "s")
        wait_in_sync(master, 1)
        client = WireClient(master.addresses[label(master)])
        try:
            assert send(client, "HA", b"after restart", queue_id=0).code == 0
        finally:
            client.close()
        caught_up(master, slave)
        assert slave_log(slave).min_offset == start
        same_commit_log(store_ctx(master), store_ctx(slave))
    finally:
        stop_node(slave)


def sync_metadata(slave: Node) -> bool:
    """One SlaveSynchronize round, now (the slave learns the topic from its master)."""
    state = ha_state(slave)
    assert state.wait_until(lambda s: s.master_addr is not None, 10)
    reply = new_future()
    slave.directory.require(f"{label(slave)}/slave-sync").tell(SyncNow(reply))
    return bool(reply.get(timeout=15))


def new_epoch(master: Node, epoch: int) -> None:
    term = new_future()
    master.directory.require(f"{label(master)}/ha-service").tell(NewEpoch(epoch, term))
    assert term.get(timeout=T) is True


def test_an_empty_slave_mirrors_the_epochs_before_its_log_starts_past_0(
    master: Node, tmp_path: pathlib.Path, namesrv: str
) -> None:
    # Given a master with a term that began at 0, whose first segments retention deleted,
    # and a term that began after the start of the segment it still holds first
    new_epoch(master, 1)
    start = fill_and_expire(master)
    new_epoch(master, 2)
    fill(master, 4)
    entries = ha_state_epochs(master)
    assert [e.epoch for e in entries] == [1, 2] and entries[0].start < start < entries[1].start
    # When an empty slave is added
    cfg = broker_config(
        "broker-a", 1, "SLAVE", namesrv, ha_master_address=master.ha_addresses[label(master)]
    )
    slave = start_broker(cfg, tmp_path / "s")
    try:
        # Then its next HELLO (its log now starts there) agrees with the master up to that
        # start (it mirrored the terms first; without them it would be cut back to 0), and it
        # catches up holding the master's terms
        wait_in_sync(master, 1)
        caught_up(master, slave)
        assert slave_log(slave).min_offset == start
        same_commit_log(store_ctx(master), store_ctx(slave))
        assert EpochFile(str(tmp_path / "s")).entries == entries
    finally:
        stop_node(slave)


def ha_state_epochs(master: Node) -> list[Any]:
    actor = actor_of(master.directory.require(f"{label(master)}/ha-service"))
    return list(actor.ha.epochs.entries)  # type: ignore[attr-defined]
