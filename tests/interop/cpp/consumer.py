"""C++ client (``rocketmq==0.4.4`` wheel, C++ 1.x engine) push consumer for the interop tests.

Runs under the client's own virtualenv (``.interop/cpp``), never the project's::

    .interop/cpp/bin/python tests/interop/cpp/consumer.py --namesrv 127.0.0.1:9876 \
        --topic T --group G --expression 'TagA || TagB' --instance c1

Clustering model. Lines: ``started`` once ``start()`` returned (with the client id); ``rebalanced``
(the queues of --topic this client now owns) after every allocation; ``message`` per delivery
(topic, tags, keys, body, msgId, queueId, queueOffset, clientId); ``stopped`` on SIGTERM/SIGINT
(exit 0); ``deadline`` when ``--deadline`` seconds pass first (exit 3). ``--fail-once TAG``:
messages with that tag answer RECONSUME_LATER on their first delivery (the engine sends them back
with CONSUMER_SEND_MSG_BACK; they return through ``%RETRY%<group>``).

The 0.4.4 binding exposes neither the client id nor a rebalance callback, but the engine logs both
to ``$HOME/logs/rocketmq-cpp/<pid>_rocketmq-cpp.log.0``: ``clientID:<pid>-<ip>@<instance>`` at
start, and per rebalance one ``client id:<id> of topic:<topic>`` line per consumer of the group
followed by one ``allocate
mq:MessageQueue [topic=..., brokerName=..., queueId=...]`` line per queue. A thread tails that log.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import signal
import sys
import threading
import time

from rocketmq.client import PushConsumer, RecvMessage
from rocketmq.exceptions import ffi_check
from rocketmq.ffi import dll

CONSUME_SUCCESS, RECONSUME_LATER = 0, 1  # the C API's CConsumeStatus

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


CLIENT_ID = re.compile(r"clientID:(\S+?),")
REBALANCE = re.compile(r"client id:(\S+) of topic:(\S+?)\[")
ALLOCATE = re.compile(r"allocate mq:MessageQueue \[topic=(.*?), brokerName=(.*?), queueId=(\d+)\]")


class LogWatcher(threading.Thread):
    """Tails the engine's log file; learns the client id and emits ``rebalanced`` lines."""

    def __init__(self, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.path = (
            pathlib.Path.home() / "logs" / "rocketmq-cpp" / f"{os.getpid()}_rocketmq-cpp.log.0"
        )
        self.client_id: str | None = None
        self.known = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        position, pending = 0, ""
        allocation: list[dict[str, object]] | None = None
        consumers: list[str] = []
        last_line = time.monotonic()
        while not self.stop.is_set():
            try:
                with self.path.open("r", errors="replace") as log:
                    log.seek(position)
                    chunk = log.read()
                    position = log.tell()
            except OSError:
                chunk = ""
            lines = (pending + chunk).split("\n")
            pending = lines.pop()
            if lines:
                last_line = time.monotonic()
            for line in lines:
                allocated = ALLOCATE.search(line)
                if allocation is not None and allocated and allocated.group(1) == self.topic:
                    allocation.append(
                        {"broker": allocated.group(2), "queueId": int(allocated.group(3))}
                    )
                    continue
                if allocation is not None and "range is:" in line:
                    continue  # the allocation strategy's own line, inside the block
                rebalance = REBALANCE.search(line)
                if rebalance and rebalance.group(2) == self.topic:
                    # One "client id" line per consumer of the group, then the allocation.
                    if allocation is None:
                        allocation, consumers = [], []
                    consumers.append(rebalance.group(1))
                    continue
                if allocation is not None:
                    self.emit_allocation(allocation, consumers)
                    allocation = None
                found = CLIENT_ID.search(line)
                if found and self.client_id is None:
                    self.client_id = found.group(1)
                    self.known.set()
            if allocation is not None and time.monotonic() - last_line > 0.3:
                # An allocation block ends at the next line, or after a quiet spell.
                self.emit_allocation(allocation, consumers)
                allocation = None
            if not chunk:
                time.sleep(0.05)

    def emit_allocation(self, queues: list[dict[str, object]], consumers: list[str]) -> None:
        queues.sort(key=lambda q: (q["broker"], q["queueId"]))
        emit(
            "rebalanced",
            clientId=self.client_id,
            topic=self.topic,
            queues=queues,
            consumers=sorted(consumers),
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expression", default="*")
    parser.add_argument("--instance", default=f"interop{os.getpid()}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument(
        "--fail-once", default="", help="messages with this tag fail their first delivery"
    )
    args = parser.parse_args()
    watcher = LogWatcher(args.topic)
    watcher.start()
    client_id = f"@{args.instance}"  # until the log tells the whole id

    stop = threading.Event()
    reason: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_message(_consumer: int, handle: int) -> int:
        msg = RecvMessage(handle)
        tags = text(msg.tags)
        retry = bool(args.fail_once) and tags == args.fail_once and msg.reconsume_times == 0
        emit(
            "message",
            action="retry" if retry else "ok",
            clientId=client_id,
            topic=msg.topic,
            tags=tags,
            keys=text(msg.keys),
            body=text(msg.body),
            msgId=msg.id,
            queueId=msg.queue_id,
            queueOffset=msg.queue_offset,
            reconsumeTimes=msg.reconsume_times,
            uniqKey=text(msg.get_property("UNIQ_KEY")),
        )
        return RECONSUME_LATER if retry else CONSUME_SUCCESS

    consumer = PushConsumer(args.group)
    consumer.set_namesrv_addr(args.namesrv)
    consumer.set_instance_name(args.instance)
    consumer.set_thread_count(args.threads)
    # Not PushConsumer.subscribe(): its wrapper re-raises a callback's exception from a finally
    # clause, so ctypes prints it and returns 0 (CONSUME_SUCCESS): a failed message could never
    # be retried. Subscribe and register a callback that returns the status itself.
    ffi_check(dll.Subscribe(consumer._handle, args.topic.encode(), args.expression.encode()))
    consumer._register_callback(on_message)
    consumer.start()
    if watcher.known.wait(10):
        client_id = watcher.client_id
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
