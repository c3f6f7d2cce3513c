"""kill -9 while a topic is deleted: what was acknowledged survives, the old incarnation never
comes back beside the new one (docs/store.md, "Deleting a topic").

The test first creates topics T and U, writes messages to both and commits group ``g``'s
offsets of both (this process, a clean stop: all of it durable). The helper
(``store_topic_deleter.py``) then appends to T and U, deletes T as the broker does (config,
marker and fence, the Dispatcher's barrier, offsets), appends on to T's new incarnation and U,
and prints each step and every acknowledged record. It is SIGKILLed when the test reads a
chosen line (kill points before, during and after the deletion; the helper runs on meanwhile,
so the exact moment varies); the rest of its stdout is still read, so the test knows
everything it acknowledged. The test then opens the store itself (recovery) and checks it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.broker.store_results import GetStatus
from actors.broker.store_service import BrokerStore
from actors.broker.topic_config_data import TopicConfigData
from runtime.directory import Directory
from runtime.store import record as R
from runtime.store.record_properties import encode_properties
from tests.chaos.store_topic_deleter import QUEUES, TOPICS, settings

pytestmark = pytest.mark.timeout(60)

HELPER = Path(__file__).with_name("store_topic_deleter.py")
T = 10.0


@pytest.fixture(autouse=True)
def _no_actor_leaks() -> Any:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=5)


@dataclass(frozen=True)
class Ack:
    topic: str
    queue_id: int
    queue_offset: int
    physical: int
    body: bytes


@dataclass
class Run:
    """What the helper printed before it died, in order."""

    acks: list[Ack] = field(default_factory=list)
    deleting: bool = False
    marking: bool = False
    fence: int | None = None
    deleted: bool = False

    def read(self, line: str) -> None:
        kind, *rest = line.split()
        if kind == "ACK":
            topic, q, off, phys, body = rest
            self.acks.append(Ack(topic, int(q), int(off), int(phys), body.encode()))
        elif kind == "DELETING":
            self.deleting = True
        elif kind == "MARKING":
            self.marking = True
        elif kind == "FENCE":
            self.fence = int(rest[0])
        elif kind == "DELETED":
            self.deleted = True
        else:
            raise AssertionError(f"unexpected helper line {line!r}")


def prepare(root: Path, rng: random.Random) -> list[Ack]:
    """T's and U's configs, first messages and group g's offsets of both, written by this
    process and stopped cleanly (durable). Returns the acks."""
    store = BrokerStore.build(settings(str(root)), Directory()).start()
    acks: list[Ack] = []
    try:
        for topic in TOPICS:
            config = TopicConfigData(
                topic_name=topic, read_queue_nums=QUEUES, write_queue_nums=QUEUES
            )
            store.update_topic(config).get(timeout=T)
        for i in range(40):
            topic, qid = rng.choice(TOPICS), rng.randrange(QUEUES)
            name = f"{topic}p{i}"
            record = R.PutRecord(topic, qid, name.encode(), encode_properties({"KEYS": name}))
            result = store.put([record]).get(timeout=T)
            assert result.ok, result
            acks.append(
                Ack(topic, qid, result.queue_offsets[0], result.physical_offsets[0], name.encode())
            )
        for topic in TOPICS:
            for qid in range(QUEUES):
                top = max(
                    (a.queue_offset + 1 for a in acks if (a.topic, a.queue_id) == (topic, qid)),
                    default=0,
                )
                store.commit_offset("g", topic, qid, top).get(timeout=T)
    finally:
        store.stop()
    return acks


def run_helper(root: Path, seed: int, delete_after: int, kill_at: str, extra: int) -> Run:
    """Start the helper; SIGKILL it once it printed ``kill_at`` (a line prefix) and ``extra``
    lines more; return everything it printed."""
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), str(root), str(seed), str(delete_after)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    run = Run()
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY"), ready + (proc.stderr.read() if proc.stderr else "")
        countdown = None
        while countdown != 0:
            line = proc.stdout.readline()
            assert line, "helper died: " + (proc.stderr.read() if proc.stderr else "")
            run.read(line)
            if countdown is not None:
                countdown -= 1
            elif line.startswith(kill_at):
                countdown = extra
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=T)
    assert proc.returncode == -signal.SIGKILL
    # what it printed before the signal landed was acknowledged too
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        run.read(line)
    proc.stdout.close()
    proc.stderr.close()
    return run


def read_all(store: BrokerStore, topic: str) -> dict[int, dict[int, R.StoredRecord]]:
    """Every readable record of ``topic``: queue id -> queue offset -> record."""
    out: dict[int, dict[int, R.StoredRecord]] = defaultdict(dict)
    for qid in range(QUEUES):
        offset = store.min_offset(topic, qid).get(timeout=T)
        while True:
            got = store.get_messages("reader", topic, qid, offset, 256).get(timeout=T)
            if got.status is not GetStatus.FOUND:
                break
            for qoff, raw in zip(got.queue_offsets, got.messages, strict=True):
                out[qid][qoff] = R.decode_record(raw)
            offset = got.next_begin_offset
    return out


def key_of(ack: Ack) -> str:
    """The KEYS of an acked record: its body is that name repeated."""
    return ack.topic + ack.body.decode().split(ack.topic)[1]


def assert_holds(stored: dict[int, dict[int, R.StoredRecord]], acks: list[Ack]) -> None:
    for ack in acks:
        got = stored[ack.queue_id].get(ack.queue_offset)
        assert got is not None, f"acked {ack} lost"
        assert got.body == ack.body, (ack, got.body)


def assert_contiguous_from_zero(stored: dict[int, dict[int, R.StoredRecord]]) -> None:
    for qid, records in stored.items():
        assert sorted(records) == list(range(len(records))), (qid, sorted(records))


CASES = [
    # (seed, kill at the line starting with, lines more before the kill): before the deletion,
    # as it starts, as the marker is asked for, once it is written (the Dispatcher's barrier
    # holds), once the deletion is reported and later
    (10, "ACK", 30),
    (1, "DELETING", 0),
    (2, "MARKING", 0),
    (7, "MARKING", 0),
    (8, "MARKING", 0),
    (3, "FENCE", 0),
    (4, "FENCE", 1),
    (5, "DELETED", 0),
    (6, "DELETED", 40),
    (11, "DELETED", 3000),
]


@pytest.mark.parametrize(("seed", "kill_at", "extra"), CASES)
def test_kill9_around_a_topic_deletion(tmp_path: Path, seed: int, kill_at: str, extra: int) -> None:
    rng = random.Random(seed)
    # Given T and U with durable messages and offsets
    prepared = prepare(tmp_path, rng)
    # When the helper appends more, deletes T, appends to T's new incarnation and U, and is
    # killed at the chosen point
    run = run_helper(tmp_path, seed, rng.randint(2000, 8000), kill_at, extra)
    store = BrokerStore.build(settings(str(tmp_path)), Directory()).start()
    try:
        # Then every acknowledged message of U is there, at its queue offset
        u = read_all(store, "U")
        assert_holds(u, [a for a in prepared + run.acks if a.topic == "U"])
        assert_contiguous_from_zero(u)
        assert store.query_offset("g", "U", 0).get(timeout=T) >= 0
        u_acks = [a for a in run.acks if a.topic == "U"]
        if u_acks:  # found by key too
            found = store.query_by_key("U", key_of(u_acks[-1]), 4).get(timeout=T).messages
            assert [R.decode_record(m).body for m in found] == [u_acks[-1].body]
        # And T holds one incarnation, whole, from queue offset 0
        t = read_all(store, "T")
        assert_contiguous_from_zero(t)
        old = [a for a in prepared + run.acks if a.topic == "T"]
        if run.fence is not None:
            old = [a for a in old if a.physical < run.fence]
        old_bodies = {a.body for a in old}
        readable = [r for records in t.values() for r in records.values()]
        gone = not any(r.body in old_bodies for r in readable)
        if run.fence is not None:
            # the marker was written (it is in the kernel once written): the deletion holds
            assert gone, "the old incarnation came back after its marker was written"
        if gone:
            # no old record is readable through T, by queue or by key
            floor = run.fence if run.fence is not None else max(a.physical + 1 for a in old)
            assert all(r.physical_offset >= floor for r in readable)
            for ack in old[:: max(1, len(old) // 10)]:
                assert store.query_by_key("T", key_of(ack), 4).get(timeout=T).messages == ()
            # and every new message acknowledged is there, at the queue offset reported
            if run.fence is not None:
                new = [a for a in run.acks if a.topic == "T" and a.physical >= run.fence]
                assert_holds(t, new)
        else:
            # the deletion was lost whole: the old incarnation is all there, nothing new
            assert not run.deleted and run.fence is None
            assert_holds(t, old)
            phases = {r.body[1:2] for r in readable}  # sent before (p, o) or during (m) it
            assert phases <= {b"p", b"o", b"m"}, phases
    finally:
        store.stop()


def test_config_and_offsets_removed_by_a_reported_deletion_stay_removed(tmp_path: Path) -> None:
    # Given group g's durable offsets of T and U
    rng = random.Random(9)
    prepare(tmp_path, rng)
    # When the helper reports T deleted (its offsets removed) and is killed right then
    run = run_helper(tmp_path, 9, 20, "DELETED", 0)
    assert run.deleted
    store = BrokerStore.build(settings(str(tmp_path)), Directory()).start()
    try:
        # Then g has no offsets of T left (they would point into the deleted incarnation:
        # below the new one's end, a consumer would skip new messages), and keeps U's
        left = {q: store.query_offset("g", "T", q).get(timeout=T) for q in range(QUEUES)}
        assert left == dict.fromkeys(range(QUEUES), -1)
        assert any(store.query_offset("g", "U", q).get(timeout=T) > 0 for q in range(QUEUES))
        # And T's config stays deleted too (U's stays)
        assert store.get_topic("T").get(timeout=T) is None
        assert store.get_topic("U").get(timeout=T) is not None
    finally:
        store.stop()
