"""Client benchmarks: ``python -m runtime bench {produce,batch,consume,latency} ...``.

Like RocketMQ's benchmark tool, each prints its rate every second and a summary at the end.
Against a running cluster (``--namesrv``, default ``$NAMESRV_ADDR``), or one it starts itself
(``--spawn async`` / ``--spawn sync``: ``python -m runtime`` with ASYNC_FLUSH or SYNC_FLUSH in a
temporary data directory, stopped at the end).

    a) produce  sync sends, one producer, one message in flight
    b) batch    SEND_BATCH_MESSAGE of 100 messages, one batch in flight per thread
    c) consume  fill a backlog (not timed), then consume it with a new group, offsets committed
    d) latency  producer at a fixed rate; a consumer in another process measures send->receive
                (the first --warmup seconds, 1 by default, are reported apart); the topic is
                created on every master first (bench/topics.py)

``python -m runtime bench`` runs monkey-patched (the client shares the caller's hub);
``python -m bench.client_bench`` runs the same code in a plain program (the client's hub on
its own thread). Messages are 1 KiB by default.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.cluster import ACL_KEYS, cluster
from bench.latency import bench_latency_runs, latency_consumer
from bench.meter import Meter, _print_summary
from bench.workload import _client, _payload, run_in_threads

# Where the parts are: a) b) c) and the command line here; d) in bench/latency.py; Meter and the
# SUMMARY line in bench/meter.py; the cluster (given or spawned) in bench/cluster.py; the client,
# payloads and threads in bench/workload.py.


# -- a) sync produce ---------------------------------------------------------------------------


def bench_produce(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    c = _client()
    body = _payload(args.size)
    keys = c.SessionCredentials(*ACL_KEYS) if args.acl else None
    batching: dict[str, Any] = {"auto_batch": True} if args.auto_batch else {}
    if args.max_async_sends:
        batching["max_async_sends"] = args.max_async_sends
    with c.Producer(
        "bench-producer", namesrv=namesrv, credentials=keys, tls=args.tls, **batching
    ) as producer:
        producer.send(c.Message(args.topic, body))  # route, connection, topic creation
        meter = Meter("produce", broker_pid=args.broker_pid).start()
        deadline = time.perf_counter() + args.seconds

        def worker() -> None:
            perf = time.perf_counter
            send = producer.send
            msg = c.Message(args.topic, body)
            while perf() < deadline:
                t0 = perf()
                try:
                    send(msg)
                except c.ClientError:
                    meter.failed += 1
                    continue
                meter.add(1, perf() - t0)

        def async_worker() -> None:
            # send_async as fast as its window (1,024 in flight) lets; counted when answered
            perf = time.perf_counter
            msg = c.Message(args.topic, body)
            futures = []

            def answered(_result: Any, error: BaseException | None) -> None:
                if error is None:
                    meter.add(1)
                else:
                    meter.failed += 1

            while perf() < deadline:
                futures.append(producer.send_async(msg, answered))
                if len(futures) >= 4096:
                    futures = [f for f in futures if not f.done()]
            concurrent.futures.wait(futures, timeout=args.seconds + 10)

        work = async_worker if args.use_async else worker
        if args.threads == 1:
            work()  # in this thread: a) as always measured
        else:
            run_in_threads(args.threads, work)
        meter.stop()
    return meter.summary(
        size=args.size,
        threads=args.threads,
        auto_batch=args.auto_batch,
        use_async=args.use_async,
        max_async_sends=producer.async_window.max_sends if producer.async_window else None,
    )


# -- b) batch produce --------------------------------------------------------------------------


def bench_batch(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    c = _client()
    body = _payload(args.size)
    batch = [c.Message(args.topic, body) for _ in range(args.batch)]
    with c.Producer("bench-batch-producer", namesrv=namesrv, tls=args.tls) as producer:
        producer.send_batch(batch)
        meter = Meter(f"batch-{args.batch}", broker_pid=args.broker_pid).start()
        deadline = time.perf_counter() + args.seconds

        def worker() -> None:
            perf = time.perf_counter
            while perf() < deadline:
                t0 = perf()
                try:
                    producer.send_batch(batch)
                except c.ClientError:
                    meter.failed += 1
                    continue
                meter.add(args.batch, perf() - t0)

        run_in_threads(args.threads, worker)
        meter.stop()
    return meter.summary(size=args.size, batch=args.batch, threads=args.threads)


# -- c) consume a backlog ----------------------------------------------------------------------


def fill_backlog(namesrv: str, topic: str, count: int, size: int, tls: bool = False) -> None:
    c = _client()
    body = _payload(size)
    batch = [c.Message(topic, body) for _ in range(100)]
    with c.Producer("bench-fill", namesrv=namesrv, tls=tls) as producer:
        sent = 0
        while sent < count:
            n = min(100, count - sent)
            producer.send_batch(batch[:n])
            sent += n
    print(f"backlog: {count:,} messages of {size} B in {topic}", flush=True)


def bench_consume(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    c = _client()
    topic = args.topic
    if not args.no_fill:
        fill_backlog(namesrv, topic, args.messages, args.size, args.tls)
    group = f"bench-consume-{os.getpid()}-{int(time.time())}"
    meter = Meter(f"consume-{args.mode}", broker_pid=args.broker_pid)
    target = args.messages
    if args.mode == "lite":
        consumer = c.PullConsumer(
            group,
            namesrv=namesrv,
            consume_from=c.ConsumeFrom.FIRST,
            pull_batch_size=args.pull_batch,
            max_poll_messages=args.pull_batch * 4,
            tls=args.tls,
        )
        consumer.subscribe(topic, "*")
        consumer.start()
        meter.start()
        deadline = time.perf_counter() + args.timeout
        while meter.count < target and time.perf_counter() < deadline:
            meter.add(len(consumer.poll(1.0)))
        committed = consumer.commit()
    else:
        done = threading.Event()
        lock = threading.Lock()

        def listener(_msg: Any) -> None:
            with lock:
                meter.count += 1
                if meter.count >= target:
                    done.set()

        consumer = c.PushConsumer(
            group,
            namesrv=namesrv,
            consume_from=c.ConsumeFrom.FIRST,
            pull_batch_size=args.pull_batch,
            consume_threads=args.threads,
            tls=args.tls,
        )
        consumer.subscribe(topic, "*", listener)
        consumer.start()
        meter.start()
        done.wait(args.timeout)
        committed = consumer.persist_offsets()
    meter.stop()
    queues = consumer.assignment()
    offsets = {f"{mq.queue_id}": consumer.committed(mq) for mq in queues if mq.topic == topic}
    consumer.shutdown()
    return meter.summary(size=args.size, committed_queues=committed, offsets=offsets)


# -- d) end-to-end latency ---------------------------------------------------------------------
# -- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--namesrv", default=None, help="host:port (default $NAMESRV_ADDR)")
    common.add_argument(
        "--spawn",
        choices=["async", "sync"],
        default=None,
        help="start a python -m runtime with ASYNC_FLUSH or SYNC_FLUSH",
    )
    common.add_argument("--size", type=int, default=1024, help="message body bytes (1024)")
    common.add_argument("--topic", default=None)
    common.add_argument(
        "--broker-pid",
        type=int,
        default=None,
        help="report this (running) broker's CPU per message; --spawn sets it",
    )
    common.add_argument(
        "--tls",
        action="store_true",
        help="the client connects over TLS (with --spawn: a cluster enforcing TLS, a self-signed "
        "certificate)",
    )
    common.add_argument(
        "--gc-settle",
        action="store_true",
        help="this client process (and latency's consumer) runs runtime.heap.settle() first, "
        "as the broker does: the collector's young threshold 20,000 instead of 700",
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("produce", parents=[common], help="a) sync sends, one in flight")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument(
        "--acl",
        action="store_true",
        help="with --spawn: the broker checks ACL, the producer signs (its cost per send)",
    )
    p.add_argument("--threads", type=int, default=1, help="sync senders at once (1)")
    p.add_argument(
        "--auto-batch",
        action="store_true",
        help="Producer(auto_batch=True): concurrent sends share batch requests",
    )
    p.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="send_async in a loop (window-bound), counted when answered: not a)",
    )
    p.add_argument(
        "--max-async-sends", type=int, default=0, help="Producer(max_async_sends=N) (default: its)"
    )
    p = sub.add_parser("batch", parents=[common], help="b) batch sends")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="batches in flight (one per thread)")
    p = sub.add_parser("consume", parents=[common], help="c) consume a backlog")
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--mode", choices=["lite", "push"], default="lite")
    p.add_argument("--pull-batch", type=int, default=32, help="maxMsgNums per pull (32)")
    p.add_argument("--threads", type=int, default=1, help="push listener threads")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--no-fill", action="store_true", help="the backlog is already there")
    p = sub.add_parser("latency", parents=[common], help="d) end-to-end latency at a fixed rate")
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--consumer", choices=["push", "lite"], default="push")
    p.add_argument(
        "--pacing",
        choices=["gevent", "precise"],
        default="gevent",
        help="how the producer waits between sends (see _pacer; gevent's sleep sends in pairs)",
    )
    p.add_argument(
        "--stamp",
        choices=["sent", "due"],
        default="sent",
        help="latency from when each message was sent, or from when it was due by the rate "
        "(counts the producer's own delays too: no coordinated omission)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds sent at the same rate before the measured ones, reported apart (1.0)",
    )
    p.add_argument(
        "--plain-consumer",
        action="store_true",
        help="run the consumer without monkey-patching (its hub on a thread)",
    )
    p.add_argument(
        "--dump",
        metavar="FILE",
        help="write one line per message: send time (ns since the epoch) and latency (ms)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat the measurement N times against the same cluster (each a new consumer "
        "group): a RUN line each, then the summary with every run's p50/p99/max",
    )
    p = sub.add_parser("latency-consumer", help="(internal) the consumer half of latency")
    p.add_argument("--gc-settle", action="store_true")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--namesrv", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--consumer", choices=["push", "lite"], default="push")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--dump", metavar="FILE")
    return parser


BENCHES: dict[str, Callable[[argparse.Namespace, str], dict[str, Any]]] = {
    "produce": bench_produce,
    "batch": bench_batch,
    "consume": bench_consume,
    "latency": bench_latency_runs,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("ACTORMQ_BENCH_LOG", "WARNING"))
    if args.gc_settle:
        from runtime import heap

        heap.settle()
    if args.bench == "latency-consumer":
        return latency_consumer(args)
    if args.topic is None and getattr(args, "no_fill", False):
        raise SystemExit("consume --no-fill: name the topic holding the backlog (--topic)")
    if args.topic is None:
        args.topic = f"Bench{args.bench.capitalize()}{os.getpid()}"
    try:
        import gevent.monkey

        mode = "monkey-patched" if gevent.monkey.is_module_patched("threading") else "plain"
    except ImportError:  # pragma: no cover
        mode = "plain"
    print(f"bench {args.bench}: client in a {mode} program, {args.size} B messages", flush=True)
    with cluster(args) as namesrv:
        summary = BENCHES[args.bench](args, namesrv)
    summary["client_mode"] = mode
    summary["client_gc"] = "settled" if args.gc_settle else "default"
    if args.spawn:
        acl = " ACL" if getattr(args, "acl", False) else ""
        secure = " TLS" if args.tls else ""
        summary["cluster"] = f"spawned {args.spawn.upper()}_FLUSH{acl}{secure}"
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
