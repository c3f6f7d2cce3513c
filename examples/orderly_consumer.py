"""Orderly consumption: each queue locked by one consumer and consumed one message at a time, in
queue order, so the steps of an order (all on one queue, see examples/ordered_producer.py) come
in the order they were sent, even when one fails and is retried.

    python examples/ordered_producer.py --namesrv 127.0.0.1:9876 --count 5 --prefix order
    python examples/orderly_consumer.py --namesrv 127.0.0.1:9876 --count 5 --prefix order

With --fail-step paid the first delivery of every "paid" step fails
(SUSPEND_CURRENT_QUEUE_A_MOMENT): its queue waits --suspend-delay seconds and offers it again;
nothing behind it on that queue overtakes it.
"""

from __future__ import annotations

import threading

from _common import parser, setup_logging

from actors.client import ConsumeFrom, ConsumeOrderlyStatus, MessageExt, PushConsumer

STEPS = ("created", "paid", "shipped", "delivered")


def main() -> int:
    p = parser(__doc__ or "")
    p.set_defaults(topic="ExampleOrders", count=5)
    p.add_argument("--group", default="example-orderly-consumer")
    p.add_argument("--prefix", default="order", help="the orders to wait for: <prefix>-<n>")
    p.add_argument("--fail-step", default="", help="fail the first delivery of this step")
    p.add_argument("--suspend-delay", type=float, default=0.5)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    setup_logging(args.log_level)

    lock = threading.Lock()
    steps: dict[str, list[str]] = {}
    queues: dict[str, str] = {}
    out_of_order: list[str] = []
    complete = threading.Event()

    def on_message(msg: MessageExt) -> ConsumeOrderlyStatus:
        order_id, _, step = msg.body.decode().partition(" ")
        if not order_id.startswith(f"{args.prefix}-"):
            return ConsumeOrderlyStatus.SUCCESS  # somebody else's order
        if step == args.fail_step and msg.reconsume_times == 0:
            print(f"{order_id} {step}: failing once (the queue waits)")
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        with lock:
            seen = steps.setdefault(order_id, [])
            if step in seen:
                return ConsumeOrderlyStatus.SUCCESS  # a redelivery (at least once)
            if STEPS[len(seen)] != step:
                out_of_order.append(f"{order_id}: {step} after {seen}")
            seen.append(step)
            queues[order_id] = f"{msg.broker_name}/{msg.queue_id}"
            if sum(len(s) == len(STEPS) for s in steps.values()) >= args.count:
                complete.set()
        return ConsumeOrderlyStatus.SUCCESS

    consumer = PushConsumer(
        args.group,
        namesrv=args.namesrv,
        consume_from=ConsumeFrom.FIRST,
        orderly=True,
        suspend_delay=args.suspend_delay,
    )
    consumer.subscribe(args.topic, "*", on_message)
    with consumer:
        ok = complete.wait(args.timeout)
    for order_id in sorted(steps):
        print(f"{order_id} ({queues[order_id]}): {' '.join(steps[order_id])}")
    print(f"received {sum(len(s) for s in steps.values())} message(s)")
    if out_of_order:
        print(f"OUT OF ORDER: {out_of_order}")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
