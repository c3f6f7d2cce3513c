"""R1 at store level: kill -9 of a process appending under ASYNC_FLUSH loses nothing acknowledged.

The helper (``store_appender.py``) prints every acknowledged record on its stdout; the test
reads until it has seen enough acks (no sleeps), SIGKILLs it mid-stream, restarts it on the same
store, kills it again, then opens the store itself and checks every ack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.broker.store_results import GetStatus
from actors.broker.store_service import BrokerStore
from runtime.directory import Directory
from runtime.errors import StoreError
from runtime.store import record as R
from runtime.store.recovery import open_store
from runtime.store.settings import StoreSettings

HELPER = Path(__file__).with_name("store_appender.py")
T = 10.0


@pytest.fixture(autouse=True)
def _no_actor_leaks() -> Any:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=5)


def run_until_acks(root: Path, first: int, want: int) -> list[tuple[int, int, int]]:
    """Start the appender, collect ``want`` acks, SIGKILL it; returns (queue, offset, value)."""
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), str(root), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    acks: list[tuple[int, int, int]] = []
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY"), ready + (proc.stderr.read() if proc.stderr else "")
        # Given the appender holds the store, a second owner is refused, naming the pid
        with pytest.raises(StoreError, match=f"pid {proc.pid}"):
            open_store(StoreSettings(root=str(root)))
        while len(acks) < want:
            line = proc.stdout.readline()
            assert line, "appender died: " + (proc.stderr.read() if proc.stderr else "")
            kind, *rest = line.split()
            assert kind == "ACK", line
            q, off, value = map(int, rest)
            acks.append((q, off, value))
    finally:
        # When it is killed mid-stream (it keeps appending until the signal lands)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=T)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    return acks


def test_kill9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    acks = run_until_acks(tmp_path, 0, 1500)
    # a second life appends after recovery, continuing the queue offsets
    acks += run_until_acks(tmp_path, 1_000_000, 1500)
    # Then a recovered store holds every acknowledged value at its queue offset
    settings = StoreSettings(
        root=str(tmp_path),
        commitlog_segment_size=64 * 1024,
        cq_entries_per_file=256,
        index_slots=1021,
        index_capacity=100_000,
    )
    store = BrokerStore.build(settings, Directory()).start()
    try:
        stored: dict[int, dict[int, bytes]] = {}
        for q in range(4):
            stored[q] = {}
            offset = 0
            while True:
                got = store.get_messages("g", "K9", q, offset, 256).get(timeout=T)
                if got.status is not GetStatus.FOUND:
                    break
                for qoff, raw in zip(got.queue_offsets, got.messages, strict=True):
                    stored[q][qoff] = R.decode_record(raw).body
                offset = got.next_begin_offset
            # offsets after the restarts are contiguous
            assert sorted(stored[q]) == list(range(len(stored[q])))
        for q, off, value in acks:
            body = stored[q].get(off)
            assert body is not None, f"acked value {value} at {q}/{off} lost"
            assert body.startswith(f"v{value}".encode()), (q, off, value, body[:20])
        # and acks from the second life follow the first life's records in every queue
        by_life = {q: [o for qq, o, v in acks if qq == q and v >= 1_000_000] for q in range(4)}
        first_life = {q: [o for qq, o, v in acks if qq == q and v < 1_000_000] for q in range(4)}
        for q in range(4):
            if by_life[q] and first_life[q]:
                assert min(by_life[q]) > max(first_life[q])
        # the key index survived too
        value = acks[100][2]
        found = store.query_by_key("K9", f"v{value}", 4).get(timeout=T)
        assert any(R.decode_record(m).body.startswith(f"v{value}".encode()) for m in found.messages)
    finally:
        store.stop()
