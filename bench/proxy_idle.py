"""Threads and RSS of one process holding the proxy's front (``actors.proxy.front``), a grpcio
server behind it, and N idle relayed HTTP/2 connections (each sent the preface and an empty
SETTINGS frame, and got grpcio's back); ``--gevent``: monkey-patched, grpcio on the hub, as in
``cluster --proxy``. Prints /proc/self/status' Threads and VmRSS before, with the N held, and
after they closed.

    .venv/bin/python bench/proxy_idle.py [--connections 500] [--gevent]
"""

from __future__ import annotations

import sys

if "--gevent" in sys.argv:
    from gevent import monkey

    monkey.patch_all()
    import grpc.experimental.gevent as grpc_gevent

    grpc_gevent.init_gevent()

import argparse
import concurrent.futures
import pathlib
import socket
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from actors.proxy.front import PREFACE, Front  # noqa: E402

SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def status() -> dict[str, str]:
    with open("/proc/self/status") as lines:
        pairs = (line.partition(":")[::2] for line in lines)
        return {k: v.strip() for k, v in pairs if k in ("Threads", "VmRSS")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--gevent", action="store_true")
    args = parser.parse_args()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    plain = server.add_insecure_port("127.0.0.1:0")
    server.start()
    front = Front("127.0.0.1", 0, plain, None)
    front.limits.per_host = None
    port = front.start()
    time.sleep(0.5)
    before = status()
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.connections)]
    for conn in conns:
        conn.sendall(PREFACE + SETTINGS)
    for conn in conns:
        conn.settimeout(10)
        assert conn.recv(9), "no answer relayed"
    time.sleep(1.0)
    held = status()
    print(f"before {before}; {args.connections} idle relayed {held}", flush=True)
    for conn in conns:
        conn.close()
    deadline = time.monotonic() + 10
    while front.limits.held and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    print(f"after they closed {status()}, held {front.limits.held}", flush=True)
    front.stop()
    server.stop(0)


if __name__ == "__main__":
    main()
