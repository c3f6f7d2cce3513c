"""The store's actors through the BrokerStore facade: put/get, statuses, validation, arrival
notification, key lookups, transactions, restarts, consumer offsets, topics, retention."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gevent
import msgspec
import pykka
import pytest

from actors.broker.dispatcher import checkpoint_due
from actors.broker.messages import ClampOffsets, CleanTick, Dispatch
from actors.broker.retention import Retention
from actors.broker.store_reads import tag_codes
from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.store_service import BrokerStore
from actors.broker.topic_config import is_system_topic
from actors.broker.topic_config_data import TopicConfigData
from runtime.actor import new_future, others_ready
from runtime.directory import Directory
from runtime.errors import ActorFailure
from runtime.ha import boot
from runtime.store import accel
from runtime.store import checkpoint as ckpt
from runtime.store import record as R
from runtime.store.context import AlwaysReplicated
from runtime.store.faults import FaultyFileSystem
from runtime.store.fsyncer import API as FSYNCER_API
from runtime.store.fsyncer import Fsyncer
from runtime.store.lockfile import abort_exists
from runtime.store.msg_id import decode_offset_msg_id
from runtime.store.record_properties import encode_properties
from runtime.store.settings import FlushMode, StoreSettings
from runtime.store.tail_guard import TailLossGuard
from runtime.supervisor import Supervisor
from tests.actors.ha_support import wait_until

T = 5.0


def settings_for(root: Path, **kw: Any) -> StoreSettings:
    base: dict[str, Any] = {
        "root": str(root),
        "commitlog_segment_size": 16 * 1024,
        "cq_entries_per_file": 64,
        "index_slots": 257,
        "index_capacity": 2000,
        "flush_interval_ms": 50,
        "checkpoint_interval_ms": 100,
        "checkpoint_lag_bytes": 0,  # a checkpoint at every tick
        "consumer_offset_persist_interval_ms": 100,
        "clean_resource_interval_ms": 60_000,
        "delete_when": "99",
    }
    base.update(kw)
    return StoreSettings(**base)


def open_store(root: Path, fs: Any = None, **kw: Any) -> BrokerStore:
    s = settings_for(root, **kw)
    store = BrokerStore.build(s, Directory(), fs=fs) if fs else BrokerStore.build(s, Directory())
    return store.start()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BrokerStore]:
    s = open_store(tmp_path)
    yield s
    s.stop()


def rec(body: bytes, queue_id: int = 0, topic: str = "T", **props: str) -> R.PutRecord:
    return R.PutRecord(topic, queue_id, body, encode_properties(props) if props else "")


def put(store: BrokerStore, *records: R.PutRecord) -> Any:
    return store.put(list(records)).get(timeout=T)


def bodies(result: Any) -> list[bytes]:
    return [R.decode_record(m).body for m in result.messages]


def get(store: BrokerStore, offset: int, n: int = 32, **kw: Any) -> Any:
    return store.get_messages(
        "g", kw.pop("topic", "T"), kw.pop("queue_id", 0), offset, n, **kw
    ).get(timeout=T)


def consumable(store: BrokerStore, n: int, queue_id: int = 0, topic: str = "T") -> None:
    wait_until(lambda: store.max_offset(topic, queue_id).get(timeout=T) >= n)


def test_put_then_get(store: BrokerStore) -> None:
    # Given a batch of three messages
    result = put(store, rec(b"a"), rec(b"b"), rec(b"c"))
    # Then it is stored at queue offsets 0..2 with offset message ids
    assert result.status is PutStatus.PUT_OK
    assert result.queue_offsets == (0, 1, 2)
    assert len(result.msg_ids) == 3 and result.msg_id.count(",") == 2
    consumable(store, 3)
    got = get(store, 0)
    assert got.status is GetStatus.FOUND
    assert bodies(got) == [b"a", b"b", b"c"]
    assert got.queue_offsets == (0, 1, 2)
    assert (got.next_begin_offset, got.min_offset, got.max_offset) == (3, 0, 3)
    # the raw records carry their offsets (the PULL wire format)
    first = R.decode_record(got.messages[0])
    assert (first.queue_offset, first.physical_offset) == (0, result.physical_offset)
    # and a message can be found by its offset message id
    phys = decode_offset_msg_id(result.msg_ids[1]).physical_offset
    found = store.look_message_by_offset(phys)
    assert found is not None and found.body == b"b"


def test_get_statuses(store: BrokerStore) -> None:
    put(store, *[rec(bytes([i]) * 100) for i in range(10)])
    consumable(store, 10)
    assert get(store, 10).status is GetStatus.OFFSET_OVERFLOW_ONE
    bad = get(store, 50)
    assert (bad.status, bad.next_begin_offset) == (GetStatus.OFFSET_OVERFLOW_BADLY, 0)
    missing = get(store, 0, queue_id=7)
    assert missing.status is GetStatus.NO_MATCHED_LOGIC_QUEUE
    capped = get(store, 2, n=3)
    assert (len(capped.messages), capped.next_begin_offset) == (3, 5)
    size = len(capped.messages[0])
    by_bytes = get(store, 0, max_bytes=size * 2 + 1)
    assert len(by_bytes.messages) == 2
    one = get(store, 0, max_bytes=1)  # at least one message even if it exceeds the cap
    assert len(one.messages) == 1


def test_reads_split_runs_where_other_queues_records_interleave(store: BrokerStore) -> None:
    # Given queue 0's records alternating with queue 1's in the log, then three of queue 0's
    # back to back (a batch)
    for i in range(4):
        put(store, rec(b"q0-%d" % i, queue_id=0), rec(b"q1-%d" % i, queue_id=1))
    put(store, rec(b"q0-4"), rec(b"q0-5"), rec(b"q0-6"))
    consumable(store, 7)
    # When queue 0 is read from the start, and from inside the batch
    got = get(store, 0)
    tail = get(store, 5)
    # Then each read returns only queue 0's records, in order, at their offsets
    assert bodies(got) == [b"q0-%d" % i for i in range(7)]
    assert got.queue_offsets == tuple(range(7)) and got.next_begin_offset == 7
    assert bodies(tail) == [b"q0-5", b"q0-6"] and tail.queue_offsets == (5, 6)
    assert bodies(get(store, 0, queue_id=1)) == [b"q1-%d" % i for i in range(4)]


def test_tag_filter(store: BrokerStore) -> None:
    put(store, *[rec(f"m{i}".encode(), TAGS="A" if i % 2 else "B") for i in range(6)])
    consumable(store, 6)
    got = get(store, 0, tag_filter=tag_codes("A"))
    assert bodies(got) == [b"m1", b"m3", b"m5"]
    assert got.next_begin_offset == 6
    none = get(store, 0, tag_filter=tag_codes("C || D"))
    assert (none.status, none.next_begin_offset) == (GetStatus.NO_MATCHED_MESSAGE, 6)
    assert tag_codes("*") is None


def test_illegal_records_are_refused_before_writing(store: BrokerStore) -> None:
    put(store, rec(b"ok"))
    before = store.ctx.require_open().log.write_offset
    assert put(store, rec(b"x", topic="bad topic")).status is PutStatus.MESSAGE_ILLEGAL
    too_big = rec(b"x" * (store.settings.max_message_size + 1))
    assert put(store, rec(b"fine"), too_big).status is PutStatus.MESSAGE_ILLEGAL
    props = rec(b"x", P="y" * 40_000)
    assert put(store, props).status is PutStatus.PROPERTIES_SIZE_EXCEEDED
    assert store.ctx.require_open().log.write_offset == before
    assert put(store, rec(b"next")).queue_offsets == (1,)


def test_coalesced_appends_keep_separate_outcomes(store: BrokerStore) -> None:
    # Given three puts queued before the writer runs (they are written as one group)
    first = store.put([rec(b"a"), rec(b"b")])
    bad = store.put([rec(b"c"), rec(b"x", topic="bad topic")])
    third = store.put([rec(b"d", queue_id=1), rec(b"e")])
    # Then each batch gets its own answer; the illegal one wrote nothing
    assert first.get(timeout=T).queue_offsets == (0, 1)
    assert bad.get(timeout=T).status is PutStatus.MESSAGE_ILLEGAL
    assert third.get(timeout=T).queue_offsets == (0, 2)
    consumable(store, 3)
    assert bodies(get(store, 0)) == [b"a", b"b", b"e"]


def test_wait_arrival(store: BrokerStore) -> None:
    # Given a long poll parked at offset 0 of an empty queue
    waiter = store.wait_arrival("T", 0, 0, timeout=10)
    gevent.sleep(0.05)
    assert not waiter.done()
    # When a message arrives, Then the poll wakes with the new max offset
    put(store, rec(b"x"))
    assert waiter.get(timeout=T) == 1
    # A waiter for a later offset times out with the current max
    late = store.wait_arrival("T", 0, 5, timeout=0.1)
    assert late.get(timeout=3) == 1


@pytest.mark.parametrize("flush_mode", [FlushMode.ASYNC_FLUSH, FlushMode.SYNC_FLUSH])
def test_a_parked_long_poll_is_woken_before_the_ack(tmp_path: Path, flush_mode: FlushMode) -> None:
    # Given a long poll parked on an empty queue (counted as parked on the store), and idle
    # actors (no checkpoint tick due: a busy dispatcher takes the dispatch as a plain tell)
    store = open_store(tmp_path, flush_mode=flush_mode, checkpoint_interval_ms=60_000)
    try:
        order: list[str] = []
        waiter = store.wait_arrival("T", 0, 0, timeout=10)
        waiter.add_done_callback(lambda _f: order.append("poll"))
        wait_until(lambda: ("T", 0) in store.ctx.parked_queues and not others_ready())
        # When a message is put (under SYNC_FLUSH both wait for the same fsync)
        reply = store.put([rec(b"x")])
        reply.add_done_callback(lambda _f: order.append("ack"))
        assert reply.get(timeout=T).status is PutStatus.PUT_OK and waiter.get(timeout=T) == 1
        # Then the poll was woken before the ack (its response leaves first), and is no longer
        # parked
        wait_until(lambda: len(order) == 2)
        assert order == ["poll", "ack"]
        assert ("T", 0) not in store.ctx.parked_queues
        # and a poll that times out is no longer counted either
        late = store.wait_arrival("T", 0, 5, timeout=0.05)
        assert late.get(timeout=3) == 1
        wait_until(lambda: not store.ctx.parked_queues)
    finally:
        store.stop()


def test_a_poll_parked_on_another_queue_leaves_the_ack_first(tmp_path: Path) -> None:
    # Given a long poll parked on queue 1, an idle writer and hub, no checkpoint tick due
    store = open_store(tmp_path, checkpoint_interval_ms=60_000)
    try:
        put(store, rec(b"warm"))
        consumable(store, 1)
        waiter = store.wait_arrival("T", 1, 0, timeout=10)
        wait_until(lambda: ("T", 1) in store.ctx.parked_queues and not others_ready())
        # When a message is put to queue 0 (handled inline: its ack is set before put returns)
        before = store.ctx.dispatched
        future = store.put([rec(b"x", queue_id=0)])
        assert future.done()
        # Then it was acked before it was dispatched (nobody waits for it), and dispatched after
        assert store.ctx.dispatched == before
        consumable(store, 2)
        assert not waiter.done()
    finally:
        store.stop()


def test_a_stopping_store_starts_no_queue_actor(tmp_path: Path) -> None:
    # Given a long poll parked on a queue of a store that is being stopped (the Dispatcher,
    # which stops every Queue actor, stops before the writer closes the files)
    store = open_store(tmp_path)
    try:
        waiter = store.wait_arrival("T", 0, 0, timeout=10)
        wait_until(lambda: ("T", 0) in store.ctx.parked_queues)
        dispatcher = store.ctx.directory.require(store.names.dispatcher)
        dispatcher.stop(block=True, timeout=T)
        # Then the poll is woken at once (nothing arrived)
        assert waiter.get(timeout=T) == 0
        # When it reads again and parks again before the writer closed the store
        assert store.ctx.opened is not None
        with pytest.raises(ActorFailure, match="not running"):
            store.get_messages("g", "T", 0, 0, 32).get(timeout=T)
        assert store.wait_arrival("T", 0, 0, timeout=10).get(timeout=T) == 0
        # Then no Queue actor was started again on the store being stopped
        assert not store.ctx.queues.refs()
    finally:
        store.stop()


def test_illegal_names_never_touch_the_file_system(store: BrokerStore, tmp_path: Path) -> None:
    assert store.wait_arrival("../../escape", 0, 0, timeout=0.1).get(timeout=T) == 0
    assert store.wait_arrival("T", -1, 0, timeout=0.1).get(timeout=T) == 0
    assert get(store, 0, topic="../x").status is GetStatus.NO_MATCHED_LOGIC_QUEUE
    assert not (tmp_path.parent / "escape").exists()
    assert not (tmp_path / "consumequeue" / "..").resolve().joinpath("x").exists()


def test_query_by_key(store: BrokerStore) -> None:
    put(store, rec(b"a", KEYS="order-1 order-2", UNIQ_KEY="U1"), rec(b"b", KEYS="order-2"))
    consumable(store, 2)
    res = store.query_by_key("T", "order-2", 10).get(timeout=T)
    assert sorted(R.decode_record(m).body for m in res.messages) == [b"a", b"b"]
    res = store.query_by_key("T", "U1", 10).get(timeout=T)
    assert [R.decode_record(m).body for m in res.messages] == [b"a"]
    assert store.query_by_key("Other", "order-2", 10).get(timeout=T).messages == ()
    assert store.query_by_key("T", "order-2", 10, 0, 1000).get(timeout=T).messages == ()


def test_offsets_by_time_and_earliest(store: BrokerStore) -> None:
    first = put(store, rec(b"a"))
    gevent.sleep(0.01)
    second = put(store, rec(b"b"))
    consumable(store, 2)
    assert store.earliest_store_time("T", 0).get(timeout=T) == first.store_timestamp
    assert store.offset_by_time("T", 0, 0).get(timeout=T) == 0
    assert store.offset_by_time("T", 0, second.store_timestamp).get(timeout=T) == 1
    assert store.offset_by_time("T", 0, second.store_timestamp + 1).get(timeout=T) == 2
    assert store.queue_range("T", 0).get(timeout=T) == (0, 2)
    assert store.earliest_store_time("T", 9).get(timeout=T) == -1


def test_transaction_records(store: BrokerStore) -> None:
    half = R.PutRecord("T", 0, b"half", sys_flag=R.TRANSACTION_PREPARED_TYPE)
    res = put(
        store,
        rec(b"normal"),
        half,
        R.PutRecord("T", 0, b"commit", sys_flag=R.TRANSACTION_COMMIT_TYPE),
    )
    assert res.queue_offsets == (0, -1, 1)
    consumable(store, 2)
    assert bodies(get(store, 0)) == [b"normal", b"commit"]
    # the prepared record is still in the log, reachable by its physical offset
    found = store.look_message_by_offset(res.physical_offsets[1])
    assert found is not None and found.body == b"half" and found.queue_offset == 0


def test_segment_rolls_are_transparent(store: BrokerStore) -> None:
    results = [
        put(store, *[rec(os.urandom(700), queue_id=i % 2) for _ in range(8)]) for i in range(20)
    ]
    assert all(r.status is PutStatus.PUT_OK for r in results)
    assert len(store.ctx.require_open().log.segments.segments) > 5
    consumable(store, 80, queue_id=0)
    got0 = [m for off in range(0, 80, 32) for m in get(store, off, queue_id=0).messages]
    assert len(got0) == 80


def test_clean_restart_keeps_everything(tmp_path: Path) -> None:
    # Given a store with messages and consumer progress, stopped cleanly
    s = open_store(tmp_path)
    put(s, rec(b"a"), rec(b"b"))
    put(s, rec(b"c", queue_id=1))
    s.commit_offset("g", "T", 0, 1).get(timeout=T)
    s.update_topic(TopicConfigData(topic_name="T", read_queue_nums=2, write_queue_nums=2)).get(
        timeout=T
    )
    consumable(s, 2)
    s.stop()
    assert not abort_exists(str(tmp_path))
    # When it starts again
    again = open_store(tmp_path)
    try:
        report = again.ctx.require_open().report
        # Then recovery had nothing to re-dispatch, and everything is there
        assert report.reput_records == 0 and not report.unclean
        assert bodies(get(again, 0)) == [b"a", b"b"]
        assert put(again, rec(b"d")).queue_offsets == (2,)
        assert again.query_offset("g", "T", 0).get(timeout=T) == 1
        topic = again.get_topic("T").get(timeout=T)
        assert topic is not None and topic.write_queue_nums == 2
    finally:
        again.stop()


class NeverReplicated:
    """A replication condition that never answers (a SYNC_MASTER whose slave is silent)."""

    required = True
    confirm_source: str | None = None

    def wait(self, offset: int) -> Any:
        return new_future()

    def still_holds(self) -> bool:
        return True

    def may_append(self) -> bool:
        return True

    def replicas_enough(self) -> bool:
        return True


@pytest.mark.parametrize("flush_mode", [FlushMode.ASYNC_FLUSH, FlushMode.SYNC_FLUSH])
def test_wait_false_is_answered_once_appended(tmp_path: Path, flush_mode: FlushMode) -> None:
    # Given a store whose appends must be replicated, and no replica answering
    settings = settings_for(tmp_path, flush_mode=flush_mode)
    store = BrokerStore.build(settings, Directory(), replication=NeverReplicated()).start()
    try:
        # When a record asks not to wait (WAIT=false) and another one waits (the default)
        quick = store.put([rec(b"quick", WAIT="false")])
        waits = store.put([rec(b"waits")])
        # Then the first is PUT_OK at once, as RocketMQ answers waitStoreMsgOK=false; the second
        # still waits for its replica
        assert quick.get(timeout=T).status is PutStatus.PUT_OK
        with pytest.raises(pykka.Timeout):
            waits.get(timeout=0.3)
    finally:
        store.stop()


def test_a_commit_log_in_its_own_directory(tmp_path: Path) -> None:
    # Given a store whose commit log is elsewhere (storePathCommitLog, e.g. another disk)
    elsewhere = tmp_path / "disk2" / "commitlog"
    s = open_store(tmp_path / "root", commitlog_path=str(elsewhere))
    put(s, rec(b"a"), rec(b"b"))
    consumable(s, 2)
    s.stop()
    # Then its segments are there, and nothing of the log is under the root
    assert sorted(p.name for p in elsewhere.iterdir()) == ["0" * 20]
    assert not (tmp_path / "root" / "commitlog").exists()
    # When it starts again, Then it reads its messages from there
    again = open_store(tmp_path / "root", commitlog_path=str(elsewhere))
    try:
        assert bodies(get(again, 0)) == [b"a", b"b"]
    finally:
        again.stop()


def test_crash_restart_redispatches(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    acked = [put(s, rec(f"m{i}".encode(), queue_id=i % 3)) for i in range(30)]
    assert all(r.ok for r in acked)
    s.simulate_crash()
    assert abort_exists(str(tmp_path))
    again = open_store(tmp_path)
    try:
        assert again.ctx.require_open().report.unclean
        for q in range(3):
            consumable(again, 10, queue_id=q)
            assert bodies(get(again, 0, queue_id=q)) == [f"m{i}".encode() for i in range(q, 30, 3)]
    finally:
        again.stop()


def test_second_store_on_same_root_refuses(store: BrokerStore, tmp_path: Path) -> None:
    other = BrokerStore.build(settings_for(tmp_path), Directory())
    with pytest.raises(Exception, match="locked by another process"):
        other.start()


def test_sync_flush_group_commit(tmp_path: Path) -> None:
    # Given a SYNC_FLUSH store on a file system that counts fsyncs
    fs = FaultyFileSystem()
    s = open_store(tmp_path, fs, flush_mode=FlushMode.SYNC_FLUSH)
    try:
        before = fs.fsync_count
        # When 64 appenders each put one message at once
        futures = [s.put([rec(f"m{i}".encode(), queue_id=i % 4)]) for i in range(64)]
        results = [f.get(timeout=T) for f in futures]
        # Then all are acknowledged durable, with far fewer fsyncs than messages
        assert all(r.status is PutStatus.PUT_OK for r in results)
        assert fs.fsync_count - before < 32
        # and every acked message was fsynced before its ack
        log = s.ctx.require_open().log
        assert log.segments.flushed_offset >= max(r.physical_offset for r in results)
        consumable(s, 16, queue_id=3)
    finally:
        s.stop()


def test_sync_flush_on_os_files_uses_the_native_fsync_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if accel.native("_fsyncer", FSYNCER_API) is None:
        pytest.skip("no native fsync thread (not built, or ACTORMQ_PURE_PYTHON=1)")
    # Given a SYNC_FLUSH store on the real file system, its fsync thread's jobs counted
    jobs: list[list[int]] = []
    native = Fsyncer.start

    def counted(self: Fsyncer, fds: list[int], done: Any) -> None:
        jobs.append(list(fds))
        native(self, fds, done)

    monkeypatch.setattr(Fsyncer, "start", counted)
    s = open_store(tmp_path, flush_mode=FlushMode.SYNC_FLUSH)
    try:
        put(s, rec(b"first"))  # the first segment's directory sync goes to the thread pool
        # When 32 appenders each put one message at once
        results = [f.get(timeout=T) for f in [s.put([rec(b"m%d" % i)]) for i in range(32)]]
        # Then all are durable before their acks, through the native thread, in groups
        assert all(r.status is PutStatus.PUT_OK for r in results)
        log = s.ctx.require_open().log
        assert log.segments.flushed_offset >= max(r.physical_offset for r in results)
        assert 1 <= len(jobs) < 32
    finally:
        s.stop()


def test_sync_flush_wait_false_does_not_wait(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    s = open_store(tmp_path, fs, flush_mode=FlushMode.SYNC_FLUSH, sync_flush_timeout_ms=200)
    try:
        fs.slow_fsync(1.0)
        t0 = time.monotonic()
        res = put(s, rec(b"x", WAIT="false"))
        assert res.status is PutStatus.PUT_OK
        assert time.monotonic() - t0 < 0.5
    finally:
        fs.slow_fsync(0)
        s.stop()


def test_dispatcher_restart_under_supervisor(tmp_path: Path) -> None:
    # Given a store under a supervisor
    directory = Directory()
    store = BrokerStore.build(settings_for(tmp_path), directory)
    sup = Supervisor.start("broker", children=store.child_specs(), directory=directory)
    try:
        put(store, rec(b"before"))
        consumable(store, 1)
        first = directory.require(store.names.dispatcher)
        # When the dispatcher fails (a malformed message)
        at = store.ctx.dispatched
        first.tell(Dispatch(begin=at, end=at + 1, batch=None))  # type: ignore[arg-type]
        wait_until(lambda: (r := directory.get(store.names.dispatcher)) is not None and r != first)
        # Then it is restarted and dispatch goes on from where it was
        put(store, rec(b"after"))
        consumable(store, 2)
        assert bodies(get(store, 0)) == [b"before", b"after"]
    finally:
        sup.stop()


def test_consumer_offsets(store: BrokerStore) -> None:
    assert store.query_offset("g", "T", 0).get(timeout=T) == -1
    store.commit_offset("g", "T", 0, 5).get(timeout=T)
    store.commit_offset("g", "U", 1, 7).get(timeout=T)
    store.commit_offset("h", "T", 0, 9).get(timeout=T)
    assert store.query_offset("g", "T", 0).get(timeout=T) == 5
    assert store.group_offsets("g").get(timeout=T) == {"T": {0: 5}, "U": {1: 7}}
    path = os.path.join(store.settings.config_dir, "consumerOffset.json")
    wait_until(lambda: os.path.exists(path) and "U@g" in Path(path).read_text())
    assert store.remove_group_offsets("h").get(timeout=T) is True
    assert store.query_offset("h", "T", 0).get(timeout=T) == -1


@pytest.mark.parametrize("read_only", [False, True], ids=["master", "slave"])
def test_committed_offsets_past_a_queue_end_are_lowered_at_start(
    tmp_path: Path, read_only: bool
) -> None:
    # Given a store with 5 messages in T/0, whose offsets file says (as after a power loss took
    # the log's tail) that group g committed 9 there, h 3, and g 7 on a queue it holds nothing of
    store = open_store(tmp_path)
    put(store, *(rec(f"m{i}".encode()) for i in range(5)))
    store.stop()
    path = os.path.join(settings_for(tmp_path).config_dir, "consumerOffset.json")
    table = {"T@g": {"0": 9}, "T@h": {"0": 3}, "U@g": {"1": 7}}
    Path(path).write_text(json.dumps({"offsetTable": table}))
    # When it starts again
    again = open_store(tmp_path, read_only=read_only)
    try:
        got = [again.query_offset(*q).get(timeout=T) for q in (("g", "T", 0), ("h", "T", 0))]
        # Then a master lowers g's offset to the queue's end (new messages will take 5 .. 8
        # again: a consumer resuming at 9 would skip them); a slave, whose log may lag its
        # master's, keeps it. What is within the end stays. A queue the store holds nothing
        # of (a power loss took all its records: its next message takes offset 0) is a queue
        # whose end is 0
        assert got == ([9, 3] if read_only else [5, 3])
        assert again.query_offset("g", "U", 1).get(timeout=T) == (7 if read_only else 0)
    finally:
        again.stop()


class _Reconciling(AlwaysReplicated):
    """A classic master's replication condition while it reconciles (``HACondition.state``)."""

    state = SimpleNamespace(reconciling=True)


