"""Attacks on topic deletion (docs/store.md, "Deleting a topic"): appends racing the marker, two
deletions back to back, polls and pulls across the Dispatcher's barrier, the barrier under
SYNC_FLUSH, a Dispatcher restarted or a store stopped or crashed while the barrier holds,
recovery after a deletion, a re-creation and a second deletion (checkpoint lost, a marker cut
off), retention, replication across markers, and key lookups.

The barrier is held open deterministically by gating ``deletion_barrier.await_flush`` (its
first step) on events the test sets."""

from __future__ import annotations

import os
import random
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gevent
import gevent.event
import msgspec
import pytest

from actors.broker import deletion_barrier, queue_table
from actors.broker.dispatcher import Dispatcher
from actors.broker.messages import Confirm
from actors.broker.slave_sync_handler import GET_TAIL_LOSS_GUARD, OffsetTable
from actors.broker.slave_synchronize import SlaveSynchronize
from actors.broker.store_adapter import StoreAdapter, to_wire
from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.store_service import BrokerStore
from actors.broker.topic_config_data import TopicConfigData
from runtime.directory import Directory
from runtime.remoting.bodies import TopicConfigSerializeWrapper, encode_body
from runtime.remoting.codes import RequestCode
from runtime.store import checkpoint as ckpt
from runtime.store import fences as fence_table
from runtime.store import record as R
from runtime.store.faults import FaultyFileSystem
from runtime.store.raw import read_raw, truncate_log
from runtime.store.settings import FlushMode
from runtime.supervisor import Supervisor
from tests.actors.test_ha_store import append_raw, build
from tests.actors.test_store_actors import (
    T,
    bodies,
    consumable,
    get,
    open_store,
    put,
    rec,
    settings_for,
    wait_until,
)
from tests.actors.test_store_topic_deletion import delete, fill

pytestmark = pytest.mark.timeout(60)


class Gate:
    """Holds every deletion barrier at its first step until ``open`` (or ``open_call(i)``)."""

    def __init__(self) -> None:
        self.calls: list[gevent.event.Event] = []
        self.entered = gevent.event.Event()
        self.all = gevent.event.Event()
        self.greenlets: list[Any] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Gate:
        original = deletion_barrier.await_flush
        gate = self

        def gated(ctx: Any, log: Any, offset: int) -> None:
            mine = gevent.event.Event()
            gate.calls.append(mine)
            gate.greenlets.append(gevent.getcurrent())
            gate.entered.set()
            while not (mine.is_set() or gate.all.is_set()):
                gevent.wait([mine, gate.all], count=1, timeout=T)
            original(ctx, log, offset)

        monkeypatch.setattr(deletion_barrier, "await_flush", gated)
        return self

    def wait_entered(self, n: int = 1) -> None:
        wait_until(lambda: len(self.calls) >= n)

    def open(self) -> None:
        self.all.set()

    def open_call(self, i: int) -> None:
        self.calls[i].set()

    def join(self) -> None:
        gevent.joinall(self.greenlets, timeout=T)
        assert all(g.dead for g in self.greenlets)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    return Gate().install(monkeypatch)


def read_queue(store: BrokerStore, topic: str, queue_id: int) -> dict[int, bytes]:
    """queue offset -> body of every readable record of the queue."""
    out: dict[int, bytes] = {}
    offset = store.min_offset(topic, queue_id).get(timeout=T)
    while True:
        got = get(store, offset, 64, topic=topic, queue_id=queue_id)
        if got.status is not GetStatus.FOUND:
            return out
        for qoff, raw in zip(got.queue_offsets, got.messages, strict=True):
            out[qoff] = R.decode_record(raw).body
        offset = got.next_begin_offset


def dispatched(store: BrokerStore) -> None:
    end = store.ctx.require_open().log.write_offset
    assert store.when_dispatched(end).get(timeout=T) >= end


# -- appends racing the marker ----------------------------------------------------------------


@pytest.mark.parametrize("flush_mode", [FlushMode.ASYNC_FLUSH, FlushMode.SYNC_FLUSH])
def test_appends_racing_the_marker_land_on_the_right_side_of_it(
    tmp_path: Path, flush_mode: FlushMode
) -> None:
    store = open_store(tmp_path, flush_mode=flush_mode)
    try:
        # Given T with old messages
        fill(store, "T", 6, "old")
        # When puts to T and U are queued behind and ahead of T's marker in the writer's inbox
        before = [store.put([rec(b"b%d" % i, i % 2)]) for i in range(10)]
        u = [store.put([rec(b"u%d" % i, 0, "U")]) for i in range(3)]
        marked = store.delete_topic_data("T")
        after = [store.put([rec(b"a%d" % i, i % 2)]) for i in range(10)]
        fence = marked.get(timeout=T).fence
        assert store.when_dispatched(fence).get(timeout=T) >= fence
        results = [f.get(timeout=T) for f in before + after]
        assert all(r.status is PutStatus.PUT_OK for r in results)
        assert all(f.get(timeout=T).status is PutStatus.PUT_OK for f in u)
        dispatched(store)
        # Then what was acked before the marker is gone, what was acked after it is in fresh
        # queues at the acked queue offsets (0.. per queue)
        want: dict[int, dict[int, bytes]] = {0: {}, 1: {}}
        for i, r in enumerate(results[10:]):
            assert r.physical_offset >= fence
            want[i % 2][r.queue_offset] = b"a%d" % i
        assert all(r.physical_offset < fence for r in results[:10])
        for q in (0, 1):
            assert read_queue(store, "T", q) == want[q]
            assert sorted(want[q]) == list(range(5))
        assert read_queue(store, "U", 0) == {0: b"u0", 1: b"u1", 2: b"u2"}
    finally:
        store.stop()


