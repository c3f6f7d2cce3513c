"""Send latency while the key index rebuilds a dropped range in the background.

The rebuild (``runtime/store/index_rebuild.py``: a range of the commit log that no index file
covers any more is indexed again from the log, ``STEP_BYTES`` at a time in the hub's thread
pool) is CPU-bound Python in a worker thread: it competes with the broker's hub for the GIL.
This measures what that costs a steady producer:

1. starts ``python -m runtime`` once (default profile, ASYNC_FLUSH) to lay out its data
   directory, stops it, and appends ``--mib`` MiB of 1 KiB records (each with a UNIQ_KEY and
   KEYS) to its store through the file layer, indexed into small index files;
2. baseline: starts the broker on that store and sends SEND_MESSAGE_V2 at ``--rate`` per second
   over one socket, one in flight (a sync producer), for ``--seconds``;
3. rebuild: stops it, corrupts the header of every index file but the last (dropped at load: a
   hole of ~``--mib`` MiB), starts it again with ``INLINE_BYTES`` = 0 (recovery leaves the whole
   range to the Dispatcher's background steps) and sends the same way until the rebuild is done
   (the broker's INFO line "key index rebuilt") and ``--seconds`` more.

Prints p50 / p99 / p99.9 / max of the send round trips: baseline, during the rebuild (from its
first file's creation to the INFO line) and after it, with the rebuild's duration and rate and
the broker's CPU. ``--set NAME=VALUE`` overrides a number of ``runtime.store.index_rebuild``
in the broker (e.g. ``STEP_BYTES``) to compare pacings.

    .venv/bin/python bench/index_rebuild_latency.py [--mib 512] [--rate 500] [--seconds 5]
        [--set STEP_BYTES=33554432]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.broker_send import frame  # noqa: E402
from bench.meter import cpu_seconds  # noqa: E402
from runtime.hostport import parse_address  # noqa: E402
from runtime.remoting.command import RemotingCommand  # noqa: E402
from runtime.remoting.frame import FrameDecoder  # noqa: E402

INDEX_CAPACITY = 16_384  # entries per index file built here: ~19 MiB of 1 KiB records
BUILD_TOPIC = "BenchRebuild"
WARM_UP_S = 2.0  # sends not measured after each start (the first second or two are slower)

LAUNCH = """\
import sys
from gevent import monkey
monkey.patch_all()
import runtime.store.index_rebuild as r
for name, value in {overrides!r}.items():
    setattr(r, name, value)
import runpy
sys.argv = ["runtime", *{argv!r}]
runpy.run_module("runtime", run_name="__main__", alter_sys=True)
"""
"""``python -m runtime`` with ``runtime.store.index_rebuild``'s constants set first (recovery
imports ``INLINE_BYTES`` by name, so it must be set before the store is imported)."""


class Broker:
    """A running broker: its address, process, and when its stderr said the rebuild ended."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.address = ("", 0)
        self.rebuilt_at: float | None = None
        self.lines: list[str] = []
        self.rebuilt = threading.Event()

    def drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "key index rebuilt" in line:
                self.rebuilt_at = time.perf_counter()
                self.rebuilt.set()
            if any(w in line for w in ("key index", "WARNING", "ERROR", "Error", "  File")):
                self.lines.append(line.rstrip())


@contextmanager
def broker(data: pathlib.Path, overrides: dict[str, float]) -> Iterator[Broker]:
    argv = ["--ephemeral-ports", "--data-dir", str(data), "--log-level", "INFO"]
    code = LAUNCH.format(overrides=overrides, argv=argv)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        b = Broker(proc)
        drain = threading.Thread(target=b.drain, daemon=True)
        drain.start()  # (before the ready line: a full stderr pipe would stop the broker)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            proc.wait(30)
            drain.join(5)
            print("\n".join(b.lines[-30:]), file=sys.stderr)
            raise SystemExit(f"broker did not start: {line!r}")
        fields = dict(t.partition("=")[::2] for t in line.split()[1:])
        b.address = parse_address(fields["broker-a/0"])
        yield b
    finally:
        proc.terminate()
        proc.wait(60)


def store_root(data: pathlib.Path) -> pathlib.Path:
    """The broker's store under ``data`` (the directory holding ``commitlog``)."""
    for path in sorted(data.rglob("commitlog")):
        return path.parent
    raise SystemExit(f"no store under {data}")


