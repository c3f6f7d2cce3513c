"""Consume-queue read throughput.

1. File layer: ``ConsumeQueue.read_raw`` + unpack of 20-byte entries, sequentially, 32 entries
   per read (a pull's worth) and 800 per read (RocketMQ's minimum scan window).
2. Through the Queue actor: ``BrokerStore.get_messages`` of 32 messages of 1 KiB each
   (consume-queue entries plus the commit-log reads, CRC checks and raw record copies that a
   PULL returns), from several concurrent consumers.

    .venv/bin/python bench/store_cq_read.py [--entries 1000000] [--messages 200000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent
from loguru import logger

from actors.broker.store_results import GetStatus
from actors.broker.store_service import BrokerStore
from runtime.directory import Directory
from runtime.store.consumequeue import ENTRY, ConsumeQueue
from runtime.store.record import PutRecord
from runtime.store.record_properties import encode_properties
from runtime.store.settings import StoreSettings


def file_layer(root: str, n: int) -> None:
    cq = ConsumeQueue(root, "BenchTopic", 0)
    block = bytearray()
    for i in range(n):
        block += ENTRY.pack(i * 1100, 1100, 12345)
    cq.append_block(0, block)
    for per_read in (32, 800):
        best = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            count = 0
            off = 0
            while off < n:
                for _phys, _size, _tags in ENTRY.iter_unpack(cq.read_raw(off, per_read)):
                    count += 1
                off += per_read
            rate = count / (time.perf_counter() - t0)
            best = max(best, rate)
        print(f"  file layer, {per_read} entries per read: {best:,.0f} entries/s (best of 3)")
    cq.close()


def through_actor(root: str, messages: int, consumers: int) -> None:
    settings = StoreSettings(root=root, index_slots=1_000_003, index_capacity=2_000_000)
    store = BrokerStore.build(settings, Directory()).start()
    body = os.urandom(1024)
    queues = consumers
    for b in range(messages // 32):
        records = [
            PutRecord("ReadTopic", b % queues, body, encode_properties({"TAGS": "TagA"}))
            for _ in range(32)
        ]
        assert store.put(records).get(timeout=30).ok
    per_queue = messages // queues
    while store.ctx.dispatched < store.ctx.require_open().log.write_offset:
        gevent.sleep(0.01)
    got = 0

    def consumer(q: int) -> None:
        nonlocal got
        off = 0
        while off < per_queue:
            r = store.get_messages("g", "ReadTopic", q, off, 32).get(timeout=30)
            if r.status is not GetStatus.FOUND:
                break
            got += r.message_count
            off = r.next_begin_offset

    t0 = time.perf_counter()
    gevent.joinall([gevent.spawn(consumer, q) for q in range(consumers)])
    elapsed = time.perf_counter() - t0
    print(
        f"  get_messages through Queue actors ({consumers} consumers, 32 x 1 KiB per pull): "
        f"{got / elapsed:,.0f} msgs/s ({got:,} in {elapsed:.2f}s)"
    )
    store.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--consumers", type=int, default=4)
    args = ap.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    root = tempfile.mkdtemp(prefix="bench-cq-")
    try:
        print("consume-queue reads:")
        file_layer(os.path.join(root, "cq"), args.entries)
        through_actor(os.path.join(root, "store"), args.messages, args.consumers)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