def test_two_deletions_back_to_back_with_appends_between(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Given T with old messages
        fill(store, "T", 4, "old")
        # When T is deleted twice without waiting in between, a put landing between the markers
        # and one after both
        first = store.delete_topic_data("T")
        mid = store.put([rec(b"mid")])
        second = store.delete_topic_data("T")
        last = store.put([rec(b"last")])
        f1, f2 = first.get(timeout=T).fence, second.get(timeout=T).fence
        assert f1 < f2
        # Then both deletions complete, in order
        assert store.when_dispatched(f1).get(timeout=T) >= f1
        assert store.when_dispatched(f2).get(timeout=T) >= f2
        assert mid.get(timeout=T).queue_offset == 0  # the second incarnation's first
        assert last.get(timeout=T).queue_offset == 0  # the third incarnation's first
        dispatched(store)
        assert read_queue(store, "T", 0) == {0: b"last"}
        assert store.ctx.topic_fences["T"] == f2
        assert fence_table.load(str(tmp_path)) == {"T": f2}
    finally:
        store.stop()
    # And a restart with a full rescan agrees
    os.unlink(ckpt.checkpoint_path(str(tmp_path)))
    store = open_store(tmp_path)
    try:
        assert read_queue(store, "T", 0) == {0: b"last"}
        assert put(store, rec(b"next")).queue_offset == 1
    finally:
        store.stop()


def test_deleting_a_topic_that_never_existed_changes_nothing_else(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        fill(store, "U", 4, "u")
        fence = delete(store, "NeverThere")
        assert fence_table.load(str(tmp_path)) == {"NeverThere": fence}
        assert read_queue(store, "U", 0) == {0: b"u0", 1: b"u2"}
        assert put(store, rec(b"x", 0, "NeverThere")).queue_offset == 0
    finally:
        store.stop()


# -- polls and pulls across the barrier -------------------------------------------------------


def test_polls_and_pulls_across_the_barrier(tmp_path: Path, gate: Gate) -> None:
    store = open_store(tmp_path)
    try:
        # Given T with old messages, and the deletion's barrier held at its first step
        fill(store, "T", 4, "old")
        fence = store.delete_topic_data("T").get(timeout=T).fence
        gate.wait_entered()
        waiting = store.when_dispatched(fence)
        # When a put to T's new incarnation is acked, and polls park on T/0 (old end), on a
        # queue T never had, and pulls read meanwhile
        new = put(store, rec(b"new0"))
        assert (new.status, new.queue_offset) == (PutStatus.PUT_OK, 0)
        parked_old = store.wait_arrival("T", 0, 2, 30.0)
        parked_new = store.wait_arrival("T", 3, 0, 30.0)
        assert bodies(get(store, 0)) == [b"old0", b"old2"]  # not deleted yet
        assert not waiting.done()
        # Then once the barrier is let go, the polls are answered and the deletion completes
        gate.open()
        assert parked_old.get(timeout=T) is not None
        assert parked_new.get(timeout=T) is not None
        assert waiting.get(timeout=T) >= fence
        # and the new incarnation's message is at queue offset 0, the old ones gone
        assert read_queue(store, "T", 0) == {0: b"new0"}
        assert read_queue(store, "T", 1) == {}
        assert read_queue(store, "T", 3) == {}
        # and a poll parked after the deletion wakes on the new incarnation
        parked = store.wait_arrival("T", 1, 0, 30.0)
        put(store, rec(b"new1", 1))
        assert parked.get(timeout=T) == 1
    finally:
        gate.open()
        store.stop()


# -- a Dispatcher failing or a store stopping while the barrier holds ---------------------------


def test_a_dispatcher_that_fails_during_the_barrier_still_answers_the_deletion(
    tmp_path: Path, gate: Gate
) -> None:
    directory = Directory()
    store = BrokerStore.build(settings_for(tmp_path), directory)
    sup = Supervisor.start("broker", children=store.child_specs(), directory=directory)
    try:
        # Given a deletion whose barrier holds, and the broker waiting for it
        fill(store, "T", 4, "old")
        fence = store.delete_topic_data("T").get(timeout=T).fence
        gate.wait_entered()
        waiting = store.when_dispatched(fence)
        first = directory.require(store.names.dispatcher)
        # When the Dispatcher fails (restarted by the supervisor: it reads the marker back)
        first.tell(Confirm(None, "flush", flushed=True))  # type: ignore[arg-type]
        wait_until(lambda: (r := directory.get(store.names.dispatcher)) is not None and r != first)
        gate.open()
        # Then the broker's wait ends (not after DELETE_TIMEOUT) and the deletion is applied
        reached = waiting.get(timeout=T)
        if reached < fence:  # told "stopped before applied": a retry must then succeed
            assert store.when_dispatched(fence).get(timeout=T) >= fence
        assert read_queue(store, "T", 0) == {}
    finally:
        gate.open()
        sup.stop()


def test_a_stale_barrier_of_a_failed_dispatcher_never_deletes_the_new_incarnation(
    tmp_path: Path, gate: Gate
) -> None:
    directory = Directory()
    store = BrokerStore.build(settings_for(tmp_path), directory)
    sup = Supervisor.start("broker", children=store.child_specs(), directory=directory)
    try:
        # Given a deletion whose barrier holds, and the Dispatcher failing meanwhile
        fill(store, "T", 4, "old")
        fence = store.delete_topic_data("T").get(timeout=T).fence
        gate.wait_entered()
        first = directory.require(store.names.dispatcher)
        first.tell(Confirm(None, "flush", flushed=True))  # type: ignore[arg-type]
        wait_until(lambda: (r := directory.get(store.names.dispatcher)) is not None and r != first)
        # When the restarted Dispatcher's barrier completes first and T's new incarnation is
        # written and dispatched
        gate.wait_entered(2)
        gate.open_call(1)
        assert store.when_dispatched(fence).get(timeout=T) >= fence
        assert put(store, rec(b"new0")).queue_offset == 0
        dispatched(store)
        assert read_queue(store, "T", 0) == {0: b"new0"}
        # and only then the failed Dispatcher's helper goes on
        gate.open_call(0)
        gate.join()
        # Then the new incarnation is still there, files and all
        assert read_queue(store, "T", 0) == {0: b"new0"}
        assert os.path.isdir(os.path.join(tmp_path, "consumequeue", "T", "0"))
        for i in range(1, 70):  # crosses a consume-queue file (64 entries)
            assert put(store, rec(b"new%d" % i)).status is PutStatus.PUT_OK
        consumable(store, 70)
    finally:
        gate.open()
        sup.stop()


def test_a_store_stopped_during_the_barrier_reports_and_recovers(
    tmp_path: Path, gate: Gate
) -> None:
    # Given a deletion whose barrier holds, a put to the new incarnation acked meanwhile
    store = open_store(tmp_path)
    fill(store, "T", 4, "old")
    fill(store, "U", 2, "u")
    fence = store.delete_topic_data("T").get(timeout=T).fence
    gate.wait_entered()
    waiting = store.when_dispatched(fence)
    new = put(store, rec(b"new0", 1))
    assert new.queue_offset == 0
    # When the store stops cleanly meanwhile
    store.stop()
    # Then the broker's wait is answered "not applied" at once
    assert waiting.get(timeout=T) < fence
    # and the store opened again has T deleted with the new message kept
    store = open_store(tmp_path)
    try:
        assert read_queue(store, "T", 0) == {}
        assert read_queue(store, "T", 1) == {0: b"new0"}
        assert read_queue(store, "U", 0) == {0: b"u0"}
        # and the old store's barrier, let go now, touches nothing of the running store
        gate.open()
        gate.join()
        assert read_queue(store, "T", 1) == {0: b"new0"}
        assert os.path.isdir(os.path.join(tmp_path, "consumequeue", "T", "1"))
        for i in range(1, 70):  # crosses a consume-queue file (64 entries)
            assert put(store, rec(b"new%d" % i, 1)).status is PutStatus.PUT_OK
        consumable(store, 70, 1)
    finally:
        gate.open()
        store.stop()


def test_a_failed_dispatchers_drop_in_progress_runs_before_its_successors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first removal of T's files held in its thread (bounded: 0.5 s), noting whether
    # another removal of T starts meanwhile
    real = queue_table.remove_topic_queues
    lock = threading.Lock()
    release = threading.Event()
    seen = {"calls": 0, "active": 0, "overlap": False}

    def held(root: str, topic: str) -> None:
        with lock:
            seen["calls"] += 1
            first = seen["calls"] == 1
            if seen["active"]:
                seen["overlap"] = True
                release.set()
            seen["active"] += 1
        try:
            if first:
                release.wait(0.5)
            real(root, topic)
        finally:
            with lock:
                seen["active"] -= 1

    monkeypatch.setattr(queue_table, "remove_topic_queues", held)
    directory = Directory()
    store = BrokerStore.build(settings_for(tmp_path), directory)
    sup = Supervisor.start("broker", children=store.child_specs(), directory=directory)
    try:
        fill(store, "T", 4, "old")
        fence = store.delete_topic_data("T").get(timeout=T).fence
        wait_until(lambda: seen["calls"] >= 1)
        # When the Dispatcher fails while its barrier removes T's files, and its successor
        # applies the deletion again and T's new incarnation is written
        first = directory.require(store.names.dispatcher)
        first.tell(Confirm(None, "flush", flushed=True))  # type: ignore[arg-type]
        wait_until(lambda: (r := directory.get(store.names.dispatcher)) is not None and r != first)
        assert store.when_dispatched(fence).get(timeout=T) >= fence
        assert put(store, rec(b"new0")).queue_offset == 0
        dispatched(store)
        # Then the two removals did not overlap, and the new incarnation's files are there
        assert not seen["overlap"]
        assert read_queue(store, "T", 0) == {0: b"new0"}
        assert os.path.isdir(os.path.join(tmp_path, "consumequeue", "T", "0"))
    finally:
        release.set()
        sup.stop()


def test_a_drop_still_running_when_the_store_stopped_spares_the_store_opened_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deletion whose barrier is inside QueueTable.drop_topic (held there)
    original = queue_table.QueueTable.drop_topic
    entered = gevent.event.Event()
    release = gevent.event.Event()
    greenlets: list[Any] = []

    def held(self: Any, topic: str, timeout: float = 5.0) -> None:
        greenlets.append(gevent.getcurrent())
        entered.set()
        release.wait(T)
        original(self, topic, timeout)

    monkeypatch.setattr(queue_table.QueueTable, "drop_topic", held)
    store = open_store(tmp_path)
    fill(store, "T", 4, "old")
    store.delete_topic_data("T").get(timeout=T)
    assert entered.wait(T)
    # When the store stops, opens again in the same process (recovery applies the marker), and
    # T's new incarnation is written
    store.stop()
    store = open_store(tmp_path)
    try:
        assert put(store, rec(b"new0")).queue_offset == 0
        dispatched(store)
        # and only then the old store's drop goes on
        release.set()
        gevent.joinall(greenlets, timeout=T)
        # Then the running store's files of T are untouched
        assert os.path.isdir(os.path.join(tmp_path, "consumequeue", "T", "0"))
        for i in range(1, 70):  # crosses a consume-queue file (64 entries)
            assert put(store, rec(b"new%d" % i)).status is PutStatus.PUT_OK
        consumable(store, 70)
    finally:
        release.set()
        store.stop()


@pytest.mark.parametrize("lose_checkpoint", [False, True])
def test_a_crash_during_the_barrier_recovers_the_deletion(
    tmp_path: Path, gate: Gate, lose_checkpoint: bool
) -> None:
    # Given a deletion whose barrier holds (the marker written), puts to the new incarnation
    # acked meanwhile
    store = open_store(tmp_path)
    fill(store, "T", 6, "old")
    fence = store.delete_topic_data("T").get(timeout=T).fence
    gate.wait_entered()
    acks = [put(store, rec(b"new%d" % i, i % 2)) for i in range(4)]
    # When the process dies
    store.simulate_crash()
    if lose_checkpoint:
        os.unlink(ckpt.checkpoint_path(str(tmp_path)))
    store = open_store(tmp_path)
    try:
        # Then T holds exactly the new incarnation, at the acked offsets
        assert [a.queue_offset for a in acks] == [0, 0, 1, 1]
        assert read_queue(store, "T", 0) == {0: b"new0", 1: b"new2"}
        assert read_queue(store, "T", 1) == {0: b"new1", 1: b"new3"}
        assert fence_table.load(str(tmp_path)) == {"T": fence}
        assert put(store, rec(b"new4")).queue_offset == 2
    finally:
        gate.open()
        store.stop()


# -- recovery after deleted, re-created, deleted again ------------------------------------------


def incarnations(store: BrokerStore) -> tuple[int, int]:
    """T: 'a' (4 msgs, key ka), deleted, 'b' (2 msgs, key kb + ka), deleted, 'c' (1 msg, key ka)."""
    fill(store, "T", 4, "a")
    assert put(store, rec(b"a-key", 0, "T", KEYS="ka")).ok
    f1 = delete(store)
    fill(store, "T", 2, "b")
    assert put(store, rec(b"b-key", 0, "T", KEYS="kb ka")).ok
    f2 = delete(store)
    assert put(store, rec(b"c-key", 0, "T", KEYS="ka")).ok
    dispatched(store)
    return f1, f2


def keyed(store: BrokerStore, key: str) -> list[bytes]:
    found = store.query_by_key("T", key, 32).get(timeout=T).messages
    return sorted(R.decode_record(m).body for m in found)


@pytest.mark.parametrize("how", ["clean", "crash", "crash-full-scan", "no-index"])
def test_deleted_recreated_deleted_again_survives_restarts(tmp_path: Path, how: str) -> None:
    store = open_store(tmp_path)
    _f1, f2 = incarnations(store)
    assert keyed(store, "ka") == [b"c-key"] and keyed(store, "kb") == []
    if how == "clean":
        store.stop()
    else:
        store.simulate_crash()
        if how in ("crash-full-scan", "no-index"):
            os.unlink(ckpt.checkpoint_path(str(tmp_path)))
        if how == "no-index":
            for name in os.listdir(os.path.join(tmp_path, "index")):
                os.unlink(os.path.join(tmp_path, "index", name))
    store = open_store(tmp_path)
    try:
        assert read_queue(store, "T", 0) == {0: b"c-key"}
        assert read_queue(store, "T", 1) == {}
        assert keyed(store, "ka") == [b"c-key"]
        assert keyed(store, "kb") == []
        assert fence_table.load(str(tmp_path)) == {"T": f2}
        assert put(store, rec(b"c1")).queue_offset == 1
    finally:
        store.stop()


def test_the_second_deletion_cut_off_brings_back_the_second_incarnation_only(
    tmp_path: Path,
) -> None:
    # Given T deleted twice, and the log then cut just before the second marker (a deposed
    # master's divergent tail)
    store = open_store(tmp_path)
    fill(store, "T", 4, "a")
    assert put(store, rec(b"a-key", 0, "T", KEYS="ka")).ok
    f1 = delete(store)
    fill(store, "T", 2, "b")
    assert put(store, rec(b"b-key", 0, "T", KEYS="ka")).ok
    dispatched(store)
    cut = store.ctx.require_open().log.write_offset
    delete(store)
    store.stop()
    truncate_log(settings_for(tmp_path), cut)
    # When the store opens again
    store = open_store(tmp_path)
    try:
        # Then T is its second incarnation: the first one stays deleted (its fence holds)
        assert read_queue(store, "T", 0) == {0: b"b0", 1: b"b-key"}
        assert read_queue(store, "T", 1) == {0: b"b1"}
        assert keyed(store, "ka") == [b"b-key"]
        assert fence_table.load(str(tmp_path)) == {"T": f1}
        assert put(store, rec(b"b2")).queue_offset == 2
    finally:
        store.stop()


# -- the Dispatcher reading markers back from the log -----------------------------------------


def test_a_dispatcher_started_behind_reads_both_markers_from_the_log(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    directory = store.ctx.directory
    try:
        # Given T with old messages and a stopped Dispatcher
        fill(store, "T", 4, "old")
        fill(store, "U", 2, "u")
        ref = directory.require(store.names.dispatcher)
        ref.stop(block=True, timeout=T)
        directory.remove(store.names.dispatcher, ref)
        # When T is deleted twice with puts between (nothing is dispatched meanwhile)
        m1 = store.delete_topic_data("T").get(timeout=T)
        assert put(store, rec(b"mid0", 1)).queue_offset == 0
        assert put(store, rec(b"u-mid", 0, "U")).queue_offset == 1
        m2 = store.delete_topic_data("T").get(timeout=T)
        assert put(store, rec(b"new0")).queue_offset == 0
        # and a Dispatcher starts and reads all of it back from the log in one pass
        directory.put(store.names.dispatcher, Dispatcher.start(store.ctx))
        assert store.when_dispatched(m2.fence).get(timeout=T) >= m2.fence
        dispatched(store)
        # Then T is its third incarnation, U whole
        assert m1.fence < m2.fence
        assert read_queue(store, "T", 0) == {0: b"new0"}
        assert read_queue(store, "T", 1) == {}
        assert read_queue(store, "U", 0) == {0: b"u0", 1: b"u-mid"}
        assert fence_table.load(str(tmp_path)) == {"T": m2.fence}
    finally:
        store.stop()


# -- retention ----------------------------------------------------------------------------------


def test_retention_past_the_marker_prunes_the_fence(tmp_path: Path) -> None:
    # Given T deleted, then enough of U to fill several segments
    store = open_store(tmp_path, commitlog_segment_size=4096)
    fill(store, "T", 4, "old")
    fence = delete(store)
    assert put(store, rec(b"new0")).queue_offset == 0
    for _ in range(60):
        assert put(store, rec(b"u" * 200, 0, "U")).ok
    dispatched(store)
    store.stop()
    # When retention removes every segment up to past the marker, and the store opens
    seg_dir = os.path.join(tmp_path, "commitlog")
    segs = sorted(os.listdir(seg_dir))
    cut = next(s for s in segs if int(s) >= fence)  # the segment after the marker's
    for s in segs:
        if int(s) < int(cut):
            os.unlink(os.path.join(seg_dir, s))
    store = open_store(tmp_path, commitlog_segment_size=4096)
    try:
        # Then the fence is gone (nothing it hid is left) and U / T read as before
        assert fence_table.load(str(tmp_path)) == {}
        assert store.ctx.topic_fences == {}
        got = get(store, 0, topic="U")
        assert got.status in (GetStatus.OFFSET_TOO_SMALL, GetStatus.FOUND)
    finally:
        store.stop()


# -- replication --------------------------------------------------------------------------------


def copy_chunks(master: BrokerStore, slave: BrokerStore, chunk: int) -> None:
    mlog = master.ctx.require_open().log
    while True:
        at = slave.ctx.require_open().log.write_offset
        data = read_raw(mlog, at, chunk, mlog.write_offset).data
        if not data:
            return
        result = append_raw(slave, at, data)
        assert result.ok, result.reason


@pytest.mark.parametrize("chunk", [100, 1_000_000])
def test_a_slave_behind_catches_up_across_two_markers(tmp_path: Path, chunk: int) -> None:
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True, flush_mode=FlushMode.SYNC_FLUSH)
    try:
        # Given a slave that replicated nothing, and a master whose T was deleted, re-created,
        # deleted, re-created (with keys)
        incarnations(master)
        fill(master, "U", 2, "u")
        # When the slave catches up record by record, or in one raw batch holding old records,
        # both markers and the new incarnation
        copy_chunks(master, slave, chunk)
        dispatched(slave)
        # Then it serves what the master serves
        assert read_queue(slave, "T", 0) == read_queue(master, "T", 0) == {0: b"c-key"}
        assert read_queue(slave, "U", 0) == {0: b"u0"}
        assert keyed(slave, "ka") == [b"c-key"]
        assert fence_table.load(str(tmp_path / "slave")) == fence_table.load(
            str(tmp_path / "master")
        )
    finally:
        slave.stop()
        master.stop()
    # And promoted (writable), it continues T's new incarnation where the master would
    promoted = build(tmp_path / "slave")
    try:
        assert put(promoted, rec(b"c1")).queue_offset == 1
        assert put(promoted, rec(b"c1q1", 1)).queue_offset == 0
    finally:
        promoted.stop()


def test_a_slave_behind_promoted_continues_the_new_incarnation_in_process(
    tmp_path: Path,
) -> None:
    # the writer's next offsets after a raw batch holding the marker (no restart in between)
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True)
    try:
        fill(master, "T", 6, "old")
        delete(master)
        fill(master, "T", 2, "new")
        copy_chunks(master, slave, 1_000_000)
        dispatched(slave)
        for table in (slave.ctx.queue_next, slave.ctx.require_open().next_offsets):
            assert {k: v for k, v in table.items() if k[0] == "T"} == {("T", 0): 1, ("T", 1): 1}
    finally:
        slave.stop()
        master.stop()


# -- a slave's metadata sync across a deletion --------------------------------------------------


def sync_round(master: BrokerStore, slave: BrokerStore) -> None:
    """One SlaveSynchronize round against ``master``'s store, without remoting."""
    bodies_by_code = {
        RequestCode.GET_ALL_TOPIC_CONFIG: lambda: encode_body(
            TopicConfigSerializeWrapper(
                topic_config_table={
                    n: to_wire(c) for n, c in master.all_topics().get(timeout=T).topics.items()
                }
            )
        ),
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: lambda: encode_body(
            master.all_groups().get(timeout=T)
        ),
        RequestCode.GET_ALL_CONSUMER_OFFSET: lambda: msgspec.json.encode(
            OffsetTable(master.all_offsets().get(timeout=T))
        ),
        GET_TAIL_LOSS_GUARD: lambda: b"",  # (the master's answer when it holds no record)
    }
    sync = SlaveSynchronize(slave, SimpleNamespace(master_addr="m:1"), label="test-sync")
    sync._call = lambda _address, code: bodies_by_code.get(code, lambda: b"{}")()  # type: ignore[method-assign]
    sync._sync("m:1")


def config_t(store: BrokerStore) -> None:
    store.update_topic(TopicConfigData(topic_name="T", read_queue_nums=2, write_queue_nums=2)).get(
        timeout=T
    )


def test_a_slave_forgets_a_deleted_topics_offsets_even_when_it_was_created_again(
    tmp_path: Path,
) -> None:
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True)
    try:
        # Given a slave in sync with a master whose group g consumed T up to offset 3
        config_t(master)
        fill(master, "T", 6, "old")
        master.commit_offset("g", "T", 0, 3).get(timeout=T)
        copy_chunks(master, slave, 1_000_000)
        sync_round(master, slave)
        assert slave.query_offset("g", "T", 0).get(timeout=T) == 3
        # When the master deletes T, T is created again with a message (before g commits
        # anything of it), and the slave replicates that and syncs
        delete(master)
        config_t(master)
        assert put(master, rec(b"new0")).queue_offset == 0
        copy_chunks(master, slave, 1_000_000)
        dispatched(slave)
        sync_round(master, slave)
        # Then the slave has what the master has: no offset of g for T
        assert master.query_offset("g", "T", 0).get(timeout=T) == -1
        assert slave.query_offset("g", "T", 0).get(timeout=T) == -1
    finally:
        slave.stop()
        master.stop()


