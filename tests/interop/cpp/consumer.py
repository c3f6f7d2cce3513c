"""C++ client push consumer for the interop tests, for both C++ engines behind the same binding:
``rocketmq==0.4.4`` (engine 1.x) and ``rocketmq-python-cvs==2.1.0.3`` (engine 2.1).

Runs under the client's own virtualenv (``.interop/cpp`` or ``.interop/cvs``), never the
project's::

    .interop/cpp/bin/python tests/interop/cpp/consumer.py --namesrv 127.0.0.1:9876 \
        --topic T --group G --expression 'TagA || TagB' --instance c1

Clustering model. Lines: ``started`` once ``start()`` returned (with the client id); ``rebalanced``
(the queues of --topic this client now owns) after every allocation; ``message`` per delivery
(topic, tags, keys, body, msgId, queueId, queueOffset, clientId); ``stopped`` on SIGTERM/SIGINT
(exit 0); ``deadline`` when ``--deadline`` seconds pass first (exit 3). ``--fail-once TAG``:
messages with that tag answer RECONSUME_LATER on their first delivery (the engine sends them back
with CONSUMER_SEND_MSG_BACK; they return through ``%RETRY%<group>``). ``--orderly``: an orderly
consumer, which locks its queues at the broker (LOCK_BATCH_MQ) and consumes each queue in order.
``--access-key``/``--secret-key``: sign every request for RocketMQ's ACL (``--channel`` names the
``OnsChannel`` the engine adds). ``--broadcasting``: the BROADCASTING message model (every consumer
of the group takes every queue; offsets stay in the client, ``$HOME/.rocketmq_offsets/``); its
``rebalanced`` lines list the queues the engine has added so far, each with the ``offset`` it
starts from (no consumer ids: broadcasting asks the broker for none).

The binding exposes neither the client id nor a rebalance callback, but the engines log both to
``$HOME/logs/rocketmq-cpp/<pid>_rocketmq-cpp.log.0`` (engine 2.1: the folder named by
``ROCKETMQ_CLIENT_LOG_DIR``, which this script sets to the same place; its default is
``/logs/rocketmq-client/``, outside HOME). A thread tails that log:

- ``clientID:<id>,`` at start (1.x: ``<pid>-<ip>@<instance>``; 2.1: ``<ip>@<pid>#<instance>``);
- engine 1.x, every rebalance: one ``client id:<id> of topic:<topic>`` line per consumer of the
  group, then one ``allocate mq:MessageQueue [topic=..., brokerName=..., queueId=...]`` per queue;
- engine 2.1, when the allocation changed: ``Allocation result for [Consumer Group: G, Topic: T,
  Current Consumer ID: id] is changed.``, then ``MessageQueue [topic=..., brokerName=...,
  queueId=...]`` per queue, then ``[doRebalance:...]``;
- both engines, per queue a consumer starts pulling (the only lines a broadcasting rebalance
  writes): ``add mq:MessageQueue [...], request initiall offset:N`` (1.x) or ``Add
  mq:MessageQueue [...], request initial offset:N`` (2.1).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import re
import signal
import sys
import threading
import time

LOG_DIR = pathlib.Path.home() / "logs" / "rocketmq-cpp"
os.environ.setdefault("ROCKETMQ_CLIENT_LOG_DIR", f"{LOG_DIR}/")  # engine 2.1, read at start

from rocketmq.client import MessageModel, PushConsumer, RecvMessage  # noqa: E402
from rocketmq.exceptions import ffi_check  # noqa: E402
from rocketmq.ffi import dll  # noqa: E402
from script_io import emit, text  # noqa: E402

CONSUME_SUCCESS, RECONSUME_LATER = 0, 1  # the C API's CConsumeStatus

CLIENT_ID = re.compile(r"clientID:(\S+?),")
QUEUE = r"MessageQueue \[topic=(.*?), brokerName=(.*?), queueId=(\d+)\]"
V1_CONSUMER = re.compile(r"client id:(\S+) of topic:(\S+?)\[")
V1_QUEUE = re.compile(r"allocate mq:" + QUEUE)
V2_START = re.compile(
    r"Allocation result for \[Consumer Group: .*?, Topic: (.*?), Current Consumer"
)
V2_QUEUE = re.compile(r"^" + QUEUE)
ADD_QUEUE = re.compile(r"[Aa]dd mq:" + QUEUE + r", request initiall? offset:(-?\d+)")


class LogWatcher(threading.Thread):
    """Tails the engine's log file; learns the client id and emits ``rebalanced`` lines."""

    def __init__(self, topic: str, broadcasting: bool = False) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.broadcasting = broadcasting
        self.added: dict[tuple[str, int], int] = {}  # broadcasting: queue -> start offset
        self.path = LOG_DIR / f"{os.getpid()}_rocketmq-cpp.log.0"
        self.client_id: str | None = None
        self.known = threading.Event()
        # The block being read: engine "v1"/"v2", consumer ids (v1), queues.
        self.engine: str | None = None
        self.consumers: list[str] = []
        self.queues: list[dict[str, object]] = []

    def run(self) -> None:
        position, pending = 0, ""
        last_line = time.monotonic()
        while True:
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
                self.feed(line)
            if self.engine == "v1" and time.monotonic() - last_line > 0.3:
                self.flush()  # a v1 block ends at the next line, or after a quiet spell
            if not chunk:
                time.sleep(0.05)

    def feed(self, line: str) -> None:
        found = CLIENT_ID.search(line)
        if found and self.client_id is None:
            self.client_id = found.group(1)
            self.known.set()
        if self.broadcasting:
            self.feed_broadcasting(line)
            return
        if self.engine == "v1":
            queue = V1_QUEUE.search(line)
            consumer = V1_CONSUMER.search(line)
            if queue and queue.group(1) == self.topic:
                self.add(queue)
                return
            if consumer and consumer.group(2) == self.topic:
                self.consumers.append(consumer.group(1))
                return
            if "range is:" in line:
                return  # the allocation strategy's own line, inside the block
            self.flush()
        elif self.engine == "v2":
            queue = V2_QUEUE.search(line)
            if queue:
                if queue.group(1) == self.topic:
                    self.add(queue)
                return
            if line.startswith("[doRebalance"):
                self.flush()
            return
        consumer = V1_CONSUMER.search(line)
        if consumer and consumer.group(2) == self.topic:
            self.engine, self.consumers, self.queues = "v1", [consumer.group(1)], []
        started = V2_START.search(line)
        if started and started.group(1) == self.topic:
            self.engine, self.consumers, self.queues = "v2", [], []

    def feed_broadcasting(self, line: str) -> None:
        added = ADD_QUEUE.search(line)
        if not added or added.group(1) != self.topic:
            return
        self.added[(added.group(2), int(added.group(3)))] = int(added.group(4))
        queues = [
            {"broker": broker, "queueId": queue_id, "offset": offset}
            for (broker, queue_id), offset in sorted(self.added.items())
        ]
        emit("rebalanced", clientId=self.client_id, topic=self.topic, queues=queues)

    def add(self, queue: re.Match[str]) -> None:
        self.queues.append({"broker": queue.group(2), "queueId": int(queue.group(3))})

    def flush(self) -> None:
        self.queues.sort(key=lambda q: (q["broker"], q["queueId"]))
        emit(
            "rebalanced",
            clientId=self.client_id,
            topic=self.topic,
            queues=self.queues,
            consumers=sorted(self.consumers) or None,
        )
        self.engine, self.consumers, self.queues = None, [], []


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
    parser.add_argument(
        "--orderly", action="store_true", help="orderly push consumer (locks its queues)"
    )
    parser.add_argument(
        "--broadcasting", action="store_true", help="BROADCASTING message model (else CLUSTERING)"
    )
    # RocketMQ's ACL: sign every request; the engine adds OnsChannel to the signed fields.
    parser.add_argument("--access-key", default="")
    parser.add_argument("--secret-key", default="")
    parser.add_argument("--channel", default="ALIYUN", help="the engine's OnsChannel value")
    args = parser.parse_args()
    watcher = LogWatcher(args.topic, args.broadcasting)
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

    model = MessageModel.BROADCASTING if args.broadcasting else MessageModel.CLUSTERING
    consumer = PushConsumer(args.group, orderly=args.orderly, message_model=model)
    if hasattr(dll, "SetPushConsumerMessageTrace"):
        # Engine 2.1 only: its PushConsumer.shutdown() dereferences the message-trace producer,
        # which exists only with tracing on (segfault otherwise). CTraceModel OPEN = 0.
        dll.SetPushConsumerMessageTrace.argtypes = [ctypes.c_void_p, ctypes.c_int]
        dll.SetPushConsumerMessageTrace.restype = ctypes.c_int
        ffi_check(dll.SetPushConsumerMessageTrace(consumer._handle, 0))
    consumer.set_namesrv_addr(args.namesrv)
    consumer.set_instance_name(args.instance)
    consumer.set_thread_count(args.threads)
    if args.access_key:
        consumer.set_session_credentials(args.access_key, args.secret_key, args.channel)
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

    # Short waits: the main thread must wake for the SIGTERM handler to run; a signal the
    # kernel hands to one of the engine's threads does not interrupt a long wait here (CI run
    # of 2026-11-23 23:02: engine 1.x's consumer slept through its SIGTERM until killed).
    until = time.monotonic() + args.deadline
    while not stop.wait(0.2) and time.monotonic() < until:
        pass
    timed_out = not stop.is_set()
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
