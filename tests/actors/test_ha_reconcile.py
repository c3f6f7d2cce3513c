"""A classic master back from a power loss (RELIABILITY.md §5, ASYNC_FLUSH + SYNC_MASTER): a
SYNC_MASTER takes no write until the slaves its acks counted are back and it holds what they
hold of its log (it fetches their tail); an ASYNC_MASTER, or a SYNC_MASTER whose operator took
the missing slave off the list, starts a new epoch at once, so a slave holding the lost tail is
cut back to it by the epoch rules instead of disagreeing at the same offsets."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.broker import raw_append
from actors.broker.ha_connection import HAConnection
from actors.broker.ha_messages import LinkTail
from actors.broker.messages import AppendRaw
from config import BrokerConfig
from runtime.ha import boot, in_sync_file
from runtime.ha import protocol as P
from runtime.ha.epoch import EpochFile
from runtime.node import Node
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.store.lockfile import create_abort
from tests.actors.ha_support import (
    FakeSlave,
    broker_config,
    ha_state,
    label,
    queue_records,
    same_commit_log,
    send,
    start_broker,
    stop_node,
    store_ctx,
    wait_in_sync,
    wait_queue,
    wait_until,
)
from tests.integration.test_broker_wire import pull
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)

MESSAGES = 24


class Pair:
    """A master and a slave on fixed data directories, each restartable as after a crash."""

    def __init__(self, tmp: pathlib.Path, namesrv: str, role: str, **master_extra: Any) -> None:
        self.tmp = tmp
        self.namesrv = namesrv
        self.role = role
        self.master_extra = master_extra
        self.master: Node | None = None
        self.slave: Node | None = None
        self.client: WireClient | None = None

    def master_cfg(self) -> BrokerConfig:
        return broker_config("broker-a", 0, self.role, self.namesrv, **self.master_extra)

    def start_master(self) -> Node:
        self.master = start_broker(self.master_cfg(), self.tmp / "m")
        self.client = WireClient(self.master.addresses[label(self.master)])
        return self.master

    def start_slave(self, **extra: Any) -> Node:
        assert self.master is not None
        ha = self.master.ha_addresses[label(self.master)]
        cfg = broker_config("broker-a", 1, "SLAVE", self.namesrv, ha_master_address=ha, **extra)
        self.slave = start_broker(cfg, self.tmp / "s")
        return self.slave

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        for node in (self.master, self.slave):  # (the master first: its in-sync file keeps
            if node is not None:  # the slave, as when its machine loses power)
                stop_node(node)
        self.master = self.slave = None


@pytest.fixture
def pairs() -> Iterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for p in made:
        p.stop()


def power_loss(root: str, cut: int) -> None:
    """What a power loss under ASYNC_FLUSH leaves of a stopped store: the newest segment
    without its last ``cut`` bytes, the abort marker (it never stopped cleanly) and the record
    of an earlier boot of the machine."""
    segments = sorted(os.listdir(os.path.join(root, "commitlog")))
    last = os.path.join(root, "commitlog", segments[-1])
    os.truncate(last, os.path.getsize(last) - cut)
    create_abort(root)
    with open(os.path.join(root, boot.FILE), "w") as fh:
        fh.write("a-boot-before-the-power-loss\n")


def fill(p: Pair) -> tuple[str, int]:
    """Start the pair, wait until the slave is in sync, send ``MESSAGES`` acknowledged
    messages; the master's store root and log end once the slave holds them all."""
    p.start_master()
    p.start_slave()
    assert p.master is not None and p.client is not None
    wait_in_sync(p.master, 1)
    for i in range(MESSAGES):
        reply = send(p.client, "PWR", f"acked-{i:03d}".encode() * 20)
        assert reply.code == ResponseCode.SUCCESS, reply.remark
    assert p.slave is not None
    wait_queue(store_ctx(p.slave), "PWR", 0, MESSAGES)
    ctx = store_ctx(p.master)
    return ctx.settings.root, ctx.require_open().log.write_offset


