"""SQL92 property filters: the broker delivers only the messages whose properties match.

Sends --count messages with user properties ``amount`` (0, 10, 20, ...) and ``region``
(eu / us, in turn), tagged ``small`` or ``large``, then subscribes with a SQL92 expression
(default ``amount >= 50 AND region = 'eu'``; TAGS is a property too) and prints what arrives.

The broker must allow property filters: run it with examples/features.toml, or put
``enablePropertyFilter=true`` in your broker's configuration. Without it the consumer does not
start: the broker answers its check "The broker does not support consumer to filter message by
SQL92" and ``start`` raises BrokerError.

    python -m runtime cluster --profile examples/features.toml
    python examples/sql_filter_consumer.py --namesrv 127.0.0.1:9876 --sql "amount > 50"
"""

from __future__ import annotations

import threading
import time

from _common import parser, setup_logging

from actors.client import BrokerError, ConsumeFrom, Message, MessageExt, Producer, PushConsumer
from runtime.filter import compile_expression


def main() -> int:
    p = parser(__doc__ or "")
    p.set_defaults(topic="ExampleSql", count=10)
    p.add_argument("--sql", default="amount >= 50 AND region = 'eu'")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    setup_logging(args.log_level)
    run = f"{time.time_ns():x}"

    sent = []
    with Producer("example-sql-producer", namesrv=args.namesrv) as producer:
        for i in range(args.count):
            props = {"amount": str(i * 10), "region": "eu" if i % 2 == 0 else "us", "run": run}
            tags = "large" if i * 10 >= 50 else "small"
            producer.send(Message(args.topic, f"order {i}", tags=tags, properties=props))
            sent.append({**props, "TAGS": tags})
    # What the broker should let through (the same SQL92 semantics, evaluated here)
    matches = compile_expression(args.sql)
    expected = sum(1 for props in sent if matches(props))
    print(f"sent {args.count} message(s); {expected} match {args.sql!r}")

    lock = threading.Lock()
    received: list[MessageExt] = []
    enough = threading.Event()

    def on_message(msg: MessageExt) -> None:
        if msg.properties.get("run") != run:
            return  # an earlier run's message
        with lock:
            received.append(msg)
            print(f"{msg.body.decode()!r} tags={msg.tags} {msg.properties}")
            if len(received) >= expected:
                enough.set()

    consumer = PushConsumer(
        "example-sql-consumer", namesrv=args.namesrv, consume_from=ConsumeFrom.FIRST
    )
    consumer.subscribe(args.topic, sql=args.sql, listener=on_message)
    try:
        consumer.start()
    except BrokerError as exc:
        print(f"the broker refused the subscription: {exc}")
        print("does the broker run with enablePropertyFilter=true?")
        return 1
    try:
        ok = enough.wait(args.timeout) if expected else True
    finally:
        consumer.shutdown()
    print(f"received {len(received)} message(s)")
    if not ok:
        print("timed out: does the broker run with enablePropertyFilter=true?")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
