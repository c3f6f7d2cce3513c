"""Delayed delivery: delay levels and timers (arbitrary delays to the millisecond).

Sends four messages and shows when a consumer gets each:

- ``Message(..., delay_level=2)``: level 2 of the broker's messageDelayLevel (5 s by default,
  2 s with examples/features.toml);
- ``Message(..., deliver_at_ms=now + 3000)``: at that time (property TIMER_DELIVER_MS);
- ``Message(..., delay_ms=1500)``: 1.5 s after the broker stored it (TIMER_DELAY_MS);
- one without a delay, for comparison.

The broker never delivers one early; timers reach up to 3 days ahead.

    python examples/delayed_producer.py --namesrv 127.0.0.1:9876
"""

from __future__ import annotations

import threading
import time

from _common import parser, setup_logging

from actors.client import ConsumeFrom, Message, MessageExt, Producer, PushConsumer


def main() -> int:
    p = parser(__doc__ or "")
    p.set_defaults(topic="ExampleDelayed")
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    setup_logging(args.log_level)
    run = f"{time.time_ns():x}"

    with Producer("example-delayed-producer", namesrv=args.namesrv) as producer:
        producer.send(Message(args.topic, "create the topic", keys=["setup"]))
        lock = threading.Lock()
        arrived: dict[str, float] = {}
        all_four = threading.Event()

        def on_message(msg: MessageExt) -> None:
            key = msg.keys[0] if msg.keys else ""
            if key.startswith(run):
                with lock:
                    arrived[key.split("/", 1)[1]] = time.time()
                    if len(arrived) == 4:
                        all_four.set()

        consumer = PushConsumer(
            "example-delayed-consumer", namesrv=args.namesrv, consume_from=ConsumeFrom.FIRST
        )
        consumer.subscribe(args.topic, "*", on_message)
        with consumer:
            sent_at = time.time()
            due = {"no-delay": 0.0, "level-2": 0.0, "at+3s": 3.0, "delay-1.5s": 1.5}
            for name, extra in (
                ("no-delay", {}),
                ("level-2", {"delay_level": 2}),
                ("at+3s", {"deliver_at_ms": int(sent_at * 1000) + 3000}),
                ("delay-1.5s", {"delay_ms": 1500}),
            ):
                producer.send(Message(args.topic, name, keys=[f"{run}/{name}"], **extra))
            ok = all_four.wait(args.timeout)
    with lock:
        for name, at in sorted(arrived.items(), key=lambda item: item[1]):
            print(f"{name}: delivered {at - sent_at:.1f}s after sending")
        print(f"received {len(arrived)} message(s)")
        early = [name for name, at in arrived.items() if at < sent_at + due[name]]
    if early:
        print(f"EARLY: {early}")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
