"""Threads and RSS of one process holding the proxy's front (``actors.proxy.front``), a grpcio
server behind it, N idle relayed HTTP/2 connections (each sent the preface and an empty
SETTINGS frame, and got grpcio's back) and M connections idle while they open (they send
nothing, or with ``--one-byte`` the preface's first byte, and wait: the front holds them until
its 10 s deadline); ``--gevent``: monkey-patched, grpcio on the hub, as in ``cluster --proxy``.
Prints /proc/self/status' Threads and VmRSS before, with the N relayed held, with the M opening
held too, and after they all closed. The front's connection limits are lifted (N + M may pass
4,096; mind ``ulimit -n``: about 2N + M + 100 descriptors on each side, one process).

    .venv/bin/python bench/proxy_idle.py [--connections 500] [--opening 500] [--one-byte]
                                         [--gevent]
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


def wait_held(front: Front, count: int, seconds: float = 30.0) -> None:
    """Until the front holds ``count`` connections (its accepting thread took them)."""
    deadline = time.monotonic() + seconds
    while front.limits.held != count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the front holds {front.limits.held}, not {count}")
        time.sleep(0.05)


def relayed(port: int, count: int) -> list[socket.socket]:
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    for conn in conns:
        conn.sendall(PREFACE + SETTINGS)
    for conn in conns:
        conn.settimeout(10)
        assert conn.recv(9), "no answer relayed"
    return conns


def opening(port: int, count: int, one_byte: bool) -> list[socket.socket]:
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    if one_byte:
        for conn in conns:
            conn.sendall(PREFACE[:1])
    return conns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500, help="idle relayed ones")
    parser.add_argument("--opening", type=int, default=500, help="idle opening ones")
    parser.add_argument("--one-byte", action="store_true", help="opening ones send 'P'")
    parser.add_argument("--gevent", action="store_true")
    args = parser.parse_args()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    plain = server.add_insecure_port("127.0.0.1:0")
    server.start()
    front = Front("127.0.0.1", 0, plain, None)
    front.limits.per_host = None
    front.limits.total = 1 << 30
    port = front.start()
    time.sleep(0.5)
    before = status()
    conns = relayed(port, args.connections)
    wait_held(front, args.connections)
    time.sleep(1.0)
    held = status()
    print(f"before {before}; {args.connections} idle relayed {held}", flush=True)
    started = time.monotonic()
    conns += opening(port, args.opening, args.one_byte)
    wait_held(front, args.connections + args.opening)
    time.sleep(0.5)
    kind = "sending 'P'" if args.one_byte else "sending nothing"
    print(
        f"+ {args.opening} opening ({kind}) {status()}, "
        f"{time.monotonic() - started:.2f} s after the first connected",
        flush=True,
    )
    for conn in conns:
        conn.close()
    wait_held(front, 0)
    time.sleep(0.5)
    print(f"after they closed {status()}, held {front.limits.held}", flush=True)
    front.stop()
    server.stop(0)


if __name__ == "__main__":
    main()
