"""Recovery at the file level: a store written the way the actors write it (commit log, then
consume queues and index up to what was appended), crashed, damaged, and reopened.

Each test checks the reopened store is consistent: every consume-queue entry points at a valid
record carrying that queue offset, offsets are contiguous, next offsets equal queue ends, and
every record that should have survived did.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import StoreError
from runtime.store import checkpoint as ckpt
from runtime.store import record as R
from runtime.store.commitlog import AppendedBatch
from runtime.store.faults import FaultyFileSystem
from runtime.store.lockfile import abort_exists, remove_abort
from runtime.store.record_properties import encode_properties
from runtime.store.recovery import OpenStore, make_checkpoint, open_store
from runtime.store.settings import StoreSettings

SEG = 8192


class Written(NamedTuple):
    topic: str
    queue_id: int
    queue_offset: int
    physical_offset: int
    size: int
    body: bytes


def make_settings(root: str | Path, **kw: object) -> StoreSettings:
    base: dict[str, object] = {
        "root": str(root),
        "commitlog_segment_size": SEG,
        "cq_entries_per_file": 16,
        "index_slots": 101,
        "index_capacity": 500,
    }
    base.update(kw)
    return StoreSettings(**base)  # type: ignore[arg-type]


def write(store: OpenStore, n: int, *, seed: int = 0, dispatch: bool = True) -> list[Written]:
    """Append ``n`` records in small batches over 3 queues, dispatching as the actors do."""
    rng = random.Random(seed)
    out: list[Written] = []
    i = 0
    while i < n:
        k = min(n - i, rng.randint(1, 5))
        qid = rng.randrange(3)
        batch: list[R.PutRecord] = []
        for j in range(k):
            body = f"msg-{seed}-{i + j}".encode() * rng.randint(1, 20)
            props = encode_properties({"KEYS": f"key{i + j}", "TAGS": f"tag{(i + j) % 2}"})
            batch.append(R.PutRecord("T", qid, body, props))
        res = store.log.append_batch(batch, store.next_offsets, 1_700_000_000_000 + i, 1 << 20)
        assert isinstance(res, AppendedBatch)
        for rec, phys, qoff in zip(batch, res.physical_offsets, res.queue_offsets, strict=True):
            size = R.encoded_size(len(rec.body), 1, len(rec.properties.encode()))
            out.append(Written("T", qid, qoff, phys, size, rec.body))
        if dispatch:
            from runtime.store.consumequeue import ConsumeQueue

            for key, (first, raw) in res.dispatch.queues.items():
                cq = store.queues.get(key)
                if cq is None:
                    cq = store.queues[key] = ConsumeQueue(
                        store.settings.root, key[0], key[1], store.settings.cq_entries_per_file
                    )
                cq.append_block(first, raw)
            assert store.index is not None
            store.index.put_items(res.dispatch.index, res.dispatch.end)
        i += k
    return out


def crash(store: OpenStore) -> None:
    """Drop everything on the floor: no flush, no checkpoint, abort stays (like kill -9)."""
    store.log.segments.close()
    for cq in store.queues.values():
        cq.close()
    if store.index is not None:
        store.index.close()
    store.lock.release()


def clean_close(store: OpenStore) -> None:
    store.log.segments.flush()
    for cq in store.queues.values():
        cq.flush()
    if store.index is not None:
        store.index.flush()
    ckpt.save(
        store.settings.root,
        make_checkpoint(store.log.write_offset, store.log.min_offset, store.next_offsets),
    )
    crash(store)
    remove_abort(store.settings.root)


def check_consistent(store: OpenStore, expected: list[Written]) -> None:
    """The store holds exactly ``expected`` (in queue order) and is internally consistent."""
    by_queue: dict[tuple[str, int], list[Written]] = {}
    for w in expected:
        by_queue.setdefault((w.topic, w.queue_id), []).append(w)
    for key, ws in by_queue.items():
        ws.sort(key=lambda w: w.queue_offset)
        cq = store.queues[key]
        assert store.next_offsets[key] == cq.max_offset == ws[-1].queue_offset + 1
        entries = cq.entries(cq.min_offset, cq.max_offset - cq.min_offset)
        assert len(entries) == len(ws)
        for qoff, (e, w) in enumerate(zip(entries, ws, strict=True), start=cq.min_offset):
            assert (e.physical_offset, e.size) == (w.physical_offset, w.size)
            rec = store.log.read_record(e.physical_offset)
            assert rec is not None
            assert (rec.queue_offset, rec.body, rec.queue_id) == (qoff, w.body, key[1])
    for key, cq in store.queues.items():
        if key not in by_queue:
            assert cq.max_offset == cq.min_offset, f"{key} should be empty"
    if expected:
        last = max(expected, key=lambda w: w.physical_offset)
        assert store.log.write_offset >= last.physical_offset + last.size


def test_clean_reopen_keeps_everything(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 200)
    clean_close(store)
    again = open_store(s)
    assert not again.report.unclean
    assert again.report.reput_records == 0
    check_consistent(again, written)
    # and the index finds keys across segments
    w = written[123]
    assert again.index is not None
    assert w.physical_offset in again.index.query("T", "key123", 10, 0, 2**62)
    crash(again)


def test_second_open_refuses(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    with pytest.raises(StoreError, match="locked by another process"):
        open_store(s)
    crash(store)


def test_crash_without_checkpoint_rebuilds_everything(tmp_path: Path) -> None:
    # Given a store that crashed after writing, with consume queues never dispatched
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 150, dispatch=False)
    crash(store)
    # When it reopens (abort marker left behind)
    again = open_store(s)
    # Then the commit log is re-dispatched from the checkpoint and nothing is lost
    assert again.report.unclean
    assert again.report.reput_records == 150
    check_consistent(again, written)
    assert abort_exists(str(tmp_path))
    crash(again)


def last_segment_path(store_root: Path) -> str:
    d = store_root / "commitlog"
    return str(d / sorted(os.listdir(d))[-1])


def test_truncated_mid_record(tmp_path: Path) -> None:
    # Given a crashed store whose last record was torn by the crash
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 100)
    crash(store)
    last = written[-1]
    seg = last_segment_path(tmp_path)
    os.truncate(seg, last.physical_offset % SEG + last.size // 2)
    # When it reopens
    again = open_store(s)
    # Then the torn record is cut off (and counted), queues no longer point at it
    assert again.report.truncated_bytes == last.size // 2
    assert again.report.log_end == last.physical_offset
    check_consistent(again, written[:-1])
    # And new appends continue from there with the next queue offset
    more = write(again, 5, seed=9)
    check_consistent(again, written[:-1] + more)
    crash(again)


def test_bitflip_in_last_record(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 60)
    crash(store)
    last = written[-1]
    FaultyFileSystem.bitflip(last_segment_path(tmp_path), last.physical_offset % SEG + 90)
    again = open_store(s)
    assert again.report.problem == "body CRC mismatch"
    assert again.report.log_end == last.physical_offset
    check_consistent(again, written[:-1])
    crash(again)


def test_bitflip_mid_log_refuses_to_start(tmp_path: Path) -> None:
    # Given a store with several segments and a damaged record in an older one
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 300)
    crash(store)
    os.remove(tmp_path / "checkpoint")  # force a full scan
    victim = written[10]
    seg = tmp_path / "commitlog" / f"{victim.physical_offset - victim.physical_offset % SEG:020d}"
    FaultyFileSystem.bitflip(str(seg), victim.physical_offset % SEG + 95)
    # When it reopens, Then it refuses with a message naming the damage, not truncating
    with pytest.raises(StoreError, match="refusing to truncate acknowledged data"):
        open_store(s)
    assert os.path.getsize(seg) > victim.physical_offset % SEG + victim.size


@pytest.mark.timeout(20)
def test_record_claiming_to_run_past_a_full_segment_is_damage_not_a_hang(tmp_path: Path) -> None:
    # Given a crashed store whose first segment is full to its last byte: its last record left
    # exactly the 8 bytes of the end-of-segment marker, written when the next record came
    s = make_settings(tmp_path, message_index_enable=False)
    store = open_store(s)
    put = store.log.append_batch
    first = put([R.PutRecord("T", 0, b"a" * 1000, "")], store.next_offsets, 1, 1 << 20)
    assert isinstance(first, AppendedBatch)
    room = SEG - first.end - R.BLANK_SIZE - R.encoded_size(0, 1, 0)
    filler = put([R.PutRecord("T", 0, b"b" * room, "")], store.next_offsets, 1, 1 << 20)
    assert isinstance(filler, AppendedBatch)
    later = put([R.PutRecord("T", 0, b"c", "")], store.next_offsets, 1, 1 << 20)
    assert isinstance(later, AppendedBatch) and later.physical_offsets == [SEG]
    crash(store)
    seg0 = tmp_path / "commitlog" / f"{0:020d}"
    assert os.path.getsize(seg0) == SEG
    # And a flipped bit in the filler's totalSize makes it claim to run past the segment's end
    FaultyFileSystem.bitflip(str(seg0), filler.physical_offsets[0], bit=0)
    # When it reopens
    # Then the scan calls it damage where it is (a record follows in the next segment: refused)
    # instead of reading the segment's last bytes again and again for ever
    at = filler.physical_offsets[0]
    with pytest.raises(StoreError, match=rf"damaged at offset {at} \(totalSize \d+ runs past"):
        open_store(s)


def test_damaged_record_below_checkpoint_is_never_served(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 100)
    clean_close(store)
    victim = written[3]
    seg = tmp_path / "commitlog" / f"{0:020d}"
    FaultyFileSystem.bitflip(str(seg), victim.physical_offset + 92)
    again = open_store(s)  # the scan starts at the checkpoint, past the damage
    assert again.log.read_record(victim.physical_offset) is None
    assert again.log.read_record(victim.physical_offset, verify_crc=False) is not None
    crash(again)


def test_deleted_consume_queues_are_rebuilt(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 120)
    clean_close(store)
    shutil.rmtree(tmp_path / "consumequeue")
    again = open_store(s)
    assert set(again.report.queues_rebuilt) == {("T", 0), ("T", 1), ("T", 2)}
    check_consistent(again, written)
    crash(again)


def test_deleted_middle_consume_queue_file_is_rebuilt(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 200)
    crash(store)
    qdir = tmp_path / "consumequeue" / "T" / "1"
    files = sorted(os.listdir(qdir))
    assert len(files) >= 3
    os.remove(qdir / files[1])
    again = open_store(s)
    check_consistent(again, written)
    crash(again)


def test_truncated_consume_queue_and_lost_index_are_rebuilt(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 120)
    clean_close(store)
    qdir = tmp_path / "consumequeue" / "T" / "2"
    last = sorted(os.listdir(qdir))[-1]
    os.truncate(qdir / last, 0)
    shutil.rmtree(tmp_path / "index")
    again = open_store(s)
    check_consistent(again, written)
    assert again.index is not None
    assert written[77].physical_offset in again.index.query("T", "key77", 5, 0, 2**62)
    crash(again)


def test_lost_checkpoint_means_full_scan(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    store = open_store(s)
    written = write(store, 80)
    clean_close(store)
    os.remove(tmp_path / "checkpoint")
    again = open_store(s)
    assert again.report.scan_start == 0
    check_consistent(again, written)
    crash(again)


def test_power_loss_keeps_the_fsynced_prefix(tmp_path: Path) -> None:
    # Given a store on the fault layer with some records fsynced and more only written
    fs = FaultyFileSystem()
    s = make_settings(tmp_path)
    store = open_store(s, fs)
    durable = write(store, 50)
    store.log.segments.flush()
    later = write(store, 50, seed=1)
    crash(store)
    # When the power fails
    fs.power_loss(random.Random(3))
    # Then the reopened store has every fsynced record and a prefix of the rest, consistently
    again = open_store(s)
    end = again.report.log_end
    kept = [w for w in durable + later if w.physical_offset + w.size <= end]
    assert kept[: len(durable)] == durable
    check_consistent(again, kept)
    crash(again)


def test_recovery_after_a_kill_makes_the_log_it_kept_durable(tmp_path: Path) -> None:
    # Given a store whose process was killed (kill -9: the machine keeps the page cache) with
    # records written and never fsynced
    fs = FaultyFileSystem()
    s = make_settings(tmp_path)
    store = open_store(s, fs)
    written = write(store, 60)
    crash(store)
    # When it recovers on the same machine, then the machine loses power
    again = open_store(s, fs)
    assert again.report.log_end == written[-1].physical_offset + written[-1].size
    crash(again)
    fs.power_loss(random.Random(5))
    # Then every record recovery kept is still there: it fsynced the log it kept (it said so,
    # and a checkpoint past the durable end would be written otherwise), not only what it
    # wrote itself
    after = open_store(s)
    check_consistent(after, written)
    crash(after)


class _SyncSpy(FaultyFileSystem):
    """Records the paths fsynced (files and directories)."""

    def __init__(self) -> None:
        super().__init__()
        self.synced_paths: list[str] = []

    def _before_fsync(self, path: str) -> None:
        self.synced_paths.append(path)
        super()._before_fsync(path)


@pytest.mark.parametrize("checkpoint", [True, False], ids=["checkpoint", "no-checkpoint"])
def test_recovery_after_a_kill_makes_the_consume_queues_it_kept_durable(
    tmp_path: Path, checkpoint: bool
) -> None:
    # Given a store killed with records written and dispatched past its checkpoint (its
    # consume queues' entries in the page cache only)
    fs = _SyncSpy()
    s = make_settings(tmp_path)
    store = open_store(s, fs)
    write(store, 10)
    if checkpoint:
        store.log.segments.flush()
        for cq in store.queues.values():
            cq.flush()
        ckpt.save(str(tmp_path), make_checkpoint(store.log.write_offset, 0, store.next_offsets))
    write(store, 40, seed=1)
    crash(store)
    # When it recovers (and writes a checkpoint saying every queue entry below the log's end
    # is durable)
    fs.synced_paths.clear()
    again = open_store(s, fs)
    try:
        # Then it fsynced every consume-queue file holding entries past the old checkpoint
        # (here: the newest file of each queue), not only the log
        for cq in again.queues.values():
            assert cq.file.segments[-1].file.path in fs.synced_paths, (cq.topic, cq.queue_id)
        assert again.fences == {}  # (what it hands on is unchanged)
    finally:
        crash(again)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(1, 120), cut_fraction=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_recovery_from_arbitrary_truncation(n: int, cut_fraction: float, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        s = make_settings(tmp)
        store = open_store(s)
        written = write(store, n, seed=seed)
        end = store.log.write_offset
        crash(store)
        # cut the commit log at an arbitrary byte
        cut = int(end * cut_fraction)
        logdir = os.path.join(tmp, "commitlog")
        for name in os.listdir(logdir):
            start = int(name)
            if start >= cut and start > 0:
                os.remove(os.path.join(logdir, name))
            elif start <= cut < start + SEG:
                os.truncate(os.path.join(logdir, name), cut - start)
        again = open_store(s)
        survivors = [w for w in written if w.physical_offset + w.size <= cut]
        check_consistent(again, survivors)
        if survivors:
            assert again.report.log_end >= survivors[-1].physical_offset + survivors[-1].size
        # new writes continue with contiguous queue offsets
        more = write(again, 3, seed=seed + 1)
        check_consistent(again, survivors + more)
        crash(again)


def test_refuses_to_truncate_more_than_the_limit(tmp_path: Path) -> None:
    # Given a crashed store with a torn last record, and a tiny truncation limit
    s = make_settings(tmp_path, max_truncate_bytes=10)
    store = open_store(s)
    written = write(store, 50)
    crash(store)
    last = written[-1]
    os.truncate(last_segment_path(tmp_path), last.physical_offset % SEG + last.size // 2)
    # When it reopens, Then it refuses rather than cutting more than the limit
    with pytest.raises(StoreError, match="max_truncate_bytes"):
        open_store(s)
    # and with the default limit the torn record is cut as usual
    again = open_store(make_settings(tmp_path))
    assert again.report.log_end == last.physical_offset
    check_consistent(again, written[:-1])
    crash(again)
