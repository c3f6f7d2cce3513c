"""Storage faults at the store level (RELIABILITY.md R2, R3, R6, R7 and ENOSPC), injected through
the FaultyFileSystem: a failed fsync never yields PUT_OK and fail-stops the store; a slow fsync
yields FLUSH_DISK_TIMEOUT while other actors stay responsive; a power loss keeps every PUT_OK
under SYNC_FLUSH and only loses a tail under ASYNC_FLUSH; a full disk refuses cleanly."""

from __future__ import annotations

import errno
import random
import time
from pathlib import Path
from typing import Any

import gevent
import pytest

from actors.broker import commitlog_writer
from actors.broker.store_results import GetStatus, PutStatus
from actors.broker.store_service import BrokerStore
from runtime.directory import Directory
from runtime.store import record as R
from runtime.store.faults import FaultyFileSystem
from runtime.store.lockfile import abort_exists
from runtime.store.record_properties import encode_properties
from runtime.store.settings import FlushMode, StoreSettings
from runtime.store.storage import OsFileSystem
from runtime.supervisor import Supervisor

T = 5.0
SYNC = FlushMode.SYNC_FLUSH


@pytest.fixture(autouse=True)
def _no_actor_leaks() -> Any:
    import pykka

    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=5)


def settings_for(root: Path, **kw: Any) -> StoreSettings:
    base: dict[str, Any] = {
        "root": str(root),
        "commitlog_segment_size": 32 * 1024,
        "cq_entries_per_file": 128,
        "index_slots": 257,
        "index_capacity": 5000,
        "flush_interval_ms": 20,
        "checkpoint_interval_ms": 50,
        "checkpoint_lag_bytes": 0,  # a checkpoint at every tick
        "sync_flush_timeout_ms": 1000,
    }
    base.update(kw)
    return StoreSettings(**base)


def start(root: Path, fs: Any = None, **kw: Any) -> BrokerStore:
    s = settings_for(root, **kw)
    if fs is None:
        return BrokerStore.build(s, Directory()).start()
    return BrokerStore.build(s, Directory(), fs=fs).start()


def rec(body: bytes, queue_id: int = 0) -> R.PutRecord:
    return R.PutRecord("T", queue_id, body, encode_properties({"KEYS": body.decode()}))


def put(store: BrokerStore, *records: R.PutRecord) -> Any:
    return store.put(list(records)).get(timeout=T)


def read_all(store: BrokerStore, queue_id: int) -> dict[int, bytes]:
    """Every consumable record of T/queue_id by queue offset."""
    out: dict[int, bytes] = {}
    offset = store.min_offset("T", queue_id).get(timeout=T)
    while True:
        got = store.get_messages("g", "T", queue_id, offset, 64).get(timeout=T)
        if got.status is not GetStatus.FOUND:
            return out
        for q, raw in zip(got.queue_offsets, got.messages, strict=True):
            out[q] = R.decode_record(raw).body
        offset = got.next_begin_offset


def wait_until(pred: Any, timeout: float = T) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        gevent.sleep(0.01)


def test_r6_failed_fsync_never_acks_and_fail_stops(tmp_path: Path) -> None:
    # Given a SYNC_FLUSH store with one durable message
    fs = FaultyFileSystem()
    store = start(tmp_path, fs, flush_mode=SYNC)
    durable = put(store, rec(b"durable"))
    assert durable.status is PutStatus.PUT_OK
    # When the next fsync fails with EIO while 16 appenders wait on it
    fs.fail_next_fsync()
    results = [f.get(timeout=T) for f in [store.put([rec(f"m{i}".encode())]) for i in range(16)]]
    # Then none of them is acknowledged as durable: stored-but-unknown or refused
    assert all(r.status is not PutStatus.PUT_OK for r in results)
    assert {r.status for r in results} <= {
        PutStatus.FLUSH_DISK_TIMEOUT,
        PutStatus.SERVICE_NOT_AVAILABLE,
    }
    assert PutStatus.FLUSH_DISK_TIMEOUT in {r.status for r in results}
    # and the store refuses everything afterwards instead of retrying the fsync
    assert put(store, rec(b"after")).status is PutStatus.SERVICE_NOT_AVAILABLE
    assert store.failed is not None and "fsync failed" in store.failed
    assert store.ctx.directory.get(store.names.flusher) is None
    store.stop()
    assert abort_exists(str(tmp_path))  # not a clean shutdown
    # When it restarts, Then the acknowledged message is there (zero acked loss)
    again = start(tmp_path)
    try:
        wait_until(lambda: again.max_offset("T", 0).get(timeout=T) >= 1)
        assert read_all(again, 0)[0] == b"durable"
        assert put(again, rec(b"new")).status is PutStatus.PUT_OK
    finally:
        again.stop()


