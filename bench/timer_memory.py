"""Memory the TimerScheduler holds per pending timer message, and how fast it reads the timer
topic (what a re-read of the pending timers past its loaded window costs).

Puts ``--timers`` timer records (due 1 to 3 days ahead, in random order, 100-byte bodies) into
a real store's timer topic, starts a TimerScheduler on it, and once it has read the topic to
its end reports the Python memory allocated by ``actors/broker/timer_scheduler.py`` that is
still live (tracemalloc: the heap, its entries, the recall set), per pending timer and in all,
and the read rate.

    .venv/bin/python bench/timer_memory.py [--timers 200000] [--max-loaded N]
"""

from __future__ import annotations

import argparse
import inspect
import os
import random
import shutil
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent
from loguru import logger

from actors.broker.delay import TIMER_TOPIC, to_timer
from actors.broker.store_service import BrokerStore
from actors.broker.timer_scheduler import TimerScheduler
from runtime.directory import Directory
from runtime.store.record import PutRecord
from runtime.store.record_properties import encode_properties
from runtime.store.settings import StoreSettings

DAY_MS = 24 * 3600 * 1000


def fill(store: BrokerStore, count: int) -> None:
    now = int(time.time() * 1000)
    rng = random.Random(7)
    body = os.urandom(100)
    for start in range(0, count, 256):
        records = [
            to_timer(
                PutRecord("T", 0, body, encode_properties({"UNIQ_KEY": f"u{i:024d}"})),
                now + rng.randrange(DAY_MS, 3 * DAY_MS),
            )
            for i in range(start, min(count, start + 256))
        ]
        assert store.put(records).get(timeout=30).ok
    while store.ctx.dispatched < store.ctx.require_open().log.write_offset:
        gevent.sleep(0.01)


class Probe(TimerScheduler):
    """The TimerScheduler, its instance kept (a bench waits on the loader's own event)."""

    instance: TimerScheduler | None = None

    def on_start(self) -> None:
        Probe.instance = self
        super().on_start()


def store_count(store: BrokerStore) -> int:
    return store.max_offset(TIMER_TOPIC, 0).get(timeout=30)


def measure(store: BrokerStore, config_dir: str, max_loaded: int | None) -> None:
    kwargs = {}
    if max_loaded is not None and "max_loaded" in inspect.signature(TimerScheduler).parameters:
        kwargs["max_loaded"] = max_loaded
    tracemalloc.start()
    t0 = time.perf_counter()
    ref = Probe.start(store, config_dir, **kwargs)
    while Probe.instance is None or not Probe.instance._loaded.is_set():
        gevent.sleep(0.05)
    elapsed = time.perf_counter() - t0
    gevent.sleep(0.5)
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*timer_scheduler.py")]
    )
    held = sum(stat.size for stat in snap.statistics("filename"))
    loaded = ref.proxy().pending_count().get(timeout=30)
    ref.stop()
    tracemalloc.stop()
    rate = store_count(store) / elapsed
    print(f"  loaded (in memory): {loaded:,} timers; topic read in {elapsed:.2f} s ({rate:,.0f}/s)")
    per = held / max(loaded, 1)
    print(f"  held by timer_scheduler.py: {held / 1e6:.1f} MB ({per:.0f} B per loaded timer)")
    print(f"  peak loaded: {getattr(Probe.instance, '_peak', loaded):,}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timers", type=int, default=200_000)
    ap.add_argument("--max-loaded", type=int, default=None)
    args = ap.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    root = tempfile.mkdtemp(prefix="bench-timer-")
    try:
        settings = StoreSettings(root=root, index_slots=1_000_003, index_capacity=4_000_000)
        store = BrokerStore.build(settings, Directory()).start()
        t0 = time.perf_counter()
        fill(store, args.timers)
        print(f"{args.timers:,} timers stored in {time.perf_counter() - t0:.1f} s")
        measure(store, settings.config_dir, args.max_loaded)
        store.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