def test_a_reconciling_master_lowers_committed_offsets_only_when_told(tmp_path: Path) -> None:
    # Given a master's store with 5 messages in T/0 whose group g committed 9 there (a power
    # loss took the log's tail), back while its master reconciles (fetches that tail)
    store = open_store(tmp_path)
    put(store, *(rec(f"m{i}".encode()) for i in range(5)))
    store.stop()
    path = os.path.join(settings_for(tmp_path).config_dir, "consumerOffset.json")
    Path(path).write_text(json.dumps({"offsetTable": {"T@g": {"0": 9}}}))
    again = BrokerStore.build(settings_for(tmp_path), Directory(), replication=_Reconciling())
    again.start()
    try:
        # Then the offset stays while it waits (the fetched tail brings 5 .. 8 back) ...
        assert again.query_offset("g", "T", 0).get(timeout=T) == 9
        # ... and is lowered when the reconciliation, done, says so (here: nothing came back)
        assert not again.ctx.tail_guard.raised
        again.ctx.directory.require(again.ctx.names.offsets).tell(ClampOffsets())
        assert again.query_offset("g", "T", 0).get(timeout=T) == 5
        # (and guards g from the end it holds: a consumer still at 9 is moved back to 5)
        assert again.ctx.tail_guard.bound("g", "T", 0) == 5
    finally:
        again.stop()


