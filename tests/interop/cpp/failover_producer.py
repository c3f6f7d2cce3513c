"""C++ client producer for the failover test (both engines: ``rocketmq==0.4.4``, engine 1.x, and
``rocketmq-python-cvs==2.1.0.3``, engine 2.1): a paced, numbered stream until SIGTERM.

Runs under the client's own virtualenv, never the project's::

    .interop/cpp/bin/python tests/interop/cpp/failover_producer.py --namesrv 127.0.0.1:9876 \
        --topic T --prefix cpp --interval 50

Message i has body and keys ``<prefix>-<i>`` (unique per run). One JSON line per send: ``sent``
(i, value, status, msgId, offset, start, end: wall-clock ms) or ``send_error`` (i, value,
start, end, error). Sends are ``send_sync`` calls paced ``--interval`` ms apart (end of one to
start of the next), whatever their outcome.

Pausing: while the file ``--pause-file`` exists nothing is sent; ``paused`` (i of the next
message) is printed once the send in flight, if any, has returned, and ``resumed`` when the
file is gone. SIGTERM: ``done`` after the send in flight, exit 0; ``--deadline``: ``deadline``,
exit 3.

Neither engine's C API offers a route refresh period: both refresh every topic's route from the
name server on a fixed 30 s timer (``MQClientFactory::updateTopicRouteInfo``), besides when a
topic has no usable route. The only producer options used are the group and the send timeout.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
import threading
import time

# Engine 2.1 logs under ROCKETMQ_CLIENT_LOG_DIR (default /logs/rocketmq-client/): keep it in HOME.
LOG_DIR = pathlib.Path.home() / "logs" / "rocketmq-cpp"
os.environ.setdefault("ROCKETMQ_CLIENT_LOG_DIR", f"{LOG_DIR}/")

from rocketmq.client import Message, Producer  # noqa: E402
from script_io import emit, watchdog  # noqa: E402


def now_ms() -> int:
    return int(time.time() * 1000)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", default="actormq_interop_cpp_failover_producer")
    parser.add_argument("--prefix", default="cpp")
    parser.add_argument("--interval", type=int, default=50, help="ms between sends")
    parser.add_argument("--send-timeout", type=int, default=3000, help="milliseconds")
    parser.add_argument("--pause-file", default="")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    watchdog(args.deadline)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pause = pathlib.Path(args.pause_file) if args.pause_file else None

    producer = Producer(args.group, timeout=args.send_timeout)
    producer.set_namesrv_addr(args.namesrv)
    producer.start()
    emit("started", group=args.group, sendTimeout=args.send_timeout)

    ok = failed = 0
    i = 0
    paused = False
    while not stop.is_set():
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
        msg = Message(args.topic)
        msg.set_keys(value)
        msg.set_tags("TagA")
        msg.set_body(value)
        start = now_ms()
        try:
            result = producer.send_sync(msg)
        except Exception as exc:
            failed += 1
            emit("send_error", i=i, value=value, start=start, end=now_ms(), error=repr(exc))
        else:
            ok += 1
            emit(
                "sent",
                i=i,
                value=value,
                status="SEND_OK" if result.status.name == "OK" else result.status.name,
                msgId=result.msg_id,
                offset=result.offset,
                start=start,
                end=now_ms(),
            )
        i += 1
        stop.wait(args.interval / 1000)
    emit("done", ok=ok, failed=failed)
    # shutdown() joins the engine's threads; never let it keep the process alive.
    threading.Thread(target=producer.shutdown, daemon=True).start()
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception as exc:
        emit("fatal", error=repr(exc))
        code = 2
    sys.stdout.flush()
    # The C++ engine's threads and atexit handlers can hang interpreter teardown: leave at once.
    os._exit(code)
