"""actormq's own client (``actors.client.Producer``) for the failover test, as a subprocess with
the same JSON lines as the real clients' ``failover_producer`` scripts::

    .venv/bin/python tests/interop/own/failover_producer.py --namesrv 127.0.0.1:9876 --topic T

Message i has body and keys ``<prefix>-<i>``. One line per send: ``sent`` (i, value, status,
broker, queue, offset, start, end: wall-clock ms) or ``send_error``. Paced ``--interval`` ms
apart; ``--pause-file`` pauses (``paused`` / ``resumed``); SIGTERM: ``done``, exit 0.
Client options: defaults (route refresh and heartbeat every 30 s, send timeout 3 s, 2 retries)
unless given.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import signal
import sys
import threading
import time

from actors.client import ClientError, Message, Producer


def emit(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def now_ms() -> int:
    return int(time.time() * 1000)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", default="actormq_interop_own_failover_producer")
    parser.add_argument("--prefix", default="own")
    parser.add_argument("--interval", type=int, default=50, help="ms between sends")
    parser.add_argument("--send-timeout", type=float, default=3.0, help="seconds")
    parser.add_argument("--route-refresh-interval", type=float, default=30.0, help="seconds")
    parser.add_argument("--pause-file", default="")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pause = pathlib.Path(args.pause_file) if args.pause_file else None

    producer = Producer(
        args.group,
        args.namesrv,
        send_timeout=args.send_timeout,
        route_refresh_interval=args.route_refresh_interval,
    ).start()
    emit("started", group=args.group, routeRefreshInterval=args.route_refresh_interval)
    ok = failed = i = 0
    paused = False
    while not stop.is_set():
        if time.monotonic() > deadline:
            emit("deadline", seconds=args.deadline)
            producer.shutdown()
            return 3
        while pause is not None and pause.exists() and not stop.is_set():
            if not paused:
                paused = True
                emit("paused", next=i, at=now_ms())
            stop.wait(0.005)
        if paused:
            paused = False
            emit("resumed", next=i, at=now_ms())
        if stop.is_set():
            break
        value = f"{args.prefix}-{i}"
        start = now_ms()
        try:
            result = producer.send(Message(args.topic, value, tags="TagA", keys=value))
        except ClientError as exc:
            failed += 1
            emit("send_error", i=i, value=value, start=start, end=now_ms(), error=repr(exc))
        else:
            ok += 1
            emit(
                "sent",
                i=i,
                value=value,
                status=result.status.name,
                broker=result.queue.broker_name,
                queue=result.queue.queue_id,
                offset=result.queue_offset,
                msgId=result.msg_id,
                start=start,
                end=now_ms(),
            )
        i += 1
        stop.wait(args.interval / 1000)
    emit("done", ok=ok, failed=failed)
    producer.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
