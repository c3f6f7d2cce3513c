"""Store append throughput through the actors (CommitLogWriter -> Dispatcher -> Queue + index).

ASYNC_FLUSH (default): producers put batches of 32 messages of 1 KiB (RocketMQ batch send: one
topic/queue per batch) with the properties a real client sets (UNIQ_KEY, TAGS, WAIT), so every
message is also indexed. SYNC_FLUSH (``--sync``): producers put single messages; group commit
makes one fsync answer many.

    .venv/bin/python bench/store_append.py                       # async, batches of 32
    .venv/bin/python bench/store_append.py --sync --producers 64 --batch 1 --messages 100000

Prints msgs/s, MB/s, and the p50/p99 put latency. Counts only PUT_OK; measures from the first
put to the last reply, then waits until everything is dispatched (consumable) and reports that
too.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent
from loguru import logger

from actors.broker.store_service import BrokerStore
from runtime.directory import Directory
from runtime.store.commitlog import ENCODER
from runtime.store.record import PutRecord
from runtime.store.record_properties import encode_properties
from runtime.store.settings import FlushMode, StoreSettings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=400_000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--producers", type=int, default=8)
    ap.add_argument("--body", type=int, default=1024)
    ap.add_argument("--queues", type=int, default=8)
    ap.add_argument("--sync", action="store_true", help="SYNC_FLUSH (default ASYNC_FLUSH)")
    ap.add_argument("--no-index", action="store_true")
    ap.add_argument("--dir", default=None, help="store root (default: a temp dir, removed)")
    ap.add_argument("--profile", default=None, help="write a cProfile dump here")
    args = ap.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    root = args.dir or tempfile.mkdtemp(prefix="bench-store-")
    settings = StoreSettings(
        root=root,
        flush_mode=FlushMode.SYNC_FLUSH if args.sync else FlushMode.ASYNC_FLUSH,
        message_index_enable=not args.no_index,
        index_slots=1_000_003,
        index_capacity=4_000_000,
    )
    store = BrokerStore.build(settings, Directory()).start()
    body = os.urandom(args.body)
    per_producer = args.messages // (args.producers * args.batch)
    latencies: list[float] = []
    ok = 0
    failed: dict[str, int] = {}

    # the remoting layer hands the store decoded records: build them before timing
    batches = {
        pid: [
            [
                PutRecord(
                    "BenchTopic",
                    pid % args.queues,
                    body,
                    encode_properties(
                        {"UNIQ_KEY": f"{pid:04X}{b:08X}{i:04X}", "TAGS": "TagA", "WAIT": "true"}
                    ),
                )
                for i in range(args.batch)
            ]
            for b in range(per_producer)
        ]
        for pid in range(args.producers)
    }

    def producer(pid: int) -> None:
        nonlocal ok
        for records in batches[pid]:
            t = time.perf_counter()
            result = store.put(records).get(timeout=60)
            latencies.append(time.perf_counter() - t)
            if result.ok:
                ok += len(records)
            else:
                failed[result.status.value] = failed.get(result.status.value, 0) + 1

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    gevent.joinall([gevent.spawn(producer, p) for p in range(args.producers)])
    elapsed = time.perf_counter() - t0
    end = store.ctx.require_open().log.write_offset
    while store.ctx.dispatched < end:
        gevent.sleep(0.001)
    dispatched = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    store.stop()
    latencies.sort()
    mode = "SYNC_FLUSH" if args.sync else "ASYNC_FLUSH"
    print(
        f"{mode} batch={args.batch} producers={args.producers} body={args.body}B "
        f"index={'off' if args.no_index else 'on'} encoder={ENCODER}"
    )
    print(
        f"  acked {ok} msgs in {elapsed:.2f}s: {ok / elapsed:,.0f} msg/s, "
        f"{ok * args.body / elapsed / 1e6:,.1f} MB/s of bodies"
    )
    print(f"  all dispatched (consumable) after {dispatched:.2f}s: {ok / dispatched:,.0f} msg/s")
    print(
        f"  process CPU {cpu:.2f}s ({cpu / dispatched:.0%} of wall; the hub is one thread): "
        f"user {user:.2f}s, system {system:.2f}s; {ok / cpu:,.0f} msgs per CPU-second"
    )
    if latencies:
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        print(f"  put latency p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    if failed:
        print(f"  not ok: {failed}")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
