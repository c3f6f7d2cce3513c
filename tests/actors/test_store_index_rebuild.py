"""The Dispatcher and the key index: it indexes in the background what recovery left of a
dropped index file, and fsyncs the index off the hub."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from actors.broker.store_service import BrokerStore
from runtime.store import index_rebuild
from runtime.store import record as R
from runtime.store.index_file import IndexFile
from tests.actors.ha_support import wait_until
from tests.actors.test_store_actors import T, consumable, open_store, put, rec


def _missing(store: BrokerStore, n: int) -> list[int]:
    out = []
    for i in range(n):
        res = store.query_by_key("T", f"k{i}", 5).get(timeout=T)
        if [R.decode_record(m).body for m in res.messages] != [f"m{i}".encode()]:
            out.append(i)
    return out


def test_the_dispatcher_rebuilds_a_large_hole_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stopped store whose key index spans several files, the second one lost
    n = 120
    s = open_store(tmp_path, index_capacity=20)
    for i in range(0, n, 10):
        put(s, *(rec(f"m{j}".encode(), KEYS=f"k{j}") for j in range(i, i + 10)))
    consumable(s, n)
    assert _missing(s, n) == []
    s.stop()
    files = sorted(os.listdir(tmp_path / "index"))
    assert len(files) >= 4
    os.remove(tmp_path / "index" / files[1])
    # When it starts with recovery indexing only a few hundred bytes itself
    monkeypatch.setattr("runtime.store.recovery.INLINE_BYTES", 300)
    monkeypatch.setattr(index_rebuild, "STEP_BYTES", 300)
    again = open_store(tmp_path, index_capacity=20)
    try:
        filler = again.ctx.require_open().index_rebuild
        assert filler is not None  # (recovery left a part)
        # Then the Dispatcher indexes the rest, and every key is found again
        wait_until(lambda: filler.done, what="the index rebuild to finish")
        wait_until(lambda: _missing(again, n) == [], what="every key found")
    finally:
        again.stop()
    # and the next start has nothing left to rebuild
    third = open_store(tmp_path, index_capacity=20)
    try:
        assert third.ctx.require_open().index_rebuild is None
        assert _missing(third, n) == []
    finally:
        third.stop()


def test_the_index_is_fsynced_off_the_hub_at_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store that writes no checkpoint while it runs, its index fsyncs watched
    threads: list[int] = []
    real = IndexFile.flush

    def watched(self: IndexFile) -> None:
        if self.dirty:
            threads.append(threading.get_ident())
        real(self)

    monkeypatch.setattr(IndexFile, "flush", watched)
    s = open_store(tmp_path, checkpoint_interval_ms=600_000)
    hub = threading.get_ident()
    put(s, rec(b"a", KEYS="k0"))
    consumable(s, 1)
    threads.clear()  # (recovery's)
    # When it stops
    s.stop()
    # Then the index written since was fsynced, in a worker thread, not on the hub
    assert threads and hub not in threads
