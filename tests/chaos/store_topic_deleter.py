"""Helper process for test_store_deletion_kill9: append to topics T and U, delete T, append on.

Usage: python store_topic_deleter.py ROOT SEED DELETE_AFTER

Opens a store under ASYNC_FLUSH (as ``store_appender.py``), then, every line flushed at once:

- ``READY <pid>`` once the store is open;
- ``ACK <topic> <queue_id> <queue_offset> <physical_offset> <body>`` per acknowledged record;
- ``DELETING`` once ``DELETE_AFTER`` records were acknowledged: T's deletion starts, as
  DELETE_TOPIC_IN_BROKER does it: the config goes (``delete_topic``), the marker is appended
  (``MARKING``, ``delete_topic_data``, then ``FENCE <fence>``), the Dispatcher applies it
  (``when_dispatched(fence)``) and every group's offsets of T go (``remove_topic_offsets``);
  then ``DELETED``. Puts to T and U are in flight meanwhile, as a producer that keeps
  sending: their acks are printed after ``DELETED`` (a T record is of the new incarnation
  when its physical offset is at or past the fence);
- then it appends to T (created again, from queue offset 0) and U until killed.

Bodies are ``<topic><phase><n>`` repeated (phase ``o`` before the deletion, ``m`` in flight
during it, ``n`` after), the KEYS property ``<topic><phase><n>``, so a record read back names
when it was sent.
"""

from __future__ import annotations

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from loguru import logger

from actors.broker.store_results import PutResult
from actors.broker.store_service import BrokerStore
from runtime.directory import Directory
from runtime.store.record import PutRecord
from runtime.store.record_properties import encode_properties
from runtime.store.settings import StoreSettings

QUEUES = 4
TOPICS = ("T", "U")
TIMEOUT = 10.0


def settings(root: str) -> StoreSettings:
    """The store both the helper and the test open (small files: segment and queue-file
    boundaries are crossed)."""
    return StoreSettings(
        root=root,
        commitlog_segment_size=64 * 1024,
        cq_entries_per_file=256,
        index_slots=1021,
        index_capacity=100_000,
        flush_interval_ms=50,
        checkpoint_interval_ms=50,
        checkpoint_lag_bytes=0,  # a checkpoint at every tick (none while a barrier holds)
    )


class Appender:
    """Builds unique records and prints the acks of each put."""

    def __init__(self, store: BrokerStore, rng: random.Random) -> None:
        self.store = store
        self.rng = rng
        self.n = 0

    def batch(self, phase: str, topic: str | None = None) -> list[PutRecord]:
        topic = topic or self.rng.choice(TOPICS)
        qid = self.rng.randrange(QUEUES)
        records = []
        for _ in range(self.rng.randint(1, 6)):
            name = f"{topic}{phase}{self.n}"
            self.n += 1
            body = name.encode() * self.rng.randint(1, 20)
            records.append(PutRecord(topic, qid, body, encode_properties({"KEYS": name})))
        return records

    def acked(self, records: list[PutRecord], result: PutResult) -> int:
        """Print the acks of one put's ``result``; how many records were acknowledged."""
        if not result.ok:
            emit(f"FAIL {result.status.value}")
            return 0
        offsets = zip(records, result.queue_offsets, result.physical_offsets, strict=True)
        emit(
            "\n".join(
                f"ACK {r.topic} {r.queue_id} {q} {p} {r.body.decode()}" for r, q, p in offsets
            )
        )
        return len(records)

    def put(self, phase: str, topic: str | None = None) -> int:
        records = self.batch(phase, topic)
        return self.acked(records, self.store.put(records).get(timeout=TIMEOUT))


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def delete_t(store: BrokerStore, app: Appender) -> None:
    """T's deletion as the broker does it, with puts in flight around each step."""
    emit("DELETING")
    in_flight = []

    def send() -> None:
        for _ in range(app.rng.randint(0, 3)):
            records = app.batch("m")
            in_flight.append((records, store.put(records)))

    send()
    assert store.delete_topic("T").get(timeout=TIMEOUT).wait(TIMEOUT) is True
    send()
    emit("MARKING")
    done = store.delete_topic_data("T").get(timeout=TIMEOUT)
    assert done.error is None, done.error
    emit(f"FENCE {done.fence}")
    send()
    store.when_dispatched(done.fence).get(timeout=TIMEOUT)
    send()
    assert store.remove_topic_offsets("T").get(timeout=TIMEOUT).wait(TIMEOUT) is True
    emit("DELETED")
    for records, future in in_flight:
        app.acked(records, future.get(timeout=TIMEOUT))


def main() -> None:
    root, seed, delete_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    store = BrokerStore.build(settings(root), Directory()).start()
    emit(f"READY {os.getpid()}")
    rng = random.Random(seed)
    app = Appender(store, rng)
    acked = 0
    while acked < delete_after:
        acked += app.put("o")
    delete_t(store, app)
    while True:
        app.put("n")


if __name__ == "__main__":
    main()
