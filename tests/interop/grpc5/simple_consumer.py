"""simple_consumer.py ENDPOINT GROUP TOPIC --expect N [--expression E] [--invisible S]
[--never-ack BODY ...] [--ack-after-attempt K] [--seconds S]
RocketMQ 5's SimpleConsumer: receives until N messages were acked (or S seconds passed); a
message is acked once its delivery attempt reaches K (1: at once); bodies named by
--never-ack are never acked. Prints ready, one received line per delivery, acked, done."""

from __future__ import annotations

import argparse
import time

from common import configuration, describe, emit, fail, tls
from rocketmq import FilterExpression, SimpleConsumer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--expression", default="*")
    parser.add_argument("--invisible", type=int, default=10)
    parser.add_argument("--never-ack", nargs="*", default=[])
    parser.add_argument("--ack-after-attempt", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    consumer = SimpleConsumer(
        configuration(args.endpoint),
        args.group,
        {args.topic: FilterExpression(args.expression)},
        await_duration=2,
        tls_enable=tls(),
    )
    acked = 0
    try:
        consumer.startup()
        emit("ready")
        deadline = time.monotonic() + args.seconds
        while acked < args.expect and time.monotonic() < deadline:
            for msg in consumer.receive(16, args.invisible):
                emit("received", **describe(msg))
                body = msg.body.decode(errors="replace")
                if body in args.never_ack or msg.delivery_attempt < args.ack_after_attempt:
                    continue
                consumer.ack(msg)
                acked += 1
                emit("acked", message_id=msg.message_id, body=body)
    except Exception as exc:
        fail(exc)
    finally:
        consumer.shutdown()
    emit("done", acked=acked)


if __name__ == "__main__":
    main()
