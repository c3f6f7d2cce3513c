"""Consume queue, key index, lock file, abort marker, atomic config files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.errors import StoreError
from runtime.store import record_dispatch as RD
from runtime.store.configfile import read_json, write_json
from runtime.store.consumequeue import ENTRY_SIZE, ConsumeQueue, QueueGap
from runtime.store.index import IndexService
from runtime.store.lockfile import StoreLock, abort_exists, create_abort, remove_abort


def test_consume_queue_append_is_idempotent_and_spans_files(tmp_path: Path) -> None:
    cq = ConsumeQueue(str(tmp_path), "T", 0, entries_per_file=4)
    assert cq.append([(i, i * 100, 100, i) for i in range(10)]) == 10
    assert (cq.min_offset, cq.max_offset) == (0, 10)
    assert len(os.listdir(tmp_path / "consumequeue" / "T" / "0")) == 3
    # re-dispatching a range already held adds nothing
    assert cq.append([(i, i * 100, 100, i) for i in range(5, 12)]) == 2
    assert cq.max_offset == 12
    got = cq.entries(3, 5)
    assert [e.physical_offset for e in got] == [300, 400, 500, 600, 700]
    with pytest.raises(QueueGap):
        cq.append([(20, 2000, 100, 0)])
    cq.close()
    again = ConsumeQueue(str(tmp_path), "T", 0, entries_per_file=4)
    assert again.max_offset == 12
    assert again.entry(11) == (1100, 100, 11)


def test_consume_queue_conflicting_entry_truncates(tmp_path: Path) -> None:
    cq = ConsumeQueue(str(tmp_path), "T", 1, entries_per_file=100)
    cq.append([(i, i * 10, 10, 0) for i in range(5)])
    # the log says offset 3 is a different record (the old tail was truncated and rewritten)
    cq.append([(3, 999, 10, 0)])
    assert cq.max_offset == 4
    assert cq.entry(3) == (999, 10, 0)


def test_consume_queue_starting_late_is_padded(tmp_path: Path) -> None:
    cq = ConsumeQueue(str(tmp_path), "T", 2, entries_per_file=4)
    cq.append([(6, 5000, 10, 0), (7, 5010, 10, 0)])
    assert (cq.min_offset, cq.max_offset) == (6, 8)
    assert cq.entry(5) is None
    cq.close()
    again = ConsumeQueue(str(tmp_path), "T", 2, entries_per_file=4)
    assert (again.min_offset, again.max_offset) == (6, 8)


def test_consume_queue_trim_and_retention(tmp_path: Path) -> None:
    cq = ConsumeQueue(str(tmp_path), "T", 0, entries_per_file=4)
    cq.append([(i, i * 100, 100, 0) for i in range(10)])
    assert cq.truncate_past(750) == 3  # entries at 700, 800, 900 end past 750
    assert cq.max_offset == 7
    assert cq.delete_files_below(450) == 1  # the first file's last entry (300) is below 450
    assert cq.min_offset == 5  # entry 4 points at 400 < 450
    raw = cq.read_raw(0, 100)
    assert len(raw) == 2 * ENTRY_SIZE


def test_consume_queue_torn_entry_is_dropped(tmp_path: Path) -> None:
    cq = ConsumeQueue(str(tmp_path), "T", 0, entries_per_file=100)
    cq.append([(i, i * 10, 10, 0) for i in range(3)])
    path = cq.file.segments[0].file.path
    cq.close()
    os.truncate(path, 3 * ENTRY_SIZE - 7)
    again = ConsumeQueue(str(tmp_path), "T", 0, entries_per_file=100)
    assert again.max_offset == 2


def entry(topic: str, phys: int, ts: int, *keys: str) -> RD.DispatchEntry:
    return RD.DispatchEntry(topic, 0, 0, phys, 10, 0, ts, 0, keys)


def test_index_put_query_and_rolls(tmp_path: Path) -> None:
    idx = IndexService(str(tmp_path), slots=7, capacity=5)
    idx.put_entries([entry("T", i * 10, 1000 + i, f"k{i % 3}", "all") for i in range(6)])
    assert len(idx.files) >= 2
    assert idx.query("T", "k1", 10, 0, 10**13) == [40, 10]
    assert sorted(idx.query("T", "all", 100, 0, 10**13)) == [0, 10, 20, 30, 40, 50]
    assert idx.query("T", "all", 100, 1002, 1003) == [30, 20]
    assert idx.query("Other", "k1", 10, 0, 10**13) == []
    # re-dispatch of covered records adds nothing
    idx.put_entries([entry("T", 40, 1004, "k1")])
    assert idx.query("T", "k1", 10, 0, 10**13) == [40, 10]
    idx.close()
    again = IndexService(str(tmp_path), slots=7, capacity=5)
    assert again.query("T", "k1", 10, 0, 10**13) == [40, 10]
    assert again.end_phys == 60


def test_index_trim_after_log_truncation(tmp_path: Path) -> None:
    idx = IndexService(str(tmp_path), slots=11, capacity=100)
    idx.put_entries([entry("T", i * 10, 1000 + i, "k") for i in range(10)])
    assert idx.recover(0, 55) == 4
    assert idx.query("T", "k", 100, 0, 10**13) == [50, 40, 30, 20, 10, 0]
    assert idx.end_phys == 55
    idx.put_entries([entry("T", 55, 2000, "k")])
    assert idx.query("T", "k", 2, 0, 10**13)[:2] == [55, 50]


def test_index_adopts_uncommitted_entries(tmp_path: Path) -> None:
    idx = IndexService(str(tmp_path), slots=11, capacity=100)
    idx.put_entries([entry("T", 0, 1000, "a")])
    f = idx.files[-1]
    f.put(123, 10, 1001)  # written, but the header was never committed (a crash)
    assert f.count == 2
    f.count = 1
    f.commit()
    f.count = 2
    idx.close()
    again = IndexService(str(tmp_path), slots=11, capacity=100)
    assert again.files[-1].count == 2


def test_lock_refuses_second_owner(tmp_path: Path) -> None:
    first = StoreLock(str(tmp_path))
    with pytest.raises(StoreError) as err:
        StoreLock(str(tmp_path))
    assert str(os.getpid()) in str(err.value)
    assert err.value.path == str(tmp_path / "lock")
    first.release()
    StoreLock(str(tmp_path)).release()


def test_abort_marker(tmp_path: Path) -> None:
    assert not abort_exists(str(tmp_path))
    create_abort(str(tmp_path))
    assert abort_exists(str(tmp_path))
    remove_abort(str(tmp_path))
    assert not abort_exists(str(tmp_path))


def test_config_file_writes_from_two_threads_do_not_collide(tmp_path: Path) -> None:
    # Given two threads saving the same file at once (a background checkpoint and the final one)
    import threading

    path = str(tmp_path / "checkpoint")
    errors: list[BaseException] = []

    def save(n: int) -> None:
        try:
            for i in range(200):
                write_json(path, {"writer": n, "i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Then neither fails and the file holds one writer's last version, whole
    assert not errors
    assert read_json(path) in ({"writer": 0, "i": 199}, {"writer": 1, "i": 199})
    assert os.listdir(tmp_path) == ["checkpoint"]


def test_config_file_atomic(tmp_path: Path) -> None:
    path = str(tmp_path / "config" / "topics.json")
    assert read_json(path) is None
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert read_json(path) == {"a": 2}
    assert [p.name for p in (tmp_path / "config").iterdir()] == ["topics.json"]
    with open(path, "w") as fh:
        fh.write("{broken")
    with pytest.raises(StoreError):
        read_json(path)