def build(root: pathlib.Path, mib: int) -> int:
    """Append ~``mib`` MiB of keyed 1 KiB records, dispatched and indexed, then close the
    store cleanly. Returns the log's end."""
    from runtime.store import checkpoint as ckpt
    from runtime.store.commitlog import AppendedBatch
    from runtime.store.consumequeue import ConsumeQueue
    from runtime.store.lockfile import remove_abort
    from runtime.store.record import PutRecord
    from runtime.store.record_properties import encode_properties
    from runtime.store.recovery import make_checkpoint, open_store
    from runtime.store.settings import StoreSettings

    settings = StoreSettings(
        root=str(root), index_slots=INDEX_CAPACITY // 4 + 1, index_capacity=INDEX_CAPACITY
    )
    store = open_store(settings)
    assert store.index is not None
    body = os.urandom(1024)
    n = 0
    size = store.log.write_offset + mib * 1024 * 1024
    while store.log.write_offset < size:
        records = [
            PutRecord(
                BUILD_TOPIC,
                (n // 32) % 8,
                body,
                encode_properties({"UNIQ_KEY": f"{n + i:024X}", "KEYS": f"k{n + i}"}),
            )
            for i in range(32)
        ]
        out = store.log.append_batch(records, store.next_offsets, int(time.time() * 1000), 1 << 22)
        assert isinstance(out, AppendedBatch)
        n += len(records)
        for (topic, qid), (first, raw) in out.dispatch.queues.items():
            cq = store.queues.get((topic, qid))
            if cq is None:
                cq = store.queues[(topic, qid)] = ConsumeQueue(settings.root, topic, qid)
            cq.append_block(first, raw)
        store.index.put_items(out.dispatch.index, out.dispatch.end)
    end = store.log.write_offset
    store.log.segments.flush()
    for cq in store.queues.values():
        cq.flush()
    store.index.flush()
    next_offsets = {k: q.max_offset for k, q in store.queues.items()}
    ckpt.save(settings.root, make_checkpoint(end, store.log.min_offset, next_offsets))
    store.log.segments.close()
    for cq in store.queues.values():
        cq.close()
    store.index.close()
    remove_abort(settings.root)
    store.lock.release()
    return end


def corrupt_all_but_last(root: pathlib.Path) -> int:
    """Overwrite the magic of every index file but the newest: dropped at the next start.
    Returns the first byte the newest covers (the hole's end)."""
    names = sorted(p.name for p in (root / "index").iterdir() if p.name.isdigit())
    for name in names[:-1]:
        with open(root / "index" / name, "r+b") as fh:
            fh.write(b"XXXX")
    return int(names[-1])


class Sender:
    """A sync producer at a fixed rate: one SEND_MESSAGE_V2 in flight, latencies stamped with
    the moment each send was due."""

    def __init__(self, address: tuple[str, int], rate: float) -> None:
        self.sock = socket.create_connection(address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = FrameDecoder()
        self.inbox: list[RemotingCommand] = []
        self.body = b"x" * 1024
        self.interval = 1.0 / rate
        self.opaque = 0
        self.samples: list[tuple[float, float]] = []  # (send time, round trip)
        self.codes: dict[int, int] = {}

    def call(self) -> None:
        self.opaque += 1
        start = time.perf_counter()
        self.sock.sendall(frame("BenchRebuildLoad", self.body, self.opaque, 1))
        while not self.inbox:
            self.inbox.extend(self.decoder.feed(self.sock.recv(1 << 16)))
        reply = self.inbox.pop(0)
        self.samples.append((start, time.perf_counter() - start))
        self.codes[reply.code] = self.codes.get(reply.code, 0) + 1

    def run_until(self, done: threading.Event | None, seconds: float, limit: float) -> None:
        """Send until ``done`` is set (None: at once) and ``seconds`` more passed, or ``limit``
        seconds in all."""
        t0 = time.perf_counter()
        hard = t0 + limit
        stop_at: float | None = None
        i = 0
        while True:
            now = time.perf_counter()
            if stop_at is None and (done is None or done.is_set()):
                stop_at = now + seconds
            if (stop_at is not None and now >= stop_at) or now >= hard:
                return
            due = t0 + i * self.interval
            if due > now:
                time.sleep(due - now)
            elif now - due > 1.0:  # fell far behind (a stall): do not burst to catch up
                t0, i = now, 0
            self.call()
            i += 1

    def close(self) -> None:
        self.sock.close()


def stats(rts: list[float]) -> dict[str, float | int]:
    if not rts:
        return {"n": 0}
    s = sorted(rts)

    def pct(q: float) -> float:
        return round(s[min(len(s) - 1, int(len(s) * q))] * 1000, 3)

    return {
        "n": len(s),
        "mean_ms": round(sum(s) / len(s) * 1000, 3),
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": round(s[-1] * 1000, 3),
        "over_2ms_pct": round(sum(1 for x in s if x > 0.002) / len(s) * 100, 2),
    }


def watch_first_file(path: pathlib.Path, seen: list[float], stop: threading.Event) -> None:
    """Stamp when the rebuild's first file appears (its first step began)."""
    while not stop.is_set():
        if path.exists():
            seen.append(time.perf_counter())
            return
        time.sleep(0.005)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512, help="log MiB to rebuild the index of")
    ap.add_argument("--rate", type=float, default=500, help="sends per second")
    ap.add_argument("--seconds", type=float, default=5, help="baseline, and after the rebuild")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args()
    overrides: dict[str, float] = {"INLINE_BYTES": 0}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = float(value) if "." in value else int(value)
    from loguru import logger

    logger.remove()  # (the build's own store: its INFO lines are not the broker's)
    logger.add(sys.stderr, level="WARNING")
    work = pathlib.Path(args.dir or tempfile.mkdtemp(prefix="bench-index-rebuild-"))
    data = work / "data"
    with broker(data, overrides):
        pass
    root = store_root(data)
    t = time.perf_counter()
    end = build(root, args.mib + 2 * 20)  # + the index files kept past the hole
    print(f"built {end / 2**20:,.0f} MiB of log in {time.perf_counter() - t:.1f}s", flush=True)
    result: dict[str, object] = {"rate": args.rate, "overrides": overrides}

    with broker(data, overrides) as b:  # baseline: the index whole
        sender = Sender(b.address, args.rate)
        sender.run_until(None, WARM_UP_S, WARM_UP_S)  # topic creation, the broker's start
        sender.samples.clear()
        cpu0 = cpu_seconds(b.proc.pid)
        sender.run_until(None, args.seconds, args.seconds + 1)
        result["baseline"] = stats([rt for _, rt in sender.samples])
        result["baseline_broker_cpu_pct"] = round(
            (cpu_seconds(b.proc.pid) - cpu0) / args.seconds * 100
        )
        sender.close()

    hole_end = corrupt_all_but_last(root)
    first = root / "index" / f"{0:020d}"
    seen: list[float] = []
    stop = threading.Event()
    threading.Thread(target=watch_first_file, args=(first, seen, stop), daemon=True).start()
    with broker(data, overrides) as b:  # the hole [0, hole_end) rebuilt in the background
        sender = Sender(b.address, args.rate)
        cpu0 = cpu_seconds(b.proc.pid)
        sender.run_until(None, WARM_UP_S, WARM_UP_S)  # (the rebuild starts meanwhile)
        warm = time.perf_counter()
        sender.run_until(b.rebuilt, args.seconds, 600)
        cpu = cpu_seconds(b.proc.pid) - cpu0
        stop.set()
        sender.close()
        if b.rebuilt_at is None or not seen:
            print("\n".join(b.lines[-20:]))
            raise SystemExit("the rebuild did not run to its end")
        began, ended = max(seen[0], warm), b.rebuilt_at
        during = [rt for at, rt in sender.samples if began <= at < ended]
        after = [rt for at, rt in sender.samples if at >= ended]
        took = ended - seen[0]
        result["rebuild_mib"] = round(hole_end / 2**20)
        result["rebuild_s"] = round(took, 2)
        result["rebuild_mib_per_s"] = round(hole_end / 2**20 / took, 1)
        result["during"] = stats(during)
        result["after"] = stats(after)
        result["broker_cpu_s"] = round(cpu, 2)
        result["codes"] = sender.codes
    for name in ("baseline", "during", "after"):
        print(f"{name:>8}: {result[name]}")
    print(
        f"rebuilt {result['rebuild_mib']} MiB in {result['rebuild_s']} s "
        f"({result['rebuild_mib_per_s']} MiB/s)"
    )
    print("SUMMARY " + json.dumps(result), flush=True)
    if not args.dir:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
