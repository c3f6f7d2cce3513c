"""Client namespaces against a real ``python -m runtime``: the program uses plain names, the
brokers see ``<namespace>%<name>``, tenants with different namespaces never see each other's
messages, and retries, transactions and the lite consumer's queue calls all keep to that.

The broker runs ``test_client_semantics``'s profile: 1 s retry levels, fast transaction checks.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from actors.client import (
    ConsumeFrom,
    ConsumeResult,
    LocalTransactionState,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    PushConsumer,
    SendContext,
    SendHook,
    TransactionProducer,
)
from tests import client_support
from tests.harness import RuntimeProcess
from tests.integration.test_client_semantics import PROFILE, Node, read_topic

pytestmark = pytest.mark.timeout(120)

wait_until = functools.partial(client_support.wait_until, timeout=20.0)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("client-namespace")
    profile = root / "namespace.toml"
    profile.write_text(PROFILE)
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as process:
        ready = process.wait_ready()
        yield Node(ready["namesrv"], ready["broker-a/0"])
        assert process.terminate() == 0, process.stderr_text()


class Seen:
    """What a listener saw (thread-safe): (body, topic, reconsume times, RETRY_TOPIC)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[bytes, str, int, str | None]] = []

    def add(self, msg: MessageExt) -> None:
        with self.lock:
            retry_topic = msg.all_properties.get("RETRY_TOPIC")
            self.items.append((msg.body, msg.topic, msg.reconsume_times, retry_topic))

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [b for b, *_ in self.items]


def last_queue(queues: Sequence[MessageQueue], _msg: Message) -> MessageQueue:
    return queues[-1]


def test_a_tenant_sees_plain_names_and_only_its_own_messages(node: Node) -> None:
    # Given two tenants' producers and push consumers, same plain topic and group names
    topic, group = "Orders", "billing"
    seen = {"tenantA": Seen(), "tenantB": Seen()}
    consumers: list[PushConsumer] = []
    for tenant, log in seen.items():

        def listener(msg: MessageExt, log: Seen = log) -> ConsumeResult:
            log.add(msg)
            if msg.body.endswith(b"flaky") and msg.reconsume_times == 0:
                return ConsumeResult.RECONSUME_LATER
            return ConsumeResult.CONSUME_SUCCESS

        consumer = PushConsumer(
            group,
            node.namesrv,
            namespace=tenant,
            consume_from=ConsumeFrom.FIRST,
            rebalance_interval=1.0,
            commit_interval=0.2,
        )
        consumer.subscribe(topic, "*", listener)
        consumers.append(consumer)
    try:
        with (
            Producer("shop", node.namesrv, namespace="tenantA") as a,
            Producer("shop", node.namesrv, namespace="tenantB") as b,
        ):
            wait_until(lambda: bool(a.queues(topic)), what="tenant A's route")
            queues = a.queues(topic)
            # When tenant A sends by round robin, to an explicit queue and through a selector
            # (one of them fails once), and tenant B sends one message
            results = [
                a.send(Message(topic, b"A-plain")),
                a.send(Message(topic, b"A-queue"), queue=queues[0]),
                a.send(Message(topic, b"A-flaky"), selector=last_queue),
                b.send(Message(topic, b"B-plain")),
            ]
            for consumer in consumers:
                consumer.start()
            # Then every result and queue the program sees names the plain topic
            assert {mq.topic for mq in queues} == {topic}
            assert {r.queue.topic for r in results} == {topic}
            assert results[1].queue == queues[0]
            assert results[2].queue == queues[-1]
            # And each tenant's consumer gets its own messages only, with the plain topic, the
            # failed one again through %RETRY%<namespace>%<group>
            wait_until(
                lambda: (
                    sorted(seen["tenantA"].bodies())
                    == [b"A-flaky", b"A-flaky", b"A-plain", b"A-queue"]
                ),
                what="tenant A's messages and the retry",
            )
            wait_until(lambda: seen["tenantB"].bodies() == [b"B-plain"], what="tenant B's")
            assert {t for _, t, *_ in seen["tenantA"].items} == {topic}
            retried = [i for i in seen["tenantA"].items if i[2] == 1]
            assert retried == [(b"A-flaky", topic, 1, "tenantA%Orders")]
            # And the brokers know the wrapped names: the topic, the group's retry topic
            wire = read_topic(node, "tenantA%Orders", 3)
            assert sorted(m.body for m in wire) == [b"A-flaky", b"A-plain", b"A-queue"]
            assert {m.topic for m in wire} == {"tenantA%Orders"}
            [again] = read_topic(node, "%RETRY%tenantA%billing", 1)
            assert again.body == b"A-flaky"
            # And the consumer's queries take and give plain queues
            consumer_a = consumers[0]
            assert {mq.topic for mq in consumer_a.assignment()} >= {topic}
            assert sorted(consumer_a.fetch_queues(topic)) == sorted(queues)
            wait_until(
                lambda: sum(max(consumer_a.committed(mq), 0) for mq in queues) == 3,
                what="tenant A's committed offsets",
            )
    finally:
        for consumer in consumers:
            consumer.shutdown()


