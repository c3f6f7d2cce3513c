"""A lite pull consumer: poll() in a loop, commit by hand, then seek back and read again.

python examples/pull_consumer.py --namesrv 127.0.0.1:9876 --topic ExampleTopic --count 10
"""

from __future__ import annotations

import time

from _common import parser, setup_logging

from actors.client import ConsumeFrom, PullConsumer


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--group", default="example-pull-consumer")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    setup_logging(args.log_level)

    consumer = PullConsumer(
        args.group, namesrv=args.namesrv, consume_from=ConsumeFrom.FIRST, auto_commit=False
    )
    consumer.subscribe(args.topic, "*")
    with consumer:
        polled = []
        deadline = time.monotonic() + args.timeout
        while len(polled) < args.count and time.monotonic() < deadline:
            for msg in consumer.poll(timeout=1.0):
                polled.append(msg)
                print(f"{msg.queue_id}@{msg.queue_offset} {msg.body.decode(errors='replace')}")
        consumer.commit()
        print(f"polled {len(polled)} message(s) and committed")
        if len(polled) < args.count:
            return 1
        # Read the first queue we saw again from where we started on it.
        first = polled[0]
        consumer.seek(first.queue, first.queue_offset)
        again = []
        deadline = time.monotonic() + args.timeout
        while not again and time.monotonic() < deadline:
            again = [m for m in consumer.poll(timeout=1.0) if m.queue == first.queue]
        print(f"after seek: {first.queue.queue_id}@{again[0].queue_offset if again else None}")
        return 0 if again and again[0].queue_offset == first.queue_offset else 1


if __name__ == "__main__":
    raise SystemExit(main())