@pytest.mark.parametrize("stop", ["clean", "kill", "power-loss", "power-loss-slave"])
def test_a_master_back_from_a_power_loss_raises_the_tail_guard(tmp_path: Path, stop: str) -> None:
    # Given a store with 5 messages in T/0 and group g's committed offset, stopped cleanly,
    # killed (the machine up: nothing lost), or killed with its machine (an earlier boot)
    store = open_store(tmp_path)
    put(store, *(rec(f"m{i}".encode()) for i in range(5)))
    store.commit_offset("g", "T", 0, 5).get(timeout=T)
    store.stop() if stop == "clean" else store.simulate_crash()
    booted = "an-earlier-boot" if stop.startswith("power-loss") else (boot.current_boot() or "")
    (tmp_path / boot.FILE).write_text(booted + "\n")
    # (the guard a broker node keeps across its rebuilds, raised by an earlier term at 0)
    kept = TailLossGuard()
    kept.raise_at({})
    # When it opens again (as a master, or as a slave)
    slave = stop == "power-loss-slave"
    again = BrokerStore.build(settings_for(tmp_path, read_only=slave), Directory())
    again.ctx.tail_guard = kept
    again.start()
    try:
        again.query_offset("g", "T", 0).get(timeout=T)  # (ConsumerOffsets is up)
        # Then after a power loss (the tail may be lost) a master guards its groups from the
        # end it recovered; otherwise the guard stays as it was; a slave lowers it
        if stop == "power-loss":
            assert kept.bound("g", "T", 0) == 5 and kept.bound("other", "T", 0) == 5
        elif slave:
            assert not kept.raised
        else:
            assert kept.bound("g", "T", 0) == 0
    finally:
        again.stop()


