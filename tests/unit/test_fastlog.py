"""The C encoder (``runtime.store._fastlog``) against the Python loops of ``append_batch``.

Property tests: the same random batches (several topics and queues, bodies up to 2 KiB,
properties with and without TAGS/KEYS/UNIQ_KEY/DELAY/WAIT in any order, unrelated and non-ASCII
ones, transaction flags, small segments, groups of batches) go through a CommitLog on each path;
the log bytes, queue and physical offsets, consume-queue blocks, index items, wait flags and
offset tables must be identical. Skipped when the extension is not built.
"""

from __future__ import annotations

import gc
import os
import random
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.store import commitlog as CL
from runtime.store import prepare as P
from runtime.store import record as R
from runtime.store import record_check as RC
from runtime.store import record_dispatch as RD
from runtime.store.index import IndexService
from runtime.store.record_properties import (
    DEFAULT_DELAY_LEVELS,
    PROPERTY_DELAY,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    PROPERTY_WAIT,
    encode_properties,
)
from runtime.store.topic_names import SCHEDULE_TOPIC

_fastlog = pytest.importorskip("runtime.store._fastlog")

QueueKey = tuple[str, int]

TOPICS = ["T", "TopicA", SCHEDULE_TOPIC, "%RETRY%group-1", "bad topic"]
NAMES = [
    PROPERTY_TAGS,
    PROPERTY_KEYS,
    PROPERTY_UNIQ_KEY,
    PROPERTY_DELAY,
    PROPERTY_WAIT,
    "MIN_OFFSET",
    "TAGSX",
    "XKEYS",
    "a",
    "",
]
SYS_FLAGS = [0, 0x1, 0x2, 0x4, 0x8, 0xC, 0x4 | 0x1, 0xC | 0x2, 0x8 | 0x1, 0x10, 0x30 | 0x4, 0x20]
"""Host bits (0x10, 0x20) a client sent: the store replaces them with the hosts' own."""

values = st.one_of(
    st.sampled_from(["", "TagA", "TagB", "k1 k2", " k1  k2 ", "true", "false", "3", "99", "x"]),
    st.text(max_size=12),
    st.text(alphabet="aé漢😀 \x01", max_size=8),
)
prop_pair = st.tuples(st.sampled_from(NAMES), values)


