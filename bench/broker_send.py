"""The broker's send path, measured with a raw blocking-socket client (no client library).

Starts ``python -m runtime`` (default profile, ASYNC_FLUSH, or SYNC_FLUSH with ``--sync``) on
free ports in a temporary directory, then sends SEND_MESSAGE_V2 frames of ``--size`` bytes
over one plain socket with ``--in-flight`` requests outstanding, and prints sends/s, the round
trip p50/p99 and the broker's CPU per send (from /proc: what the broker process spent, user +
system, divided by the sends). The client's own CPU per send is printed too: it bounds what one
connection can reach whatever the broker does.

    .venv/bin/python bench/broker_send.py [--seconds 5] [--in-flight 1] [--batch 100] [--sync]
    .venv/bin/python bench/broker_send.py --broker 127.0.0.1:10911 --pid PID   # a running one
    .venv/bin/python bench/broker_send.py --pull 1 [--fill 20000]   # pulls of 1 record instead
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cluster import spawned  # noqa: E402
from bench.meter import cpu_seconds  # noqa: E402
from runtime.hostport import parse_address  # noqa: E402
from runtime.remoting.batch import BatchEntry, encode_batch  # noqa: E402
from runtime.remoting.codes import RequestCode  # noqa: E402
from runtime.remoting.command import RemotingCommand  # noqa: E402
from runtime.remoting.frame import FrameDecoder, encode  # noqa: E402


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50 and p99 of round trips in seconds, as milliseconds."""
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 3),
    }


def frame(topic: str, body: bytes, opaque: int, batch: int) -> bytes:
    """SEND_MESSAGE_V2 of ``body``, or SEND_BATCH_MESSAGE of ``batch`` copies of it."""
    ext = {
        "a": "bench-raw",
        "b": topic,
        "c": "TBW102",
        "d": 4,
        "e": opaque % 4,
        "f": 0,
        "g": int(time.time() * 1000),
        "h": 0,
        "i": f"UNIQ_KEY\x01{opaque:032X}\x02WAIT\x01true\x02",
        "j": 0,
        "k": False,
    }
    if batch <= 1:
        return encode(
            RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, ext, body, opaque=opaque)
        )
    entries = [
        BatchEntry(0, body, f"UNIQ_KEY\x01{opaque:024X}{i:08X}\x02WAIT\x01true\x02")
        for i in range(batch)
    ]
    ext["m"] = True  # batch
    ext["i"] = ""
    return encode(
        RemotingCommand.request(
            RequestCode.SEND_BATCH_MESSAGE, ext, encode_batch(entries), opaque=opaque
        )
    )


def pull_frame(topic: str, queue_id: int, offset: int, nums: int, opaque: int) -> bytes:
    """PULL_MESSAGE of ``nums`` records at ``offset`` (no long poll), committing ``offset``."""
    ext = {
        "consumerGroup": "bench-raw-group",
        "topic": topic,
        "queueId": queue_id,
        "queueOffset": offset,
        "maxMsgNums": nums,
        "sysFlag": 1 | 4,  # COMMIT_OFFSET | SUBSCRIPTION
        "commitOffset": offset,
        "suspendTimeoutMillis": 0,
        "subscription": "*",
        "subVersion": 0,
        "expressionType": "TAG",
    }
    return encode(RemotingCommand.request(RequestCode.PULL_MESSAGE, ext, opaque=opaque))


