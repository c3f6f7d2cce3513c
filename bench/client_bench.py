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
import array
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent


def _client() -> Any:
    import actors.client as client

    return client


# -- output ------------------------------------------------------------------------------------


class Meter:
    """Counts operations and their latencies; a thread prints the rate every second."""

    def __init__(self, label: str, unit: str = "msg") -> None:
        self.label = label
        self.unit = unit
        self.count = 0
        self.failed = 0
        self.rts: list[float] = []
        self._window_rts: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.perf_counter()
        self.ended: float | None = None

    def add(self, n: int = 1, rt: float | None = None) -> None:
        self.count += n
        if rt is not None:
            self.rts.append(rt)
            self._window_rts.append(rt)

    def start(self) -> Meter:
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._report, daemon=True, name="bench-meter")
        self._thread.start()
        return self

    def _report(self) -> None:
        last_count, last_t = 0, time.perf_counter()
        while not self._stop.wait(1.0):
            now = time.perf_counter()
            count = self.count
            window, self._window_rts = self._window_rts, []
            rate = (count - last_count) / (now - last_t)
            line = f"[{self.label}] {self.unit} TPS: {rate:,.0f}"
            if window:
                line += (
                    f" | avg RT(ms): {1000 * sum(window) / len(window):.3f}"
                    f" | max RT(ms): {1000 * max(window):.3f}"
                )
            line += f" | total: {count:,} | failed: {self.failed}"
            print(line, flush=True)
            last_count, last_t = count, now

    def stop(self) -> None:
        self.ended = time.perf_counter()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def summary(self, **extra: Any) -> dict[str, Any]:
        elapsed = (self.ended or time.perf_counter()) - self.started
        out: dict[str, Any] = {
            "bench": self.label,
            "messages": self.count,
            "failed": self.failed,
            "seconds": round(elapsed, 3),
            "tps": round(self.count / elapsed) if elapsed > 0 else 0,
        }
        if self.rts:
            out.update(_percentiles(self.rts, "rt_ms"))
        out.update(extra)
        return out


def _percentiles(values: list[float], prefix: str) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {
        f"{prefix}_avg": round(1000 * statistics.fmean(ordered), 3),
        f"{prefix}_p50": pct(0.50),
        f"{prefix}_p99": pct(0.99),
        f"{prefix}_max": round(1000 * ordered[-1], 3),
    }


def _print_summary(summary: dict[str, Any]) -> None:
    print("SUMMARY " + json.dumps(summary), flush=True)


# -- a cluster of our own ----------------------------------------------------------------------

SYNC_PROFILE = """\
description = "bench: one name server, one SYNC_FLUSH master"
[[namesrv]]
listenPort = 9876
[[broker]]
brokerClusterName = "DefaultCluster"
brokerName = "broker-a"
brokerId = 0
brokerRole = "ASYNC_MASTER"
flushDiskType = "SYNC_FLUSH"
listenPort = 10911
haListenPort = 10912
"""


@contextmanager
def cluster(args: argparse.Namespace) -> Iterator[str]:
    """The name server address: the given one, or a spawned ``python -m runtime``."""
    if not args.spawn:
        from actors.client.config import resolve_namesrv

        yield ";".join(resolve_namesrv(args.namesrv))
        return
    with spawned(args.spawn) as (fields, proc):
        print(f"spawned {args.spawn.upper()}_FLUSH cluster: {fields['line']}", flush=True)
        args.broker_pid = proc.pid
        yield fields["namesrv"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def spawned(flush: str) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """``python -m runtime`` (default profile; SYNC_FLUSH when ``flush`` is "sync") on free ports
    in a temporary data directory: yields the ready line's fields (and ``line``) and the
    process; stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="actormq-bench-") as tmp:
        cmd = [sys.executable, "-m", "runtime"]
        if flush == "sync":
            profile = pathlib.Path(tmp) / "sync.toml"
            profile.write_text(SYNC_PROFILE)
            cmd += ["cluster", "--profile", str(profile)]
        cmd += ["--ephemeral-ports", "--data-dir", str(pathlib.Path(tmp) / "data")]
        cmd += ["--log-level", "WARNING"]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                raise SystemExit(f"cluster did not start: {line!r}")
            fields = dict(t.partition("=")[::2] for t in line.split()[1:])
            fields["line"] = line.strip()
            yield fields, proc
        finally:
            proc.terminate()
            proc.wait(30)


def run_in_threads(count: int, target: Callable[[], None]) -> None:
    """``target()`` in ``count`` threads at once; returns when all returned."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _payload(size: int) -> bytes:
    return (b"actormq-bench-" * (size // 14 + 1))[:size]


# -- a) sync produce ---------------------------------------------------------------------------


def bench_produce(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    c = _client()
    body = _payload(args.size)
    with c.Producer("bench-producer", namesrv=namesrv) as producer:
        producer.send(c.Message(args.topic, body))  # route, connection, topic creation
        meter = Meter("produce").start()
        deadline = time.perf_counter() + args.seconds
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
        meter.stop()
    return meter.summary(size=args.size)


# -- b) batch produce --------------------------------------------------------------------------


def bench_batch(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    c = _client()
    body = _payload(args.size)
    batch = [c.Message(args.topic, body) for _ in range(args.batch)]
    with c.Producer("bench-batch-producer", namesrv=namesrv) as producer:
        producer.send_batch(batch)
        meter = Meter(f"batch-{args.batch}").start()
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


def fill_backlog(namesrv: str, topic: str, count: int, size: int) -> None:
    c = _client()
    body = _payload(size)
    batch = [c.Message(topic, body) for _ in range(100)]
    with c.Producer("bench-fill", namesrv=namesrv) as producer:
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
        fill_backlog(namesrv, topic, args.messages, args.size)
    group = f"bench-consume-{os.getpid()}-{int(time.time())}"
    meter = Meter(f"consume-{args.mode}")
    target = args.messages
    if args.mode == "lite":
        consumer = c.PullConsumer(
            group,
            namesrv=namesrv,
            consume_from=c.ConsumeFrom.FIRST,
            pull_batch_size=args.pull_batch,
            max_poll_messages=args.pull_batch * 4,
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


def bench_latency(args: argparse.Namespace, namesrv: str) -> dict[str, Any]:
    c = _client()
    topic = args.topic
    group = f"bench-latency-{os.getpid()}-{int(time.time())}"
    total = int(args.rate * args.seconds)
    from bench.topics import on_every_master

    # on every group before the consumer starts (ConsumeFrom.LAST), as ``updateTopic -c`` would
    on_every_master(namesrv, topic)
    with c.Producer("bench-latency-producer", namesrv=namesrv) as producer:
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
            args.group, namesrv=args.namesrv, consume_from=c.ConsumeFrom.LAST, consume_threads=4
        )
        consumer.subscribe(args.topic, "*", record)
        consumer.start()
        cpu0 = time.process_time()
        print("ready", flush=True)
        done.wait(args.timeout)
    else:
        consumer = c.PullConsumer(args.group, namesrv=args.namesrv, consume_from=c.ConsumeFrom.LAST)
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
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("produce", parents=[common], help="a) sync sends, one in flight")
    p.add_argument("--seconds", type=float, default=10.0)
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
        "--broker-pid",
        type=int,
        default=None,
        help="report this (running) broker's CPU per message; --spawn sets it",
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
    p.add_argument("--namesrv", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--consumer", choices=["push", "lite"], default="push")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--dump", metavar="FILE")
    return parser


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
    if args.spawn:
        summary["cluster"] = f"spawned {args.spawn.upper()}_FLUSH"
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
