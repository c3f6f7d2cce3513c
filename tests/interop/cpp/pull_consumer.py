"""C++ client pull consumer (``DefaultMQPullConsumer``) for the interop tests, for both C++
engines behind the same binding: ``rocketmq==0.4.4`` (engine 1.x) and
``rocketmq-python-cvs==2.1.0.3`` (engine 2.1).

Runs under the client's own virtualenv (``.interop/cpp`` or ``.interop/cvs``), never the
project's::

    .interop/cpp/bin/python tests/interop/cpp/pull_consumer.py --namesrv 127.0.0.1:9876 \
        --topic T --group G --expression 'TagA || TagB' --max-num 4

Reads every queue of ``--topic`` from offset 0 to its end, the way the binding's
``PullConsumer.pull(topic, expression, max_num)`` generator does: the same C calls
(``FetchSubscriptionMessageQueues``, then ``Pull(mq, expression, offset, max_num)`` from the
result's ``nextBeginOffset`` until NO_NEW_MSG, ``ReleasePullResult``), made here directly
because the generator hides each pull's status and keeps its offsets in a class-level dict keyed
``topic@queueId`` (two brokers' queue 0 would share one offset).

Lines: ``started``; ``queues`` (what FetchSubscriptionMessageQueues returned: broker, queueId);
``pulled`` per Pull call (broker, queueId, offset asked, status FOUND / NO_NEW_MSG /
NO_MATCHED_MSG / OFFSET_ILLEGAL / BROKER_TIMEOUT, nextBeginOffset, minOffset, maxOffset, count);
``message`` per message found (topic, tags, keys, body, msgId, broker, queueId, queueOffset,
reconsumeTimes); ``done`` (exit 0) once every queue answered NO_NEW_MSG; ``fatal`` (exit 2);
``deadline`` (exit 3) when ``--deadline`` seconds pass first. A queue that answers
BROKER_TIMEOUT is asked again at the same offset.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import sys
import threading

# Engine 2.1 logs under ROCKETMQ_CLIENT_LOG_DIR (default /logs/rocketmq-client/): keep it in HOME.
LOG_DIR = pathlib.Path.home() / "logs" / "rocketmq-cpp"
os.environ.setdefault("ROCKETMQ_CLIENT_LOG_DIR", f"{LOG_DIR}/")

from rocketmq.client import PullConsumer, RecvMessage  # noqa: E402
from rocketmq.exceptions import ffi_check  # noqa: E402
from rocketmq.ffi import _CMessageQueue, _CPullStatus, dll  # noqa: E402
from script_io import emit, text, watchdog  # noqa: E402


def read_queue(consumer: PullConsumer, mq: _CMessageQueue, expression: str, max_num: int) -> None:
    """Pull one queue from offset 0 until NO_NEW_MSG, emitting every pull and message."""
    broker, queue_id = text(mq.brokerName), int(mq.queueId)
    offset = 0
    while True:
        result = dll.Pull(
            consumer._handle, ctypes.pointer(mq), expression.encode(), offset, max_num
        )
        try:
            status = _CPullStatus(result.pullStatus).name
            emit(
                "pulled",
                broker=broker,
                queueId=queue_id,
                offset=offset,
                status=status,
                nextBeginOffset=result.nextBeginOffset,
                minOffset=result.minOffset,
                maxOffset=result.maxOffset,
                count=result.size if status == "FOUND" else 0,
            )
            if status == "FOUND":
                for i in range(int(result.size)):
                    msg = RecvMessage(result.msgFoundList[i])
                    emit(
                        "message",
                        topic=msg.topic,
                        tags=text(msg.tags),
                        keys=text(msg.keys),
                        body=text(msg.body),
                        msgId=msg.id,
                        broker=broker,
                        queueId=msg.queue_id,
                        queueOffset=msg.queue_offset,
                        reconsumeTimes=msg.reconsume_times,
                    )
        finally:
            dll.ReleasePullResult(result)  # the binding does not check its status either
        if status == "NO_NEW_MSG":
            return
        if status != "BROKER_TIMEOUT":
            offset = result.nextBeginOffset


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expression", default="*")
    parser.add_argument("--max-num", type=int, default=32, help="messages per Pull call")
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    watchdog(args.deadline)

    consumer = PullConsumer(args.group)
    consumer.set_namesrv_addr(args.namesrv)
    consumer.start()
    emit("started", group=args.group, topic=args.topic, expression=args.expression)

    queues = ctypes.POINTER(_CMessageQueue)()
    size = ctypes.c_int()
    ffi_check(
        dll.FetchSubscriptionMessageQueues(
            consumer._handle, args.topic.encode(), ctypes.pointer(queues), ctypes.pointer(size)
        )
    )
    try:
        found = [queues[i] for i in range(size.value)]
        emit("queues", queues=[{"broker": text(q.brokerName), "queueId": q.queueId} for q in found])
        for mq in found:
            read_queue(consumer, mq, args.expression, args.max_num)
    finally:
        ffi_check(dll.ReleaseSubscriptionMessageQueue(queues))
    emit("done")

    # shutdown() joins the engine's threads; never let it keep the process alive.
    done = threading.Event()

    def shutdown() -> None:
        consumer.shutdown()
        done.set()

    threading.Thread(target=shutdown, daemon=True).start()
    emit("stopped", clean=done.wait(10))
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