@st.composite
def property_strings(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return ""
    if kind == 1:  # anything at all, separators included
        return draw(st.text(alphabet=st.sampled_from("TAGSKEYWI_\x01\x02aé"), max_size=30))
    pairs = draw(st.lists(prop_pair, max_size=7))
    if kind == 2:  # makes whole batches that do not wait for the flush likelier
        pairs.append((PROPERTY_WAIT, "false"))
    text = "".join(f"{n}\x01{v}\x02" for n, v in pairs)
    if text and draw(st.booleans()):
        text = text[:-1]  # RocketMQ strings may or may not end with the separator
    return text


@st.composite
def put_records(draw: st.DrawFn) -> R.PutRecord:
    return R.PutRecord(
        topic=draw(
            st.sampled_from(TOPICS[:-1]) if draw(st.integers(0, 30)) else st.just(TOPICS[-1])
        ),
        queue_id=draw(st.integers(0, 3) if draw(st.integers(0, 40)) else st.just(-1)),
        body=draw(st.binary(max_size=2048)),
        properties=draw(property_strings()),
        flag=draw(st.integers(-(2**31), 2**31 - 1)),
        sys_flag=draw(st.sampled_from(SYS_FLAGS)),
        born_timestamp=draw(st.integers(0, 2**62)),
        born_host=draw(
            st.sampled_from([4, 4, 16, 3, 17]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
        ),
        born_port=draw(st.integers(0, 65535)),
        reconsume_times=draw(st.integers(0, 16)),
        prepared_transaction_offset=draw(st.integers(0, 2**40)),
    )


batches = st.lists(put_records(), min_size=0, max_size=12)
# a step: one batch, or a group of several batches written together
steps = st.one_of(
    batches.map(lambda b: ("batch", [b])),
    st.lists(batches, min_size=1, max_size=4).map(lambda bs: ("group", bs)),
)


def log_bytes(directory: str) -> dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = f.read()
    return out


def outcome(result: Any) -> Any:
    """Everything a caller can observe of an append_batch result, in comparable form."""
    if isinstance(result, P.Invalid):
        return result
    d = result.dispatch
    queues = [(k, v[0], bytes(v[1])) for k, v in d.queues.items()]
    return (
        result.begin,
        result.end,
        result.physical_offsets,
        result.queue_offsets,
        queues,
        d.index,
        d.end,
        result.wrote_bytes,
        result.wait_store_ok,
    )


class Side:
    """One CommitLog on one path, with its queue-offset table."""

    def __init__(
        self, directory: str, seg: int, fast: bool, table: dict[QueueKey, int], store_host: bytes
    ) -> None:
        self.log = CL.CommitLog(directory, seg, store_host=store_host, store_port=10911)
        self.log._fast = _fastlog.encode_batch if fast else None  # whatever ENCODER says
        self.dir = directory
        self.table = dict(table)

    def run(self, kind: str, group: list[list[R.PutRecord]], ts: int) -> list[Any]:
        max_size = 1536
        if kind == "batch":
            return [outcome(self.log.append_batch(group[0], self.table, ts, max_size))]
        overlay: dict[QueueKey, int] = {}
        self.log.begin_group()
        out = [
            outcome(self.log.append_batch(b, self.table, ts + i, max_size, overlay))
            for i, b in enumerate(group)
        ]
        out.append(self.log.commit_group())
        out.append(list(overlay.items()))
        self.table.update(overlay)
        return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seg=st.sampled_from([2600, 4096, 9000]),
    start=st.dictionaries(
        st.tuples(st.sampled_from(TOPICS[:2]), st.integers(0, 3)), st.integers(0, 2**40)
    ),
    plan=st.lists(steps, min_size=1, max_size=5),
    c_first=st.booleans(),
    store_host=st.sampled_from([b"\x0a\x00\x00\x07", bytes(15) + b"\x01"]),  # IPv4, ::1
)
def test_c_and_python_paths_agree(
    seg: int, start: dict[QueueKey, int], plan: list, c_first: bool, store_host: bytes
) -> None:
    with tempfile.TemporaryDirectory() as dc, tempfile.TemporaryDirectory() as dp:
        c = Side(dc, seg, True, start, store_host)
        py = Side(dp, seg, False, start, store_host)
        assert c.log._fast is not None
        for n, (kind, group) in enumerate(plan):
            ts = 1_700_000_000_000 + n * 1000
            if c_first:  # the topic cache is shared: exercise both hit and miss on each side
                got_c, got_py = c.run(kind, group, ts), py.run(kind, group, ts)
            else:
                got_py, got_c = py.run(kind, group, ts), c.run(kind, group, ts)
            assert got_c == got_py
            assert list(c.table.items()) == list(py.table.items())
            assert c.log.write_offset == py.log.write_offset
        c.log.segments.close()
        py.log.segments.close()
        assert log_bytes(dc) == log_bytes(dp)


def bench_records(n: int, **props: str) -> list[R.PutRecord]:
    return [
        R.PutRecord("BenchTopic", i % 2, os.urandom(64), encode_properties(props)) for i in range(n)
    ]


@pytest.mark.parametrize(
    "props",
    [
        {"UNIQ_KEY": "0A0B", "TAGS": "TagA", "WAIT": "true"},
        {"KEYS": "a b", "UNIQ_KEY": "0A0B", "TAGS": "Tágs😀", "WAIT": "false"},
        {"DELAY": "3", "TAGS": "TagA"},
    ],
)
def test_no_leaks(tmp_path: os.PathLike[str], props: dict[str, str]) -> None:
    """Repeated calls (results dropped) leave no Python objects behind."""
    log = CL.CommitLog(str(tmp_path), 1 << 24)
    log._fast = _fastlog.encode_batch
    batch = bench_records(8, **props)
    args = (P._topic_cache, P.prepare, P.Prepared, 0, 4096, 1 << 20)
    tail = (1, b"\x7f\x00\x00\x01", 10911, DEFAULT_DELAY_LEVELS, RD.tags_code_of, RD.index_keys)
    bad = [*batch, R.PutRecord("bad topic", 0, b"")]
    overflow = [*batch, R.PutRecord("BenchTopic", 0, b"", flag=2**40)]

    def calls(k: int) -> None:
        for i in range(k):
            table: dict[QueueKey, int] = {("BenchTopic", 0): i}
            log._fast(batch, *args, table, {}, *tail)
            assert isinstance(log._fast(bad, *args, table, None, *tail), P.Invalid)
            with pytest.raises(OverflowError):
                log._fast(overflow, *args, table, None, *tail)

    calls(200)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        calls(2000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes still allocated after 2000 calls"


@pytest.mark.parametrize("fast", [True, False])
def test_refusals_write_nothing(tmp_path: os.PathLike[str], fast: bool) -> None:
    """An Invalid record (checked first) or an unpackable field leaves log and tables as they
    were."""
    log = CL.CommitLog(str(tmp_path), 4096)
    log._fast = _fastlog.encode_batch if fast else None
    table: dict[QueueKey, int] = {}
    ok = bench_records(3, TAGS="x")
    surrogate = R.PutRecord("BenchTopic", 0, b"", "TAGS\x01\ud800")
    out = log.append_batch([*ok, surrogate], table, 1, 1 << 20)
    assert isinstance(out, P.Invalid)
    assert out == P.prepare(surrogate, 1 << 20, 4096)
    with pytest.raises((OverflowError, struct.error)):  # C / Python
        log.append_batch([*ok, R.PutRecord("BenchTopic", 0, b"", born_port=2**31)], table, 1, 99)
    assert (log.write_offset, table) == (0, {})


def test_big_batch_crosses_many_segments(tmp_path: os.PathLike[str]) -> None:
    """One batch larger than several segments with records of up to a third of a segment:
    cuts, blanks and offsets agree (a marker can precede every record)."""
    rnd = random.Random(7)
    recs = [
        R.PutRecord(
            rnd.choice(TOPICS[:2]),
            rnd.randrange(3),
            rnd.randbytes(rnd.randrange(1500)),
            encode_properties({"TAGS": f"t{i % 5}", "UNIQ_KEY": f"U{i}"}),
        )
        for i in range(300)
    ]
    c = Side(os.path.join(tmp_path, "c"), 4096, True, {}, b"\x0a\x00\x00\x07")
    py = Side(os.path.join(tmp_path, "p"), 4096, False, {}, b"\x0a\x00\x00\x07")
    assert c.run("batch", [recs], 5) == py.run("batch", [recs], 5)
    assert c.table == py.table
    assert log_bytes(c.dir) == log_bytes(py.dir)


# -- the index insert helper ---------------------------------------------------------------------

index_keys = st.lists(
    st.sampled_from(["k", "U1", "ключ", "😀", "a b", "x" * 40]), min_size=1, max_size=4
)
index_items = st.lists(
    st.tuples(st.sampled_from(["T", "TopicA", "Tópico"]), st.integers(0, 300), index_keys),
    max_size=15,
)


def run_index(root: str, fast: bool, calls: list[tuple[list, int]]) -> list[Any]:
    svc = IndexService(root, slots=7, capacity=9)
    svc._fast = _fastlog.index_insert if fast else None
    seen = []
    for items, end in calls:
        svc.put_items(items, end)
        seen.append([(f.count, f.begin_time, f.end_time, f.end_phys) for f in svc.files])
    for topic in ("T", "TopicA", "Tópico"):
        for key in ("k", "U1", "ключ", "😀", "nope"):
            seen.append(svc.query(topic, key, 64, 0, 2**62))
    svc.close()
    return seen


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(index_items, min_size=1, max_size=6), back=st.integers(0, 400))
def test_index_insert_agrees(batches: list[list], back: int) -> None:
    """Items in log order (with re-dispatched ranges the index already covers), small files
    that roll often: same files, counts, times and lookups on both paths."""
    calls = []
    base = 0
    for batch in batches:
        items = []
        phys = max(0, base - back)  # sometimes starts below what the index covers
        for topic, step, keys in batch:
            phys += step
            items.append((topic, phys, 1_700_000_000_000 + phys, tuple(keys)))
        end = phys + 1
        calls.append((items, end))
        base = max(base, end)
    with tempfile.TemporaryDirectory() as dc, tempfile.TemporaryDirectory() as dp:
        assert run_index(dc, True, calls) == run_index(dp, False, calls)
        assert log_bytes(os.path.join(dc, "index")) == log_bytes(os.path.join(dp, "index"))


def test_index_insert_no_leaks(tmp_path: os.PathLike[str]) -> None:
    svc = IndexService(str(tmp_path), slots=101, capacity=1_000_000)
    svc._fast = _fastlog.index_insert
    svc.put_items([("T", 0, 1, ("k",))], 1)  # the first file (made by the Python loop)
    phys = [1]

    def calls(k: int) -> None:
        for _ in range(k):
            p = phys[0]
            items = [("T", p + j, 5, (f"U{j}", "ключ")) for j in range(8)]
            svc.put_items(items, p + 8)
            phys[0] = p + 8
            with pytest.raises(TypeError):
                svc.put_items([("T", p + 8, 5, ("k", 7))], p + 9)

    calls(200)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        calls(2000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    svc.close()
    assert grown < 64 * 1024, f"{grown} bytes still allocated after 2000 calls"


@pytest.mark.parametrize(("pure", "expect"), [("1", "python True"), ("0", "c False")])
def test_env_var_selects_the_path(pure: str, expect: str) -> None:
    """ACTORMQ_PURE_PYTHON=1 turns both C loops off; anything else keeps the built extension."""
    code = "from runtime.store import commitlog, index; "
    code += "print(commitlog.ENCODER, index._fast_insert is None)"
    env = {**os.environ, "ACTORMQ_PURE_PYTHON": pure}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expect


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=5000), skip=st.integers(0, 15))
def test_body_crc_is_zlibs(data: bytes, skip: int) -> None:
    """The body CRC (folded with PCLMULQDQ from 64 bytes on, when the CPU has it) is zlib's,
    at any length and alignment."""
    view = memoryview(data)[skip:]
    assert _fastlog.body_crc(view) == zlib.crc32(view) & 0x7FFFFFFF


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 79, 80, 127, 128, 129, 1024, 1 << 20])
def test_body_crc_boundaries(size: int) -> None:
    data = bytes(random.Random(size).getrandbits(8) for _ in range(min(size, 4096)))
    data = (data * (size // max(len(data), 1) + 1))[:size]
    assert _fastlog.body_crc(data) == zlib.crc32(data) & 0x7FFFFFFF


# -- the read path's check (check_run) ---------------------------------------------------------


def _run_fixture(tmp: str, n: int, v6: bool = False) -> tuple[bytes, list[tuple[int, int, int]]]:
    """``n`` records of queue 3 written by the commit log: (the log bytes, their entries).
    ``v6``: an IPv6 store host and IPv6 born hosts on every other record."""
    log = CL.CommitLog(tmp, 1 << 24, store_host=bytes(15) + b"\x01" if v6 else b"\x7f\0\0\x01")
    records = [
        R.PutRecord(
            "T",
            3,
            os.urandom(random.randint(0, 2048)),
            "TAGS\x01a\x02",
            born_host=bytes(16) if v6 and i % 2 else b"\x7f\0\0\x01",
        )
        for i in range(n)
    ]
    out = log.append_batch(records, {}, 1, 1 << 22)
    assert isinstance(out, CL.AppendedBatch)
    data = log.read(0, out.end)
    ends = [*out.physical_offsets[1:], out.end]
    sizes = [b - a for a, b in zip(out.physical_offsets, ends, strict=True)]
    entries = list(zip(out.queue_offsets, out.physical_offsets, sizes, strict=True))
    log.segments.close()
    return data, entries


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 12),
    st.sampled_from(["none", "bitflip", "queue", "offset", "size", "short", "start"]),
    st.integers(0, 1 << 30),
    st.booleans(),
    st.booleans(),
)
def test_check_run_agrees_with_python(n: int, damage: str, where: int, crc: bool, v6: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, entries = _run_fixture(tmp, n, v6)
    # Given a run of records, maybe damaged at one record or in one entry
    k = where % n
    q, phys, size = entries[k]
    buf = bytearray(data)
    start = 0
    if damage == "bitflip":
        buf[phys + (where % size)] ^= 1 << (where % 8)
    elif damage == "queue":
        entries[k] = (q, phys, size)
        buf[phys + 15] ^= 1
    elif damage == "offset":
        entries[k] = (q + 1, phys, size)
    elif damage == "size":
        entries[k] = (q, phys, size + 1)
    elif damage == "short":
        buf = buf[: phys + size - 1]
    elif damage == "start":
        start = 1
    # Then C and Python count the same valid prefix
    want = RC.check_run(bytes(buf), start, entries, 3, crc)
    assert _fastlog.check_run(bytes(buf), start, entries, 3, crc) == want
    if damage == "none":
        assert want == n
    elif damage in ("offset", "size", "short"):
        assert want == k


def test_check_run_rejects_bad_entries() -> None:
    with pytest.raises(TypeError):
        _fastlog.check_run(b"", 0, [(1, 2)], 0, True)
    with pytest.raises(OverflowError):
        _fastlog.check_run(b"", 0, [(1 << 70, 0, 0)], 0, True)
    assert _fastlog.check_run(b"", 0, [], 0, True) == 0
    assert _fastlog.check_run(b"x" * 10, 0, [(0, 100, 100)], 0, True) == 0
