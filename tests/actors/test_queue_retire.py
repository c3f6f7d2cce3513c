"""Idle Queue actors stop (``QueueTable.retire_idle``) and come back on the next use, without
losing an entry, a read or a parked long poll."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from actors.broker import queue_table
from actors.broker.store_service import BrokerStore
from runtime.actor import actor_of
from tests.actors.ha_support import wait_until
from tests.actors.test_store_actors import T, bodies, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(30)


def retire_all(store: BrokerStore) -> None:
    """Retire every Queue actor, once the checkpoints have synced their files."""
    table = store.ctx.queues
    wait_until(lambda: table.retire_idle(0) >= 0 and not table.refs(), what="all retired")


def test_idle_queue_actors_stop_and_come_back(tmp_path: Path) -> None:
    # Given four queues with two messages each, synced by the checkpoints (one every tick)
    store = open_store(tmp_path, queue_idle_stop_ms=0)
    try:
        for q in range(4):
            put(store, rec(b"a%d" % q, queue_id=q), rec(b"b%d" % q, queue_id=q))
        consumable(store, 2, queue_id=3)
        old = store.ctx.queues.refs()[("T", 0)]
        # When they are retired
        retire_all(store)
        # Then their actors stop, while their consume queues stay open in the store
        wait_until(lambda: not old.is_alive(), what="the old actor stopped")
        assert len(store.ctx.opened.queues) == 4
        # And a read starts a new actor that serves everything
        assert bodies(get(store, 0)) == [b"a0", b"b0"]
        new = store.ctx.queues.refs()[("T", 0)]
        assert new is not old and new.is_alive()
        # And new messages reach a retired queue through a new actor, after the old entries
        put(store, rec(b"c1", queue_id=1))
        consumable(store, 3, queue_id=1)
        assert bodies(get(store, 0, queue_id=1)) == [b"a1", b"b1", b"c1"]
    finally:
        store.stop()
    # And a restart finds every entry
    store = open_store(tmp_path, queue_idle_stop_ms=0)
    try:
        assert [bodies(get(store, 0, queue_id=q)) for q in (1, 2)] == [
            [b"a1", b"b1", b"c1"],
            [b"a2", b"b2"],
        ]
    finally:
        store.stop()


def test_an_idle_queues_offset_range_is_answered_without_starting_its_actor(
    tmp_path: Path,
) -> None:
    # Given a queue with two messages whose actor retired
    store = open_store(tmp_path, queue_idle_stop_ms=0)
    try:
        put(store, rec(b"a"), rec(b"b"))
        consumable(store, 2)
        retire_all(store)
        # When its min and max offsets are asked (GET_MIN_OFFSET / GET_MAX_OFFSET)
        got = (store.min_offset("T", 0).get(timeout=T), store.max_offset("T", 0).get(timeout=T))
        # Then they are answered from the consume queue the store keeps, and no actor started
        assert got == (0, 2)
        assert not store.ctx.queues.refs()
        # And once its actor runs (a read), it answers, with what it wrote since
        assert bodies(get(store, 0)) == [b"a", b"b"]
        put(store, rec(b"c"))
        consumable(store, 3)
        assert store.max_offset("T", 0).get(timeout=T) == 3
        # And an unknown queue is (0, 0), as before
        assert store.queue_range("T", 7).get(timeout=T) == (0, 0)
    finally:
        store.stop()


def test_a_queue_with_unsynced_entries_or_a_parked_poll_stays(tmp_path: Path) -> None:
    # Given a store that writes no checkpoint (none due), and a message on queue 0
    store = open_store(
        tmp_path,
        queue_idle_stop_ms=0,
        checkpoint_lag_bytes=1 << 40,
        checkpoint_max_interval_ms=3_600_000,
    )
    try:
        put(store, rec(b"x"))
        consumable(store, 1)
        table = store.ctx.queues
        # Then its queue, written and not synced, is not retired
        assert table.retire_idle(0) == 0
        assert ("T", 0) in table.refs()
        # When a long poll parks on a queue whose actor starts clean (nothing written yet)
        waiter = store.wait_arrival("T", 1, 0, timeout=10)
        wait_until(lambda: ("T", 1) in store.ctx.parked_queues)
        # Then it is not retired either, and the poll is woken by the next message
        assert table.retire_idle(0) == 0
        assert set(table.refs()) == {("T", 0), ("T", 1)}
        put(store, rec(b"y", queue_id=1))
        assert waiter.get(timeout=T) == 1
    finally:
        store.stop()


def test_a_queue_used_recently_is_not_retired(tmp_path: Path) -> None:
    store = open_store(tmp_path, queue_idle_stop_ms=0)
    try:
        put(store, rec(b"x"))
        consumable(store, 1)
        retire_all(store)
        # Given a queue read just now (its actor started again)
        assert bodies(get(store, 0)) == [b"x"]
        # Then a sweep for queues unused for a minute leaves it
        assert store.ctx.queues.retire_idle(60) == 0
        assert ("T", 0) in store.ctx.queues.refs()
    finally:
        store.stop()


def test_the_dispatcher_retires_unused_queues_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[bool] = []
    monkeypatch.setattr(queue_table, "TRIM_AFTER", 1)
    monkeypatch.setattr(queue_table, "release_free_memory", lambda: trims.append(True) or True)
    # Given queues unused for queueIdleStopMillis (0.2 s)
    store = open_store(tmp_path, queue_idle_stop_ms=200)
    try:
        for q in range(3):
            put(store, rec(b"m%d" % q, queue_id=q))
        consumable(store, 1, queue_id=2)
        assert bodies(get(store, 0, queue_id=1)) == [b"m1"]
        first = actor_of(store.ctx.queues.refs()[("T", 1)])
        # Then the Dispatcher's ticks stop their actors, and once one (TRIM_AFTER here) has
        # ended, the next tick gives the freed memory back
        wait_until(lambda: not store.ctx.queues.refs(), what="idle queues retired")
        wait_until(lambda: trims, what="the memory given back")
        # And the next read is served by a new one
        assert bodies(get(store, 0, queue_id=1)) == [b"m1"]
        assert actor_of(store.ctx.queues.refs()[("T", 1)]) is not first
    finally:
        store.stop()


def open_paths() -> set[str]:
    """The files this process holds a descriptor of (Linux: ``/proc/self/fd``)."""
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
    return paths


def test_a_retired_queue_closes_its_descriptors_and_reopens_on_next_use(
    tmp_path: Path,
) -> None:
    # Given two queues written and read, synced by the checkpoints
    store = open_store(tmp_path, queue_idle_stop_ms=0)
    try:
        for q in range(2):
            put(store, rec(b"a%d" % q, queue_id=q))
        consumable(store, 1, queue_id=1)
        assert bodies(get(store, 0)) == [b"a0"]
        queues = store.ctx.opened.queues
        paths = {
            q: {os.path.realpath(seg.file.path) for seg in queues[("T", q)].file.segments}
            for q in range(2)
        }
        assert paths[0] and paths[1] and (paths[0] | paths[1]) <= open_paths()
        # When their actors are retired
        retire_all(store)
        # Then their consume-queue files hold no descriptor
        assert not (paths[0] | paths[1]) & open_paths()
        # And the next read and write of one reopen them and find everything
        assert bodies(get(store, 0, queue_id=1)) == [b"a1"]
        put(store, rec(b"b1", queue_id=1))
        consumable(store, 2, queue_id=1)
        assert bodies(get(store, 0, queue_id=1)) == [b"a1", b"b1"]
        assert paths[1] <= open_paths()
    finally:
        store.stop()
