"""What the peer baselines (``bench/peer_redis.py``, ``bench/peer_nats.py``) share: their command
line, the spawned server, and the parts of (d) that do not depend on the peer's client (the
paced, stamped bodies; the consumer process; the result). The four measurements mirror
``bench/client_bench.py``'s."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.meter import _percentiles, cpu_seconds
from bench.workload import _payload


def peer_parser(
    prog: str,
    doc: str | None,
    add_common: Callable[[argparse.ArgumentParser], None],
    helps: dict[str, str],
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The parser with ``produce``, ``batch``, ``consume`` and ``latency`` (``helps`` per name,
    ``add_common`` adds the peer's shared options); the sub-parsers are returned for more."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    add_common(common)
    common.add_argument("--size", type=int, default=1024, help="message body bytes (1024)")
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("produce", parents=[common], help=helps["produce"])
    p.add_argument("--seconds", type=float, default=10.0)
    p = sub.add_parser("batch", parents=[common], help=helps["batch"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=100)
    p = sub.add_parser("consume", parents=[common], help=helps["consume"])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--pull-batch", type=int, default=32, help="messages per read (32)")
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("latency", parents=[common], help="d) end-to-end latency at a fixed rate")
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=1)
    return parser, sub


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spawned_server(
    binary_name: str,
    package: str,
    make_cmd: Callable[[str, str, int], list[str]],
    probe: Callable[[str], object],
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``make_cmd(binary, temporary directory, free port)`` started on loopback; ready once
    ``probe(address)`` returns without raising (10 s at most): yields the address and the
    process, stopped at the end."""
    binary = shutil.which(binary_name)
    if binary is None:
        raise SystemExit(f"no {binary_name} on PATH (Debian: apt-get install {package})")
    with tempfile.TemporaryDirectory(prefix=f"actormq-peer-{binary_name}-") as tmp:
        port = free_port()
        cmd = make_cmd(binary, tmp, port)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address = f"127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    probe(address)
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"{binary_name} did not start: {cmd}") from None
                    time.sleep(0.05)
            yield address, proc
        finally:
            proc.terminate()
            proc.wait(30)


# -- d) end-to-end latency -----------------------------------------------------------------------


def start_latency_consumer(script: str, options: list[str]) -> subprocess.Popen[str]:
    """``script latency-consumer OPTIONS`` in its own process, once it printed 'ready'."""
    child = subprocess.Popen(
        [sys.executable, script, "latency-consumer", *options], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit("latency consumer did not start")
    return child


def paced_bodies(
    rate: float, total: int, warmup: int, size: int, late: list[float]
) -> Iterator[bytes]:
    """The producer's bodies of (d), each yielded when it is due at ``rate`` (the OS's sleep),
    stamped with the wall clock in nanoseconds: ``warmup`` marked "W", then ``total`` marked
    "0", whose lateness is appended to ``late``."""
    pad = _payload(size)
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(warmup + total):
        due = start + i * interval
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
            now = time.perf_counter()
        if i >= warmup:
            late.append(now - due)
        mark = b"W" if i < warmup else b"0"
        yield mark + f"{time.time_ns():019d}".encode() + pad[20:]


def sort_stamp(body: bytes, now_ns: int, latencies: list[float], warmup: list[float]) -> None:
    """Add a received body's latency in seconds to ``warmup`` or ``latencies``."""
    if body[:1] == b"W":
        warmup.append((now_ns - int(body[1:20])) / 1e9)
    else:
        latencies.append((now_ns - int(body[:20])) / 1e9)


def server_cpu_start(args: argparse.Namespace) -> float:
    pid = getattr(args, "server_pid", None)
    return cpu_seconds(pid) if pid else 0.0


def latency_result(
    args: argparse.Namespace,
    child: subprocess.Popen[str],
    produced: int,
    producer_cpu: float,
    server_cpu0: float,
    late: list[float],
    **fields: Any,
) -> dict[str, Any]:
    """The consumer's report plus CPU per message (of ``produced``, warm-up included) of the
    producer and the (spawned) server, the producer's lateness and ``fields``."""
    out, _ = child.communicate(timeout=60)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["producer_cpu_us_per_msg"] = round(1e6 * producer_cpu / produced)
    pid = getattr(args, "server_pid", None)
    if pid:
        server_cpu = cpu_seconds(pid) - server_cpu0
        result["server_cpu_us_per_msg"] = round(1e6 * server_cpu / produced)
    result.update(_percentiles(late, "producer_late_ms"))
    result.update(fields)
    return result