def test_a_topic_deleted_or_a_group_whose_offsets_are_removed_is_no_longer_guarded(
    tmp_path: Path,
) -> None:
    # Given a master back from a power loss guarding g and h on T/0 (end 5) and g on U/0
    store = open_store(tmp_path)
    put(store, *(rec(f"m{i}".encode()) for i in range(5)))
    for group, topic in (("g", "T"), ("h", "T"), ("g", "U")):
        store.commit_offset(group, topic, 0, 1).get(timeout=T)
    store.simulate_crash()
    (tmp_path / boot.FILE).write_text("an-earlier-boot\n")
    again = open_store(tmp_path)
    try:
        guard = again.ctx.tail_guard
        assert again.query_offset("g", "T", 0).get(timeout=T) == 1  # (ConsumerOffsets is up)
        assert guard.bound("g", "T", 0) == 5 and guard.bound("g", "U", 0) == 0
        # When T is deleted (its offsets removed) and group g's offsets are removed
        assert again.remove_topic_offsets("T").get(timeout=T).get(timeout=T)
        again.remove_group_offsets("g").get(timeout=T)
        # Then made again, they hold no position of the lost log: a consumer that starts
        # from the end or a timestamp is not moved back; other groups and topics still are
        assert guard.bound("g", "T", 0) is None and guard.bound("h", "T", 0) is None
        assert guard.bound("g", "U", 0) is None and guard.bound("h", "U", 0) == 0
    finally:
        again.stop()


