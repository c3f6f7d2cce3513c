"""Retries and dead letters: a listener that fails a message sends it back to the broker.

Sends --count messages. The consumer fails the first delivery of each (RECONSUME_LATER; an
exception would do the same): the client sends it back (CONSUMER_SEND_MSG_BACK), the broker puts
it into %RETRY%<group> with delay level 3 (10 s by default, 3 s with examples/features.toml) and
the consumer gets it again, on its original topic, with reconsume_times 1. Message 0 is poison:
it fails every time, so after --max-reconsume-times retries it lands in %DLQ%<group>, where a
PullConsumer reads it at the end.

    python -m runtime cluster --profile examples/features.toml     # fast retries
    python examples/retry_consumer.py --namesrv 127.0.0.1:9876 --count 3
"""

from __future__ import annotations

import threading
import time

from _common import parser, setup_logging

from actors.client import (
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageExt,
    Producer,
    PullConsumer,
    PushConsumer,
)


def main() -> int:
    p = parser(__doc__ or "")
    p.set_defaults(topic="ExampleRetry", count=3)
    p.add_argument("--group", default="example-retry-consumer")
    p.add_argument("--max-reconsume-times", type=int, default=1)
    p.add_argument("--timeout", type=float, default=90.0)
    args = p.parse_args()
    setup_logging(args.log_level)
    run = f"{time.time_ns():x}"  # this run's messages (the topic may hold older ones)

    with Producer("example-retry-producer", namesrv=args.namesrv) as producer:
        for i in range(args.count):
            body = "poison" if i == 0 else f"message {i}"
            producer.send(Message(args.topic, body, keys=[f"{run}-{i}"]))
    print(f"sent {args.count} message(s); message 0 is poison")

    lock = threading.Lock()
    done: set[str] = set()
    poison_tries: list[int] = []
    finished = threading.Event()

    def on_message(msg: MessageExt) -> ConsumeResult:
        key = msg.keys[0] if msg.keys else ""
        if not key.startswith(run):
            return ConsumeResult.CONSUME_SUCCESS  # an earlier run's message
        print(f"{msg.topic} {msg.body.decode()!r} reconsume_times={msg.reconsume_times}")
        with lock:
            if msg.body == b"poison":
                poison_tries.append(msg.reconsume_times)
                outcome = ConsumeResult.RECONSUME_LATER  # always fails
            elif msg.reconsume_times == 0:
                outcome = ConsumeResult.RECONSUME_LATER  # fails the first delivery
            else:
                done.add(key)
                outcome = ConsumeResult.CONSUME_SUCCESS
            if len(done) == args.count - 1 and len(poison_tries) > args.max_reconsume_times:
                finished.set()
        return outcome

    consumer = PushConsumer(
        args.group,
        namesrv=args.namesrv,
        consume_from=ConsumeFrom.FIRST,
        max_reconsume_times=args.max_reconsume_times,
    )
    consumer.subscribe(args.topic, "*", on_message)
    with consumer:
        ok = finished.wait(args.timeout)
    print(f"received {len(done)} message(s) after one retry each")
    print(f"poison message tried {len(poison_tries)} times (reconsume_times {poison_tries})")
    if not ok:
        print("timed out")
        return 1

    dlq = f"%DLQ%{args.group}"
    reader = PullConsumer(
        "example-retry-dlq-reader",
        namesrv=args.namesrv,
        consume_from=ConsumeFrom.FIRST,
        rebalance_interval=1.0,
    )
    reader.subscribe(dlq)
    deadline = time.monotonic() + 30
    with reader:
        while time.monotonic() < deadline:
            mine = [m for m in reader.poll(1.0) if m.keys and m.keys[0].startswith(run)]
            if mine:
                for m in mine:
                    origin = m.all_properties.get("RETRY_TOPIC")
                    print(f"dead letter in {dlq}: {m.body.decode()!r} (from topic {origin})")
                return 0
    print(f"nothing in {dlq}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
