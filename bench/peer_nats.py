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
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
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
from bench.workload import _payload  # noqa: E402

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


def spawned_nats() -> AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]:
    """``nats-server -js`` on a free loopback port, storage in a temporary directory."""

    def cmd(binary: str, tmp: str, port: int) -> list[str]:
        return [binary, "-js", "-sd", tmp, "-a", "127.0.0.1", "-p", str(port)]

    return spawned_server(
        "nats-server", "nats-server", cmd, lambda address: asyncio.run(_probe(address))
    )


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
    options = ["--nats", address, "--subject", args.subject, "--durable", durable]
    options += ["--expect", str(total), "--timeout", str(args.warmup + args.seconds + 60)]
    child = start_latency_consumer(__file__, options)
    meter = Meter(f"nats-latency-producer@{args.rate:.0f}/s").start()
    late: list[float] = []
    server_cpu0 = server_cpu_start(args)
    cpu0 = time.process_time()
    # paced with the OS's sleep, as the Redis peer (asyncio's timers have millisecond steps)
    for body in paced_bodies(args.rate, total, warmup, args.size, late):
        await js.publish(args.subject, body)
        meter.add(1)
    meter.stop()
    producer_cpu = time.process_time() - cpu0
    await nc.close()
    return latency_result(
        args,
        child,
        warmup + total,
        producer_cpu,
        server_cpu0,
        late,
        bench="nats-latency",
        rate=args.rate,
        seconds=args.seconds,
        sent=total,
    )


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
            sort_stamp(msg.data, now, latencies, warmup)
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