def test_a_slave_drops_a_deleted_topics_config_and_offsets_at_its_next_sync(
    tmp_path: Path,
) -> None:
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True)
    try:
        config_t(master)
        fill(master, "T", 2, "old")
        master.commit_offset("g", "T", 0, 1).get(timeout=T)
        copy_chunks(master, slave, 1_000_000)
        sync_round(master, slave)
        assert slave.get_topic("T").get(timeout=T) is not None
        # a sync before the marker is replicated keeps the topic on the slave
        delete(master)
        sync_round(master, slave)
        assert slave.get_topic("T").get(timeout=T) is not None
        # once replicated, the next sync drops config and offsets
        copy_chunks(master, slave, 1_000_000)
        dispatched(slave)
        sync_round(master, slave)
        assert slave.get_topic("T").get(timeout=T) is None
        assert slave.query_offset("g", "T", 0).get(timeout=T) == -1
    finally:
        slave.stop()
        master.stop()


# -- slow and failing fsyncs, power loss --------------------------------------------------------


def test_a_deletion_under_sync_flush_with_fsyncs_slower_than_the_timeout_completes(
    tmp_path: Path,
) -> None:
    fs = FaultyFileSystem()
    store = open_store(tmp_path, fs, flush_mode=FlushMode.SYNC_FLUSH, sync_flush_timeout_ms=50)
    try:
        # Given T with messages, and fsyncs that take longer than the flush timeout
        fill(store, "T", 4, "old")
        fs.slow_fsync(0.15)
        # When T is deleted with a put after the marker (its flush wait times out)
        marked = store.delete_topic_data("T")
        late = store.put([rec(b"new0")])
        fence = marked.get(timeout=T).fence
        # Then the barrier keeps asking for the fsync until one covers the marker
        assert store.when_dispatched(fence).get(timeout=T) >= fence
        result = late.get(timeout=T)
        assert result.status in (PutStatus.PUT_OK, PutStatus.FLUSH_DISK_TIMEOUT)
        assert result.queue_offset == 0
        fs.slow_fsync(0)
        dispatched(store)
        assert read_queue(store, "T", 0) == {0: b"new0"}
    finally:
        fs.slow_fsync(0)
        store.stop()


