"""The machine's floor for benchmark a): one request in flight over loopback, nothing else.

Two processes, plain blocking sockets, no framing, no work: the client writes a request of
``--size`` bytes (1,200 by default: a 1 KiB message with its remoting header), the server
answers ``--reply`` bytes (100: a send response) for each read. Whatever a producer and a
broker do, a sync send costs at least this round trip; ``--same-cpu`` pins both processes to
one CPU, so a wake-up needs no other vCPU (the cost a cross-CPU wake-up adds is the
difference between the two figures).

    .venv/bin/python bench/pingpong.py [--seconds 3] [--same-cpu]

Prints the round trips per second each second, then ``SUMMARY {json}`` (``rt_us`` is the
mean round trip).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time


def _serve(listener: socket.socket, reply: bytes) -> None:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while conn.recv(65536):
        conn.sendall(reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=1200, help="request bytes (1200)")
    parser.add_argument("--reply", type=int, default=100, help="reply bytes (100)")
    parser.add_argument("--same-cpu", action="store_true", help="pin both processes to one CPU")
    args = parser.parse_args(argv)
    if args.same_cpu:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the child inherits it
    listener = socket.create_server(("127.0.0.1", 0))
    pid = os.fork()
    if pid == 0:
        try:
            _serve(listener, b"r" * args.reply)
        finally:
            os._exit(0)
    address = listener.getsockname()
    listener.close()
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = b"q" * args.size
    total = 0
    start = last = time.perf_counter()
    count = 0
    while True:
        sock.sendall(request)
        sock.recv(65536)
        count += 1
        if count % 256 == 0:
            now = time.perf_counter()
            if now - last >= 1.0:
                print(f"[pingpong] round trips/s: {count / (now - last):,.0f}", flush=True)
                total += count
                count = 0
                last = now
            if now - start >= args.seconds:
                break
    total += count
    elapsed = time.perf_counter() - start
    sock.close()
    os.waitpid(pid, 0)
    summary = {
        "bench": "pingpong",
        "round_trips": total,
        "seconds": round(elapsed, 3),
        "per_second": round(total / elapsed),
        "rt_us": round(1e6 * elapsed / total, 1),
        "same_cpu": args.same_cpu,
        "size": args.size,
    }
    print("SUMMARY " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
