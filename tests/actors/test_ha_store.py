"""``AppendRaw`` through a slave's CommitLogWriter: replicated bytes become consumable on the
slave with the master's queue offsets; a master refuses them; a wrong offset changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.broker import dispatcher
from actors.broker.messages import AppendRaw, Confirm
from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.store_service import BrokerStore
from runtime.actor import actor_of, new_future
from runtime.directory import Directory
from runtime.store import record as R
from runtime.store.raw import read_raw
from runtime.store.settings import FlushMode, StoreSettings

pytestmark = pytest.mark.timeout(30)
T = 5.0


def build(root: Path, **kw: Any) -> BrokerStore:
    s = StoreSettings(
        root=str(root),
        commitlog_segment_size=8192,
        cq_entries_per_file=64,
        index_slots=257,
        index_capacity=2000,
        flush_interval_ms=50,
        checkpoint_interval_ms=100,
        checkpoint_lag_bytes=0,  # a checkpoint at every tick
        clean_resource_interval_ms=60_000,
        delete_when="99",
        **kw,
    )
    return BrokerStore.build(s, Directory(), prefix=root.name).start()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[BrokerStore, BrokerStore]]:
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True, flush_mode=FlushMode.SYNC_FLUSH)
    yield master, slave
    slave.stop()
    master.stop()


def append_raw(store: BrokerStore, offset: int, data: bytes, *, shown: bool = True) -> Any:
    """Append ``data`` at ``offset`` as the HAClient does; ``shown``: then confirm it as the
    master's CONFIRM would (a slave's consumers see nothing its master did not show)."""
    reply = new_future()
    store.ctx.directory.require(store.names.writer).tell(AppendRaw(offset, data, reply))
    result = reply.get(timeout=T)
    if shown and result.ok:
        confirm = Confirm(result.write_offset, "master", False)
        store.ctx.directory.require(store.names.dispatcher).tell(confirm)
    return result


def copy_all(master: BrokerStore, slave: BrokerStore, *, shown: bool = True) -> None:
    mlog = master.ctx.require_open().log
    while True:
        at = slave.ctx.require_open().log.write_offset
        data = read_raw(mlog, at, 1500, mlog.write_offset).data
        if not data:
            return
        result = append_raw(slave, at, data, shown=shown)
        assert result.ok, result.reason
        assert result.write_offset == at + len(data) or result.write_offset % 8192 == 0


def test_replicated_records_are_consumable_on_the_slave(
    pair: tuple[BrokerStore, BrokerStore],
) -> None:
    master, slave = pair
    # Given 40 records on the master over two queues
    for i in range(40):
        rec = R.PutRecord("T", i % 2, f"body-{i}".encode() * 20, "")
        assert master.put([rec]).get(timeout=T).status is PutStatus.PUT_OK
    # When the slave appends the master's bytes (SYNC_FLUSH slave: replies after fsync)
    copy_all(master, slave)
    # Then (once its fsync confirmed them) the slave serves the same records at the same
    # queue offsets
    for qid in (0, 1):
        assert slave.wait_arrival("T", qid, 19, timeout=T).get(timeout=T) == 20
        got = slave.get_messages("g", "T", qid, 0, 64).get(timeout=T)
        want = master.get_messages("g", "T", qid, 0, 64).get(timeout=T)
        assert got.status is GetStatus.FOUND
        assert got.messages == want.messages and len(got.messages) == 20
    # and its writer knows the next queue offsets (a promoted slave continues from them)
    writer = slave.ctx.directory.require(slave.names.writer)
    assert writer.proxy().next_offsets.get(timeout=T) == {("T", 0): 20, ("T", 1): 20}


def test_a_master_refuses_raw_bytes_and_a_wrong_offset_changes_nothing(
    pair: tuple[BrokerStore, BrokerStore],
) -> None:
    master, slave = pair
    assert master.put([R.PutRecord("T", 0, b"x" * 50, "")]).get(timeout=T).ok
    mlog = master.ctx.require_open().log
    data = read_raw(mlog, 0, 4096, mlog.write_offset).data
    # When a master's writer is handed replicated bytes, Then it refuses
    refused = append_raw(master, mlog.write_offset, data)
    assert not refused.ok and "not a slave" in (refused.reason or "")
    # When a slave is handed bytes for the wrong offset, Then it refuses and stays empty
    wrong = append_raw(slave, 64, data)
    assert not wrong.ok and wrong.write_offset == 0
    # and client sends to a slave are refused too
    assert slave.put([R.PutRecord("T", 0, b"y", "")]).get(timeout=T).status is (
        PutStatus.SERVICE_NOT_AVAILABLE
    )


def test_a_slave_keeps_a_bounded_part_of_what_waits_for_its_masters_confirm(
    pair: tuple[BrokerStore, BrokerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    master, slave = pair
    monkeypatch.setattr(dispatcher, "HELD_MAX_BYTES", 2000)
    # Given 40 records on the master over two queues, copied to the slave while its master
    # shows none of them (its CONFIRM does not come)
    for i in range(40):
        rec = R.PutRecord("T", i % 2, f"body-{i}".encode() * 20, "")
        assert master.put([rec]).get(timeout=T).status is PutStatus.PUT_OK
    copy_all(master, slave, shown=False)
    end = slave.ctx.require_open().log.write_offset
    # Then the slave shows none, and keeps at most about the bound of their parsed batches
    ref = slave.ctx.directory.require(slave.names.dispatcher)
    assert slave.when_dispatched(0).get(timeout=T) == 0  # (after the appends' dispatches)
    held = held_bytes(slave)
    assert 0 < held <= 2000 + 1500, held
    # When the master's CONFIRM comes, Then the slave shows them all, read back from its log
    # where it dropped them, at the master's queue offsets
    ref.tell(Confirm(end, "master", False))
    for qid in (0, 1):
        assert slave.wait_arrival("T", qid, 19, timeout=T).get(timeout=T) == 20
        got = slave.get_messages("g", "T", qid, 0, 64).get(timeout=T)
        want = master.get_messages("g", "T", qid, 0, 64).get(timeout=T)
        assert got.messages == want.messages and len(got.messages) == 20
    assert held_bytes(slave) == 0


def held_bytes(store: BrokerStore) -> int:
    actor = actor_of(store.ctx.directory.require(store.names.dispatcher))
    return int(actor._held_bytes)  # type: ignore[union-attr]