@pytest.mark.parametrize("role", ["SYNC_MASTER", "ASYNC_MASTER"])
def test_a_master_back_from_a_power_loss_fetches_its_slaves_tail_before_any_write(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair], role: str
) -> None:
    # Given a classic master and its slave in sync (the master's in-sync file names it; an
    # ASYNC_MASTER waits for it up to haReconcileWaitMillis, 30 s by default)
    p = Pair(tmp_path, namesrv, role)
    pairs.append(p)
    root, end = fill(p)
    assert in_sync_file.load(root) == {1}
    assert p.client is not None
    committed = {"consumerGroup": "G", "topic": "PWR", "queueId": 0, "commitOffset": MESSAGES}
    assert p.client.call(RequestCode.UPDATE_CONSUMER_OFFSET, committed).code == 0
    # When both stop and the master's machine loses the last ~3 records it had acknowledged
    p.stop()
    power_loss(root, 3 * 300)
    master = p.start_master()
    assert p.client is not None
    short = store_ctx(master).require_open().log.write_offset
    assert short < end
    # Then the group's offset past the end it kept stays while it waits (the tail it fetches
    # brings those offsets back: lowered, the group would read them twice)
    query = {"consumerGroup": "G", "topic": "PWR", "queueId": 0}
    got = p.client.call(RequestCode.QUERY_CONSUMER_OFFSET, query)
    assert got.ext_fields["offset"] == str(MESSAGES)
    # Then it takes no write while its slave is away: nothing is stored
    refused = send(p.client, "PWR", b"too early")
    assert refused.code == ResponseCode.SERVICE_NOT_AVAILABLE, refused.remark
    assert "after a power loss" in (refused.remark or "")
    assert store_ctx(master).require_open().log.write_offset == short
    assert ha_state(master).reconciling
    # And a consumer past the end it kept is held (long poll) and kept where it is, neither
    # moved (the tail may come back) nor told to pull again at once
    past = pull(p.client, "PWR", 0, MESSAGES - 1, suspend_ms=300)
    assert past.code == ResponseCode.PULL_NOT_FOUND, past.remark
    assert past.ext_fields["nextBeginOffset"] == str(MESSAGES - 1)
    # Likewise on a queue it holds nothing of (the lost tail may have held all its records)
    empty = pull(p.client, "PWR", 1, 2, suspend_ms=300)
    assert empty.code == ResponseCode.PULL_NOT_FOUND, empty.remark
    assert empty.ext_fields["nextBeginOffset"] == "2"
    # When the slave returns
    p.start_slave()
    state = ha_state(master)
    wait_until(state.accepting_writes, what="the master to take writes again")
    # Then the master holds every acknowledged message again, in a new epoch beginning at the
    # end of what it fetched, and no longer suspects a power loss
    assert store_ctx(master).require_open().log.write_offset == end
    # (consumers see the fetched tail once the slave reports on its new link: its HELLO's
    # end is no acknowledgement, docs/ha-design.md)
    wait_queue(store_ctx(master), "PWR", 0, MESSAGES)
    bodies = [r.body for r in queue_records(store_ctx(master), "PWR", 0, 100)]
    assert bodies == [f"acked-{i:03d}".encode() * 20 for i in range(MESSAGES)]
    got = p.client.call(RequestCode.QUERY_CONSUMER_OFFSET, query)
    assert got.ext_fields["offset"] == str(MESSAGES)
    last = EpochFile(root).last
    assert last is not None and last.start == end and last.node == 0
    assert not os.path.exists(os.path.join(root, boot.MARKER))
    # And its log and the slave's are the same bytes; a new send is replicated and acked
    wait_in_sync(master, 1)
    assert p.slave is not None
    same_commit_log(store_ctx(master), store_ctx(p.slave))
    after = send(p.client, "PWR", b"after the loss")
    assert after.code == ResponseCode.SUCCESS, after.remark


def test_a_second_power_loss_soon_after_keeps_what_was_fetched(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair]
) -> None:
    # Given a SYNC_MASTER that fsyncs its log only every 10 minutes (ASYNC_FLUSH), back from a
    # power loss: it fetched its lost tail from its slave and took a write, acked by the slave
    p = Pair(tmp_path, namesrv, "SYNC_MASTER", flush_interval_commit_log=600_000)
    pairs.append(p)
    root, end = fill(p)
    p.stop()
    power_loss(root, 3 * 300)
    master = p.start_master()
    p.start_slave()
    wait_until(ha_state(master).accepting_writes, what="the master to take writes again")
    wait_in_sync(master, 1)
    assert p.client is not None
    after = send(p.client, "PWR", b"after the loss")
    assert after.code == ResponseCode.SUCCESS, after.remark
    # When the master's machine loses power again before its next periodic fsync: what was
    # never fsync'd is gone
    log = store_ctx(master).require_open().log
    unflushed = log.write_offset - log.segments.flushed_offset
    p.stop()
    power_loss(root, unflushed)
    # Then once its slave is back it holds every acknowledged message again, the first power
    # loss's as well: the new epoch did not begin past the end of what it kept
    master = p.start_master()
    p.start_slave()
    wait_until(ha_state(master).accepting_writes, what="the master to take writes again")
    # (consumers see the fetched tail once the slave reports on its new link: its HELLO's
    # end is no acknowledgement, docs/ha-design.md)
    wait_queue(store_ctx(master), "PWR", 0, MESSAGES + 1)
    bodies = [r.body for r in queue_records(store_ctx(master), "PWR", 0, 100)]
    want = [f"acked-{i:03d}".encode() * 20 for i in range(MESSAGES)] + [b"after the loss"]
    assert bodies == want
    last = EpochFile(root).last
    assert last is not None and last.start <= store_ctx(master).require_open().log.write_offset
    assert end <= store_ctx(master).require_open().log.write_offset


