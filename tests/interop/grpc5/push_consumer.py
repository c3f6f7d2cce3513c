"""push_consumer.py ENDPOINT GROUP TOPIC [--expression E] [--fail-once BODY ...]
RocketMQ 5's PushConsumer: prints ready once started, one consumed line per successful
consumption (failed lines for the first delivery of each --fail-once body, answered
FAILURE), stopped after SIGTERM."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from common import configuration, describe, emit, fail, on_sigterm, stopping
from rocketmq import ConsumeResult, FilterExpression, MessageListener, PushConsumer


class Listener(MessageListener):
    def __init__(self, fail_once: set[str]) -> None:
        self.fail_once = fail_once
        self.lock = threading.Lock()

    def consume(self, message: Any) -> Any:
        body = message.body.decode(errors="replace")
        with self.lock:
            if body in self.fail_once:
                self.fail_once.discard(body)
                emit("failed", **describe(message))
                return ConsumeResult.FAILURE
        emit("consumed", **describe(message))
        return ConsumeResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("--expression", default="*")
    parser.add_argument("--fail-once", nargs="*", default=[])
    args = parser.parse_args()
    on_sigterm()
    consumer = PushConsumer(
        configuration(args.endpoint),
        args.group,
        Listener(set(args.fail_once)),
        {args.topic: FilterExpression(args.expression)},
    )
    try:
        consumer.startup()
        emit("ready")
        stopping.wait()
    except Exception as exc:
        fail(exc)
    finally:
        consumer.shutdown()
    emit("stopped")


if __name__ == "__main__":
    main()
