"""transaction_producer.py ENDPOINT TOPIC
RocketMQ 5's transactional Producer: commits tx-commit, rolls back tx-rollback, leaves tx-orphan
open so the broker checks it back (its checker answers COMMIT). Prints started, sent (per
half message), ended, checked, done (after the check, or --seconds)."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from common import configuration, emit, fail
from rocketmq import Message, Producer, TransactionChecker, TransactionResolution

checked = threading.Event()


class Checker(TransactionChecker):
    def check(self, message: Any) -> Any:
        emit("checked", body=message.body.decode(), message_id=message.message_id)
        checked.set()
        return TransactionResolution.COMMIT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("topic")
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    producer = Producer(configuration(args.endpoint), (args.topic,), checker=Checker())
    try:
        producer.startup()
        emit("started")
        for body, end in (("tx-commit", "commit"), ("tx-rollback", "rollback"), ("tx-orphan", "")):
            msg = Message()
            msg.topic, msg.body, msg.tag = args.topic, body.encode(), "TagTx"
            transaction = producer.begin_transaction()
            result = producer.send(msg, transaction)
            emit("sent", body=body, message_id=result.message_id)
            if end:
                getattr(transaction, end)()
                emit("ended", body=body, how=end)
        checked.wait(args.seconds)
    except Exception as exc:
        fail(exc)
    finally:
        producer.shutdown()
    emit("done", checked=checked.is_set())


if __name__ == "__main__":
    main()