def test_topic_config(store: BrokerStore) -> None:
    table = store.all_topics().get(timeout=T)
    assert {"TBW102", "SCHEDULE_TOPIC_XXXX", "broker-a"} <= set(table.topics)
    made = TopicConfigData(topic_name="NewTopic", read_queue_nums=16, write_queue_nums=16)
    created = store.ensure_topic(made).get(timeout=T)
    assert created.write_queue_nums == 16
    # a topic made meanwhile is kept as it is
    again = store.ensure_topic(msgspec.structs.replace(made, write_queue_nums=2)).get(timeout=T)
    assert again.write_queue_nums == 16
    retry = store.ensure_retry_topic("%RETRY%grp").get(timeout=T)
    assert (retry.read_queue_nums, retry.perm) == (1, 6)
    later = store.all_topics().get(timeout=T)
    assert later.data_version.counter > table.data_version.counter
    assert store.delete_topic("NewTopic").get(timeout=T).wait(T) is True  # on disk
    assert store.get_topic("NewTopic").get(timeout=T) is None
    path = Path(store.settings.config_dir, "topics.json")
    wait_until(lambda: "%RETRY%grp" in path.read_text() and "NewTopic" not in path.read_text())
    assert '"topicConfigTable"' in path.read_text()


def test_retention_deletes_and_disk_full_refuses(tmp_path: Path) -> None:
    # Given a store with several segments, and a disk whose usage the test controls
    s = open_store(tmp_path, file_reserved_hours=0)
    usage = {"ratio": 0.5}
    for ref_name in [s.names.retention]:
        s.ctx.directory.require(ref_name).stop()
    retention = Retention.start(s.ctx, disk_usage=lambda _p: usage["ratio"])
    s.ctx.directory.put(s.names.retention, retention)
    try:
        for _ in range(10):
            put(s, *[rec(os.urandom(900)) for _ in range(8)])
        consumable(s, 80)
        wait_until(lambda: s.ctx.require_open().log.segments.flushed_offset >= s.ctx.dispatched)
        n_before = len(s.ctx.require_open().log.segments.segments)
        assert n_before > 3
        # When usage passes 75 % (expired files go at once)
        usage["ratio"] = 0.8
        done = retention.ask(CleanTick(), timeout=T)
        # Then old segments are gone, and the queue's minimum moved past them
        assert done is not None and len(done.paths) >= 1
        assert all(not os.path.exists(p) for p in done.paths)
        wait_until(lambda: s.min_offset("T", 0).get(timeout=T) > 0)
        low = get(s, 0)
        assert low.status is GetStatus.OFFSET_TOO_SMALL
        assert get(s, low.next_begin_offset).status is GetStatus.FOUND
        # When usage passes 90 %, writes are refused until space returns
        usage["ratio"] = 0.95
        retention.ask(CleanTick(), timeout=T)
        assert put(s, rec(b"x")).status is PutStatus.SERVICE_NOT_AVAILABLE
        usage["ratio"] = 0.5
        retention.ask(CleanTick(), timeout=T)
        assert put(s, rec(b"x")).status is PutStatus.PUT_OK
    finally:
        s.stop()
        if retention.is_alive():
            retention.stop()


