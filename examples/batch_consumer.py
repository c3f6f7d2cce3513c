"""A push consumer whose listener gets lists of messages (RocketMQ's consumeMessageBatchMaxSize):
sends --count messages, then reads them back in lists of at most --batch-size messages of one
queue each, and exits once all arrived.

python examples/batch_consumer.py --namesrv 127.0.0.1:9876 --count 50 --batch-size 8
"""

from __future__ import annotations

import threading
import uuid

from _common import parser, setup_logging

from actors.client import (
    ConsumeContext,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageExt,
    Producer,
    PushConsumer,
)


def main() -> int:
    p = parser(__doc__ or "")
    p.set_defaults(topic="ExampleBatchConsume", count=50)
    p.add_argument("--group", default="example-batch-consumer")
    p.add_argument("--batch-size", type=int, default=8, help="consume_batch_size (1..1024)")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    setup_logging(args.log_level)

    run = uuid.uuid4().hex[:8]  # this run's messages, should the topic hold older ones
    with Producer("example-batch-producer", namesrv=args.namesrv) as producer:
        for i in range(args.count):
            producer.send(Message(args.topic, f"{run} message {i}"))
    print(f"sent {args.count} message(s)")

    bodies: set[str] = set()
    batches: list[int] = []
    enough = threading.Event()
    lock = threading.Lock()
    consumer = PushConsumer(
        args.group,
        namesrv=args.namesrv,
        consume_from=ConsumeFrom.FIRST,
        consume_batch_size=args.batch_size,
    )

    @consumer.subscribe(args.topic, "*", batch=True)
    def on_batch(msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        # one queue (context.mq), consecutive offsets; CONSUME_SUCCESS acknowledges them all
        # (set context.ack_index = i to acknowledge only msgs[: i + 1])
        with lock:
            batches.append(len(msgs))
            bodies.update(m.body.decode() for m in msgs if m.body.startswith(run.encode()))
            queue = context.mq.queue_id if context.mq else msgs[0].queue_id
            print(
                f"{len(msgs)} message(s) from queue {queue} "
                f"at offsets {msgs[0].queue_offset}..{msgs[-1].queue_offset}"
            )
            if len(bodies) >= args.count:
                enough.set()
        return ConsumeResult.CONSUME_SUCCESS

    consumer.start()
    try:
        got = enough.wait(args.timeout)
    finally:
        consumer.shutdown()
    print(
        f"received {len(bodies)} message(s) in {len(batches)} batch(es) "
        f"of at most {max(batches, default=0)}"
    )
    return 0 if got else 1


if __name__ == "__main__":
    raise SystemExit(main())
