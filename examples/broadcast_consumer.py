"""Broadcasting: every consumer of the group gets every message; each keeps its own offsets in a
local file (--offset-dir). Run two of these with different --instance names to see both get all.

    python examples/broadcast_consumer.py --namesrv 127.0.0.1:9876 --count 10 --instance a
"""

from __future__ import annotations

import threading

from _common import parser, setup_logging

from actors.client import ConsumeFrom, MessageModel, PushConsumer


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--group", default="example-broadcast-consumer")
    p.add_argument("--instance", default="example", help="names this member's offsets file")
    p.add_argument("--offset-dir", default=None, help="where offsets files live")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    setup_logging(args.log_level)

    received = []
    enough = threading.Event()
    lock = threading.Lock()
    consumer = PushConsumer(
        args.group,
        namesrv=args.namesrv,
        model=MessageModel.BROADCASTING,
        consume_from=ConsumeFrom.FIRST,
        instance_name=args.instance,
        offset_store_dir=args.offset_dir,
    )

    @consumer.subscribe(args.topic, "*")
    def on_message(msg) -> None:
        with lock:
            received.append(msg)
            if len(received) >= args.count:
                enough.set()

    consumer.start()
    try:
        got = enough.wait(args.timeout)
    finally:
        consumer.shutdown()
    print(
        f"{args.instance}: received {len(received)} message(s); offsets in {consumer.offsets_path}"
    )
    return 0 if got else 1


if __name__ == "__main__":
    raise SystemExit(main())
