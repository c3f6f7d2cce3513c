"""Ordered sends: every step of one order goes to the same queue (sharding key = order id),
so a consumer of that queue sees the steps in order (examples/orderly_consumer.py).

    python examples/ordered_producer.py --namesrv 127.0.0.1:9876 --count 5 --prefix order
"""

from __future__ import annotations

from _common import parser, setup_logging

from actors.client import Message, Producer

STEPS = ("created", "paid", "shipped", "delivered")


def main() -> int:
    p = parser(__doc__ or "")
    p.set_defaults(topic="ExampleOrders", count=5)
    p.add_argument("--prefix", default="order", help="order ids are <prefix>-<n>")
    args = p.parse_args()
    setup_logging(args.log_level)
    queues: dict[str, set] = {}
    with Producer("example-ordered-producer", namesrv=args.namesrv) as producer:
        for order in range(args.count):
            order_id = f"{args.prefix}-{order}"
            for step in STEPS:
                r = producer.send(
                    Message(args.topic, f"{order_id} {step}", tags=step, keys=[order_id]),
                    sharding_key=order_id,
                )
                queues.setdefault(order_id, set()).add(r.queue)
            [mq] = queues[order_id]
            print(f"{order_id}: {len(STEPS)} steps on {mq.broker_name}/{mq.queue_id}")
    split = [o for o, qs in queues.items() if len(qs) != 1]
    if split:
        print(f"orders spread over several queues: {split}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
