"""C++ client (``rocketmq==0.4.4`` wheel, C++ 1.x engine) push consumer for the interop tests.

Runs under the client's own virtualenv (``.interop/cpp``), never the project's::

    .interop/cpp/bin/python tests/interop/cpp/consumer.py --namesrv 127.0.0.1:9876 \
        --topic T --group G --expression 'TagA || TagB' --instance c1

Clustering model. Lines: ``started`` once ``start()`` returned; ``message`` per delivery (topic,
tags, keys, body, msgId, queueId, queueOffset, clientId); ``stopped`` on SIGTERM/SIGINT (exit 0);
``deadline`` when ``--deadline`` seconds pass first (exit 3). The 0.4.4 binding exposes no
rebalance callback and no client id: the client id is ``<local ip>@<instance>``, so ``clientId``
printed here is ``@<instance>``, the part the test can know.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from rocketmq.client import PushConsumer

_print_lock = threading.Lock()


def emit(event: str, **fields: object) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expression", default="*")
    parser.add_argument("--instance", default=f"interop{os.getpid()}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    client_id = f"@{args.instance}"

    stop = threading.Event()
    reason: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_message(msg: object) -> None:
        emit(
            "message",
            clientId=client_id,
            topic=msg.topic,
            tags=text(msg.tags),
            keys=text(msg.keys),
            body=text(msg.body),
            msgId=msg.id,
            queueId=msg.queue_id,
            queueOffset=msg.queue_offset,
            reconsumeTimes=msg.reconsume_times,
            uniqKey=text(msg.get_property("UNIQ_KEY")),
        )

    consumer = PushConsumer(args.group)
    consumer.set_namesrv_addr(args.namesrv)
    consumer.set_instance_name(args.instance)
    consumer.set_thread_count(args.threads)
    consumer.subscribe(args.topic, on_message, args.expression)
    consumer.start()
    emit(
        "started",
        clientId=client_id,
        group=args.group,
        topic=args.topic,
        expression=args.expression,
    )

    timed_out = not stop.wait(args.deadline)
    if timed_out:
        emit("deadline", seconds=args.deadline)
        reason.append("deadline")

    # shutdown() joins the engine's threads; never let it keep the process alive.
    done = threading.Event()

    def shutdown() -> None:
        consumer.shutdown()
        done.set()

    threading.Thread(target=shutdown, daemon=True).start()
    clean = done.wait(10)
    emit("stopped", reason=reason[0] if reason else "?", clean=clean)
    return 3 if timed_out else 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception as exc:
        emit("fatal", error=repr(exc))
        code = 2
    sys.stdout.flush()
    os._exit(code)