def test_unknown_store_paths_answer_without_blocking(tmp_path: Path) -> None:
    s = BrokerStore.build(settings_for(tmp_path), Directory())  # never started
    assert s.put([rec(b"x")]).get(timeout=1).status is PutStatus.SERVICE_NOT_AVAILABLE
    with pytest.raises(Exception, match="not running"):
        s.query_offset("g", "T", 0).get(timeout=1)
    assert isinstance(pykka.ActorRegistry.get_all(), list)


def test_an_idle_writer_appends_in_the_callers_greenlet(store: BrokerStore) -> None:
    # Given an idle writer (ASYNC_FLUSH, no replication wait) and an idle hub
    put(store, rec(b"warm"))
    consumable(store, 1)
    wait_until(lambda: not others_ready())
    # When a batch is put, Then its reply is set before put returns (handled inline)
    future = store.put([rec(b"now")])
    assert future.done()
    assert future.get(timeout=0).queue_offsets == (1,)
    # and it is dispatched as usual
    consumable(store, 2)
    assert bodies(get(store, 0)) == [b"warm", b"now"]


def test_checkpoint_due_rule(tmp_path: Path) -> None:
    s = settings_for(tmp_path, checkpoint_lag_bytes=1000, checkpoint_max_interval_ms=60_000)
    assert not checkpoint_due(999, 59.9, s)  # little written, recently: skip the tick
    assert checkpoint_due(1000, 0.1, s)  # the log grew the lag bound
    assert checkpoint_due(1, 60.0, s)  # or the interval passed


