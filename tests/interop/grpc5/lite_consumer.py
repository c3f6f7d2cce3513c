"""lite_consumer.py ENDPOINT GROUP TOPIC --lites L1,L2 [--simple --expect N [--seconds S]]
RocketMQ 5's LitePushConsumer (or, with --simple, LiteSimpleConsumer) bound to TOPIC (a LITE
topic), subscribed to the lite topics L1, L2, ... one subscribe_lite each: prints ready (its
lites) once subscribed, then one consumed line per message (push; stopped after SIGTERM) or
one received line per message, each acked (simple; done once N are acked or S seconds
passed), each with its lite_topic."""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import configuration, describe, emit, fail, on_sigterm, stopping, tls
from rocketmq import ConsumeResult, LitePushConsumer, LiteSimpleConsumer, MessageListener


class Listener(MessageListener):
    def consume(self, message: Any) -> Any:
        emit("consumed", **describe(message), lite_topic=message.lite_topic)
        return ConsumeResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("--lites", required=True)
    parser.add_argument("--simple", action="store_true")
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    on_sigterm()
    config = configuration(args.endpoint)
    if args.simple:
        consumer: Any = LiteSimpleConsumer(
            args.topic, config, args.group, await_duration=2, tls_enable=tls()
        )
    else:
        consumer = LitePushConsumer(config, args.group, args.topic, Listener(), tls_enable=tls())
    try:
        consumer.startup()
        if args.simple:
            # 5.1.2's LiteSimpleConsumer returns from startup before the proxy's settings came
            # (its push consumer waits for them): until they do, its lite subscription quota
            # is 0 and subscribe_lite raises LiteSubscriptionQuotaExceededException
            consumer._init_settings_event.wait(10)
        lites = args.lites.split(",")
        for lite in lites:
            consumer.subscribe_lite(lite)
        emit("ready", lites=lites)
        if not args.simple:
            stopping.wait()
            return
        acked = 0
        deadline = time.monotonic() + args.seconds
        while acked < args.expect and time.monotonic() < deadline:
            for msg in consumer.receive(16, 10):
                emit("received", **describe(msg), lite_topic=msg.lite_topic)
                consumer.ack(msg)
                acked += 1
    except Exception as exc:
        fail(exc)
    finally:
        consumer.shutdown()
        emit("stopped" if not args.simple else "done")


if __name__ == "__main__":
    main()
