"""A push consumer: a listener called for each message; stops after --count messages.

python examples/push_consumer.py --namesrv 127.0.0.1:9876 --topic ExampleTopic --count 10
"""

from __future__ import annotations

import threading

from _common import parser, setup_logging

from actors.client import ConsumeFrom, ConsumeResult, MessageExt, PushConsumer


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--group", default="example-push-consumer")
    p.add_argument("--tags", default="*", help='TAG expression, e.g. "sync || async"')
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    setup_logging(args.log_level)

    received = []
    enough = threading.Event()
    lock = threading.Lock()
    consumer = PushConsumer(args.group, namesrv=args.namesrv, consume_from=ConsumeFrom.FIRST)

    @consumer.subscribe(args.topic, args.tags)
    def on_message(msg: MessageExt) -> ConsumeResult:
        with lock:
            received.append(msg)
            print(
                f"{msg.queue.broker_name}/{msg.queue_id}@{msg.queue_offset} "
                f"tags={msg.tags} keys={msg.keys} body={msg.body.decode(errors='replace')}"
            )
            if len(received) >= args.count:
                enough.set()
        return ConsumeResult.CONSUME_SUCCESS

    consumer.start()
    try:
        got = enough.wait(args.timeout)
    finally:
        consumer.shutdown()
    print(f"received {len(received)} message(s)")
    return 0 if got else 1


if __name__ == "__main__":
    raise SystemExit(main())
