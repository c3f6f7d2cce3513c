"""The peer baseline: the four client benchmarks of ``bench/client_bench.py`` against Redis Streams.

Issue #5 gives its targets next to Redis Streams' figures "on this machine class" (AOF
everysec, a Python client: 8.9k / 100k / 127k msg/s and 0.94 ms p99). This VM's speed drifts
by a factor of two between minutes, so a figure of ours means most as a ratio to the peer
measured in the same minutes: run this and ``python -m runtime bench ...`` alternately.

    .venv/bin/python bench/peer_redis.py produce [--seconds 10] [--fsync everysec|always]
    .venv/bin/python bench/peer_redis.py batch   [--seconds 10] [--batch 100]
    .venv/bin/python bench/peer_redis.py consume [--messages 100000] [--pull-batch 32]
    .venv/bin/python bench/peer_redis.py latency [--rate 2000] [--seconds 5] [--runs N]

Each starts ``redis-server`` (Debian's ``redis-server`` package) on a free port with append-only
persistence (``--fsync everysec`` = ASYNC_FLUSH's peer, ``always`` = SYNC_FLUSH's) in a
temporary directory, or uses ``--redis HOST:PORT``; the client is redis-py (``pip install
redis``; a benchmark-only dependency, the Python client the issue's figures used). The same
mapping as ours, one operation for one:

    a) produce  XADD of one 1 KiB message, one in flight
    b) batch    100 XADDs in one pipeline (no MULTI), one pipeline in flight per thread
    c) consume  fill the stream (not timed), then XREADGROUP COUNT --pull-batch from a new
                group, each read acknowledged with one XACK of its ids (the offset commit)
    d) latency  XADD at a fixed rate; a consumer process blocked in XREADGROUP measures
                send -> receive from a nanosecond stamp in the body (first --warmup s apart)

Output as ``bench/client_bench.py``: the rate every second, then ``SUMMARY {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.latency import consumer_summary, repeat_runs  # noqa: E402
from bench.meter import Meter, _print_summary  # noqa: E402
from bench.peer_common import (  # noqa: E402
    latency_result,
    paced_bodies,
    peer_parser,
    server_cpu_start,
    sort_stamp,
    spawned_server,
    start_latency_consumer,
)
from bench.workload import _payload, run_in_threads  # noqa: E402
from runtime.hostport import parse_address  # noqa: E402

STREAM_FIELD = b"body"


def _redis(address: str) -> Any:
    try:
        import redis
    except ImportError:
        raise SystemExit("peer_redis.py needs redis-py: .venv/bin/pip install redis") from None
    host, port = parse_address(address)
    return redis.Redis(host=host, port=port)


def spawned_redis(fsync: str) -> AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]:
    """``redis-server`` with AOF (``appendfsync`` = ``fsync``) on a free loopback port in a
    temporary directory, and no RDB snapshots: yields its address and process; stopped at the
    end."""

    def cmd(binary: str, tmp: str, port: int) -> list[str]:
        base = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", ""]
        return [*base, "--appendonly", "yes", "--appendfsync", fsync, "--daemonize", "no"]

    return spawned_server("redis-server", "redis-server", cmd, _ping)


def _ping(address: str) -> None:
    client = _redis(address)
    try:
        client.ping()
    finally:
        client.close()


# -- a) / b) produce ---------------------------------------------------------------------------


def bench_produce(args: argparse.Namespace, address: str) -> dict[str, Any]:
    r = _redis(address)
    fields = {STREAM_FIELD: _payload(args.size)}
    r.xadd(args.stream, fields)  # connection
    meter = Meter("redis-produce").start()
    perf, xadd = time.perf_counter, r.xadd
    deadline = perf() + args.seconds
    while perf() < deadline:
        t0 = perf()
        xadd(args.stream, fields)
        meter.add(1, perf() - t0)
    meter.stop()
    return meter.summary(size=args.size)


def bench_batch(args: argparse.Namespace, address: str) -> dict[str, Any]:
    fields = {STREAM_FIELD: _payload(args.size)}
    meter = Meter(f"redis-batch-{args.batch}").start()
    deadline = time.perf_counter() + args.seconds

    def worker() -> None:
        r = _redis(address)
        perf = time.perf_counter
        while perf() < deadline:
            t0 = perf()
            pipe = r.pipeline(transaction=False)
            for _ in range(args.batch):
                pipe.xadd(args.stream, fields)
            pipe.execute()
            meter.add(args.batch, perf() - t0)

    run_in_threads(args.threads, worker)
    meter.stop()
    return meter.summary(size=args.size, batch=args.batch, threads=args.threads)


# -- c) consume a backlog ----------------------------------------------------------------------


def bench_consume(args: argparse.Namespace, address: str) -> dict[str, Any]:
    r = _redis(address)
    fields = {STREAM_FIELD: _payload(args.size)}
    sent = 0
    while sent < args.messages:
        pipe = r.pipeline(transaction=False)
        for _ in range(min(100, args.messages - sent)):
            pipe.xadd(args.stream, fields)
        sent += len(pipe.execute())
    print(f"backlog: {sent:,} messages of {args.size} B in {args.stream}", flush=True)
    group = f"bench-consume-{os.getpid()}"
    r.xgroup_create(args.stream, group, id="0")
    meter = Meter("redis-consume").start()
    deadline = time.perf_counter() + args.timeout
    while meter.count < args.messages and time.perf_counter() < deadline:
        reply = r.xreadgroup(group, "c1", {args.stream: ">"}, count=args.pull_batch, block=1000)
        if not reply:
            continue
        ids = [entry_id for entry_id, _ in reply[0][1]]
        r.xack(args.stream, group, *ids)
        meter.add(len(ids))
    meter.stop()
    pending = r.xpending(args.stream, group)["pending"]
    return meter.summary(size=args.size, pull_batch=args.pull_batch, pending_after=pending)


# -- d) end-to-end latency ---------------------------------------------------------------------


def bench_latency(args: argparse.Namespace, address: str) -> dict[str, Any]:
    r = _redis(address)
    group = f"bench-latency-{os.getpid()}-{time.time_ns()}"
    r.xgroup_create(args.stream, group, id="$", mkstream=True)
    total = int(args.rate * args.seconds)
    warmup = int(args.rate * args.warmup)
    options = ["--redis", address, "--stream", args.stream, "--group", group]
    options += ["--expect", str(total), "--timeout", str(args.warmup + args.seconds + 60)]
    child = start_latency_consumer(__file__, options)
    meter = Meter(f"redis-latency-producer@{args.rate:.0f}/s").start()
    late: list[float] = []
    server_cpu0 = server_cpu_start(args)
    cpu0 = time.process_time()
    for body in paced_bodies(args.rate, total, warmup, args.size, late):
        r.xadd(args.stream, {STREAM_FIELD: body})
        meter.add(1)
    meter.stop()
    producer_cpu = time.process_time() - cpu0
    return latency_result(
        args,
        child,
        warmup + total,
        producer_cpu,
        server_cpu0,
        late,
        bench="redis-latency",
        rate=args.rate,
        seconds=args.seconds,
        sent=total,
    )


def latency_consumer(args: argparse.Namespace) -> int:
    """The consumer half of (d), in its own process: prints 'ready', then the latencies."""
    r = _redis(args.redis)
    latencies: list[float] = []
    warmup: list[float] = []
    print("ready", flush=True)
    cpu0 = time.process_time()
    deadline = time.monotonic() + args.timeout
    while len(latencies) < args.expect and time.monotonic() < deadline:
        reply = r.xreadgroup(args.group, "c1", {args.stream: ">"}, count=100, block=500)
        if not reply:
            continue
        now = time.time_ns()
        entries = reply[0][1]
        for _entry_id, entry in entries:
            sort_stamp(entry[STREAM_FIELD], now, latencies, warmup)
        r.xack(args.stream, args.group, *(entry_id for entry_id, _ in entries))
    consumer_cpu = time.process_time() - cpu0
    print(json.dumps(consumer_summary(latencies, warmup, consumer_cpu)), flush=True)
    return 0


def bench_latency_runs(args: argparse.Namespace, address: str) -> dict[str, Any]:
    return repeat_runs(args.runs, lambda _n: bench_latency(args, address))


BENCHES: dict[str, Callable[[argparse.Namespace, str], dict[str, Any]]] = {
    "produce": bench_produce,
    "batch": bench_batch,
    "consume": bench_consume,
    "latency": bench_latency_runs,
}


def build_parser() -> argparse.ArgumentParser:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--redis", help="HOST:PORT of a running Redis instead of spawning one")
        p.add_argument(
            "--fsync",
            choices=["everysec", "always"],
            default="everysec",
            help="appendfsync of the spawned Redis (everysec ~ ASYNC_FLUSH, always ~ SYNC_FLUSH)",
        )
        p.add_argument("--stream", default=None)

    helps = {
        "produce": "a) XADD, one in flight",
        "batch": "b) pipelines of XADD",
        "consume": "c) XREADGROUP and XACK a backlog",
    }
    parser, sub = peer_parser("bench/peer_redis.py", __doc__, common, helps)
    sub.choices["batch"].add_argument("--threads", type=int, default=1)
    p = sub.add_parser("latency-consumer", help="(internal) the consumer half of latency")
    p.add_argument("--redis", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.bench == "latency-consumer":
        return latency_consumer(args)
    if args.stream is None:
        args.stream = f"bench-{args.bench}-{os.getpid()}"
    print(f"peer bench {args.bench}: Redis Streams, {args.size} B messages", flush=True)
    if args.redis:
        summary = BENCHES[args.bench](args, args.redis)
        summary["redis"] = args.redis
    else:
        with spawned_redis(args.fsync) as (address, proc):
            args.server_pid = proc.pid
            summary = BENCHES[args.bench](args, address)
        summary["redis"] = f"spawned, appendfsync {args.fsync}"
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
