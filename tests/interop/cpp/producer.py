"""C++ client producer for the interop tests, for both C++ engines behind the same binding:
``rocketmq==0.4.4`` (engine 1.x) and ``rocketmq-python-cvs==2.1.0.3`` (engine 2.1).

Runs under the client's own virtualenv (``.interop/cpp`` or ``.interop/cvs``), never the
project's::

    .interop/cpp/bin/python tests/interop/cpp/producer.py --namesrv 127.0.0.1:9876 \
        --topic T --count 10 --tags TagA,TagB --prefix run1

Message i has tags ``tags[i % len(tags)]``, keys ``<prefix>-key-<i> <prefix>-k2-<i>`` and body
``<prefix> body <i>`` (padded to ``--body-size``). One JSON line per send result (``sent``: msgId,
status, queue, offset), then ``done``. The 0.4.4 send result has no queue id: ``queue`` is null
unless ``--select-queue`` is given, which sends through ``send_orderly`` with a selector that
picks queue ``i % queue count``. ``--batch N`` sends N messages per ``send_batch()`` call
(SEND_BATCH_MESSAGE); ``--delay-level L`` sets each message's delay level.
``--access-key``/``--secret-key``: sign every request for RocketMQ's ACL.
Exit 0 only when every send returned a stored status; 3 when ``--deadline`` passes first.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

# Engine 2.1 logs under ROCKETMQ_CLIENT_LOG_DIR (default /logs/rocketmq-client/): keep it in HOME.
LOG_DIR = pathlib.Path.home() / "logs" / "rocketmq-cpp"
os.environ.setdefault("ROCKETMQ_CLIENT_LOG_DIR", f"{LOG_DIR}/")

from rocketmq.client import Message, Producer  # noqa: E402
from script_io import emit, watchdog  # noqa: E402


def padded(text: str, size: int) -> str:
    n = 0
    while len(text) < size:
        text += f" {n} lorem ipsum dolor sit amet"
        n += 1
    return text[:size] if size else text


def add_credentials(parser: argparse.ArgumentParser) -> None:
    """``--access-key``/``--secret-key``: sign every request (RocketMQ's ACL); the engine adds
    ``OnsChannel`` (``--channel``) to the signed fields."""
    parser.add_argument("--access-key", default="")
    parser.add_argument("--secret-key", default="")
    parser.add_argument("--channel", default="ALIYUN", help="the engine's OnsChannel value")


NOT_SENT = "No route info of this topic"
"""What the C++ 1.x client raises once every attempt of a send failed. Seen when its attempts
could not get a connection: its connection table is guarded by a timed mutex it only *tries*
to take ("GetTransport of ... get timed_mutex timeout" in its log), so a send that coincides
with its own heartbeat thread connecting fails at once, before anything reaches a broker. An
application retries; so does this driver, for this error only. Should an attempt have reached a
broker after all, the scenarios' stored-count checks would see the duplicate."""


def send_sync(producer: Producer, msg: Message, i: int) -> object:
    for attempt in range(4):
        try:
            return producer.send_sync(msg)
        except Exception as exc:
            if NOT_SENT not in str(exc) or attempt == 3:
                raise
            emit("send_retry", i=i, error=repr(exc))
            time.sleep(0.2)
    raise AssertionError("unreachable")


def send_batch(producer: Producer, batch: list[tuple[int, str, str, str, Message]]) -> int:
    """One send_batch() call; one ``sent`` line per message. Returns the number of failures.

    The result names the first message's queue offset (the others follow it in the same queue)
    and the batch's message ids joined by commas."""
    try:
        result = producer.send_batch([msg for *_, msg in batch])
    except Exception as exc:
        for i, tag, keys, body, _msg in batch:
            emit("send_error", i=i, tags=tag, keys=keys, body=body, error=repr(exc), batch=True)
        return len(batch)
    ids = result.msg_id.split(",")
    for n, (i, tag, keys, body, _msg) in enumerate(batch):
        emit(
            "sent",
            i=i,
            msgId=ids[n] if len(ids) == len(batch) else result.msg_id,
            status="SEND_OK" if result.status.name == "OK" else result.status.name,
            queue=None,
            offset=result.offset + n,
            tags=tag,
            keys=keys,
            body=body,
            batch=True,
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", default="actormq_interop_cpp_producer")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--tags", default="TagA")
    parser.add_argument("--prefix", default="cpp")
    parser.add_argument("--select-queue", action="store_true")
    parser.add_argument("--send-timeout", type=int, default=10000, help="milliseconds")
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument(
        "--body-size", type=int, default=0, help="pad bodies (compressed from 4 KiB on)"
    )
    parser.add_argument("--batch", type=int, default=0, help="send_batch() N messages at a time")
    parser.add_argument("--delay-level", type=int, default=0, help="1..18 (1 = 1 s)")
    add_credentials(parser)
    args = parser.parse_args()
    watchdog(args.deadline)
    tags = args.tags.split(",")

    producer = Producer(args.group, timeout=args.send_timeout)
    producer.set_namesrv_addr(args.namesrv)
    if args.access_key:
        producer.set_session_credentials(args.access_key, args.secret_key, args.channel)
    producer.start()
    emit("started", group=args.group)

    failures = 0
    batch: list[tuple[int, str, str, str, Message]] = []
    for i in range(args.count):
        tag = tags[i % len(tags)]
        keys = f"{args.prefix}-key-{i} {args.prefix}-k2-{i}"
        body = padded(f"{args.prefix} body {i}", args.body_size)
        msg = Message(args.topic)
        msg.set_keys(keys)
        msg.set_tags(tag)
        msg.set_body(body)
        if args.delay_level:
            msg.set_delay_time_level(args.delay_level)
        if args.batch:
            batch.append((i, tag, keys, body, msg))
            if len(batch) == args.batch or i == args.count - 1:
                failures += send_batch(producer, batch)
                batch = []
            continue
        chosen: dict[str, int] = {}
        try:
            if args.select_queue:

                def select(
                    queue_count: int, _msg: object, _arg: object, i: int = i, chosen: dict = chosen
                ) -> int:
                    chosen["queue"] = i % queue_count
                    return chosen["queue"]

                result = producer.send_orderly(msg, i, queue_selector=select)
            else:
                result = send_sync(producer, msg, i)
        except Exception as exc:
            failures += 1
            emit("send_error", i=i, tags=tag, keys=keys, body=body, error=repr(exc))
            continue
        emit(
            "sent",
            i=i,
            msgId=result.msg_id,
            status="SEND_OK" if result.status.name == "OK" else result.status.name,
            queue=chosen.get("queue"),
            offset=result.offset,
            tags=tag,
            keys=keys,
            body=body,
        )
    producer.shutdown()
    emit("done", sent=args.count - failures, failed=failures)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    try:
        code = main()
    except Exception as exc:
        emit("fatal", error=repr(exc))
        code = 2
    sys.stdout.flush()
    # The C++ engine's threads and atexit handlers can hang interpreter teardown: leave at once.
    os._exit(code)
