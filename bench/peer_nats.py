"""The second peer: the four client benchmarks against NATS JetStream.

Issue #5 quotes NATS JetStream beside Redis Streams (5.8k / 37k / 28k msg/s, 1.86 ms p99 "on
this machine class"). Like ``bench/peer_redis.py``, this measures it on the machine at hand, to
be run alternately with ``python -m runtime bench ...``:

    .venv/bin/python bench/peer_nats.py produce [--seconds 10]
    .venv/bin/python bench/peer_nats.py batch   [--seconds 10] [--batch 100]
    .venv/bin/python bench/peer_nats.py consume [--messages 100000] [--pull-batch 32]
    .venv/bin/python bench/peer_nats.py latency [--rate 2000] [--seconds 5] [--runs N]

Each starts ``nats-server -js`` (Debian's ``nats-server`` package: file storage in a temporary
directory, JetStream's default sync interval) on a free port, or uses ``--nats HOST:PORT``; the
client is nats-py (``pip install nats-py``, the ``bench`` extra), asyncio. One stream ``BENCH``
on subject ``bench.>``, one operation for one:

    a) produce  one JetStream publish awaiting its PubAck, one in flight
    b) batch    100 publishes in flight at once, then all 100 PubAcks
    c) consume  fill the stream (not timed), then a new durable pull consumer (ack policy
                all) fetches --pull-batch at a time and acks the last of each fetch (the
                final ack waits for the server's confirmation)
    d) latency  publishes at a fixed rate; a consumer process fetching from a pull consumer
                measures send -> receive from a nanosecond stamp (first --warmup s apart)

Output as ``bench/client_bench.py``: the rate every second, then ``SUMMARY {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.client_bench import (  # noqa: E402
    Meter,
    _payload,
    _percentiles,
    _print_summary,
    consumer_summary,
    cpu_seconds,
    repeat_runs,
)
from bench.peer_common import peer_parser  # noqa: E402
from bench.peer_redis import _free_port  # noqa: E402

STREAM = "BENCH"


async def _connect(address: str) -> tuple[Any, Any]:
    try:
        import nats
    except ImportError:
        raise SystemExit("peer_nats.py needs nats-py: .venv/bin/pip install nats-py") from None
    nc = await nats.connect(f"nats://{address}")
    return nc, nc.jetstream()


async def _stream(js: Any) -> None:
    await js.add_stream(name=STREAM, subjects=["bench.>"])


@contextmanager
def spawned_nats() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``nats-server -js`` on a free loopback port, storage in a temporary directory."""
    binary = shutil.which("nats-server")
    if binary is None:
        raise SystemExit("no nats-server on PATH (Debian: apt-get install nats-server)")
    with tempfile.TemporaryDirectory(prefix="actormq-peer-nats-") as tmp:
        port = _free_port()
        cmd = [binary, "-js", "-sd", tmp, "-a", "127.0.0.1", "-p", str(port)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address = f"127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:  # readiness: the first connection
                try:
                    asyncio.run(_probe(address))
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"nats-server did not start: {cmd}") from None
                    time.sleep(0.05)
            yield address, proc
        finally:
            proc.terminate()
            proc.wait(30)


async def _probe(address: str) -> None:
    nc, js = await _connect(address)
    await _stream(js)
    await nc.close()


# -- the four measurements ----------------------------------------------------------------------


async def bench_produce(args: argparse.Namespace, address: str) -> dict[str, Any]:
    nc, js = await _connect(address)
    body = _payload(args.size)
    await js.publish(args.subject, body)
    meter = Meter("nats-produce").start()
    perf = time.perf_counter
    deadline = perf() + args.seconds
    while perf() < deadline:
        t0 = perf()
        await js.publish(args.subject, body)
        meter.add(1, perf() - t0)
    meter.stop()
    await nc.close()
    return meter.summary(size=args.size)


async def bench_batch(args: argparse.Namespace, address: str) -> dict[str, Any]:
    nc, js = await _connect(address)
    body = _payload(args.size)
    meter = Meter(f"nats-batch-{args.batch}").start()
    perf = time.perf_counter
    deadline = perf() + args.seconds
    while perf() < deadline:
        t0 = perf()
        await asyncio.gather(*(js.publish(args.subject, body) for _ in range(args.batch)))
        meter.add(args.batch, perf() - t0)
    meter.stop()
    await nc.close()
    return meter.summary(size=args.size, batch=args.batch)


async def bench_consume(args: argparse.Namespace, address: str) -> dict[str, Any]:
    from nats.js.api import AckPolicy, ConsumerConfig

    nc, js = await _connect(address)
    body = _payload(args.size)
    sent = 0
    while sent < args.messages:
        n = min(100, args.messages - sent)
        await asyncio.gather(*(js.publish(args.subject, body) for _ in range(n)))
        sent += n
    print(f"backlog: {sent:,} messages of {args.size} B on {args.subject}", flush=True)
    durable = f"consume{os.getpid()}"
    config = ConsumerConfig(ack_policy=AckPolicy.ALL, max_ack_pending=-1)
    sub = await js.pull_subscribe(args.subject, durable=durable, config=config)
    meter = Meter("nats-consume").start()
    deadline = time.perf_counter() + args.timeout
    while meter.count < args.messages and time.perf_counter() < deadline:
        msgs = await sub.fetch(args.pull_batch, timeout=5)
        meter.add(len(msgs))
        # AckPolicy.ALL: the last message acknowledges all before it; the final one waits for
        # the server's confirmation (as our consumer's final commit is synchronous)
        if meter.count < args.messages:
            await msgs[-1].ack()
        else:
            await msgs[-1].ack_sync()
    meter.stop()
    info = await js.consumer_info(STREAM, durable)
    await nc.close()
    return meter.summary(
        size=args.size, pull_batch=args.pull_batch, ack_floor=info.ack_floor.stream_seq
    )


