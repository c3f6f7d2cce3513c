"""Send messages four ways: sync, async (future + callback), oneway, and one batch.

python examples/producer.py --namesrv 127.0.0.1:9876 --topic ExampleTopic --count 10
"""

from __future__ import annotations

import threading

from _common import parser, setup_logging

from actors.client import Message, Producer, SendStatus


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    setup_logging(args.log_level)
    n = args.count
    with Producer("example-producer", namesrv=args.namesrv) as producer:
        # 1. sync: wait for the broker to store each message
        for i in range(n):
            r = producer.send(
                Message(
                    args.topic,
                    f"sync {i}",
                    tags="sync",
                    keys=[f"sync-{i}"],
                    properties={"example": "producer"},
                )
            )
            assert r.status is SendStatus.SEND_OK, r
            print(
                f"sync  {i}: {r.status.name} {r.queue.broker_name}/{r.queue.queue_id}"
                f"@{r.queue_offset} msg_id={r.msg_id}"
            )

        # 2. async: a future, and a callback on the producer's callback thread
        all_done = threading.Event()
        remaining = [n]

        def on_sent(result, error) -> None:
            if error is not None:
                print(f"async failed: {error}")
            remaining[0] -= 1
            if remaining[0] == 0:
                all_done.set()

        futures = [
            producer.send_async(Message(args.topic, f"async {i}", tags="async"), on_sent)
            for i in range(n)
        ]
        results = [f.result(timeout=10) for f in futures]
        all_done.wait(10)
        print(f"async: {sum(r.status is SendStatus.SEND_OK for r in results)}/{n} stored")

        # 3. oneway: no acknowledgement at all
        for i in range(n):
            producer.send_oneway(Message(args.topic, f"oneway {i}", tags="oneway"))
        print(f"oneway: {n} written")

        # 4. batch: one request, each message its own queue offset
        batch = [Message(args.topic, f"batch {i}", tags="batch") for i in range(n)]
        r = producer.send_batch(batch)
        print(
            f"batch: {r.status.name} {n} messages from offset {r.queue_offset} "
            f"on {r.queue.broker_name}/{r.queue.queue_id}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
