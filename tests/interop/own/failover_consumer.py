"""actormq's own client (``actors.client.PushConsumer``, clustering) for the failover test, as a
subprocess with the same JSON lines as the real clients' consumer scripts::

    .venv/bin/python tests/interop/own/failover_consumer.py --namesrv 127.0.0.1:9876 \
        --topic T --group G

Lines: ``started``; ``message`` per delivery (body, keys, broker, queueId, queueOffset, msgId,
reconsumeTimes, at: wall-clock ms); ``stopped`` on SIGTERM (exit 0); ``deadline`` (exit 3).
Client options: defaults (route refresh and heartbeat every 30 s, rebalance every 20 s, pull
error delay 3 s) except CONSUME_FROM_FIRST and what is given.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from actors.client import ConsumeFrom, ConsumeResult, MessageExt, PushConsumer

_lock = threading.Lock()


def emit(event: str, **fields: object) -> None:
    with _lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--route-refresh-interval", type=float, default=30.0, help="seconds")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()

    stop = threading.Event()
    reason: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def listener(msg: MessageExt) -> ConsumeResult:
        body = msg.body.decode(errors="replace")
        emit(
            "message",
            body=body,
            keys=" ".join(msg.keys) if isinstance(msg.keys, list) else msg.keys,
            msgId=msg.msg_id,
            broker=msg.broker_name,
            queueId=msg.queue_id,
            queueOffset=msg.queue_offset,
            reconsumeTimes=msg.reconsume_times,
            at=int(time.time() * 1000),
        )
        return ConsumeResult.CONSUME_SUCCESS

    consumer = PushConsumer(
        args.group,
        namesrv=args.namesrv,
        consume_from=ConsumeFrom.FIRST,
        route_refresh_interval=args.route_refresh_interval,
    )
    consumer.subscribe(args.topic, "*", listener)
    consumer.start()
    emit("started", group=args.group, topic=args.topic)
    timed_out = not stop.wait(args.deadline)
    if timed_out:
        emit("deadline", seconds=args.deadline)
    consumer.shutdown()
    emit("stopped", reason=reason[0] if reason else "deadline", clean=True)
    return 3 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
