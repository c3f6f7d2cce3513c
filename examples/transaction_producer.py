"""Transactional messages: a message becomes visible only if the local transaction commits.

Sends three orders with a TransactionProducer. For each, the broker stores a *half message*
(invisible), then the local transaction runs:

- order-commit: COMMIT_MESSAGE -> the message is delivered;
- order-rollback: ROLLBACK_MESSAGE -> it never is;
- order-unknown: UNKNOW -> the broker asks later (CHECK_TRANSACTION_STATE); the producer's check
  looks at the "database" and answers COMMIT_MESSAGE, so it is delivered after the check.

A push consumer then shows what became visible. The check comes after the broker's
transactionTimeOut + up to transactionCheckInterval (6 s + 30 s by default; about 1-2 s with
examples/features.toml).

    python -m runtime cluster --profile examples/features.toml
    python examples/transaction_producer.py --namesrv 127.0.0.1:9876
"""

from __future__ import annotations

import threading
import time

from _common import parser, setup_logging

from actors.client import (
    ConsumeFrom,
    LocalTransactionState,
    Message,
    MessageExt,
    PushConsumer,
    TransactionProducer,
)


class Orders:
    """The producer's 'database' and its transaction listener."""

    def __init__(self) -> None:
        self.committed: set[str] = set()
        self.checked: list[str] = []

    def execute_local_transaction(self, msg: Message, arg: str) -> LocalTransactionState:
        if arg == "commit":
            self.committed.add(msg.keys_list()[0])
            return LocalTransactionState.COMMIT_MESSAGE
        if arg == "rollback":
            return LocalTransactionState.ROLLBACK_MESSAGE
        self.committed.add(msg.keys_list()[0])  # committed, but the answer gets lost
        return LocalTransactionState.UNKNOW

    def check_local_transaction(self, msg: MessageExt) -> LocalTransactionState:
        key = msg.keys[0]
        self.checked.append(key)
        state = (
            LocalTransactionState.COMMIT_MESSAGE
            if key in self.committed
            else LocalTransactionState.ROLLBACK_MESSAGE
        )
        print(f"broker asked about {key} (transaction {msg.transaction_id}): {state.name}")
        return state


def main() -> int:
    p = parser(__doc__ or "")
    p.set_defaults(topic="ExampleTransactions")
    p.add_argument("--timeout", type=float, default=90.0)
    args = p.parse_args()
    setup_logging(args.log_level)
    run = f"{time.time_ns():x}"

    lock = threading.Lock()
    visible: list[str] = []
    both = threading.Event()

    def on_message(msg: MessageExt) -> None:
        key = msg.keys[0] if msg.keys else ""
        if key.startswith(run):
            print(f"consumer: {msg.body.decode()!r} is visible")
            with lock:
                visible.append(key.split("/", 1)[1])
                if {"order-commit", "order-unknown"} <= set(visible):
                    both.set()

    consumer = PushConsumer(
        "example-transaction-consumer", namesrv=args.namesrv, consume_from=ConsumeFrom.FIRST
    )
    consumer.subscribe(args.topic, "*", on_message)
    orders = Orders()
    producer = TransactionProducer("example-transaction-producer", args.namesrv, listener=orders)
    with producer:
        for name, decision in (
            ("order-commit", "commit"),
            ("order-rollback", "rollback"),
            ("order-unknown", "unknown"),
        ):
            msg = Message(args.topic, f"{name} placed", keys=[f"{run}/{name}"])
            result = producer.send_message_in_transaction(msg, decision)
            print(f"{name}: half message {result.msg_id}: {result.local_transaction_state.name}")
        # The producer stays up: the broker asks it about order-unknown.
        with consumer:
            ok = both.wait(args.timeout)
    with lock:
        print(f"visible: {sorted(visible)}")
        print(f"received {len(visible)} message(s)")
    if not ok or "order-rollback" in visible:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
