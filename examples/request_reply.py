"""Request-reply: a producer sends a request and waits for the answer a consumer sends back.

A "price service" consumes topic ExamplePrices and answers every request with
``Producer.reply``; the client asks for a few prices with ``Producer.request``, each waiting up
to ``--timeout`` seconds. The broker pushes each reply straight to the asking producer (and
keeps a copy in ``<cluster>_REPLY_TOPIC``). RocketMQ's Java clients interoperate on either side
(``DefaultMQProducer.request`` / ``MessageUtil.createReplyMessage``).

    python -m runtime
    python examples/request_reply.py --namesrv 127.0.0.1:9876
"""

from __future__ import annotations

import time

from _common import parser, setup_logging

from actors.client import (
    Admin,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageExt,
    Producer,
    PushConsumer,
)

PRICES = {"apple": "0.40", "pear": "0.55", "plum": "0.25"}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(topic="ExamplePrices", count=3)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each reply")
    args = p.parse_args()
    setup_logging(args.log_level)

    with Admin(args.namesrv) as admin:  # so the service finds the topic at once
        admin.create_topic(args.topic, queues=2)

    # The service: a consumer that answers each request through its own producer.
    service = Producer("example-price-service", namesrv=args.namesrv).start()

    def quote(request: MessageExt) -> ConsumeResult:
        fruit = request.body.decode()
        service.reply(request, PRICES.get(fruit, "unknown").encode())
        return ConsumeResult.CONSUME_SUCCESS

    consumer = PushConsumer(
        "example-price-service", namesrv=args.namesrv, consume_from=ConsumeFrom.LAST
    )
    consumer.subscribe(args.topic, "*")(quote)
    consumer.start()
    try:
        # The client: one request at a time, each answered by the service.
        with Producer("example-price-client", namesrv=args.namesrv) as client:
            for fruit in list(PRICES)[: args.count]:
                started = time.monotonic()
                answer = client.request(Message(args.topic, fruit), timeout=args.timeout)
                took = (time.monotonic() - started) * 1000
                print(f"price of {fruit}: {answer.body.decode()} ({took:.1f} ms)")
            print(f"received {min(args.count, len(PRICES))} replies")
    finally:
        consumer.shutdown()
        service.shutdown()


if __name__ == "__main__":
    main()
