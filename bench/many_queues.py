"""A broker with many topics: what creating, filling, idling, stopping and restarting it costs.

    .venv/bin/python -m bench.many_queues --topics 2000 --queues 8 [--nofile 1024]
        [--queue-idle-ms N]

Starts ``python -m runtime`` (default profile, ASYNC_FLUSH) in a temporary directory, creates
``--topics`` topics of ``--queues`` queues (UPDATE_AND_CREATE_TOPIC, one at a time, as
``mqadmin updateTopic`` does), sends one 100-byte message to every queue, idles, stops it
(SIGTERM), starts it again on the same data and reads one queue of every topic back. A send
refused SYSTEM_BUSY (the broker's queue of requests waited past 200 ms) is counted and made
again. Prints
one line per phase (seconds, the broker's RSS, open descriptors and CPU) and a ``SUMMARY
{json}`` line. ``--nofile N`` starts the broker with an open-files limit of N (soft and hard).
``--queue-idle-ms N`` runs it with ``queueIdleStopMillis = N`` (the idle Queue actors stop; the
figures after the idle period show what that gives back). This process's clients log at WARNING
(``ACTORMQ_BENCH_LOG=DEBUG`` for their two lines per queue read back, which cost that phase
~10 % of this process's CPU), as the other benchmarks' do.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from gevent import monkey

monkey.patch_all()

from loguru import logger  # noqa: E402

from actors.client import Admin, ConsumeFrom, Message, MessageQueue, Producer, PullConsumer  # noqa: E402
from actors.client.errors import BrokerError  # noqa: E402
from bench.cluster import REPO  # noqa: E402
from bench.meter import cpu_seconds  # noqa: E402
from runtime.remoting.codes import ResponseCode  # noqa: E402

DEFAULT_PROFILE = REPO / "config" / "profiles" / "default.toml"
"""Its last table is the broker's: a key appended to it sets that broker's."""


def _rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Broker:
    """``python -m runtime`` on free ports with ``data`` as its data directory."""

    def __init__(self, data: str, nofile: int | None, profile: str | None = None) -> None:
        def limit() -> None:
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        started = time.monotonic()
        cmd = [sys.executable, "-m", "runtime"]
        if profile:
            cmd += ["cluster", "--profile", profile]
        cmd += ["--ephemeral-ports", "--data-dir", data]
        self.proc = subprocess.Popen(
            [*cmd, "--log-level", "WARNING"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"the broker did not start: {line!r}")
        self.start_s = time.monotonic() - started
        self.namesrv = dict(t.partition("=")[::2] for t in line.split()[1:])["namesrv"]

    def figures(self) -> dict[str, Any]:
        pid = self.proc.pid
        return {"rss_mib": _rss_mib(pid), "fds": _fds(pid), "cpu_s": round(cpu_seconds(pid), 2)}

    def stop(self) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.terminate()
        code = self.proc.wait(300)
        return code, time.monotonic() - started


def _phase(summary: dict[str, Any], name: str, started: float, broker: Broker) -> None:
    figures = {"s": round(time.monotonic() - started, 2), **broker.figures()}
    summary[name] = figures
    extra = f", SYSTEM_BUSY {summary['busy']}" if name == "sent" else ""
    print(f"{name:>10}: " + ", ".join(f"{k} {v}" for k, v in figures.items()) + extra, flush=True)


def _run(
    args: argparse.Namespace,
    topics: list[str],
    data: str,
    summary: dict[str, Any],
    brokers: list[Broker],
) -> tuple[int, int]:
    """The phases (see the module docstring); returns (messages read back, last exit code)."""
    profile = None
    if args.queue_idle_ms is not None:
        profile = os.path.join(os.path.dirname(data), "profile.toml")
        with open(profile, "w") as f:
            f.write(DEFAULT_PROFILE.read_text())
            f.write(f"queueIdleStopMillis = {args.queue_idle_ms}\n")
    broker = Broker(data, args.nofile, profile)
    brokers.append(broker)
    _phase(summary, "started", time.monotonic() - broker.start_s, broker)
    started = time.monotonic()
    with Admin(namesrv=broker.namesrv) as admin:
        for topic in topics:
            admin.create_topic(topic, queues=args.queues)
    _phase(summary, "created", started, broker)
    started = time.monotonic()
    busy = 0
    with Producer("many-queues-producer", namesrv=broker.namesrv) as producer:
        for topic in topics:
            for q in range(args.queues):
                while True:  # a refusal (SYSTEM_BUSY) is counted and the send made again
                    try:
                        producer.send(Message(topic, b"x" * 100), selector=lambda qs, _, q=q: qs[q])
                    except BrokerError as exc:
                        if exc.code != ResponseCode.SYSTEM_BUSY:
                            raise
                        busy += 1
                        continue
                    break
    summary["busy"] = busy
    _phase(summary, "sent", started, broker)
    cpu = cpu_seconds(broker.proc.pid)
    time.sleep(args.idle)  # the measured idle period itself
    summary["idle_cpu_share"] = round((cpu_seconds(broker.proc.pid) - cpu) / args.idle, 3)
    print(f"{'idle':>10}: cpu share {summary['idle_cpu_share']}", flush=True)
    _phase(summary, "idled", time.monotonic() - args.idle, broker)
    code, stop_s = broker.stop()
    summary["stop"] = {"s": round(stop_s, 2), "exit": code}
    print(f"{'stopped':>10}: s {stop_s:.2f}, exit {code}", flush=True)
    broker = Broker(data, args.nofile, profile)
    brokers.append(broker)
    _phase(summary, "restarted", time.monotonic() - broker.start_s, broker)
    started = time.monotonic()
    consumer = PullConsumer(
        "many-queues-reader", namesrv=broker.namesrv, consume_from=ConsumeFrom.FIRST
    )
    consumer.assign([MessageQueue(topic=t, broker_name="broker-a", queue_id=0) for t in topics])
    consumer.start()
    got = 0
    deadline = time.monotonic() + 120
    while got < len(topics) and time.monotonic() < deadline:
        got += len(consumer.poll(0.5))
    consumer.shutdown()
    summary["read_back"] = got
    _phase(summary, "read", started, broker)
    code, stop_s = broker.stop()
    summary["stop_after_restart"] = {"s": round(stop_s, 2), "exit": code}
    return got, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.many_queues", description=__doc__)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=8)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before the stop")
    parser.add_argument("--nofile", type=int, default=None, help="the broker's open-files limit")
    parser.add_argument(
        "--queue-idle-ms", type=int, default=None, help="the broker's queueIdleStopMillis"
    )
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("ACTORMQ_BENCH_LOG", "WARNING"))
    topics = [f"Many{i}" for i in range(args.topics)]
    summary: dict[str, Any] = {"topics": args.topics, "queues": args.topics * args.queues}
    tmp = tempfile.mkdtemp(prefix="actormq-many-")
    brokers: list[Broker] = []
    try:
        got, code = _run(args, topics, os.path.join(tmp, "data"), summary, brokers)
    finally:
        for broker in brokers:  # a failed phase: never leave a broker on a removed directory
            if broker.proc.poll() is None:
                broker.proc.kill()
                broker.proc.wait(30)
        # not shutil.rmtree: in a monkey-patched process gevent's os.close defers closing a
        # directory's descriptor to the next loop iteration, and 32,000 directories ran this
        # process out of descriptors
        subprocess.run(["rm", "-rf", tmp], check=False)
    print("SUMMARY " + json.dumps(summary), flush=True)
    return 0 if got == len(topics) and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
