"""A power loss that keeps a consume-queue file's new length but loses some of its pages (they
read as zeros; ``FaultyFileSystem.power_loss(page_loss=...)``) can leave zeroed entries in the
middle of the entries recovery re-dispatches. ``append_block`` compared only the last entry of
the range it already held, so when that page survived the zeroed entries before it were kept:
queue offsets pointing at no record (a consumer skipped the messages they stood for)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from runtime.store import record as R
from runtime.store.commitlog import AppendedBatch
from runtime.store.consumequeue import ENTRY_SIZE, ConsumeQueue
from runtime.store.faults import PAGE, FaultyFileSystem
from runtime.store.record_properties import encode_properties
from runtime.store.recovery import OpenStore, open_store
from tests.unit.test_store_recovery import Written, check_consistent, crash, make_settings

pytestmark = pytest.mark.timeout(60)

PER_FILE = 1000  # 20,000 bytes a file: five pages


def write(store: OpenStore, cq: ConsumeQueue, n: int, start: int = 0) -> list[Written]:
    """``n`` records to queue T/0, dispatched to ``cq`` and the index as the actors do."""
    out = []
    for i in range(start, start + n):
        body = f"msg-{i}".encode()
        props = encode_properties({"KEYS": f"key{i}"})
        res = store.log.append_batch(
            [R.PutRecord("T", 0, body, props)], store.next_offsets, 1_700_000_000_000 + i, 1 << 20
        )
        assert isinstance(res, AppendedBatch)
        size = R.encoded_size(len(body), 1, len(props.encode()))
        out.append(Written("T", 0, res.queue_offsets[0], res.physical_offsets[0], size, body))
        for _key, (first, raw) in res.dispatch.queues.items():
            cq.append_block(first, raw)
        assert store.index is not None
        store.index.put_items(res.dispatch.index, res.dispatch.end)
    return out


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_entries_zeroed_by_a_power_loss_are_rewritten_by_recovery(
    tmp_path: Path, seed: int
) -> None:
    # Given a store whose commit log is durable, and whose queue T/0 has 10 durable entries
    # and 790 more only written (four pages of its file)
    fs = FaultyFileSystem()
    s = make_settings(tmp_path, cq_entries_per_file=PER_FILE)
    store = open_store(s, fs)
    cq = store.queues[("T", 0)] = ConsumeQueue(s.root, "T", 0, PER_FILE, fs)
    written = write(store, cq, 10)
    cq.flush()
    written += write(store, cq, 790, start=10)
    store.log.segments.flush()
    path = cq.file.segments[0].file.path  # type: ignore[attr-defined]
    crash(store)
    # When the power fails, the queue file keeping its length but losing some of its pages
    fs.power_loss(random.Random(seed), page_loss=0.5)
    lost = fs.lost_pages.get(path, [])
    # (the case in question: a lost page before the page of the last entry, which survived)
    last_page = (800 * ENTRY_SIZE - 1) // PAGE * PAGE
    assert lost and last_page not in lost, lost
    # Then recovery rewrites the zeroed entries: every queue offset points at its record (it
    # kept zeroed entries in the middle: offsets of no record, or cut the queue at them)
    again = open_store(s)
    try:
        check_consistent(again, written)
    finally:
        crash(again)