def run_pull(address: tuple[str, int], pid: int, args: argparse.Namespace) -> dict[str, object]:
    """Fill one queue with sends, then pull it ``--pull`` records at a time, one pull in
    flight: the broker's cost of serving a pull (a consumer that keeps up gets few records)."""
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    decoder = FrameDecoder()
    body = (b"actormq-bench-" * (args.size // 14 + 1))[: args.size]
    inbox: list[RemotingCommand] = []

    def call(frame_bytes: bytes) -> RemotingCommand:
        sock.sendall(frame_bytes)
        while not inbox:
            inbox.extend(decoder.feed(sock.recv(1 << 16)))  # > 128 KiB: an mmap per recv
        return inbox.pop(0)

    topic = f"{args.topic}Pull"
    total = args.fill
    opaque = 0
    for opaque in range(1, total + 1):  # one queue: queue id = opaque % 4 == 0 -> use 4x
        call(frame(topic, body, opaque * 4, 1))
    offset, pulls, codes, latencies = 0, 0, {}, []
    perf = time.perf_counter
    cpu0, client0, t0 = cpu_seconds(pid), time.process_time(), perf()
    while offset < total:
        opaque += 1
        start = perf()
        reply = call(pull_frame(topic, 0, offset, args.pull, opaque))
        latencies.append(perf() - start)
        codes[reply.code] = codes.get(reply.code, 0) + 1
        if reply.code != 0:
            break
        offset = int(reply.ext_fields["nextBeginOffset"])
        pulls += 1
    elapsed = perf() - t0
    cpu, client = cpu_seconds(pid) - cpu0, time.process_time() - client0
    sock.close()
    return {
        "pulls": pulls,
        "pulls_per_s": round(pulls / elapsed),
        "msgs_per_s": round(offset / elapsed),
        **percentiles(latencies),
        "broker_cpu_us_per_pull": round(cpu / max(pulls, 1) * 1e6, 1),
        "client_cpu_us_per_pull": round(client / max(pulls, 1) * 1e6, 1),
        "codes": codes,
        "per_pull": args.pull,
    }


def run(address: tuple[str, int], pid: int, args: argparse.Namespace) -> dict[str, object]:
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    decoder = FrameDecoder()
    body = (b"actormq-bench-" * (args.size // 14 + 1))[: args.size]
    sent: dict[int, float] = {}
    latencies: list[float] = []
    codes: dict[int, int] = {}
    opaque = 0
    perf = time.perf_counter

    def send_one() -> None:
        nonlocal opaque
        opaque += 1
        sent[opaque] = perf()
        sock.sendall(frame(args.topic, body, opaque, args.batch))

    inbox: list[RemotingCommand] = []

    def receive() -> None:
        while not inbox:
            inbox.extend(decoder.feed(sock.recv(1 << 16)))
        reply = inbox.pop(0)
        latencies.append(perf() - sent.pop(reply.opaque))
        codes[reply.code] = codes.get(reply.code, 0) + 1

    for _ in range(50):  # warm up: topic creation, caches
        send_one()
        receive()
    latencies.clear()
    codes.clear()
    cpu0, client0, t0 = cpu_seconds(pid), time.process_time(), perf()
    deadline = t0 + args.seconds
    for _ in range(args.in_flight):
        send_one()
    done = 0
    while perf() < deadline:
        receive()
        done += 1
        send_one()
    while sent:
        receive()
        done += 1
    elapsed = perf() - t0
    cpu, client = cpu_seconds(pid) - cpu0, time.process_time() - client0
    sock.close()
    return {
        "sends": done,
        "sends_per_s": round(done / elapsed),
        "msgs_per_s": round(done * max(args.batch, 1) / elapsed),
        **percentiles(latencies),
        "broker_cpu_us_per_send": round(cpu / done * 1e6, 1),
        "broker_cpu_us_per_msg": round(cpu / done / max(args.batch, 1) * 1e6, 2),
        "client_cpu_us_per_send": round(client / done * 1e6, 1),
        "codes": codes,
        "in_flight": args.in_flight,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--in-flight", type=int, default=1)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--batch", type=int, default=1, help="messages per send (SEND_BATCH_MESSAGE)")
    p.add_argument("--topic", default="BenchRaw")
    p.add_argument("--sync", action="store_true", help="SYNC_FLUSH instead of ASYNC_FLUSH")
    p.add_argument("--broker", help="HOST:PORT of a running broker instead of spawning one")
    p.add_argument("--pid", type=int, help="with --broker: its process id (for the CPU figures)")
    p.add_argument("--pull", type=int, default=0, help="pull N records per request instead")
    p.add_argument("--fill", type=int, default=20000, help="with --pull: records to pull")
    args = p.parse_args()
    bench = run_pull if args.pull else run
    if args.broker:
        result = bench(parse_address(args.broker), args.pid or os.getpid(), args)
        print("SUMMARY " + json.dumps(result), flush=True)
        return
    with spawned("sync" if args.sync else "async") as (fields, proc):
        result = bench(parse_address(fields["broker-a/0"]), proc.pid, args)
    print("SUMMARY " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