def test_r6_failed_fsync_escalates_through_the_supervisor(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    directory = Directory()
    store = BrokerStore.build(settings_for(tmp_path, flush_mode=SYNC), directory, fs=fs)
    sup = Supervisor.start("broker", children=store.child_specs(), directory=directory)
    assert put(store, rec(b"ok")).status is PutStatus.PUT_OK
    fs.fail_next_fsync()
    assert put(store, rec(b"x")).status is not PutStatus.PUT_OK
    # the broker supervisor fails (fail-stop child) and takes the whole store down
    wait_until(lambda: not sup.is_alive())
    assert directory.get(store.names.writer) is None
    assert put(store, rec(b"y")).status is PutStatus.SERVICE_NOT_AVAILABLE


def test_r6_async_flush_failure_stops_acking(tmp_path: Path) -> None:
    # Given an ASYNC_FLUSH store that acks from the page cache
    fs = FaultyFileSystem()
    store = start(tmp_path, fs, flush_interval_ms=10)
    try:
        assert put(store, rec(b"a")).status is PutStatus.PUT_OK
        # When a periodic fsync fails
        fs.fail_next_fsync()
        wait_until(lambda: store.failed is not None)
        # Then no later append is acknowledged
        statuses = {put(store, rec(f"x{i}".encode())).status for i in range(5)}
        assert statuses == {PutStatus.SERVICE_NOT_AVAILABLE}
    finally:
        store.stop()


@pytest.mark.serial  # times the other calls while a fsync hangs: run alone (Makefile)
def test_r7_slow_fsync_times_out_while_others_stay_responsive(tmp_path: Path) -> None:
    # Given a SYNC_FLUSH store with a 200 ms flush timeout and readable data on queue 1
    fs = FaultyFileSystem()
    store = start(tmp_path, fs, flush_mode=SYNC, sync_flush_timeout_ms=200)
    try:
        assert put(store, rec(b"old", queue_id=1)).status is PutStatus.PUT_OK
        wait_until(lambda: store.max_offset("T", 1).get(timeout=T) == 1)
        # When fsync takes 1.5 s
        fs.slow_fsync(1.5)
        fs.fsync_started.clear()
        t0 = time.monotonic()
        pending = store.put([rec(b"slow", queue_id=0)])
        wait_until(fs.fsync_started.is_set)
        # Then unrelated reads and other actors answer quickly meanwhile
        latencies = []
        for _ in range(10):
            t = time.monotonic()
            got = store.get_messages("g", "T", 1, 0, 8).get(timeout=T)
            store.query_offset("g", "T", 1).get(timeout=T)
            latencies.append(time.monotonic() - t)
            assert got.status is GetStatus.FOUND
            gevent.sleep(0.02)
        assert max(latencies) < 0.1
        # and the append is answered FLUSH_DISK_TIMEOUT after ~200 ms, never PUT_OK
        result = pending.get(timeout=T)
        elapsed = time.monotonic() - t0
        assert result.status is PutStatus.FLUSH_DISK_TIMEOUT
        assert 0.2 <= elapsed < 1.4
        # Once the fsync completes the message becomes consumable (it was stored)
        fs.slow_fsync(0)
        wait_until(lambda: store.max_offset("T", 0).get(timeout=T) == 1)
    finally:
        fs.slow_fsync(0)
        store.stop()


def test_enospc_refuses_without_leaving_a_partial_record(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    store = start(tmp_path, fs)
    log = store.ctx.require_open().log
    assert put(store, rec(b"first")).status is PutStatus.PUT_OK
    end = log.write_offset
    # When the disk fills up in the middle of a batch
    fs.enospc_after(150)
    result = put(store, *[rec(f"big{i}".encode() * 20) for i in range(5)])
    # Then the batch is refused as not appended, and no partial bytes remain
    assert result.status is PutStatus.SERVICE_NOT_AVAILABLE
    assert log.write_offset == end
    assert log.segments.segments[-1].file.size() == end % store.settings.commitlog_segment_size
    fs.enospc_after(None)
    store.stop()
    again = start(tmp_path)
    try:
        assert again.ctx.require_open().report.truncated_bytes == 0
        assert put(again, rec(b"second")).queue_offsets == (1,)
    finally:
        again.stop()


def test_enospc_refuses_for_a_while_then_appends_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commitlog_writer, "ENOSPC_PAUSE_S", 0.3)
    fs = FaultyFileSystem()
    store = start(tmp_path, fs)
    try:
        assert put(store, rec(b"first")).status is PutStatus.PUT_OK
        # Given a write that met ENOSPC (the disk filled between two of Retention's ticks,
        # which sees the disk below its warning ratio and so tells the writer nothing)
        fs.enospc_after(10)
        assert put(store, rec(b"x" * 100)).status is PutStatus.SERVICE_NOT_AVAILABLE
        # When space is freed
        fs.enospc_after(None)
        # Then appends are refused only for the pause, and taken again afterwards
        assert put(store, rec(b"soon")).status is PutStatus.SERVICE_NOT_AVAILABLE
        deadline = time.monotonic() + 5.0
        while (result := put(store, rec(b"later"))).status is not PutStatus.PUT_OK:
            assert time.monotonic() < deadline, f"still refused: {result}"
            gevent.sleep(0.05)
        assert result.queue_offsets == (1,)
    finally:
        store.stop()


def _appenders(store: BrokerStore, rounds: int, width: int, queues: int) -> list[tuple[Any, int]]:
    futures = []
    n = 0
    for _ in range(rounds):
        batch = []
        for _ in range(width):
            batch.append((store.put([rec(f"v{n}".encode(), queue_id=n % queues)]), n))
            n += 1
        futures.extend(batch)
        gevent.sleep(0)
    return futures


# lag 0: a checkpoint at every tick; DEFAULT_LAG: none after the one at start (recovery scans
# and re-dispatches everything written since, as after a crash between two checkpoints)
DEFAULT_LAG = StoreSettings(root="").checkpoint_lag_bytes
LAGS = [(1, 0), (2, 0), (3, 0), (7, DEFAULT_LAG)]


@pytest.mark.parametrize(("seed", "lag"), LAGS)
def test_r3_power_loss_sync_flush_loses_nothing_acked(tmp_path: Path, seed: int, lag: int) -> None:
    # Given SYNC_FLUSH appends from many concurrent producers
    fs = FaultyFileSystem()
    store = start(
        tmp_path, fs, flush_mode=SYNC, sync_flush_timeout_ms=5000, checkpoint_lag_bytes=lag
    )
    sent = _appenders(store, rounds=10, width=32, queues=3)
    acked = []
    for fut, n in sent:
        r = fut.get(timeout=3 * T)
        assert r.status is not PutStatus.FLUSH_DISK_TIMEOUT or r.reason
        if r.ok:
            acked.append((n % 3, r.queue_offset, f"v{n}".encode()))
    assert len(acked) > len(sent) // 2  # a loaded machine may time some out (info, not ok)
    # When the power fails (files cut back anywhere between fsynced and written)
    store.simulate_crash()
    fs.power_loss(random.Random(seed))
    # Then after recovery every PUT_OK message is at its queue offset
    again = start(tmp_path)
    try:
        wait_until(lambda: all(again.max_offset("T", q).get(timeout=T) > 0 for q in range(3)))
        stored = {q: read_all(again, q) for q in range(3)}
        for q, qoff, body in acked:
            assert stored[q].get(qoff) == body
    finally:
        again.stop()


@pytest.mark.parametrize(("seed", "lag"), [(4, 0), (5, 0), (6, 0), (8, DEFAULT_LAG)])
def test_r2_power_loss_async_flush_loses_only_a_tail(tmp_path: Path, seed: int, lag: int) -> None:
    # Given ASYNC_FLUSH appends, some fsynced and some only in the page cache
    fs = FaultyFileSystem()
    store = start(tmp_path, fs, flush_interval_ms=30, checkpoint_lag_bytes=lag)
    acked: dict[int, list[tuple[int, bytes]]] = {0: [], 1: []}
    for i in range(300):
        r = put(store, rec(f"v{i}".encode(), queue_id=i % 2))
        if not r.ok:  # refused before writing (e.g. OS_PAGE_CACHE_BUSY on a loaded machine)
            assert r.status.appended is False
            continue
        acked[i % 2].append((r.queue_offset, f"v{i}".encode()))
        if i % 50 == 0:
            gevent.sleep(0.05)
    store.simulate_crash()
    fs.power_loss(random.Random(seed))
    again = start(tmp_path)
    try:
        survived = {}
        for q in (0, 1):
            stored = read_all(again, q)
            # no unexpected values, no inconsistent offsets, and losses only at the tail
            kept = sorted(stored)
            assert kept == list(range(len(kept)))
            assert [stored[o] for o in kept] == [b for _, b in acked[q][: len(kept)]]
            survived[q] = len(kept)
        if lag:  # no checkpoint since the start: recovery re-dispatched every survivor
            assert again.ctx.require_open().report.reput_records >= sum(survived.values())
        # new appends continue right after what survived
        nxt = put(again, rec(b"next", queue_id=0))
        assert nxt.queue_offset == survived[0]
    finally:
        again.stop()


class DirsOutOfDescriptors(OsFileSystem):
    """The real file system, except that the first ``failures`` syncs of the commit log's
    directory find the process out of descriptors (EMFILE opening it)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def fsync_dir(self, path: str) -> None:
        if "commitlog" in path and self.failures > 0:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files", path)
        super().fsync_dir(path)


def test_out_of_descriptors_at_a_flush_is_retried_not_a_fail_stop(tmp_path: Path) -> None:
    # Given a SYNC_FLUSH store whose first three syncs of the commit log's directory cannot
    # open it (the process out of descriptors)
    fs = DirsOutOfDescriptors(failures=3)
    store = start(tmp_path, fs, flush_mode=SYNC, sync_flush_timeout_ms=3000)
    try:
        # When a record is put (its new segment needs the directory synced)
        result = put(store, rec(b"first"))
        # Then the flush was retried until it ran: PUT_OK, and the store did not fail
        assert fs.failures == 0
        assert result.status is PutStatus.PUT_OK
        assert store.ctx.failed is None
        assert put(store, rec(b"second")).status is PutStatus.PUT_OK
        wait_until(lambda: store.max_offset("T", 0).get(timeout=T) == 2)
        assert read_all(store, 0) == {0: b"first", 1: b"second"}
    finally:
        store.stop()
