"""producer.py ENDPOINT TOPIC COUNT [--tag T] [--group G] [--delay-ms N] [--body-prefix P]
[--recall I ...] [--lite L1,L2] [--priorities 3,1,2]
Sends COUNT messages (body P<i>, keys k<i>, property seq=<i>) through RocketMQ 5's Producer;
prints started, one sent line per message (message_id, due_ms), a recalled line for each
message recalled at once (with --delay-ms), done. With --lite, message i goes to lite topic
L[i % len] and its body is <lite>:<i> (after the prefix); with --priorities, message i has
priority P[i % len]."""

from __future__ import annotations

import argparse
import time

from common import configuration, emit, fail, tls
from rocketmq import Message, Producer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("topic")
    parser.add_argument("count", type=int)
    parser.add_argument("--tag", default="TagA")
    parser.add_argument("--group")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--body-prefix", default="body-")
    parser.add_argument("--recall", type=int, nargs="*", default=[], help="recall these (i)")
    parser.add_argument("--lite", default="", help="lite topics, comma-separated")
    parser.add_argument("--priorities", default="", help="priorities, comma-separated")
    args = parser.parse_args()
    producer = Producer(configuration(args.endpoint), (args.topic,), tls_enable=tls())
    try:
        producer.startup()
        emit("started")
        for i in range(args.count):
            msg = Message()
            msg.topic = args.topic
            lites = [lite for lite in args.lite.split(",") if lite]
            lite = lites[i % len(lites)] if lites else None
            body = f"{lite}:{i}" if lite else str(i)
            msg.body = f"{args.body_prefix}{body}".encode()
            if lite:
                msg.lite_topic = lite
            priorities = [int(p) for p in args.priorities.split(",") if p]
            if priorities:
                msg.priority = priorities[i % len(priorities)]
            msg.tag = args.tag
            msg.keys = f"k{i}"
            msg.add_property("seq", str(i))
            if args.group:
                msg.message_group = args.group
            due = int(time.time() * 1000) + args.delay_ms if args.delay_ms else None
            if due is not None:
                msg.delivery_timestamp = due
            result = producer.send(msg)
            emit("sent", i=i, message_id=result.message_id, due_ms=due)
            if i in args.recall:
                recalled = producer.recall_message(args.topic, result.recall_handle)
                emit("recalled", i=i, message_id=recalled)
    except Exception as exc:
        fail(exc)
    finally:
        producer.shutdown()
    emit("done")


if __name__ == "__main__":
    main()
