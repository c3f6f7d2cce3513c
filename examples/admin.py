"""Administration from Python: create a topic, watch a group's lag, replay it, find a message.

python examples/admin.py --namesrv 127.0.0.1:9876 --topic ExampleAdmin --count 10

The same operations exist on the command line: ``python -m runtime admin --help``.
"""

from __future__ import annotations

from _common import parser, setup_logging

from actors.client import Admin, ConsumeFrom, Message, Producer, PullConsumer


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--group", default="example-admin-group")
    args = p.parse_args()
    setup_logging(args.log_level)

    with Admin(args.namesrv) as admin:
        # A topic with two queues on every master (what `updateTopic -c` does).
        for address in admin.create_topic(args.topic, queues=2):
            print(f"created {args.topic} on {address}")

        with Producer("example-admin-producer", namesrv=args.namesrv) as producer:
            sent = [
                producer.send(Message(args.topic, f"m{i}".encode(), keys=[f"k{i}"]))
                for i in range(args.count)
            ]

        # A group reads everything and commits; its lag is then 0.
        consumer = PullConsumer(args.group, namesrv=args.namesrv, consume_from=ConsumeFrom.FIRST)
        consumer.subscribe(args.topic, "*")
        with consumer:
            got = 0
            while got < args.count:
                polled = consumer.poll(timeout=10.0)
                if not polled:
                    break
                got += len(polled)
            consumer.commit()
        lag = sum(row.diff for row in admin.consume_stats(args.group, args.topic))
        print(f"consumed {got}, lag {lag}")

        # Replay: move the (stopped) group back to the beginning; the lag is everything again.
        admin.reset_offset(args.group, args.topic, 0)
        lag_after = sum(row.diff for row in admin.consume_stats(args.group, args.topic))
        print(f"after reset: lag {lag_after}")

        # Find a message by its key, and by the offset id its send returned.
        by_key = admin.query_messages(args.topic, "k0")
        by_id = admin.view_message(sent[0].offset_msg_id)
        print(f"by key: {[m.body for m in by_key]}, by id: {by_id.body!r}")
        ok = got == args.count and lag == 0 and lag_after == args.count and by_id.body == b"m0"
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
