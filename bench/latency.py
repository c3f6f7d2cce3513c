"""d) end-to-end latency: a producer at a fixed rate, a consumer in another process (``python -m
runtime bench latency-consumer``) measuring send -> receive; ``--runs`` repeats it
(``repeat_runs``). The peer baselines (``bench/peer_*.py``) report with the same helpers."""

from __future__ import annotations

import argparse
import array
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.cluster import REPO
from bench.meter import Meter, _percentiles, cpu_seconds
from bench.workload import _client, _payload


def bench_latency(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    c = _client()
    topic = args.topic
    group = f"bench-latency-{os.getpid()}-{int(time.time())}"
    total = int(args.rate * args.seconds)
    from bench.topics import on_every_master

    # on every group before the consumer starts (ConsumeFrom.LAST), as ``updateTopic -c`` would
    on_every_master(namesrv, topic, tls=args.tls)
    with c.Producer("bench-latency-producer", namesrv=namesrv, tls=args.tls) as producer:
        producer.send(c.Message(topic, b"warm-up"))  # route and connections
        cmd = [
            sys.executable,
            "-m",
            "runtime",
            "bench",
            "latency-consumer",
            "--namesrv",
            namesrv,
            "--topic",
            topic,
            "--group",
            group,
            "--expect",
            str(total),
            "--consumer",
            args.consumer,
            "--timeout",
            str(args.warmup + args.seconds + 60),
        ]
        if args.dump:
            cmd += ["--dump", args.dump]
        if args.gc_settle:
            cmd += ["--gc-settle"]
        if args.tls:
            cmd += ["--tls"]
        if args.plain_consumer:
            cmd = [sys.executable, "-m", "bench.client_bench", *cmd[4:]]
        child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"latency consumer did not start: {line!r}")
        pad = _payload(args.size)
        interval = 1.0 / args.rate
        warmup = int(args.rate * args.warmup)
        meter = Meter(f"latency-producer@{args.rate}/s").start()
        completions = _Completions(warmup + total)
        broker_pid = getattr(args, "broker_pid", None)
        broker_cpu0 = cpu_seconds(broker_pid) if broker_pid else 0.0
        cpu0 = time.process_time()
        start = time.perf_counter()
        wall0 = time.time_ns()
        late: list[float] = []  # how far behind its schedule each measured send went out
        pace = _pacer(args.pacing)
        for i in range(warmup + total):
            due = start + i * interval
            now = time.perf_counter()
            if due > now:
                pace(due - now)
                now = time.perf_counter()
            if i >= warmup:
                late.append(now - due)
            mark = b"W" if i < warmup else b"0"  # warm-up stamps: "W" + 19 digits
            ns = wall0 + round((due - start) * 1e9) if args.stamp == "due" else time.time_ns()
            stamp = mark + f"{ns:019d}".encode()
            producer.send_async(c.Message(topic, stamp + pad[20:]), completions)
            meter.add(1)
        completions.wait(30)
        meter.stop()
        sent_all = warmup + total
        cpu = {"producer_cpu_us_per_msg": round(1e6 * (time.process_time() - cpu0) / sent_all)}
        if broker_pid:
            broker_cpu = cpu_seconds(broker_pid) - broker_cpu0
            cpu["broker_cpu_us_per_msg"] = round(1e6 * broker_cpu / sent_all)
        out, _ = child.communicate(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    result.update(cpu)
    result.update(_percentiles(late, "producer_late_ms"))
    result["stamp"] = args.stamp
    result["pacing"] = args.pacing
    result.update(
        bench="latency",
        rate=args.rate,
        seconds=args.seconds,
        sent=total,
        warmup_seconds=args.warmup,
        size=args.size,
        send_seconds=round(meter.summary()["seconds"], 3),
        consumer=args.consumer,
    )
    return result


def _pacer(kind: str) -> Callable[[float], None]:
    """How the latency producer waits for a message's due time.

    "gevent" (the default, as in every figure before 2026-11-22 07:00): gevent's sleep, which
    wakes on libev's epoll timeout in whole milliseconds or on the next I/O; at 2,000/s most
    messages leave in pairs (median 0.2 ms late, reported as ``producer_late_ms``). "precise":
    in a monkey-patched program, let the hub run what is ready (``gevent.sleep(0)``: responses,
    timers), then sleep the rest in the OS (the unpatched ``time.sleep``, ~0.1 ms late). A plain
    program sleeps in the OS either way."""
    try:
        import gevent
        import gevent.monkey
    except ImportError:  # pragma: no cover
        return time.sleep
    if kind != "precise" or not gevent.monkey.is_module_patched("time"):
        return time.sleep
    os_sleep = gevent.monkey.get_original("time", "sleep")

    def pace(seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        gevent.sleep(0)
        remaining = deadline - time.perf_counter()
        if remaining > 0:
            os_sleep(remaining)

    return pace


class _Completions:
    """The ``send_async`` callback of (d): counts outcomes instead of keeping 10,000 futures
    alive (live futures made the garbage collector's full passes take ~25 ms in the producer:
    a stall the latency figures showed)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.done = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._all = threading.Event()

    def __call__(self, _result: Any, error: BaseException | None) -> None:
        with self._lock:
            if error is not None:
                self.errors.append(error)
            self.done += 1
            if self.done >= self.expected:
                self._all.set()

    def wait(self, timeout: float) -> None:
        if not self._all.wait(timeout):
            raise SystemExit(f"only {self.done} of {self.expected} sends completed")
        if self.errors:
            raise SystemExit(f"{len(self.errors)} sends failed, first: {self.errors[0]!r}")


def latency_consumer(args: argparse.Namespace) -> int:
    """The consumer half of (d), in its own process: prints 'ready', then the latencies."""
    c = _client()
    latencies: list[float] = []
    warmup: list[float] = []
    # Flat (send ns, latency ns) pairs in an array, not a list of tuples: 30,000 tracked tuples
    # made the consumer's first full GC pass (~30 ms) land in the run, a latency spike that was
    # the dump's own doing (at ~15.5 s of a 2,000/s run, then every ~1.5x as many messages).
    samples = array.array("q")
    done = threading.Event()

    def record(msg: Any) -> None:
        now = time.time_ns()
        if msg.body[:1] == b"W":
            warmup.append((now - int(msg.body[1:20])) / 1e9)
            return
        try:
            sent = int(msg.body[:20])
        except ValueError:
            return  # the message that created the topic
        latencies.append((now - sent) / 1e9)
        if args.dump:
            samples.extend((sent, now - sent))  # one call: listeners may run on threads
        if len(latencies) >= args.expect:
            done.set()

    if args.consumer == "push":
        consumer = c.PushConsumer(
            args.group,
            namesrv=args.namesrv,
            consume_from=c.ConsumeFrom.LAST,
            consume_threads=4,
            tls=args.tls,
        )
        consumer.subscribe(args.topic, "*", record)
        consumer.start()
        cpu0 = time.process_time()
        print("ready", flush=True)
        done.wait(args.timeout)
    else:
        consumer = c.PullConsumer(
            args.group, namesrv=args.namesrv, consume_from=c.ConsumeFrom.LAST, tls=args.tls
        )
        consumer.subscribe(args.topic, "*")
        consumer.start()
        cpu0 = time.process_time()
        print("ready", flush=True)
        deadline = time.monotonic() + args.timeout
        while len(latencies) < args.expect and time.monotonic() < deadline:
            for msg in consumer.poll(0.5):
                record(msg)
    consumer_cpu = time.process_time() - cpu0
    consumer.shutdown()
    if args.dump:
        with open(args.dump, "w") as out:
            pairs = zip(samples[0::2], samples[1::2], strict=True)
            out.writelines(f"{sent} {ns / 1e6:.3f}\n" for sent, ns in pairs)
    print(json.dumps(consumer_summary(latencies, warmup, consumer_cpu)), flush=True)
    return 0


def consumer_summary(latencies: list[float], warmup: list[float], cpu: float) -> dict[str, Any]:
    """What a latency consumer reports: counts, CPU per message, percentiles (measured and
    warm-up apart)."""
    summary: dict[str, Any] = {"received": len(latencies)}
    if latencies or warmup:
        summary["consumer_cpu_us_per_msg"] = round(1e6 * cpu / (len(latencies) + len(warmup)))
    if latencies:
        summary.update(_percentiles(latencies, "latency_ms"))
    if warmup:
        summary["warmup_received"] = len(warmup)
        summary.update(_percentiles(warmup, "warmup_latency_ms"))
    return summary


def bench_latency_runs(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    """``bench_latency`` ``--runs`` times: on this VM one 5 s run says little about the next, so
    the summary is the last run's, plus every run's p50, p99 and max (``runs_*``) and the
    median of the p99s."""
    dump = args.dump

    def run(n: int) -> dict[str, Any]:
        if dump and args.runs > 1:
            args.dump = f"{dump}.{n}"  # one file per run
        return bench_latency(args, namesrv)

    return repeat_runs(args.runs, run)


def repeat_runs(count: int, run: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """``run(n)`` ``count`` times (at least once), printing a RUN line each: the last run's
    summary plus every run's p50, p99 and max (``runs_*``) and the median of the p99s."""
    runs = []
    for n in range(max(1, count)):
        result = run(n)
        print("RUN " + json.dumps(result), flush=True)
        runs.append(result)
    summary = dict(runs[-1])
    for key in ("p50", "p99", "max"):
        summary[f"runs_latency_ms_{key}"] = [r[f"latency_ms_{key}"] for r in runs]
    summary["runs_latency_ms_p99_median"] = statistics.median(summary["runs_latency_ms_p99"])
    summary["runs"] = len(runs)
    return summary