@pytest.mark.parametrize("role", ["ASYNC_MASTER", "SYNC_MASTER"])
def test_a_master_that_does_not_wait_starts_a_new_epoch_and_cuts_a_slave_back_to_it(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair], role: str
) -> None:
    # Given a classic master whose slave held everything, and a power loss of the master
    # (an ASYNC_MASTER told not to wait for its slaves: haReconcileWaitMillis=0)
    extra = {"ha_reconcile_wait_millis": 0} if role == "ASYNC_MASTER" else {}
    p = Pair(tmp_path, namesrv, role, **extra)
    pairs.append(p)
    root, end = fill(p)
    p.stop()
    power_loss(root, 2 * 300)
    master = p.start_master()
    state = ha_state(master)
    short = store_ctx(master).require_open().log.write_offset
    if role == "SYNC_MASTER":
        # (a SYNC_MASTER waits for slave 1) When the operator takes the slave off its list
        assert state.reconciling
        in_sync_file.save(root, [])
    # Then the master takes writes with the slave away, in a new epoch from its short end
    wait_until(state.accepting_writes, what="the master to take writes")
    last = EpochFile(root).last
    assert last is not None and last.start == short
    # And a slave holding the lost tail in the old epoch is told to cut it, not accepted
    # at the same offsets as the records the master writes now
    slave = FakeSlave(master.ha_addresses[label(master)], node=1, max_offset=end)
    try:
        frame = slave.next_frame()
        assert isinstance(frame, P.Truncate) and frame.offset == short, frame
    finally:
        slave.close()


def test_a_reconciling_master_fetches_nothing_from_a_slave_of_another_group(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair]
) -> None:
    # Given a SYNC_MASTER (broker-a) back from a power loss, waiting for its slave
    p = Pair(tmp_path, namesrv, "SYNC_MASTER")
    pairs.append(p)
    root, end = fill(p)
    p.stop()
    power_loss(root, 2 * 300)
    master = p.start_master()
    short = store_ctx(master).require_open().log.write_offset
    address = master.ha_addresses[label(master)]
    # When a slave of broker-b, pointed at its HA port by mistake, says HELLO holding more
    stranger = FakeSlave(address, node=1, max_offset=end + 4096, group="broker-b")
    try:
        # Then it is refused, not asked for its log (its records would enter broker-a's)
        frame = stranger.next_frame()
        assert isinstance(frame, P.Refused), frame
        assert frame.reason is P.RefuseReason.OTHER_GROUP and "broker-b" in frame.text
    finally:
        stranger.close()
    assert ha_state(master).reconciling
    assert store_ctx(master).require_open().log.write_offset == short
    # And its own slave, naming broker-a, is asked for the tail
    own = FakeSlave(address, node=1, max_offset=end, group="broker-a")
    try:
        frame = own.next_frame()
        assert isinstance(frame, P.Fetch) and frame.offset == short, frame
    finally:
        own.close()


def test_a_master_stopped_cleanly_or_killed_with_its_machine_up_does_not_reconcile(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair]
) -> None:
    # Given a SYNC_MASTER whose slave was in sync, stopped uncleanly on this very boot (the
    # page cache kept its writes: kill -9)
    p = Pair(tmp_path, namesrv, "SYNC_MASTER")
    pairs.append(p)
    root, _end = fill(p)
    p.stop()
    create_abort(root)
    # When it starts again without its slave
    master = p.start_master()
    assert p.client is not None
    # Then it takes writes at once (stored; no slave to ack them), in the same epoch
    reply = send(p.client, "PWR", b"no wait")
    assert reply.code == ResponseCode.SLAVE_NOT_AVAILABLE, reply.remark
    assert not ha_state(master).reconciling
    assert EpochFile(root).last is None


