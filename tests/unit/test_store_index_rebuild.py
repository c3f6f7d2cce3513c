"""Index files dropped from the middle of the key index are rebuilt from the commit log: by
recovery up to ``INLINE_BYTES`` of log, the rest by later steps (the Dispatcher's, in the
background)."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import gevent
import pytest
from loguru import logger

from runtime.store import index_rebuild
from runtime.store.recovery import OpenStore, open_store
from tests.unit.test_store_recovery import Written, clean_close, crash, make_settings, write


def _index_files(root: Path) -> list[str]:
    return sorted(os.listdir(root / "index"))


def _missing(store: OpenStore, written: list[Written]) -> list[int]:
    """Which of ``written`` (by position) a lookup of its key does not find."""
    assert store.index is not None
    missing = []
    for i, w in enumerate(written):
        if w.physical_offset not in store.index.query("T", f"key{i}", 5, 0, 2**62):
            missing.append(i)
    return missing


def _store_with_index_files(tmp_path: Path, n: int) -> tuple[list[Written], list[str]]:
    s = make_settings(tmp_path, index_capacity=40)
    store = open_store(s)
    written = write(store, n)
    clean_close(store)
    files = _index_files(tmp_path)
    assert len(files) >= 4
    return written, files


@pytest.mark.parametrize("which", [0, 1, 2], ids=["first", "second", "third"])
def test_a_dropped_index_file_is_rebuilt_at_recovery(tmp_path: Path, which: int) -> None:
    # Given a store whose index spans several files, one of them (not the newest) corrupt
    written, files = _store_with_index_files(tmp_path, 200)
    with open(tmp_path / "index" / files[which], "r+b") as fh:
        fh.seek(8)
        fh.write(struct.pack("=I", 0))  # hash slots 0
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        # When the store is opened
        again = open_store(make_settings(tmp_path, index_capacity=40))
    finally:
        logger.remove(sink)
    # Then the file is dropped, its range indexed again from the commit log, and every key
    # is found as before
    assert _missing(again, written) == []
    assert any("corrupt index file" in w for w in warnings)
    assert any("rebuilding them from the commit log" in w for w in warnings)
    assert again.index_rebuild is None  # (small: done by recovery)
    assert again.index is not None
    assert again.index.holes(again.log.min_offset, again.log.write_offset) == []
    crash(again)
    # and the next start finds nothing to rebuild
    third = open_store(make_settings(tmp_path, index_capacity=40))
    assert third.index_rebuild is None
    assert _missing(third, written) == []
    crash(third)


def test_a_large_hole_is_left_to_background_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dropped index file whose range is larger than recovery indexes itself
    written, files = _store_with_index_files(tmp_path, 200)
    os.remove(tmp_path / "index" / files[1])
    monkeypatch.setattr(index_rebuild, "INLINE_BYTES", 1000)
    monkeypatch.setattr("runtime.store.recovery.INLINE_BYTES", 1000)
    # When the store is opened
    again = open_store(make_settings(tmp_path, index_capacity=40))
    # Then recovery indexed a part and hands the rest on
    filler = again.index_rebuild
    assert filler is not None and not filler.done
    assert 1000 <= filler.indexed_bytes < 2000
    missing = _missing(again, written)
    assert missing
    # and steps (as the Dispatcher runs them) index the rest, found once published
    steps = 0
    while not filler.done:
        assert filler.step(1000)
        filler.publish()
        steps += 1
    assert steps > 1
    assert _missing(again, written) == []
    crash(again)


def test_a_rebuild_cut_short_by_a_crash_goes_on_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rebuild that stopped part way (the process died after recovery)
    written, files = _store_with_index_files(tmp_path, 200)
    os.remove(tmp_path / "index" / files[1])
    monkeypatch.setattr("runtime.store.recovery.INLINE_BYTES", 1000)
    again = open_store(make_settings(tmp_path, index_capacity=40))
    assert again.index_rebuild is not None and not again.index_rebuild.done
    again.index_rebuild.close()
    crash(again)
    # When the store is opened again (without the limit)
    monkeypatch.setattr("runtime.store.recovery.INLINE_BYTES", index_rebuild.INLINE_BYTES)
    third = open_store(make_settings(tmp_path, index_capacity=40))
    # Then the rest of the hole is indexed and every key is found
    assert third.index_rebuild is None
    assert _missing(third, written) == []
    crash(third)


def test_a_background_step_goes_on_only_while_the_hub_is_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dropped index file left whole to background steps, paced every 5 records with
    # no limit on the wait for an idle hub, and the paces counted
    written, files = _store_with_index_files(tmp_path, 200)
    os.remove(tmp_path / "index" / files[1])
    monkeypatch.setattr("runtime.store.recovery.INLINE_BYTES", 0)
    monkeypatch.setattr(index_rebuild, "SLICE_RECORDS", 5)
    monkeypatch.setattr(index_rebuild, "IDLE_WAIT_S", 600)
    waits: list[int] = []
    real_wait = index_rebuild._IdleGate.wait

    def counted(gate: index_rebuild._IdleGate) -> None:
        waits.append(1)
        real_wait(gate)

    monkeypatch.setattr(index_rebuild._IdleGate, "wait", counted)
    again = open_store(make_settings(tmp_path, index_capacity=40))
    filler = again.index_rebuild
    assert filler is not None and filler.indexed_bytes == 0
    [(start, end)] = filler.pending
    in_hole = sum(1 for w in written if start <= w.physical_offset < end)
    busy = True
    spins = 0

    def spin() -> None:  # always ready to run: the hub's loop is never idle
        nonlocal spins
        while busy:
            spins += 1
            gevent.sleep(0)

    spinner = gevent.spawn(spin)
    try:
        # When a step runs in the thread pool while the hub is busy
        step = gevent.spawn(index_rebuild.run_step, filler, 10**9)
        deadline = time.monotonic() + 10
        while not waits and time.monotonic() < deadline:
            gevent.sleep(0)
        seen = spins
        while spins < seen + 2000:
            gevent.sleep(0)
        # Then it stops at its first slice and waits
        assert len(waits) == 1 and not step.ready()
        # When the hub has nothing else to do
        busy = False
        spinner.join(timeout=10)
        # Then the step goes on to its end, a wait every 5 records
        assert step.get(timeout=30) is True
    finally:
        busy = False
    assert filler.done and len(waits) >= in_hole // 5 > 1
    filler.publish()
    assert _missing(again, written) == []
    crash(again)


def test_closing_the_filler_lets_a_step_waiting_for_the_hub_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a background step waiting for an idle hub (the hub kept busy, no time limit)
    _written, files = _store_with_index_files(tmp_path, 200)
    os.remove(tmp_path / "index" / files[1])
    monkeypatch.setattr("runtime.store.recovery.INLINE_BYTES", 0)
    monkeypatch.setattr(index_rebuild, "SLICE_RECORDS", 5)
    monkeypatch.setattr(index_rebuild, "IDLE_WAIT_S", 600)
    waits: list[int] = []
    real_wait = index_rebuild._IdleGate.wait

    def counted(gate: index_rebuild._IdleGate) -> None:
        waits.append(1)
        real_wait(gate)

    monkeypatch.setattr(index_rebuild._IdleGate, "wait", counted)
    again = open_store(make_settings(tmp_path, index_capacity=40))
    filler = again.index_rebuild
    assert filler is not None
    busy = True

    def spin() -> None:
        while busy:
            gevent.sleep(0)

    spinner = gevent.spawn(spin)
    try:
        step = gevent.spawn(index_rebuild.run_step, filler, 10**9)
        deadline = time.monotonic() + 10
        while not waits and time.monotonic() < deadline:
            gevent.sleep(0)
        assert waits and not step.ready()
        # When the filler is closed on the hub (as the Dispatcher's stop does), still busy
        filler.close()
        # Then the step went on without the hub (its lock is free), and ends
        assert step.get(timeout=30) in (True, False)
    finally:
        busy = False
        spinner.join(timeout=10)
    crash(again)
