"""Deleting a topic in the store: the deletion marker, the Dispatcher's barrier, the fences, and
recovery / replication never bringing a deleted incarnation back (docs/store.md, "Deleting a
topic")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.store_service import BrokerStore
from runtime.store import checkpoint as ckpt
from runtime.store import fences as fence_table
from runtime.store.consumequeue import queue_dir
from runtime.store.raw import truncate_log
from runtime.store.topic_names import TOPIC_DELETED_MARKER
from tests.actors.test_ha_store import build, copy_all
from tests.actors.test_store_actors import (
    T,
    bodies,
    consumable,
    get,
    open_store,
    put,
    rec,
    settings_for,
)

pytestmark = pytest.mark.timeout(60)


def delete(store: BrokerStore, topic: str = "T") -> int:
    """What the broker's DELETE_TOPIC_IN_BROKER does with the store; returns the fence."""
    assert store.delete_topic(topic).get(timeout=T).wait(T) is True
    done = store.delete_topic_data(topic).get(timeout=T)
    assert done.error is None, done.error
    assert store.when_dispatched(done.fence).get(timeout=T) >= done.fence
    assert store.remove_topic_offsets(topic).get(timeout=T).wait(T) is True  # on disk
    return done.fence


def fill(store: BrokerStore, topic: str, n: int, prefix: str) -> None:
    for i in range(n):
        assert put(store, rec(f"{prefix}{i}".encode(), i % 2, topic)).status is PutStatus.PUT_OK
    consumable(store, n // 2, 0, topic)
    consumable(store, n // 2, 1, topic)


def test_a_deleted_topic_loses_its_queues_files_and_offsets(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Given topic T with 10 messages over two queues and a group's offsets, and topic U
        fill(store, "T", 10, "old")
        fill(store, "U", 4, "u")
        assert put(store, rec(b"keyed", 0, "T", KEYS="k1")).status is PutStatus.PUT_OK
        consumable(store, 6)
        assert len(store.query_by_key("T", "k1", 10).get(timeout=T).messages) == 1
        store.commit_offset("g", "T", 0, 3).get(timeout=T)
        store.commit_offset("g", "U", 0, 1).get(timeout=T)
        assert os.path.isdir(queue_dir(str(tmp_path), "T", 0))
        # When T is deleted
        fence = delete(store)
        # Then T's consume queues and files are gone, its offsets too, U is untouched
        assert not os.path.exists(os.path.join(tmp_path, "consumequeue", "T"))
        assert get(store, 0).status is GetStatus.NO_MATCHED_LOGIC_QUEUE
        assert store.max_offset("T", 0).get(timeout=T) == 0
        assert store.query_offset("g", "T", 0).get(timeout=T) == -1
        assert store.query_offset("g", "U", 0).get(timeout=T) == 1
        assert bodies(get(store, 0, topic="U")) == [b"u0", b"u2"]
        assert fence_table.load(str(tmp_path)) == {"T": fence}
        assert store.query_by_key("T", "k1", 10).get(timeout=T).messages == ()
        # And T created again starts at queue offset 0 with none of the old messages
        assert put(store, rec(b"new0")).queue_offsets == (0,)
        consumable(store, 1)
        assert bodies(get(store, 0)) == [b"new0"]
    finally:
        store.stop()


def test_a_parked_long_poll_on_a_deleted_topic_is_answered(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Given a long poll parked on T/0 at its end
        fill(store, "T", 2, "old")
        parked = store.wait_arrival("T", 0, 1, 30.0)
        # When T is deleted
        delete(store)
        # Then the poll is answered now, not after its 30 s
        assert parked.get(timeout=T) is not None
    finally:
        store.stop()


def test_clients_cannot_write_the_marker_topic(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Given the store; When a client record names the markers' reserved topic
        result = put(store, rec(b"x", 0, TOPIC_DELETED_MARKER))
        # Then it is refused and nothing is written
        assert result.status is PutStatus.MESSAGE_ILLEGAL
        assert "reserved" in (result.reason or "")
    finally:
        store.stop()


@pytest.mark.parametrize("how", ["clean", "crash", "crash-full-scan"])
def test_restarts_never_bring_a_deleted_incarnation_back(tmp_path: Path, how: str) -> None:
    # Given T deleted and created again with 4 new messages, U beside it
    store = open_store(tmp_path)
    fill(store, "T", 10, "old")
    fill(store, "U", 4, "u")
    delete(store)
    fill(store, "T", 4, "new")
    # When the store stops cleanly, or crashes (optionally losing its checkpoint, so recovery
    # re-reads the whole log: the old records, the marker, the new records)
    if how == "clean":
        store.stop()
    else:
        store.simulate_crash()
        if how == "crash-full-scan":
            os.unlink(ckpt.checkpoint_path(str(tmp_path)))
    store = open_store(tmp_path)
    try:
        # Then T holds only its new incarnation at queue offsets 0.., and U all of its own
        assert bodies(get(store, 0)) == [b"new0", b"new2"]
        assert bodies(get(store, 0, queue_id=1)) == [b"new1", b"new3"]
        assert store.min_offset("T", 0).get(timeout=T) == 0
        assert bodies(get(store, 0, topic="U")) == [b"u0", b"u2"]
        # and T's next message continues the new incarnation
        assert put(store, rec(b"new4")).queue_offsets == (2,)
    finally:
        store.stop()


def test_consume_queue_files_that_survived_their_deletion_are_rebuilt(tmp_path: Path) -> None:
    # Given T's consume-queue files saved before T was deleted and created again
    store = open_store(tmp_path)
    fill(store, "T", 6, "old")
    saved = tmp_path / "saved-cq"
    shutil.copytree(os.path.join(tmp_path, "consumequeue", "T"), saved)
    delete(store)
    fill(store, "T", 2, "new")
    store.stop()
    # When the old files come back (their removal never reached the disk) and the store opens
    shutil.rmtree(os.path.join(tmp_path, "consumequeue", "T"))
    shutil.copytree(saved, os.path.join(tmp_path, "consumequeue", "T"))
    store = open_store(tmp_path)
    try:
        # Then recovery sees they point below T's fence and rebuilds T from the log
        assert bodies(get(store, 0)) == [b"new0"]
        assert bodies(get(store, 0, queue_id=1)) == [b"new1"]
        report = store.ctx.require_open().report
        assert ("T", 0) in report.queues_rebuilt
    finally:
        store.stop()


def test_a_slave_applies_a_deletion_it_replicates(tmp_path: Path) -> None:
    master = build(tmp_path / "master")
    slave = build(tmp_path / "slave", read_only=True)
    try:
        # Given a slave that replicated T's old messages
        fill(master, "T", 6, "old")
        copy_all(master, slave)
        consumable(slave, 3, 0, "T")
        # When the master deletes T, T gets new messages, and the slave replicates it all
        delete(master)
        fill(master, "T", 2, "new")
        copy_all(master, slave)
        # Then the slave drops the old incarnation and serves the new one from queue offset 0
        end = slave.ctx.require_open().log.write_offset
        assert slave.when_dispatched(end).get(timeout=T) >= end
        assert bodies(get(slave, 0)) == [b"new0"]
        assert fence_table.load(str(tmp_path / "slave")) == fence_table.load(
            str(tmp_path / "master")
        )
        # and a slave refuses to delete by itself
        assert slave.delete_topic_data("T").get(timeout=T).error is not None
    finally:
        slave.stop()
        master.stop()


def test_fences_are_pruned_to_the_log(tmp_path: Path) -> None:
    # Given fences below, inside and past a log spanning [100, 500)
    fences: dict[str, Any] = {"below": 100, "inside": 300, "end": 500, "past": 501}
    # Then only the ones that still hide records inside it are kept
    assert fence_table.pruned(fences, 100, 500) == {"inside": 300, "end": 500}
    # and a fence only rises
    assert fence_table.raised({"a": 5}, (("a", 3), ("b", 7))) == {"a": 5, "b": 7}


def test_a_deletion_cut_off_with_a_replicas_tail_is_undone(tmp_path: Path) -> None:
    # Given T deleted on a node whose log is then cut before the marker (it rejoins as a slave
    # and its divergent tail goes, the deletion with it)
    store = open_store(tmp_path)
    fill(store, "T", 6, "old")
    before_marker = store.ctx.require_open().log.write_offset
    delete(store)
    store.stop()
    truncate_log(settings_for(tmp_path), before_marker)
    # When the store opens again
    store = open_store(tmp_path)
    try:
        # Then the deletion is undone: T's messages are readable at their offsets again
        assert bodies(get(store, 0)) == [b"old0", b"old2", b"old4"]
        assert bodies(get(store, 0, queue_id=1)) == [b"old1", b"old3", b"old5"]
        assert fence_table.load(str(tmp_path)) == {}
        assert put(store, rec(b"next")).queue_offsets == (3,)
    finally:
        store.stop()


def test_a_corrupt_fence_file_is_rebuilt_from_the_markers(tmp_path: Path) -> None:
    # Given T deleted and created again, then its fence file damaged
    store = open_store(tmp_path)
    fill(store, "T", 4, "old")
    fence = delete(store)
    fill(store, "T", 2, "new")
    store.stop()
    (tmp_path / fence_table.FILE_NAME).write_text("{not json")
    # When the store opens
    store = open_store(tmp_path)
    try:
        # Then it starts, T holds only its new incarnation, and the fence is back
        assert bodies(get(store, 0)) == [b"new0"]
        assert bodies(get(store, 0, queue_id=1)) == [b"new1"]
        assert fence_table.load(str(tmp_path)) == {"T": fence}
    finally:
        store.stop()


class NoLease:
    """A master's replication condition once its lease ran out (controller mode)."""

    required = False
    confirm_source: str | None = None

    def wait(self, offset: int) -> Any:
        raise AssertionError("nothing may be appended")

    def still_holds(self) -> bool:
        return False

    def may_append(self) -> bool:
        return False

    def replicas_enough(self) -> bool:
        return True


def test_a_master_without_its_lease_appends_no_deletion_marker(tmp_path: Path) -> None:
    # Given a master store holding T's messages whose lease ran out (a failover or a handover
    # under way: the log end it reported is final, the writer appends nothing for anyone)
    store = open_store(tmp_path)
    try:
        fill(store, "T", 4, "old")
        store.ctx.replication = NoLease()
        end = store.ctx.require_open().log.write_offset
        # When T's data is deleted there
        done = store.delete_topic_data("T").get(timeout=T)
        # Then it is refused and the log did not grow (the new master keeps T)
        assert done.error is not None
        assert store.ctx.require_open().log.write_offset == end
        assert put(store, rec(b"x", 0, "T")).status is PutStatus.SERVICE_NOT_AVAILABLE
    finally:
        store.stop()