def test_a_failed_fsync_of_the_marker_answers_the_broker_and_recovery_deletes(
    tmp_path: Path,
) -> None:
    fs = FaultyFileSystem()
    store = open_store(tmp_path, fs, checkpoint_interval_ms=60_000)
    # Given T with messages, all fsynced, and the next fsync failing (the marker's)
    fill(store, "T", 4, "old")
    log = store.ctx.require_open().log
    wait_until(lambda: log.segments.flushed_offset == log.write_offset)
    fs.fail_next_fsync()
    # When T is deleted
    fence = store.delete_topic_data("T").get(timeout=T).fence
    # Then the broker's wait is answered (the store failed: the deletion is not applied) ...
    assert store.when_dispatched(fence).get(timeout=T) < fence
    assert store.failed is not None
    store.stop()
    # ... and the store opened again applies the marker it finds in the log
    store = open_store(tmp_path)
    try:
        assert read_queue(store, "T", 0) == {}
        assert fence_table.load(str(tmp_path)) == {"T": fence}
        assert put(store, rec(b"new0")).queue_offset == 0
    finally:
        store.stop()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_power_loss_after_a_deletion_keeps_every_ack_of_the_new_incarnation(
    tmp_path: Path, seed: int
) -> None:
    fs = FaultyFileSystem()
    store = open_store(tmp_path, fs, flush_mode=FlushMode.SYNC_FLUSH)
    # Given T deleted (SUCCESS) and PUT_OK messages of its new incarnation
    fill(store, "T", 6, "old")
    fence = delete(store)
    acked = [put(store, rec(b"new%d" % i, i % 2)) for i in range(6)]
    assert all(r.status is PutStatus.PUT_OK for r in acked)
    # When the power fails
    store.simulate_crash()
    fs.power_loss(random.Random(seed))
    store = open_store(tmp_path)
    try:
        # Then T is its new incarnation, every ack at its offset, nothing of the old one
        assert read_queue(store, "T", 0) == {0: b"new0", 1: b"new2", 2: b"new4"}
        assert read_queue(store, "T", 1) == {0: b"new1", 1: b"new3", 2: b"new5"}
        assert fence_table.load(str(tmp_path)) == {"T": fence}
    finally:
        store.stop()