def test_checkpoint_waits_for_the_lag_bound(tmp_path: Path) -> None:
    # Given a store that checkpoints once the log grew 8 KiB (ticks every 50 ms)
    s = open_store(
        tmp_path,
        checkpoint_interval_ms=50,
        checkpoint_lag_bytes=8192,
        checkpoint_max_interval_ms=60_000,
    )
    try:
        start = ckpt.load(str(tmp_path))
        assert start is not None
        # When more than 8 KiB is appended in small messages
        results = [put(s, rec(bytes(100))) for _ in range(80)]
        end = results[-1].physical_offset + results[-1].wrote_bytes
        assert end - start.safe_offset > 8192
        # Then a checkpoint follows, at a safe offset past the bound
        wait_until(
            lambda: (
                (cp := ckpt.load(str(tmp_path))) is not None
                and cp.safe_offset - start.safe_offset >= 8192
            )
        )
    finally:
        s.stop()


def test_checkpoint_after_the_max_interval(tmp_path: Path) -> None:
    # Given a store whose lag bound is never reached, but whose max interval is 200 ms
    s = open_store(
        tmp_path,
        checkpoint_interval_ms=50,
        checkpoint_lag_bytes=1024**3,
        checkpoint_max_interval_ms=200,
    )
    try:
        start = ckpt.load(str(tmp_path))
        assert start is not None
        # When one small message is appended
        put(s, rec(b"one"))
        # Then a checkpoint covering it follows within the interval (plus a tick)
        wait_until(
            lambda: (
                (cp := ckpt.load(str(tmp_path))) is not None and cp.safe_offset > start.safe_offset
            )
        )
    finally:
        s.stop()


def test_the_trace_topic_exists_from_the_start_when_enabled(tmp_path: Path) -> None:
    # Given traceTopicEnable (the store settings' trace_topic); When the store starts
    store = open_store(tmp_path, trace_topic="RMQ_SYS_TRACE_TOPIC")
    try:
        # Then the trace topic is there, one queue, and is a system topic (not deletable)
        trace = store.get_topic("RMQ_SYS_TRACE_TOPIC").get(timeout=T)
        assert trace is not None and trace.write_queue_nums == 1
        assert is_system_topic("RMQ_SYS_TRACE_TOPIC", store.ctx)
    finally:
        store.stop()