async def bench_latency(args: argparse.Namespace, address: str) -> dict[str, Any]:
    nc, js = await _connect(address)
    durable = f"latency{os.getpid()}{time.time_ns()}"
    total = int(args.rate * args.seconds)
    warmup = int(args.rate * args.warmup)
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "latency-consumer"]
    cmd += ["--nats", address, "--subject", args.subject, "--durable", durable]
    cmd += ["--expect", str(total), "--timeout", str(args.warmup + args.seconds + 60)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit("latency consumer did not start")
    pad = _payload(args.size)
    interval = 1.0 / args.rate
    meter = Meter(f"nats-latency-producer@{args.rate:.0f}/s").start()
    late: list[float] = []
    server_pid = getattr(args, "server_pid", None)
    server_cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
    cpu0 = time.process_time()
    start = time.perf_counter()
    for i in range(warmup + total):
        due = start + i * interval
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)  # the OS's sleep, as the Redis peer paces (asyncio's is ms)
            now = time.perf_counter()
        if i >= warmup:
            late.append(now - due)
        mark = b"W" if i < warmup else b"0"
        await js.publish(args.subject, mark + f"{time.time_ns():019d}".encode() + pad[20:])
        meter.add(1)
    meter.stop()
    producer_cpu = time.process_time() - cpu0
    await nc.close()
    out, _ = child.communicate(timeout=60)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["producer_cpu_us_per_msg"] = round(1e6 * producer_cpu / (warmup + total))
    if server_pid:
        server_cpu = cpu_seconds(server_pid) - server_cpu0
        result["server_cpu_us_per_msg"] = round(1e6 * server_cpu / (warmup + total))
    result.update(_percentiles(late, "producer_late_ms"))
    result.update(bench="nats-latency", rate=args.rate, seconds=args.seconds, sent=total)
    return result


async def latency_consumer(args: argparse.Namespace) -> int:
    """The consumer half of (d), in its own process: prints 'ready', then the latencies."""
    from nats.errors import TimeoutError as FetchTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    nc, js = await _connect(args.nats)
    config = ConsumerConfig(
        ack_policy=AckPolicy.ALL, deliver_policy=DeliverPolicy.NEW, max_ack_pending=-1
    )
    sub = await js.pull_subscribe(args.subject, durable=args.durable, config=config)
    latencies: list[float] = []
    warmup: list[float] = []
    print("ready", flush=True)
    cpu0 = time.process_time()
    deadline = time.monotonic() + args.timeout
    while len(latencies) < args.expect and time.monotonic() < deadline:
        try:
            msgs = await sub.fetch(100, timeout=0.5)
        except FetchTimeout:
            continue
        now = time.time_ns()
        for msg in msgs:
            body = msg.data
            if body[:1] == b"W":
                warmup.append((now - int(body[1:20])) / 1e9)
            else:
                latencies.append((now - int(body[:20])) / 1e9)
        await msgs[-1].ack()
    consumer_cpu = time.process_time() - cpu0
    await nc.close()
    print(json.dumps(consumer_summary(latencies, warmup, consumer_cpu)), flush=True)
    return 0


def bench_latency_runs(args: argparse.Namespace, address: str) -> dict[str, Any]:
    return repeat_runs(args.runs, lambda _n: asyncio.run(bench_latency(args, address)))


BENCHES: dict[str, Callable[[argparse.Namespace, str], Awaitable[dict[str, Any]]]] = {
    "produce": bench_produce,
    "batch": bench_batch,
    "consume": bench_consume,
}


def build_parser() -> argparse.ArgumentParser:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--nats", help="HOST:PORT of a running nats-server -js instead")
        p.add_argument("--subject", default=None)

    helps = {
        "produce": "a) publish, one in flight",
        "batch": "b) 100 publishes in flight",
        "consume": "c) fetch and ack a backlog",
    }
    parser, sub = peer_parser("bench/peer_nats.py", __doc__, common, helps)
    p = sub.add_parser("latency-consumer", help="(internal) the consumer half of latency")
    p.add_argument("--nats", required=True)
    p.add_argument("--subject", required=True)
    p.add_argument("--durable", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.bench == "latency-consumer":
        return asyncio.run(latency_consumer(args))
    if args.subject is None:
        args.subject = f"bench.{args.bench}.{os.getpid()}"
    print(f"peer bench {args.bench}: NATS JetStream, {args.size} B messages", flush=True)

    def run(address: str) -> dict[str, Any]:
        if args.bench == "latency":
            return bench_latency_runs(args, address)
        return asyncio.run(BENCHES[args.bench](args, address))

    if args.nats:
        asyncio.run(_probe(args.nats))
        summary = run(args.nats)
        summary["nats"] = args.nats
    else:
        with spawned_nats() as (address, proc):
            args.server_pid = proc.pid
            summary = run(address)
        summary["nats"] = "spawned, JetStream file storage"
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