def test_the_master_reads_a_slaves_tail_no_faster_than_it_appends_it(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a SYNC_MASTER back from a power loss that took 20 records, and its slave, which
    # sends its log back one record per TAIL frame
    p = Pair(tmp_path, namesrv, "SYNC_MASTER")
    pairs.append(p)
    root, end = fill(p)
    p.stop()
    power_loss(root, 20 * 300)
    master = p.start_master()
    queued: list[int] = []  # at each append of a TAIL: the TAIL frames waiting in the link
    handle = raw_append.handle

    def watched(writer: Any, msg: AppendRaw) -> None:
        if msg.reconcile:
            for ref in pykka.ActorRegistry.get_by_class(HAConnection):
                inbox = ref.actor_inbox.queue  # type: ignore[attr-defined]
                queued.append(sum(isinstance(e.message, LinkTail) for e in inbox))
        handle(writer, msg)

    monkeypatch.setattr(raw_append, "handle", watched)
    # When the slave returns
    p.start_slave(ha_transfer_batch_size=64)
    wait_until(ha_state(master).accepting_writes, what="the master to take writes again")
    # Then the master fetched it all, and its link never held more than one frame waiting
    # (its reader waits for each append: before, it took in and queued every frame the
    # socket delivered, as a slave holding a long tail sends them, all in memory)
    assert store_ctx(master).require_open().log.write_offset == end
    assert len(queued) >= 15 and max(queued) <= 1, queued


def test_a_tail_that_crosses_a_segment_end_is_fetched_whole(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair]
) -> None:
    # Given a SYNC_MASTER and its slave holding acknowledged messages over two segments
    p = Pair(tmp_path, namesrv, "SYNC_MASTER")
    pairs.append(p)
    p.start_master()
    p.start_slave()
    assert p.master is not None and p.client is not None
    wait_in_sync(p.master, 1)
    bodies = [f"big-{i:03d}".encode() * 400 for i in range(40)]  # (3.2 KB each)
    for body in bodies:
        reply = send(p.client, "PWR", body)
        assert reply.code == ResponseCode.SUCCESS, reply.remark
    assert p.slave is not None
    wait_queue(store_ctx(p.slave), "PWR", 0, len(bodies))
    ctx = store_ctx(p.master)
    root, end = ctx.settings.root, ctx.require_open().log.write_offset
    p.stop()
    # When a power loss takes the newest segment file and the end of the one before it
    segments = sorted(os.listdir(os.path.join(root, "commitlog")))
    assert len(segments) >= 2
    os.remove(os.path.join(root, "commitlog", segments[-1]))
    power_loss(root, 4096)
    master = p.start_master()
    assert store_ctx(master).require_open().log.write_offset < int(segments[-1])
    p.start_slave()
    # Then it fetches the tail across the segment end: every acked message is back
    wait_until(ha_state(master).accepting_writes, what="the master to take writes again")
    assert store_ctx(master).require_open().log.write_offset == end
    # (consumers see the fetched tail once the slave reports on its new link: its HELLO's
    # end is no acknowledgement, docs/ha-design.md)
    wait_queue(store_ctx(master), "PWR", 0, len(bodies))
    got = [r.body for r in queue_records(store_ctx(master), "PWR", 0, 100)]
    assert got == bodies
    wait_in_sync(master, 1)
    same_commit_log(store_ctx(master), store_ctx(p.slave))


def test_a_slave_counts_for_acks_only_once_the_in_sync_file_names_it(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a SYNC_MASTER whose in-sync file cannot be written (a full disk, say)
    tried: list[set[int]] = []

    def broken(root: str, nodes: Any) -> None:
        tried.append(set(nodes))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(in_sync_file, "save", broken)
    p = Pair(tmp_path, namesrv, "SYNC_MASTER")
    pairs.append(p)
    master = p.start_master()
    assert p.client is not None
    # When its slave links and catches up
    p.start_slave()
    wait_until(lambda: {1} in tried, what="the master to try to list its slave")
    # Then the slave does not count: a send is stored but not acknowledged as replicated
    # (before, the slave counted at once: a power loss would not have waited for it)
    state = ha_state(master)
    assert state.in_sync == frozenset()
    reply = send(p.client, "PWR", b"unlisted")
    assert reply.code == ResponseCode.SLAVE_NOT_AVAILABLE, reply.remark
    # And once the file can be written the slave is listed, then counts
    monkeypatch.undo()
    wait_in_sync(master, 1)
    assert in_sync_file.load(store_ctx(master).settings.root) == {1}
    reply = send(p.client, "PWR", b"listed")
    assert reply.code == ResponseCode.SUCCESS, reply.remark