def test_a_slave_keeps_a_topics_config_until_it_replicated_the_second_deletion(
    tmp_path: Path,
) -> None:
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True)
    try:
        # Given T deleted and created again, all of it replicated and synced
        config_t(master)
        fill(master, "T", 2, "a")
        delete(master)
        config_t(master)
        fill(master, "T", 2, "b")
        master.commit_offset("g", "T", 0, 1).get(timeout=T)
        copy_chunks(master, slave, 1_000_000)
        dispatched(slave)
        sync_round(master, slave)
        assert slave.get_topic("T").get(timeout=T) is not None
        # When the master deletes T again and the slave syncs before replicating the marker
        delete(master)
        sync_round(master, slave)
        # Then the slave still has T (its data is still there: config and offsets stay with it)
        assert read_queue(slave, "T", 0) == {0: b"b0"}
        assert slave.get_topic("T").get(timeout=T) is not None
        assert slave.query_offset("g", "T", 0).get(timeout=T) == 1
    finally:
        slave.stop()
        master.stop()


# -- the broker's deletion, concurrently ----------------------------------------------------------


def test_two_concurrent_broker_deletions_of_a_topic_both_succeed(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    adapter = StoreAdapter(store, put_timeout=T)
    try:
        # Given T with messages and a group's offsets, and pullers reading T meanwhile
        config_t(store)
        fill(store, "T", 6, "old")
        store.commit_offset("g", "T", 0, 2).get(timeout=T)
        errors: list[BaseException] = []
        statuses: set[GetStatus] = set()
        stop = gevent.event.Event()

        def pull() -> None:
            while not stop.is_set():
                try:
                    statuses.add(get(store, 0).status)
                except Exception as exc:
                    errors.append(exc)
                gevent.sleep(0)

        pullers = [gevent.spawn(pull) for _ in range(3)]
        # When two admin requests delete T at the same time, a producer sending between
        first = gevent.spawn(adapter.delete_topic, "T")
        second = gevent.spawn(adapter.delete_topic, "T")
        sent = gevent.spawn(put, store, rec(b"racing"))
        gevent.joinall([first, second, sent], timeout=T, raise_error=True)
        stop.set()
        gevent.joinall(pullers, timeout=T)
        # Then both succeed, T's offsets are gone, and pulls never failed meanwhile
        assert (first.value, second.value) == (None, None)
        assert store.query_offset("g", "T", 0).get(timeout=T) == -1
        assert errors == []
        assert statuses <= {GetStatus.FOUND, GetStatus.NO_MATCHED_LOGIC_QUEUE}
        fences = fence_table.load(str(tmp_path))
        assert set(fences) == {"T"} and fences["T"] == store.ctx.topic_fences["T"]
    finally:
        store.stop()


# -- recovery: old checkpoints, partial retention ----------------------------------------------


def test_a_checkpoint_older_than_the_fence_and_a_lost_queue_rebuild_the_new_incarnation(
    tmp_path: Path,
) -> None:
    # Given a checkpoint saved before T's deletion (T's old queues in it) ...
    store = open_store(tmp_path)
    fill(store, "T", 6, "old")
    store.stop()
    old_cp = Path(ckpt.checkpoint_path(str(tmp_path))).read_bytes()
    store = open_store(tmp_path)
    delete(store)
    fill(store, "T", 2, "new")
    store.simulate_crash()
    # ... back in place after the deletion, and T's new queue files lost
    Path(ckpt.checkpoint_path(str(tmp_path))).write_bytes(old_cp)
    shutil.rmtree(os.path.join(tmp_path, "consumequeue", "T"))
    store = open_store(tmp_path)
    try:
        # Then recovery rebuilds T's new incarnation from the log, nothing of the old one
        assert read_queue(store, "T", 0) == {0: b"new0"}
        assert read_queue(store, "T", 1) == {0: b"new1"}
        assert put(store, rec(b"new2")).queue_offset == 1
    finally:
        store.stop()


def test_a_full_rescan_after_partial_retention_skips_what_is_left_below_the_fence(
    tmp_path: Path,
) -> None:
    # Given T's old messages over several segments, T deleted, its new incarnation
    store = open_store(tmp_path, commitlog_segment_size=4096)
    for i in range(40):
        assert put(store, rec(b"old%d-" % i + b"x" * 200, i % 2)).ok
    fence = delete(store)
    fill(store, "T", 2, "new")
    store.stop()
    # When retention removed the first segment only (old T records remain below the fence)
    # and the checkpoint and the queues are lost (a full rescan from the log's new start)
    seg_dir = os.path.join(tmp_path, "commitlog")
    segs = sorted(os.listdir(seg_dir))
    assert int(segs[1]) < fence
    os.unlink(os.path.join(seg_dir, segs[0]))
    os.unlink(ckpt.checkpoint_path(str(tmp_path)))
    shutil.rmtree(os.path.join(tmp_path, "consumequeue"))
    store = open_store(tmp_path, commitlog_segment_size=4096)
    try:
        # Then T is its new incarnation only, and the fence stays (it still hides records)
        assert read_queue(store, "T", 0) == {0: b"new0"}
        assert read_queue(store, "T", 1) == {0: b"new1"}
        assert fence_table.load(str(tmp_path)) == {"T": fence}
    finally:
        store.stop()


# -- random interleavings against a model -------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_deletions_puts_and_restarts_match_a_model(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    # the model: per (topic, queue): queue offset -> body of the current incarnation
    model: dict[tuple[str, int], dict[int, bytes]] = {}
    store = open_store(tmp_path)
    n = 0

    def acked(topic: str, queue_id: int, body: bytes, result: Any) -> None:
        assert result.status is PutStatus.PUT_OK, result
        model.setdefault((topic, queue_id), {})[result.queue_offset] = body

    def forget(topic: str) -> None:
        for key in [k for k in model if k[0] == topic]:
            del model[key]

    try:
        for _step in range(40):
            op = rng.choice(["put", "put", "put", "delete", "race", "restart"])
            if op == "put":
                topic, q = rng.choice(["T", "U"]), rng.randrange(2)
                body = b"m%d" % n
                n += 1
                acked(topic, q, body, put(store, rec(body, q, topic)))
            elif op == "delete":
                delete(store)
                forget("T")
            elif op == "race":  # puts queued on both sides of the marker
                before = [(q, b"m%d" % (n + i)) for i, q in enumerate((0, 1, 0))]
                n += 3
                futs = [store.put([rec(b, q)]) for q, b in before]
                marked = store.delete_topic_data("T")
                after = [(q, b"m%d" % (n + i)) for i, q in enumerate((1, 0))]
                n += 2
                futs_after = [store.put([rec(b, q)]) for q, b in after]
                fence = marked.get(timeout=T).fence
                for f in futs:
                    assert f.get(timeout=T).physical_offset < fence
                forget("T")
                for (q, b), f in zip(after, futs_after, strict=True):
                    acked("T", q, b, f.get(timeout=T))
                assert store.when_dispatched(fence).get(timeout=T) >= fence
            else:
                how = rng.choice(["clean", "crash", "full-scan", "no-queues"])
                if how == "clean":
                    store.stop()
                else:
                    store.simulate_crash()
                    if how in ("full-scan", "no-queues"):
                        os.unlink(ckpt.checkpoint_path(str(tmp_path)))
                    if how == "no-queues":
                        shutil.rmtree(os.path.join(tmp_path, "consumequeue"), True)
                store = open_store(tmp_path)
            dispatched(store)
            for topic in ("T", "U"):
                for q in (0, 1):
                    assert read_queue(store, topic, q) == model.get((topic, q), {}), (
                        seed,
                        _step,
                        op,
                        topic,
                        q,
                    )
    finally:
        store.stop()


@pytest.mark.parametrize("seed", range(4))
def test_a_slave_replicating_random_deletions_matches_its_master(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True)
    n = 0
    try:
        for _step in range(30):
            op = rng.choice(["put", "put", "put", "delete", "copy", "restart-slave"])
            if op == "put":
                topic, q = rng.choice(["T", "U"]), rng.randrange(2)
                assert put(master, rec(b"m%d" % n, q, topic, KEYS=f"k{n % 3}")).ok
                n += 1
            elif op == "delete":
                delete(master)
            elif op == "copy":
                copy_chunks(master, slave, rng.choice([100, 700, 1_000_000]))
            else:
                crash = rng.random() < 0.5
                if crash:
                    slave.simulate_crash()
                else:
                    slave.stop()
                slave = build(tmp_path / "slave", read_only=True)
        copy_chunks(master, slave, 1_000_000)
        dispatched(master)
        dispatched(slave)
        for topic in ("T", "U"):
            for q in (0, 1):
                assert read_queue(slave, topic, q) == read_queue(master, topic, q)
        for k in ("k0", "k1", "k2"):
            assert keyed(slave, k) == keyed(master, k)
        assert fence_table.load(str(tmp_path / "slave")) == fence_table.load(
            str(tmp_path / "master")
        )
        want = {q: len(read_queue(master, "T", q)) for q in (0, 1)}
    finally:
        slave.stop()
        master.stop()
    # and promoted, the slave continues T's current incarnation where the master would have
    promoted = build(tmp_path / "slave")
    try:
        for q in (0, 1):
            assert put(promoted, rec(b"next", q)).queue_offset == want[q]
    finally:
        promoted.stop()