def test_the_lite_consumer_assigns_seeks_and_polls_plain_queues(node: Node) -> None:
    # Given three messages in tenant C's topic, all on one queue
    topic = "Ledger"
    with Producer("ledger-writer", node.namesrv, namespace="tenantC") as producer:
        wait_until(lambda: bool(producer.queues(topic)), what="the route")
        mq = producer.queues(topic)[0]
        for body in (b"one", b"two", b"three"):
            producer.send(Message(topic, body), queue=mq)
    consumer = PullConsumer("ledger-reader", node.namesrv, namespace="tenantC")
    try:
        # When it is assigned the plain queue and seeks to offset 1
        consumer.assign([mq])
        consumer.start()
        assert mq in consumer.fetch_queues(topic)
        assert consumer.assignment() == [mq]
        consumer.seek(mq, 1)
        got: list[MessageExt] = []
        deadline = time.monotonic() + 15
        while len(got) < 2 and time.monotonic() < deadline:
            got += consumer.poll(0.5)
        # Then it polls the rest with the plain topic, and commits to the wrapped queue
        assert [(m.body, m.topic) for m in got] == [(b"two", topic), (b"three", topic)]
        consumer.commit()
        assert consumer.committed(mq) == 3
        assert consumer.offset_for_timestamp(mq, 0) == 0
    finally:
        consumer.shutdown()


def test_a_send_hook_gets_the_broker_and_the_plain_queue(node: Node) -> None:
    # Given a namespaced producer with a send hook
    seen: list[SendContext] = []

    class Seen(SendHook):
        def after(self, ctx: SendContext) -> None:
            seen.append(ctx)

    with Producer("hooked", node.namesrv, namespace="tenantE") as producer:
        producer.register_send_hook(Seen())
        # When it sends
        result = producer.send(Message("Hooked", b"h"))
    # Then the hook's context names the broker it went to (what a trace's storeHost records)
    # and the plain queue, as the result does; the group is the wire one
    [ctx] = seen
    assert ctx.broker_addr == node.broker
    assert ctx.mq == result.queue and ctx.mq.topic == "Hooked"
    assert ctx.group == "tenantE%hooked"


def test_a_transaction_check_sees_the_plain_topic(node: Node) -> None:
    # Given a namespaced transaction producer that leaves its transaction open
    checked: list[str] = []
    asked = threading.Event()

    def check(msg: MessageExt) -> LocalTransactionState:
        checked.append(msg.topic)
        asked.set()
        return LocalTransactionState.COMMIT_MESSAGE

    with TransactionProducer(
        "tx-shop",
        node.namesrv,
        namespace="tenantD",
        execute=lambda _m, _a: LocalTransactionState.UNKNOW,
        check=check,
    ) as producer:
        # When it sends a half message and the broker asks about it
        result = producer.send_message_in_transaction(Message("Payments", b"pay-1"))
        assert result.queue.topic == "Payments"
        assert asked.wait(20), "no transaction check"
    # Then the check saw the plain topic, and the committed message is in the wrapped topic
    assert set(checked) == {"Payments"}
    [stored] = read_topic(node, "tenantD%Payments", 1)
    assert stored.body == b"pay-1"
