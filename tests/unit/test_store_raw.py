"""Store primitives for replication: read whole records from a master's log, append them to a
slave's log (byte-identical segments, consume queues and next offsets rebuilt), refuse bad
bytes, and cut a closed store's log so recovery trims everything derived from it."""

from __future__ import annotations

import filecmp
import os
import random
from pathlib import Path

import pytest

from runtime.store import record as R
from runtime.store import record_check as RC
from runtime.store.commitlog import AppendedBatch
from runtime.store.raw import RawRefused, append_raw, read_raw, truncate_log
from runtime.store.record_properties import DEFAULT_DELAY_LEVELS, encode_properties
from runtime.store.recovery import OpenStore, open_store
from runtime.store.settings import StoreSettings

pytestmark = pytest.mark.timeout(60)

SEG = 4096


def settings(root: Path) -> StoreSettings:
    return StoreSettings(
        root=str(root),
        commitlog_segment_size=SEG,
        cq_entries_per_file=16,
        index_slots=101,
        index_capacity=500,
    )


def fill(store: OpenStore, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for i in range(n):
        body = f"m{i}-".encode() * rng.randint(1, 40)
        props = encode_properties({"KEYS": f"k{i}", "TAGS": "t"})
        rec = R.PutRecord("T", rng.randrange(3), body, props)
        res = store.log.append_batch([rec], store.next_offsets, 1_700_000_000_000 + i, 1 << 20)
        assert isinstance(res, AppendedBatch)


def close(store: OpenStore) -> None:
    store.log.segments.flush()
    store.log.segments.close()
    for cq in store.queues.values():
        cq.close()
    if store.index is not None:
        store.index.close()
    store.lock.release()


def replicate(master: OpenStore, slave: OpenStore, max_bytes: int) -> int:
    """Copy the master's log to the slave the way HA does; returns the number of frames."""
    frames = 0
    while True:
        data = read_raw(master.log, slave.log.write_offset, max_bytes, master.log.write_offset).data
        if not data:
            return frames
        w = append_raw(slave.log, slave.log.write_offset, data, DEFAULT_DELAY_LEVELS)
        slave.next_offsets.update(w.next_offsets)
        frames += 1


@pytest.mark.parametrize("max_bytes", [1, 700, 32 * 1024])
def test_a_replicated_log_is_byte_identical(tmp_path: Path, max_bytes: int) -> None:
    # Given a master log over several segments (so end-of-segment markers are in it)
    master = open_store(settings(tmp_path / "m"))
    slave = open_store(settings(tmp_path / "s"))
    fill(master, 120)
    assert len(master.log.segments.segments) >= 3
    # When the slave copies it frame by frame (max_bytes=1: one record per frame)
    frames = replicate(master, slave, max_bytes)
    # Then every segment file is byte-identical and the next queue offsets agree
    assert frames >= 3
    assert slave.log.write_offset == master.log.write_offset
    names = sorted(os.listdir(tmp_path / "m" / "commitlog"))
    assert names == sorted(os.listdir(tmp_path / "s" / "commitlog"))
    _match, mismatch, errors = filecmp.cmpfiles(
        tmp_path / "m" / "commitlog", tmp_path / "s" / "commitlog", names, shallow=False
    )
    assert not mismatch and not errors
    assert slave.next_offsets == master.next_offsets
    close(master)
    close(slave)


def test_read_raw_never_passes_the_limit_or_a_record(tmp_path: Path) -> None:
    master = open_store(settings(tmp_path / "m"))
    fill(master, 10)
    first = RC.check_record(master.log.read(0, SEG), 0).size
    # A limit inside the first record gives nothing; at its end exactly that record
    assert read_raw(master.log, 0, 1 << 20, first - 1).data == b""
    assert read_raw(master.log, 0, 1 << 20, first) == (master.log.read(0, first), first)
    # max_bytes smaller than a record still returns one whole record
    assert len(read_raw(master.log, 0, 10, master.log.write_offset).data) == first
    close(master)


def test_bad_bytes_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    master = open_store(settings(tmp_path / "m"))
    slave = open_store(settings(tmp_path / "s"))
    fill(master, 5)
    data = read_raw(master.log, 0, 1 << 20, master.log.write_offset).data
    # wrong offset
    with pytest.raises(RawRefused, match="log ends at 0"):
        append_raw(slave.log, 100, data, DEFAULT_DELAY_LEVELS)
    # a flipped body byte (CRC)
    bad = bytearray(data)
    bad[R.HEADER_SIZE + 2] ^= 0xFF
    with pytest.raises(RawRefused, match="CRC"):
        append_raw(slave.log, 0, bytes(bad), DEFAULT_DELAY_LEVELS)
    # a torn last record
    with pytest.raises(RawRefused):
        append_raw(slave.log, 0, data[:-3], DEFAULT_DELAY_LEVELS)
    # records from elsewhere in the log (their physicalOffset fields disagree)
    second = RC.check_record(data, 0).size
    with pytest.raises(RawRefused, match="belongs at"):
        append_raw(slave.log, 0, data[second:], DEFAULT_DELAY_LEVELS)
    assert slave.log.write_offset == 0 and slave.next_offsets == {}
    close(master)
    close(slave)


def test_truncate_log_then_recovery_trims_queues(tmp_path: Path) -> None:
    # Given a closed store with 60 records
    s = settings(tmp_path)
    store = open_store(s)
    fill(store, 60)
    offsets = []
    pos = 0
    while pos < store.log.write_offset and len(offsets) < 30:
        head = store.log.read(pos, SEG)
        check = RC.check_record(head, 0)
        if check.blank:
            pos += check.size
            continue
        offsets.append(pos)
        pos += check.size
    cut_at = offsets[25]
    kept = {}
    for off in offsets[:25]:
        rec = store.log.read_record(off)
        assert rec is not None
        kept[(rec.topic, rec.queue_id)] = rec.queue_offset + 1
    close(store)
    # When the log is cut at the 26th record
    assert truncate_log(s, cut_at) > 0
    # Then recovery ends the log there and next offsets count only the 25 records kept
    again = open_store(s)
    assert again.log.write_offset == cut_at
    assert again.next_offsets == {k: kept.get(k, 0) for k in again.next_offsets}
    assert sum(again.next_offsets.values()) == 25
    close(again)
