"""RocketMQ 5's official Python client (gRPC, ``rocketmq-python-client`` 5.1.2) through actormq's
proxy (``python -m runtime cluster --proxy``), against actormq's own remoting client on the
other side: what one protocol stores, the other reads intact.

The module's cluster: ``tests.interop.proxy_support.proxy_cluster``. Every test names its own
topic and group.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from actors.client import Admin
from runtime.remoting.bodies import SubscriptionGroupConfig
from tests.interop.clients import run_to_end
from tests.interop.install import Client
from tests.interop.proxy_support import (
    await_route,
    ended,
    lite_messages_consumed_in_order,
    make_topic,
    native_producer_to_simple_consumer,
    priorities_stored_and_received,
    proxy_cluster,
    read_natively,
    run_script,
    sent_over_tls,
)
from tests.interop.scenarios import Cluster, one_test

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster_with_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with proxy_cluster(tmp_path_factory.mktemp("proxy-cluster") / "data") as cluster:
        yield cluster


def test_grpc_producer_is_read_by_the_native_consumer(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        # Given a topic and RocketMQ 5's producer connected to the proxy
        topic = make_topic(cluster, "Grpc5ToNative")
        proxy = cluster.ready["proxy"]
        # When it sends 3 messages of message group g1 (tag, key, property on each)
        events = ended(
            run_script(grpc5_client, tmp_path, "producer.py", proxy, topic, "3", "--group", "g1")
        )
        sent = [e for e in events if e["event"] == "sent"]
        assert len(sent) == 3
        # Then actormq's own consumer reads them intact, under the producer's message ids, and
        # the message group is the sharding key: all three in one queue, in order
        got = read_natively(cluster, topic, "native_reads_grpc5", 3)
        assert [m.body for m in got] == [b"body-0", b"body-1", b"body-2"]
        assert [m.msg_id for m in got] == [e["message_id"] for e in sent]
        assert {m.tags for m in got} == {"TagA"}
        assert [m.keys for m in got] == [["k0"], ["k1"], ["k2"]]
        assert [m.properties["seq"] for m in got] == ["0", "1", "2"]
        assert {m.all_properties["__SHARDINGKEY"] for m in got} == {"g1"}
        assert len({m.queue_id for m in got}) == 1


def test_tls_clients_are_served_on_the_default_port(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        # Given the proxy as started by default (no TLS configured: it made a certificate),
        # and RocketMQ 5's producer and SimpleConsumer with TLS on, trusting that certificate
        # (RocketMQ 5's Java and Go clients use TLS by default and trust any certificate)
        # When the producer sends 3 messages over TLS
        topic, tls = sent_over_tls(grpc5_client, cluster, tmp_path, "Grpc5Tls", ".py")
        proxy = cluster.ready["proxy"]
        # Then the SimpleConsumer receives all three over TLS, and a plain client still works
        received = ended(
            run_script(
                grpc5_client,
                tmp_path,
                "simple_consumer.py",
                proxy,
                "grpc5_tls",
                topic,
                "--expect",
                "3",
                env=tls,
            )
        )
        bodies = sorted(e["body"] for e in received if e["event"] == "received")
        assert bodies == ["body-0", "body-1", "body-2"]
        assert len(read_natively(cluster, topic, "native_reads_grpc5_tls", 3)) == 3


def test_native_producer_is_received_by_the_simple_consumer(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        received = native_producer_to_simple_consumer(
            grpc5_client, cluster, tmp_path, "simple_consumer.py", "Grpc5", keys=1
        )
        assert sorted(e["keys"] for e in received) == [["key1"], ["key3"]]


def test_unacked_messages_come_back_then_go_to_the_dead_letter_queue(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        # Given 3 messages, one of them poison (never acked), one acked only on its 2nd delivery
        topic = make_topic(cluster, "Grpc5Redelivery")
        proxy = cluster.ready["proxy"]
        ended(run_script(grpc5_client, tmp_path, "producer.py", proxy, topic, "3"))
        # When the SimpleConsumer receives with a 2 s invisible duration
        events = ended(
            run_script(
                grpc5_client,
                tmp_path,
                "simple_consumer.py",
                proxy,
                "grpc5_redeliver",
                topic,
                "--expect",
                "2",
                "--invisible",
                "2",
                "--never-ack",
                "body-0",
                "--ack-after-attempt",
                "2",
                "--seconds",
                "30",
            )
        )
        # Then every message came back after its invisible duration (attempt 2), the acked
        # ones never again
        attempts: dict[str, list[int]] = {}
        for e in events:
            if e["event"] == "received":
                attempts.setdefault(e["body"], []).append(e["attempt"])
        assert attempts["body-1"] == [1, 2] and attempts["body-2"] == [1, 2], attempts
        assert attempts["body-0"][:2] == [1, 2], attempts
        # And the poison message, past --max-attempts 2, went to %DLQ%<group> (without a
        # receive asking: its last invisible duration ran out after the consumer left)
        await_route(cluster, "%DLQ%grpc5_redeliver")
        dead = read_natively(cluster, "%DLQ%grpc5_redeliver", "native_reads_dlq", 1)
        assert [m.body for m in dead] == [b"body-0"]


def test_push_consumer_filters_retries_and_waits_for_delivery_time(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        topic = make_topic(cluster, "Grpc5Push")
        proxy = cluster.ready["proxy"]
        # Given RocketMQ 5's PushConsumer on TagA that fails body-1 once
        with run_script(
            grpc5_client,
            tmp_path,
            "push_consumer.py",
            proxy,
            "grpc5_push",
            topic,
            "--expression",
            "TagA",
            "--fail-once",
            "body-1",
        ) as consumer:
            consumer.wait_event("ready", timeout=30)
            # When 3 TagA, 2 TagB and one TagA message due in 3 s are sent
            ended(run_script(grpc5_client, tmp_path, "producer.py", proxy, topic, "3"))
            ended(
                run_script(
                    grpc5_client,
                    tmp_path,
                    "producer.py",
                    proxy,
                    topic,
                    "2",
                    "--tag",
                    "TagB",
                    "--body-prefix",
                    "b-",
                )
            )
            delayed = ended(
                run_script(
                    grpc5_client,
                    tmp_path,
                    "producer.py",
                    proxy,
                    topic,
                    "1",
                    "--delay-ms",
                    "3000",
                    "--body-prefix",
                    "late-",
                )
            )
            due_ms = next(e["due_ms"] for e in delayed if e["event"] == "sent")
            # Then the TagA ones are consumed, body-1 on its second delivery, none of TagB
            consumer.wait_until(
                lambda evs: (
                    {e["body"] for e in evs if e["event"] == "consumed"}
                    >= {"body-0", "body-1", "body-2", "late-0"}
                ),
                timeout=40,
                what="every TagA message consumed",
            )
            consumed = {e["body"]: e for e in consumer.events("consumed")}
            assert consumed["body-1"]["attempt"] == 2
            assert [e["body"] for e in consumer.events("failed")] == ["body-1"]
            assert not any(body.startswith("b-") for body in consumed)
            # And the delayed one not before its delivery time
            assert consumed["late-0"]["at_ms"] >= due_ms
        assert consumer.proc.returncode == 0, consumer.diagnostics()


def test_unknown_topic_is_refused_and_the_proxy_keeps_serving(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        proxy = cluster.ready["proxy"]
        # Given a topic nobody created
        # When RocketMQ 5's producer sends to it
        code, events = run_to_end(
            run_script(grpc5_client, tmp_path, "producer.py", proxy, "NoSuchTopicGrpc5", "1"), 60
        )
        # Then the send fails naming the topic, and a send to a real topic still works
        errors = [e for e in events if e["event"] == "error"]
        assert code != 0 and errors and "NoSuchTopicGrpc5" in errors[0]["error"], events
        topic = make_topic(cluster, "Grpc5AfterError")
        ok = ended(run_script(grpc5_client, tmp_path, "producer.py", proxy, topic, "1"))
        assert any(e["event"] == "sent" for e in ok)


def test_transactions_commit_roll_back_and_are_checked_back(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        topic = make_topic(cluster, "Grpc5Transactions")
        # Given RocketMQ 5's transactional producer: one committed, one rolled back, one left
        # open (its checker answers COMMIT when the broker asks)
        events = ended(
            run_script(
                grpc5_client, tmp_path, "transaction_producer.py", cluster.ready["proxy"], topic
            )
        )
        # Then the broker asked about the open one through the proxy, and the client answered
        assert [e["body"] for e in events if e["event"] == "checked"][:1] == ["tx-orphan"]
        assert events[-1]["event"] == "done" and events[-1]["checked"] is True
        # And consumers see the committed and the checked-back one, never the rolled back one
        got = read_natively(cluster, topic, "native_reads_tx", 2)
        assert sorted(m.body for m in got) == [b"tx-commit", b"tx-orphan"]
        sent = {e["body"]: e["message_id"] for e in events if e["event"] == "sent"}
        assert {m.msg_id for m in got} == {sent["tx-commit"], sent["tx-orphan"]}


def test_fifo_group_consumes_each_message_group_in_order(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        topic = make_topic(cluster, "Grpc5Fifo")
        proxy = cluster.ready["proxy"]
        # Given a consumer group configured to consume in order (consumeMessageOrderly)
        with Admin(cluster.namesrv) as admin:
            config = SubscriptionGroupConfig(group_name="grpc5_fifo", consume_message_orderly=True)
            admin.update_subscription_group(config)
        # And 3 messages of message group g1
        ended(run_script(grpc5_client, tmp_path, "producer.py", proxy, topic, "3", "--group", "g1"))
        # When RocketMQ 5's PushConsumer fails body-1 once
        with run_script(
            grpc5_client,
            tmp_path,
            "push_consumer.py",
            proxy,
            "grpc5_fifo",
            topic,
            "--fail-once",
            "body-1",
        ) as consumer:
            consumer.wait_until(
                lambda evs: len([e for e in evs if e["event"] == "consumed"]) >= 3,
                timeout=40,
                what="3 messages consumed",
            )
            # Then the group was consumed in order: body-2 only after body-1's retry
            assert [e["body"] for e in consumer.events("consumed")] == [
                "body-0",
                "body-1",
                "body-2",
            ]
            assert [e["body"] for e in consumer.events("failed")] == ["body-1"]


def test_a_recalled_delayed_message_is_never_delivered(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        topic = make_topic(cluster, "Grpc5Recall")
        # Given 3 messages due in 3 s, the second recalled at once (RocketMQ 5's recall)
        events = ended(
            run_script(
                grpc5_client,
                tmp_path,
                "producer.py",
                cluster.ready["proxy"],
                topic,
                "3",
                "--delay-ms",
                "3000",
                "--recall",
                "1",
            )
        )
        sent = {e["i"]: e for e in events if e["event"] == "sent"}
        recalled = [e for e in events if e["event"] == "recalled"]
        assert [e["message_id"] for e in recalled] == [sent[1]["message_id"]]
        # When they are due (and 3 s more), Then consumers got the other two only
        got = read_natively(cluster, topic, "native_reads_recall", 3, seconds=6)
        assert sorted(m.body for m in got) == [b"body-0", b"body-2"]


def _lite_topics(cluster: Cluster, parent: str) -> set[str]:
    """The lite topics of ``parent`` the cluster has (their queue topics' last part)."""
    prefix = f"%LMQ%${parent}$"
    with Admin(cluster.namesrv) as admin:
        return {t[len(prefix) :] for t in admin.topic_list() if t.startswith(prefix)}


def test_lite_push_consumer_gets_its_lite_topics_in_order(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        # Given a LITE topic and RocketMQ 5's Python LitePushConsumer subscribed to two of its
        # lite topics (the client sends each name spelled out, one character per entry)
        topic = make_topic(cluster, "Grpc5Lite", attributes="+message.type=LITE")
        proxy = cluster.ready["proxy"]
        args = ["lite_consumer.py", proxy, "grpc5_lite", topic, "--lites", "chat-1,chat-2"]
        with run_script(grpc5_client, tmp_path, *args) as consumer:
            consumer.wait_event("ready", timeout=30)
            # When the Python producer sends 9 lite messages over three lite topics, Then it
            # consumes the six of its two lite topics, each in order, each marked
            lite_messages_consumed_in_order(grpc5_client, tmp_path, ".py", topic, consumer, proxy)
            assert consumer.terminate(timeout=30) == 0, consumer.diagnostics()
        # And the proxy made the lite topics named, not one per character
        assert _lite_topics(cluster, topic) == {"chat-1", "chat-2", "chat-3"}


def test_lite_simple_consumer_receives_its_lite_topic(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        # Given a LITE topic with messages of two lite topics
        topic = make_topic(cluster, "Grpc5LiteSimple", attributes="+message.type=LITE")
        proxy = cluster.ready["proxy"]
        sent = ended(
            run_script(
                grpc5_client,
                tmp_path,
                "producer.py",
                proxy,
                topic,
                "6",
                "--lite",
                "s-1,s-2",
                "--body-prefix",
                "",
            )
        )
        assert len([e for e in sent if e["event"] == "sent"]) == 6
        # When RocketMQ 5's LiteSimpleConsumer subscribes one of them and receives
        events = ended(
            run_script(
                grpc5_client,
                tmp_path,
                "lite_consumer.py",
                proxy,
                "grpc5_lite_simple",
                topic,
                "--lites",
                "s-1",
                "--simple",
                "--expect",
                "3",
                "--seconds",
                "30",
            )
        )
        # Then it gets that lite topic's three, in order, each marked, and none of the other
        received = [e for e in events if e["event"] == "received"]
        assert [e["body"] for e in received] == ["s-1:0", "s-1:2", "s-1:4"], events
        assert {e["lite_topic"] for e in received} == {"s-1"}


def test_priority_messages_are_stored_by_priority_and_received_with_it(
    grpc5_client: Client, cluster_with_proxy: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(cluster_with_proxy) as cluster:
        # Given a PRIORITY topic, When the Python producer sends priorities 3, 1, 2 and 0 (all
        # type PRIORITY), Then each is stored in its priority's queue, and the Python
        # SimpleConsumer receives each with its priority
        priorities_stored_and_received(grpc5_client, cluster, tmp_path, "Grpc5Priority", ".py")
