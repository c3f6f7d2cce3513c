"""Recovery time of a commit log after an unclean stop.

Builds a commit log of ``--size-mib`` (default 1024) of 1 KiB messages spread over 8 queues,
each with a UNIQ_KEY and TAGS, directly through the file layer, then leaves the store as a
crash would (abort marker present) and times ``open_store`` in two cases:

- worst case: no checkpoint, no consume queues, no index: every record is CRC-checked and
  re-dispatched (consume queues and key index rebuilt from nothing);
- typical crash: consume queues and index dispatched up to a checkpoint ~1 s (``--tail-mib``,
  default 64 MiB) behind the end; only the tail is scanned and re-dispatched.

    .venv/bin/python bench/store_recovery.py [--size-mib 1024] [--dir /path]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loguru import logger

from runtime.store import checkpoint as ckpt
from runtime.store.commitlog import AppendedBatch
from runtime.store.record import PutRecord
from runtime.store.record_properties import encode_properties
from runtime.store.recovery import make_checkpoint, open_store
from runtime.store.settings import StoreSettings


def build(settings: StoreSettings, size: int, tail: int) -> tuple[int, int]:
    """Write ~size bytes; dispatch all but the last ``tail`` bytes; returns (records, end)."""
    store = open_store(settings)
    body = os.urandom(1024)
    n = 0
    dispatch_until = size - tail
    while store.log.write_offset < size:
        records = [
            PutRecord(
                "BenchTopic",
                (n // 32) % 8,
                body,
                encode_properties({"UNIQ_KEY": f"{n + i:024X}", "TAGS": "TagA"}),
            )
            for i in range(32)
        ]
        out = store.log.append_batch(records, store.next_offsets, int(time.time() * 1000), 1 << 22)
        assert isinstance(out, AppendedBatch)
        n += len(records)
        if out.begin < dispatch_until:
            for (topic, qid), (first, raw) in out.dispatch.queues.items():
                cq = store.queues.get((topic, qid))
                if cq is None:
                    from runtime.store.consumequeue import ConsumeQueue

                    cq = store.queues[(topic, qid)] = ConsumeQueue(settings.root, topic, qid)
                cq.append_block(first, raw)
            assert store.index is not None
            store.index.put_items(out.dispatch.index, out.dispatch.end)
            safe = out.end
    store.log.segments.flush()
    for cq in store.queues.values():
        cq.flush()
    if store.index is not None:
        store.index.flush()
    ckpt.save(
        settings.root, make_checkpoint(safe, 0, {k: q.max_offset for k, q in store.queues.items()})
    )
    end = store.log.write_offset
    store.log.segments.close()
    for cq in store.queues.values():
        cq.close()
    if store.index is not None:
        store.index.close()
    store.lock.release()  # abort marker stays: an unclean stop
    return n, end


def timed_open(settings: StoreSettings) -> float:
    os.sync()
    t0 = time.perf_counter()
    store = open_store(settings)
    elapsed = time.perf_counter() - t0
    r = store.report
    print(
        f"    scanned from {r.scan_start:,}, re-dispatched {r.reput_records:,} records from "
        f"{r.reput_from:,}, log end {r.log_end:,}, truncated {r.truncated_bytes} B"
    )
    store.log.segments.close()
    for cq in store.queues.values():
        cq.close()
    if store.index is not None:
        store.index.close()
    store.lock.release()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--tail-mib", type=int, default=64)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    root = args.dir or tempfile.mkdtemp(prefix="bench-recovery-")
    settings = StoreSettings(root=root, index_slots=5_000_003, index_capacity=4_000_000)
    size = args.size_mib * 1024 * 1024
    t0 = time.perf_counter()
    n, end = build(settings, size, args.tail_mib * 1024 * 1024)
    took = time.perf_counter() - t0
    print(f"built {end / 2**20:,.0f} MiB commit log, {n:,} records, in {took:.1f}s")

    print("typical crash (checkpoint behind by the tail):")
    t = timed_open(settings)
    print(f"  recovery {t:.2f}s")

    os.remove(os.path.join(root, "checkpoint"))
    shutil.rmtree(os.path.join(root, "consumequeue"))
    shutil.rmtree(os.path.join(root, "index"))
    with open(os.path.join(root, "abort"), "wb"):
        pass
    print("worst case (no checkpoint, consume queues or index: full scan and rebuild):")
    t = timed_open(settings)
    print(f"  recovery {t:.2f}s = {t / (end / 2**30):.2f}s per GiB")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
