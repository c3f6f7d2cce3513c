"""Classic master/slave replication in one process (one Node per role): byte-identical logs,
SYNC_MASTER acknowledgements (REPLICATED, SLAVE_NOT_AVAILABLE, FLUSH_SLAVE_TIMEOUT), ack
counting by distinct slave id, a slave restart that catches up with no gap or duplicate (R13),
and a diverging slave told to truncate."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import gevent.event
import pytest

from actors.broker import ha_connection, ha_service
from actors.broker.ha_messages import AwaitReplica, NewEpoch, SlaveAck
from actors.broker.node import TRUNCATE_MARKER
from config import load_profile
from runtime.actor import actor_of, new_future, offload, watch
from runtime.ha import protocol as P
from runtime.ha.epoch import EpochFile
from runtime.ha.protocol import Epoch
from runtime.node import Node
from runtime.remoting.codes import ResponseCode
from runtime.store import record as R
from runtime.store.commitlog import AppendedBatch
from runtime.store.context import ReplicationStatus
from runtime.store.raw import RawRead, read_raw
from runtime.store.recovery import OpenStore, open_store
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
)
from tests.wire import WireClient, send_v2

STORED_NOT_REPLICATED = {ResponseCode.FLUSH_SLAVE_TIMEOUT, ResponseCode.SLAVE_NOT_AVAILABLE}

pytestmark = pytest.mark.timeout(60)


class Group:
    """A master and (optionally) a slave, each its own Node, for one test."""

    def __init__(self, tmp: pathlib.Path, namesrv: str, role: str, **extra: object) -> None:
        self.tmp = tmp
        self.namesrv = namesrv
        self.extra = extra
        self.master = start_broker(broker_config("broker-a", 0, role, namesrv, **extra), tmp / "m")
        self.ha = self.master.ha_addresses[label(self.master)]
        self.slave: Node | None = None
        self.client = WireClient(self.master.addresses[label(self.master)])

    def start_slave(self) -> Node:
        cfg = broker_config(
            "broker-a", 1, "SLAVE", self.namesrv, ha_master_address=self.ha, **self.extra
        )
        self.slave = start_broker(cfg, self.tmp / "s")
        return self.slave

    def stop_slave(self) -> None:
        assert self.slave is not None
        stop_node(self.slave)
        self.slave = None

    def close(self) -> None:
        self.client.close()
        if self.slave is not None:
            stop_node(self.slave)
        stop_node(self.master)


@pytest.fixture
def group_factory(tmp_path: pathlib.Path, namesrv: str) -> Iterator[list[Group]]:
    groups: list[Group] = []
    yield groups
    for g in groups:
        g.close()


def make(groups: list[Group], tmp: pathlib.Path, namesrv: str, role: str, **kw: object) -> Group:
    g = Group(tmp, namesrv, role, **kw)
    groups.append(g)
    return g


@pytest.mark.parametrize("role", ["ASYNC_MASTER", "SYNC_MASTER"])
def test_slave_commit_log_is_byte_identical(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group], role: str
) -> None:
    # Given a master with a replicating slave
    g = make(group_factory, tmp_path, namesrv, role)
    g.start_slave()
    wait_in_sync(g.master, 1)
    # When 300 messages of ~700 bytes are sent (several 64 KiB segments)
    for i in range(300):
        reply = send(g.client, "HA", f"{i:05d}".encode() * 140, queue_id=i % 2)
        assert reply.code == ResponseCode.SUCCESS, reply.remark
    # Then the slave's queues fill up and its commit log is byte-identical to the master's
    slave_ctx = store_ctx(g.slave)  # type: ignore[arg-type]
    for qid in (0, 1):
        wait_queue(slave_ctx, "HA", qid, 150)
    master_ctx = store_ctx(g.master)
    assert len(master_ctx.require_open().log.segments.segments) >= 3
    same_commit_log(master_ctx, slave_ctx)
    got = queue_records(slave_ctx, "HA", 1, 200)
    assert [r.queue_offset for r in got] == list(range(150))
    assert got[7].body == f"{15:05d}".encode() * 140


def test_sync_master_with_the_slave_down_answers_slave_not_available_and_hides_the_records(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    g.start_slave()
    wait_in_sync(g.master, 1)
    assert send(g.client, "HA", b"first").code == ResponseCode.SUCCESS
    # When the slave stops
    g.stop_slave()
    # Then sends are stored but answered SLAVE_NOT_AVAILABLE once the master saw the link go
    # (one sent in the meantime may wait the slave timeout: FLUSH_SLAVE_TIMEOUT)
    codes = []
    for _ in range(5):
        codes.append(send(g.client, "HA", b"later").code)
        if codes[-1] == ResponseCode.SLAVE_NOT_AVAILABLE:
            break
    assert codes[-1] == ResponseCode.SLAVE_NOT_AVAILABLE, codes
    assert set(codes) <= {ResponseCode.SLAVE_NOT_AVAILABLE, ResponseCode.FLUSH_SLAVE_TIMEOUT}
    # and consumers do not see them: no slave holds them (only "first" is visible)
    master_ctx = store_ctx(g.master)
    assert wait_queue(master_ctx, "HA", 0, 1) == 1
    assert master_ctx.dispatched < master_ctx.require_open().log.write_offset
    # When the slave comes back, Then it catches up and the held records become visible
    g.start_slave()
    wait_queue(master_ctx, "HA", 0, 1 + len(codes))
    assert [r.body for r in queue_records(master_ctx, "HA", 0, 10)] == [b"first"] + [
        b"later"
    ] * len(codes)


def test_sync_master_with_a_stalled_slave_answers_flush_slave_timeout(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    # Given a slave that says HELLO and then never reports
    fake = FakeSlave(g.ha, node=5)
    assert isinstance(fake.next_frame(), P.Accept)
    # When a message is sent, Then it is stored but times out waiting for the slave (1 s)
    reply = send(g.client, "HA", b"stuck")
    assert reply.code == ResponseCode.FLUSH_SLAVE_TIMEOUT
    # and consumers do not see it: it is not on the in-sync slave
    ctx = store_ctx(g.master)
    assert ctx.dispatched == 0
    fake.close()


def test_a_report_past_what_the_link_sent_closes_it(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    # Given a peer that says HELLO and, without reading anything, reports 2^62 ("I hold it all")
    fake = FakeSlave(g.ha, node=5)
    assert isinstance(fake.next_frame(), P.Accept)
    fake.report(2**62)
    # Then the master closes its link
    fake.sock.settimeout(5.0)
    assert fake.closed_by_master()
    # And a send is not acknowledged as replicated on its word
    assert send(g.client, "HA", b"unheld").code in STORED_NOT_REPLICATED
    # And a peer naming the master's own node id, or a negative one, is refused
    for node in (0, -1):
        bad = FakeSlave(g.ha, node=node)
        refused = bad.next_frame()
        assert isinstance(refused, P.Refused) and "node id" in refused.text
        bad.close()
    fake.close()


def test_acks_count_by_distinct_slave_id(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    first = FakeSlave(g.ha, node=7)
    assert isinstance(first.next_frame(), P.Accept)
    # When the same slave id links again
    second = FakeSlave(g.ha, node=7)
    assert isinstance(second.next_frame(), P.Accept)
    # Then the master closes the older link and counts the slave once
    first.sock.settimeout(5.0)
    assert first.closed_by_master()
    ctx = store_ctx(g.master)
    state = ha_state(g.master)
    assert set(state.slaves) == {7} and state.in_sync == {7}
    # When a send arrives and the second link reports it, Then it is REPLICATED
    g.client.send(_send_request())
    end = second.data_until(1)
    second.report(end)
    reply = g.client.receive()
    assert reply.code == ResponseCode.SUCCESS
    assert ctx.dispatched == end
    second.close()


def _send_request():  # type: ignore[no-untyped-def]

    return send_v2("HA", b"counted once")


def test_slave_restart_catches_up_without_gap_or_duplicate(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # R13: Given an ASYNC master and its slave with 100 messages replicated
    g = make(group_factory, tmp_path, namesrv, "ASYNC_MASTER")
    g.start_slave()
    for i in range(100):
        assert send(g.client, "R13", f"a{i}".encode()).code == ResponseCode.SUCCESS
    wait_queue(store_ctx(g.slave), "R13", 0, 100)  # type: ignore[arg-type]
    # When the slave stops, 100 more are sent, it restarts, and 100 more are sent
    g.stop_slave()
    for i in range(100):
        assert send(g.client, "R13", f"b{i}".encode()).code == ResponseCode.SUCCESS
    g.start_slave()
    for i in range(100):
        assert send(g.client, "R13", f"c{i}".encode()).code == ResponseCode.SUCCESS
    # Then the slave holds all 300 at queue offsets 0..299, in order, once each
    slave_ctx = store_ctx(g.slave)  # type: ignore[arg-type]
    wait_queue(slave_ctx, "R13", 0, 300)
    got = queue_records(slave_ctx, "R13", 0, 400)
    assert [r.queue_offset for r in got] == list(range(300))
    want = [f"{p}{i}".encode() for p in "abc" for i in range(100)]
    assert [r.body for r in got] == want
    same_commit_log(store_ctx(g.master), slave_ctx)


def test_a_new_epoch_tells_a_linked_slave_to_link_again_at_once(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # Given a slave linked to a master (accepted, reading its stream)
    g = make(group_factory, tmp_path, namesrv, "ASYNC_MASTER")
    slave = FakeSlave(g.ha, node=1)
    try:
        assert isinstance(slave.next_frame(), P.Accept)
        # When the master begins a new term (the slave must mirror its epoch entries)
        term = new_future()
        g.master.directory.require(f"{label(g.master)}/ha-service").tell(NewEpoch(1, term))
        assert term.get(timeout=5) is True
        # Then its stream ends with REFUSED not ready (the slave links again after 0.2 s, not
        # the 1 s it waits after a plain close) before the master closes the link
        frame = slave.next_frame()
        while isinstance(frame, P.Data):
            frame = slave.next_frame()
        assert isinstance(frame, P.Refused) and frame.reason is P.RefuseReason.NOT_READY, frame
        assert "new epoch 1" in frame.text
        assert slave.closed_by_master()
    finally:
        slave.close()


def test_a_slave_accepted_while_a_new_epoch_is_written_links_again(
    tmp_path: pathlib.Path,
    namesrv: str,
    group_factory: list[Group],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a master whose new epoch entry takes a while to reach the disk (its fsync)
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    writing, gate = gevent.event.Event(), gevent.event.Event()

    def slow_offload(fn, *args, **kw):  # type: ignore[no-untyped-def]
        if getattr(fn, "__name__", "") == "append":  # (EpochFile.append)
            writing.set()
            assert gate.wait(10.0)
        return offload(fn, *args, **kw)

    monkeypatch.setattr(ha_service, "offload", slow_offload)
    term = new_future()
    g.master.directory.require(f"{label(g.master)}/ha-service").tell(NewEpoch(1, term))
    assert writing.wait(5.0)
    # When a slave is accepted meanwhile (with the entries before the new one)
    slave = FakeSlave(g.ha, node=3)
    try:
        accept = slave.next_frame()
        assert isinstance(accept, P.Accept) and accept.epochs == ()
        gate.set()
        assert term.get(timeout=5) is True
        # Then its stream ends with REFUSED not ready: it links again and mirrors epoch 1.
        # (It was not among the links the new epoch closed: it streamed epoch 1's records
        # without the entry, and its next HELLO was cut back at the epoch's start, records a
        # SYNC_MASTER had acknowledged on its word included.)
        deadline = time.monotonic() + 5.0
        frame = slave.next_frame()
        while isinstance(frame, P.Data) and time.monotonic() < deadline:
            frame = slave.next_frame()
        assert isinstance(frame, P.Refused) and frame.reason is P.RefuseReason.NOT_READY, frame
        assert "new epoch 1" in frame.text
    finally:
        gate.set()
        slave.close()


def test_a_new_epoch_begins_at_the_log_end_before_a_mirrored_term_it_holds_nothing_of(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # Given a master whose epoch file names a term beginning past its log's end (as a slave
    # mirrors its master's entries on ACCEPT while behind that term's start, then is elected)
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    assert send(g.client, "HA", b"held").code in STORED_NOT_REPLICATED
    service = g.master.directory.require(f"{label(g.master)}/ha-service")
    ha = actor_of(service).ha  # type: ignore[union-attr]
    end = ha.store.require_open().log.write_offset
    ha.epochs.append(3, end + 4096, 9)
    # When it begins a new term
    term = new_future()
    service.tell(NewEpoch(4, term))
    # Then the term begins at its log's end, the entry of the term it holds nothing of gone
    # (the append refused to go back before it: the HAService failed on every NewEpoch and
    # the elected node never took its term)
    assert term.get(timeout=5) is True
    assert ha.epochs.entries == [Epoch(4, end, 0)]


def test_an_append_while_the_sender_looks_at_the_log_is_sent_at_once(
    tmp_path: pathlib.Path,
    namesrv: str,
    group_factory: list[Group],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a master streaming to a slave, idle (a heartbeat frame every second)
    g = make(group_factory, tmp_path, namesrv, "ASYNC_MASTER", ha_send_heartbeat_interval=5000)
    slave = FakeSlave(g.ha, node=3)
    try:
        assert isinstance(slave.next_frame(), P.Accept)
        state = ha_state(g.master)
        fired: list[float] = []

        def racing_read(log, pos, batch, limit):  # type: ignore[no-untyped-def]
            got = read_raw(log, pos, batch, limit)
            if got.data and not fired:
                # the append lands just after the sender found nothing to send (it yielded,
                # say in a heartbeat's send): its wake-up comes before the sender waits
                fired.append(time.monotonic())
                state.wake()
                return RawRead(b"", pos)
            return got

        monkeypatch.setattr(ha_connection, "read_raw", racing_read)
        # When a message is appended
        assert send(g.client, "HA", b"woken").code == ResponseCode.SUCCESS
        frame = slave.next_frame()
        while not (isinstance(frame, P.Data) and frame.data):
            frame = slave.next_frame()
        # Then it is sent at once, not after the sender's idle wait (1 s) that the wake-up it
        # missed would have cut short
        assert fired and time.monotonic() - fired[0] < 0.5
    finally:
        slave.close()


def test_a_diverging_slave_is_truncated_at_the_epoch_boundary(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # Given a slave that replicated 20 messages, then (stopped) got 5 records of its own,
    # while the master began a new term (epoch 1) and wrote 10 more
    g = make(group_factory, tmp_path, namesrv, "ASYNC_MASTER")
    g.start_slave()
    for i in range(20):
        assert send(g.client, "DIV", f"m{i}".encode()).code == ResponseCode.SUCCESS
    slave_ctx = store_ctx(g.slave)  # type: ignore[arg-type]
    wait_queue(slave_ctx, "DIV", 0, 20)
    settings = slave_ctx.settings
    g.stop_slave()
    term = new_future()
    g.master.directory.require(f"{label(g.master)}/ha-service").tell(NewEpoch(1, term))
    assert term.get(timeout=5) is True
    boundary = store_ctx(g.master).require_open().log.write_offset
    opened = open_store(settings)
    extra = [R.PutRecord("DIV", 0, b"stray", "") for _ in range(5)]
    res = opened.log.append_batch(extra, opened.next_offsets, 1, 1 << 20)
    assert isinstance(res, AppendedBatch)
    close_store(opened)
    for i in range(10):
        assert send(g.client, "DIV", f"n{i}".encode()).code == ResponseCode.SUCCESS
    # When the slave restarts, Then it is told to truncate and restarts its broker subtree
    slave = g.start_slave()
    first = slave.directory.require(label(slave))
    ended = gevent.event.Event()
    watch(first, lambda _ref, _failure: ended.set())
    assert ended.wait(10), "the slave did not restart to truncate"
    assert slave._root is not None
    again = slave._root.proxy().lookup(label(slave)).get(timeout=10)
    assert again is not None and again.actor_urn != first.actor_urn
    # and converges on the master's log, with the master's epoch entries
    slave_ctx = store_ctx(slave)
    wait_queue(slave_ctx, "DIV", 0, 30)
    got = queue_records(slave_ctx, "DIV", 0, 64)
    want = [f"m{i}".encode() for i in range(20)] + [f"n{i}".encode() for i in range(10)]
    assert [r.body for r in got] == want
    assert [r.queue_offset for r in got] == list(range(30))
    assert not (pathlib.Path(settings.root) / TRUNCATE_MARKER).exists()
    assert EpochFile(settings.root).entries == [Epoch(1, boundary, 0)]
    same_commit_log(store_ctx(g.master), slave_ctx)


def close_store(opened: OpenStore) -> None:
    opened.log.segments.flush()
    opened.log.segments.close()
    for cq in opened.queues.values():
        cq.close()
    if opened.index is not None:
        opened.index.close()
    opened.lock.release()


@pytest.mark.parametrize("profile", ["2m-2s-async", "2m-2s-sync"])
def test_shipped_profiles_replicate_in_one_process(tmp_path: pathlib.Path, profile: str) -> None:
    # Given a shipped two-group profile run in one process
    p = load_profile(profile)
    node = Node(
        namesrvs=list(p.namesrvs),
        brokers=list(p.brokers),
        data_dir=tmp_path,
        cluster_mode=True,
        ephemeral_ports=True,
    )
    node.start()
    try:
        for name in ("broker-a", "broker-b"):
            master, slave = f"{name}/0", f"{name}/1"
            service = actor_of(node.directory.require(f"{master}/ha-service"))
            state = service.ha.state  # type: ignore[union-attr]
            # (in controller mode a slave's acks count once the controller acknowledged it)
            assert state.wait_until(
                lambda s: 1 in (s.isr_acknowledged if s.controller_mode else s.in_sync), 10
            ), name
            client = WireClient(node.addresses[master])
            # When a message is sent to each group's master
            reply = send(client, f"P-{name}", b"replicated")
            client.close()
            assert reply.code == ResponseCode.SUCCESS
            # Then the group's slave has it
            writer = actor_of(node.directory.require(f"{slave}/store/commitlog"))
            wait_queue(writer.ctx, f"P-{name}", 0, 1)  # type: ignore[union-attr]
    finally:
        stop_node(node)


def test_an_ha_service_crash_during_sync_sends_never_acks_unreplicated_data(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # R22 (actor level): Given a SYNC_MASTER with its slave in sync
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    g.start_slave()
    wait_in_sync(g.master, 1)
    assert send(g.client, "R22", b"before").code == ResponseCode.SUCCESS
    state = ha_state(g.master)
    service = g.master.directory.require(f"{label(g.master)}/ha-service")
    # When an exception fails the HAService inside a handler
    service.tell(SlaveAck(1, state.slaves[1].urn, None))  # type: ignore[arg-type]
    # Then every send completes at once with ok or an "unknown" status, never hangs
    codes = [send(g.client, "R22", f"during-{i}".encode()).code for i in range(5)]
    stored = {
        ResponseCode.SUCCESS,
        ResponseCode.SLAVE_NOT_AVAILABLE,
        ResponseCode.FLUSH_SLAVE_TIMEOUT,
    }
    assert set(codes) <= stored, codes
    # and the restarted service counts the slave again (its next ack), so PUT_OK comes back
    assert state.wait_until(lambda s: 1 in s.in_sync, 10)
    assert send(g.client, "R22", b"after").code == ResponseCode.SUCCESS
    assert (
        g.master.directory.require(f"{label(g.master)}/ha-service").actor_urn != service.actor_urn
    )
    # and whatever was acknowledged is on the slave
    slave_ctx = store_ctx(g.slave)  # type: ignore[arg-type]
    wait_queue(slave_ctx, "R22", 0, 7)
    assert [r.body for r in queue_records(slave_ctx, "R22", 0, 8)][-1] == b"after"


def test_replication_waits_queued_behind_an_ha_service_failure_are_answered(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # R22: Given a SYNC_MASTER with a linked slave
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER")
    slave = FakeSlave(g.ha, node=5)
    try:
        assert isinstance(slave.next_frame(), P.Accept)
        state = ha_state(g.master)
        assert state.wait_until(lambda s: 5 in s.slaves, 5.0)
        service = g.master.directory.require(f"{label(g.master)}/ha-service")
        # When a handler fails with a put's replication wait queued behind it
        service.tell(SlaveAck(5, state.slaves[5].urn, None))  # type: ignore[arg-type]
        waiting = new_future()
        service.tell(AwaitReplica(1 << 40, waiting))
        # Then that put is answered at once (stored, outcome unknown), not dropped with the
        # actor's inbox (the put hung until the store's put timeout)
        assert waiting.get(timeout=5) is ReplicationStatus.FLUSH_SLAVE_TIMEOUT
    finally:
        slave.close()


@pytest.mark.parametrize("all_ack", [False, True], ids=["one-ack", "all-ack"])
def test_all_ack_in_sync_state_set_waits_for_every_in_sync_slave(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group], all_ack: bool
) -> None:
    # Given a SYNC_MASTER with a real slave (1) and a second in-sync slave (7) that reads the
    # stream but does not acknowledge yet
    g = make(
        group_factory,
        tmp_path,
        namesrv,
        "SYNC_MASTER",
        all_ack_in_sync_state_set=all_ack,
        slave_timeout=1500,
    )
    g.start_slave()
    quiet = FakeSlave(g.ha, node=7)
    try:
        assert isinstance(quiet.next_frame(), P.Accept)
        wait_in_sync(g.master, 1, 7)
        # When a message is sent
        first = send(g.client, "HA", b"held by one")
        if all_ack:
            # Then with allAckInSyncStateSet the master does not vouch for it while slave 7
            # lacks it (stored, outcome unknown: FLUSH_SLAVE_TIMEOUT), ...
            assert first.code == ResponseCode.FLUSH_SLAVE_TIMEOUT, first.remark
            # ... and answers SEND_OK once slave 7 holds it too
            held = quiet.data_until(1)
            g.client.send(send_v2("HA", b"held by both"))
            quiet.report(quiet.data_until(held + 1))
            assert g.client.receive().code == ResponseCode.SUCCESS
        else:
            # Then without it one slave's ack is enough (RocketMQ's default)
            assert first.code == ResponseCode.SUCCESS, first.remark
    finally:
        quiet.close()


def test_all_ack_does_not_wait_for_a_slave_that_relinked_far_behind(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # Given a classic SYNC_MASTER with allAckInSyncStateSet, a real slave (1) in sync, and
    # messages stored
    g = make(
        group_factory,
        tmp_path,
        namesrv,
        "SYNC_MASTER",
        all_ack_in_sync_state_set=True,
        slave_timeout=1500,
    )
    g.start_slave()
    wait_in_sync(g.master, 1)
    for i in range(20):
        assert send(g.client, "HA", f"before {i}".encode()).code == ResponseCode.SUCCESS
    # When a second slave (7) links far behind (a restart: its log ends at 0) and does not
    # catch up yet; it is in sync (classic mode: within the lag limit)
    behind = FakeSlave(g.ha, node=7)
    try:
        assert isinstance(behind.next_frame(), P.Accept)
        wait_in_sync(g.master, 1, 7)
        # Then a send is acknowledged on the caught-up slave's ack: allAckInSyncStateSet
        # waits for the slaves that caught up within haMaxTimeSlaveNotCatchup, and a link
        # that never held the master's end has not (every send got FLUSH_SLAVE_TIMEOUT for
        # 15 s after a slave restart)
        reply = send(g.client, "HA", b"after the relink")
        assert reply.code == ResponseCode.SUCCESS, reply.remark
    finally:
        behind.close()


def test_min_in_sync_replicas_refuses_sends_until_a_slave_is_in_sync(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group]
) -> None:
    # Given a SYNC_MASTER that needs two replicas in sync (itself and a slave), and no slave
    g = make(group_factory, tmp_path, namesrv, "SYNC_MASTER", min_in_sync_replicas=2)
    # When a message is sent, Then it is refused as RocketMQ refuses it, and nothing is stored
    refused = send(g.client, "HA", b"alone")
    assert refused.code == ResponseCode.SYSTEM_ERROR
    assert "in-sync replicas not enough" in (refused.remark or "")
    assert store_ctx(g.master).require_open().log.write_offset == 0
    # When a slave joins the in-sync set, Then sends are taken and acknowledged again
    g.start_slave()
    wait_in_sync(g.master, 1)
    assert send(g.client, "HA", b"replicated").code == ResponseCode.SUCCESS


@pytest.mark.parametrize("ahead", [0, 4096], ids=["level", "ahead"])
def test_a_classic_master_does_not_cut_back_a_slave_holding_more_of_its_term(
    tmp_path: pathlib.Path, namesrv: str, group_factory: list[Group], ahead: int
) -> None:
    # Given a classic master that stored a message, and a slave of the same term whose log
    # ends at the master's end or past it (what the master lost in a power loss)
    g = make(group_factory, tmp_path, namesrv, "ASYNC_MASTER")
    assert send(g.client, "AHEAD", b"kept").code == ResponseCode.SUCCESS
    end = store_ctx(g.master).require_open().log.write_offset
    slave = FakeSlave(g.ha, node=1, max_offset=end + ahead)
    try:
        frame = slave.next_frame()
        if not ahead:
            # Then a slave level with it is taken as it is
            assert isinstance(frame, P.Accept) and frame.offset == end
            return
        # Then the master refuses the link instead of telling the slave to truncate
        assert isinstance(frame, P.Refused), frame
        assert frame.reason is P.RefuseReason.DIVERGED and "not cutting" in frame.text
    finally:
        slave.close()
