"""Helper process for test_store_kill9: append to a store under ASYNC_FLUSH until killed.

Usage: python store_appender.py ROOT FIRST_VALUE

Prints ``READY <pid>`` once the store is open, then after every acknowledged batch one line
``ACK <queue_id> <queue_offset> <value>`` per record (flushed at once), so the parent knows
exactly what was acknowledged when it sends SIGKILL.
"""

from __future__ import annotations

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from loguru import logger

from actors.broker.store_service import BrokerStore
from runtime.directory import Directory
from runtime.store.record import PutRecord
from runtime.store.record_properties import encode_properties
from runtime.store.settings import StoreSettings

QUEUES = 4


def main() -> None:
    root, first = sys.argv[1], int(sys.argv[2])
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    settings = StoreSettings(
        root=root,
        commitlog_segment_size=64 * 1024,
        cq_entries_per_file=256,
        index_slots=1021,
        index_capacity=100_000,
        flush_interval_ms=500,
        checkpoint_interval_ms=200,
        checkpoint_lag_bytes=0,  # a checkpoint at every tick
    )
    store = BrokerStore.build(settings, Directory()).start()
    out = sys.stdout
    out.write(f"READY {os.getpid()}\n")
    out.flush()
    rng = random.Random(first)
    value = first
    while True:
        qid = rng.randrange(QUEUES)
        n = rng.randint(1, 8)
        values = list(range(value, value + n))
        value += n
        records = [
            PutRecord(
                "K9",
                qid,
                f"v{v}".encode() * rng.randint(1, 30),
                encode_properties({"KEYS": f"v{v}"}),
            )
            for v in values
        ]
        result = store.put(records).get(timeout=10)
        if not result.ok:
            out.write(f"FAIL {result.status.value}\n")
            out.flush()
            continue
        out.write(
            "".join(
                f"ACK {qid} {q} {v}\n" for q, v in zip(result.queue_offsets, values, strict=True)
            )
        )
        out.flush()


if __name__ == "__main__":
    main()
