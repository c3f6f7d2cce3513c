"""RocketMQ 5's official Node.js client (gRPC, ``rocketmq-client-nodejs`` 1.0.8) through actormq's
proxy (``python -m runtime cluster --proxy``), against actormq's own remoting client on the
other side, as ``test_grpc5_client.py`` does for the Python client.

The module's cluster is examples/features.toml and runs its proxy with ``--consume-from first``
(a group new to the brokers reads each fresh topic from its start), ``--max-attempts 2``,
``--invisible 3`` and ``--long-polling 2``: a push consumer's ``shutdown()`` waits for its
receive in flight, so a short long poll keeps each stop within seconds. The scripts are in
``tests/interop/node5/``; their quirks (one topic per producer, the push consumer's exit) in
docs/proxy.md, "Node.js client notes". Every test names its own topic and group.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.interop.clients import Event
from tests.interop.install import Client
from tests.interop.proxy_support import (
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
def node5_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("node5-cluster") / "data"
    with proxy_cluster(data, "--long-polling", "2") as cluster:
        yield cluster


def _by_body(events: list[Event], kind: str) -> dict[str, Event]:
    return {e["body"]: e for e in events if e["event"] == kind}


def test_node_producer_is_read_by_the_native_consumer(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        # Given a topic and RocketMQ 5's Node.js producer connected to the proxy
        topic = make_topic(cluster, "Node5ToNative")
        proxy = cluster.ready["proxy"]
        # When it sends 3 messages of message group g1 (tag, two keys, a property on each)
        events = ended(
            run_script(node5_client, tmp_path, "producer.js", proxy, topic, "3", "--group", "g1")
        )
        sent = [e for e in events if e["event"] == "sent"]
        assert len(sent) == 3
        # Then actormq's own consumer reads them intact, under the producer's message ids (its
        # UNIQ_KEY), at the offsets the send receipts named
        got = read_natively(cluster, topic, "native_reads_node5", 3)
        assert [m.body for m in got] == [b"body-0", b"body-1", b"body-2"]
        assert [m.all_properties["UNIQ_KEY"] for m in got] == [e["message_id"] for e in sent]
        assert [m.msg_id for m in got] == [e["message_id"] for e in sent]
        assert {m.tags for m in got} == {"TagA"}
        assert [m.keys for m in got] == [["k0", "kk0"], ["k1", "kk1"], ["k2", "kk2"]]
        assert [m.properties for m in got] == [{"seq": "0"}, {"seq": "1"}, {"seq": "2"}]
        assert [m.queue_offset for m in got] == [e["offset"] for e in sent]
        # And the message group is the sharding key: all three in one queue, in order
        assert {m.all_properties["__SHARDINGKEY"] for m in got} == {"g1"}
        assert len({m.queue_id for m in got}) == 1


def test_tls_clients_are_served_on_the_default_port(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        # Given the proxy as started by default (it made a certificate at start), and the
        # Node.js producer with sslEnabled, trusting that certificate
        # When it sends 3 messages over TLS
        topic, _ = sent_over_tls(node5_client, cluster, tmp_path, "Node5Tls", ".js")
        # Then they are stored and read intact
        got = read_natively(cluster, topic, "native_reads_node5_tls", 3)
        assert sorted(m.body for m in got) == [b"body-0", b"body-1", b"body-2"]


def test_native_producer_is_received_by_the_simple_consumer(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        received = native_producer_to_simple_consumer(
            node5_client, cluster, tmp_path, "simple_consumer.js", "Node5", keys=2
        )
        assert sorted(e["keys"] for e in received) == [["key1", "other1"], ["key3", "other3"]]
        assert all(e["message_group"] is None for e in received)


def test_push_consumer_filters_tags_and_retries_a_failed_message(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        topic = make_topic(cluster, "Node5Push")
        proxy = cluster.ready["proxy"]
        # Given RocketMQ 5's Node.js PushConsumer on TagA that fails body-1 once
        with run_script(
            node5_client,
            tmp_path,
            "push_consumer.js",
            proxy,
            "node5_push",
            topic,
            "--expression",
            "TagA",
            "--fail-once",
            "body-1",
        ) as consumer:
            consumer.wait_event("ready", timeout=30)
            # When 4 TagB messages are sent (the proxy spreads them over the 4 queues), then 3
            # TagA ones, stored after them
            ended(
                run_script(
                    node5_client,
                    tmp_path,
                    "producer.js",
                    proxy,
                    topic,
                    "4",
                    "--tag",
                    "TagB",
                    "--body-prefix",
                    "b-",
                )
            )
            ended(run_script(node5_client, tmp_path, "producer.js", proxy, topic, "3"))
            # Then the TagA ones are consumed, body-1 on its second delivery
            consumer.wait_until(
                lambda evs: _by_body(evs, "consumed").keys() >= {"body-0", "body-1", "body-2"},
                timeout=40,
                what="every TagA message consumed",
            )
            consumed = consumer.events("consumed")
            assert sorted((e["body"], e["attempt"]) for e in consumed) == [
                ("body-0", 1),
                ("body-1", 2),
                ("body-2", 1),
            ]
            failed = consumer.events("failed")
            assert [(e["body"], e["attempt"]) for e in failed] == [("body-1", 1)]
            assert all(e["tag"] == "TagA" and e["corrupted"] is False for e in consumed)
            # And none of TagB ever reached the listener
            assert not [e for e in consumer.events() if e.get("tag") == "TagB"]
            # And SIGTERM stops it cleanly (shutdown waits for the receive in flight)
            assert consumer.terminate(timeout=30) == 0, consumer.diagnostics()
            assert consumer.events()[-1]["event"] == "stopped"


def test_delayed_message_is_not_consumed_before_its_delivery_time(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        topic = make_topic(cluster, "Node5Delay")
        proxy = cluster.ready["proxy"]
        # Given RocketMQ 5's Node.js SimpleConsumer receiving from the topic
        with run_script(
            node5_client,
            tmp_path,
            "simple_consumer.js",
            proxy,
            "node5_delay",
            topic,
            "--expect",
            "2",
            "--seconds",
            "30",
        ) as consumer:
            consumer.wait_event("ready", timeout=30)
            # When one message due in 5 s is sent, then one to deliver at once
            delayed = ended(
                run_script(
                    node5_client,
                    tmp_path,
                    "producer.js",
                    proxy,
                    topic,
                    "1",
                    "--delay-ms",
                    "5000",
                    "--body-prefix",
                    "late-",
                )
            )
            due_ms = next(e["due_ms"] for e in delayed if e["event"] == "sent")
            ended(
                run_script(
                    node5_client,
                    tmp_path,
                    "producer.js",
                    proxy,
                    topic,
                    "1",
                    "--body-prefix",
                    "now-",
                )
            )
            # Then the consumer gets the immediate one first, and the delayed one not before
            # its delivery time, which it carries
            assert consumer.wait_exit(40) == 0, consumer.diagnostics()
        received = _by_body(consumer.events(), "received")
        assert sorted(e["body"] for e in consumer.events("received")) == ["late-0", "now-0"]
        assert received["now-0"]["at_ms"] < received["late-0"]["at_ms"]
        assert received["late-0"]["at_ms"] >= due_ms
        assert received["late-0"]["delivery_ms"] == due_ms
        assert received["now-0"]["delivery_ms"] is None


def test_a_producer_of_three_topics_starts_within_seconds(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        # Given three topics named to the Node.js producer at construction
        topics = [make_topic(cluster, f"Node5Three{i}") for i in range(3)]
        # When it starts (its settings answer comes while it still fetches routes) and sends
        events = ended(
            run_script(
                node5_client,
                tmp_path,
                "producer.js",
                cluster.ready["proxy"],
                topics[0],
                "1",
                "--also",
                ",".join(topics[1:]),
            )
        )
        # Then it started in seconds (the proxy's repeated answer), not the client's 300 s
        started = next(e for e in events if e["event"] == "started")
        assert started["startup_ms"] < 10_000, started
        assert [e["event"] for e in events][-2:] == ["sent", "done"]


def test_lite_push_consumer_gets_its_lite_topics_in_order(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        # Given a LITE topic and RocketMQ 5's Node.js LitePushConsumer subscribed to two of its
        # lite topics, suspending one message once
        topic = make_topic(cluster, "Node5Lite", attributes="+message.type=LITE")
        proxy = cluster.ready["proxy"]
        with run_script(
            node5_client,
            tmp_path,
            "lite_consumer.js",
            proxy,
            "node5_lite",
            topic,
            "--lites",
            "chat-1,chat-2",
            "--suspend-once",
            "chat-1:3",
        ) as consumer:
            assert consumer.wait_event("ready", timeout=30)["lites"] == ["chat-1", "chat-2"]
            # When the Node.js producer sends 9 lite messages over three lite topics, Then it
            # consumes the six of its two lite topics, each lite topic in order (the suspended
            # one before the next), each marked with its lite topic
            consumed = lite_messages_consumed_in_order(
                node5_client, tmp_path, ".js", topic, consumer, proxy
            )
            # And the suspended message came back without a retry counted
            assert [e["body"] for e in consumer.events("suspended")] == ["chat-1:3"]
            assert _by_body(consumed, "consumed")["chat-1:3"]["attempt"] == 1
            # And nothing of the lite topic it did not subscribe reached it
            assert not [e for e in consumer.events() if e.get("lite_topic") == "chat-3"]
            assert consumer.terminate(timeout=30) == 0, consumer.diagnostics()


def test_priority_messages_are_stored_by_priority_and_received_with_it(
    node5_client: Client, node5_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with one_test(node5_cluster) as cluster:
        # Given a PRIORITY topic, When the Node.js producer sends priorities 3, 1, 2 (type
        # PRIORITY) and 0 (sent as a NORMAL message with priority 0), Then each is stored in
        # its priority's queue, and the Node.js SimpleConsumer receives each with its priority
        priorities_stored_and_received(node5_client, cluster, tmp_path, "Node5Priority", ".js")
