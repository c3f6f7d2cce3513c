"""The broker's Prometheus endpoint (``metricsExporterType=PROM``) against real processes."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from actors.client import Admin, ConsumeFrom, Message, MessageQueue, Producer, PullConsumer
from runtime.hostport import parse_address
from tests.client_support import wait_until
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(90)

TOPIC = "MetricsOrders"
GROUP = "metrics-billing"
SAMPLE = re.compile(r"^([a-z_]+)\{([^}]*)\} (\S+)$")


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[tuple[str, str]]:
    """(name server, metrics address) of a name server and one broker exporting metrics."""
    with RuntimeProcess(["namesrv", "--ephemeral-ports"]) as namesrv:
        ns = namesrv.wait_ready()["namesrv"]
        conf = tmp_path / "broker-a.properties"
        conf.write_text(
            "brokerClusterName=MetricsCluster\nbrokerName=broker-a\nbrokerId=0\n"
            "metricsExporterType=PROM\n"
        )
        args = ["broker", "-c", str(conf), "--namesrv-addr", ns, "--ephemeral-ports"]
        args += ["--data-dir", str(tmp_path / "store")]
        with RuntimeProcess(args) as broker, Admin(ns) as admin:
            metrics = broker.wait_ready()["metrics@broker-a/0"]
            wait_until(lambda: admin.cluster_info().broker_addr_table, what="registered")
            yield ns, metrics


def scrape(address: str, path: str = "/metrics") -> tuple[str, dict[str, float]]:
    """(content type, {'name{labels}': value}) of one scrape."""
    with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        assert 'cluster="MetricsCluster"' in labels and 'node_id="broker-a"' in labels
        own = ",".join(p for p in labels.split(",") if not p.startswith(_COMMON))
        samples[f"{name}{{{own}}}"] = float(value)
    return content_type, samples


_COMMON = ("cluster=", "node_type=", "node_id=", "broker_id=")


def test_a_scrape_reports_messages_lag_and_members(cluster: tuple[str, str]) -> None:
    namesrv, metrics = cluster
    # Given five messages on queue 0 of a topic, read by a group that committed offset 2 there
    queue0 = MessageQueue(topic=TOPIC, broker_name="broker-a", queue_id=0)
    with Producer("metrics-producer", namesrv=namesrv) as producer:
        for i in range(5):
            producer.send(Message(TOPIC, b"order %d" % i), queue=queue0)
        consumer = PullConsumer(
            GROUP, namesrv=namesrv, consume_from=ConsumeFrom.FIRST, auto_commit=False
        )
        consumer.assign([queue0])
        consumer.start()
        try:
            got: list[bytes] = []
            wait_until(lambda: got.extend(m.body for m in consumer.poll(0.2)) or len(got) >= 5)
            consumer.commit(offsets={queue0: 2})
            # When Prometheus scrapes the broker while both clients are members (their
            # heartbeats are on their way when start and the first send return)
            member = f'rocketmq_consumer_connections{{consumer_group="{GROUP}"}}'
            producing = 'rocketmq_producer_connections{producer_group="metrics-producer"}'
            wait_until(lambda: {member, producing} <= set(scrape(metrics)[1]), what="heartbeats")
            content_type, samples = scrape(metrics)
        finally:
            consumer.shutdown()
    # Then the figures are there, in the text format
    assert content_type.startswith("text/plain; version=0.0.4")
    assert samples[f'rocketmq_messages_in_total{{topic="{TOPIC}"}}'] == 5
    assert (
        samples[f'rocketmq_consumer_lag_messages{{topic="{TOPIC}",consumer_group="{GROUP}"}}'] == 3
    )
    waited = f'rocketmq_consumer_lag_latency{{topic="{TOPIC}",consumer_group="{GROUP}"}}'
    assert 0 < samples[waited] < 60_000  # the third message, stored moments ago
    assert samples[member] == 1 and samples[producing] == 1
    assert samples[f'rocketmq_messages_out_total{{topic="{TOPIC}",consumer_group="{GROUP}"}}'] >= 5
    stored = samples[f'rocketmq_throughput_in_total{{topic="{TOPIC}"}}']
    assert stored > 5 * len(b"order 0")
    out = f'rocketmq_throughput_out_total{{topic="{TOPIC}",consumer_group="{GROUP}"}}'
    assert samples[out] >= stored  # every record read once at least
    assert samples["actormq_broker_messages_in_total{}"] >= 5
    assert samples["rocketmq_topic_number{}"] >= 1
    assert samples["rocketmq_broker_permission{}"] == 6
    assert samples["rocketmq_storage_size{}"] > 5 * len(b"order 0")
    assert samples["rocketmq_storage_dispatch_behind_bytes{}"] >= 0
    assert samples["rocketmq_storage_flush_behind_bytes{}"] >= 0
    # And the five sends are in the RPC latency histogram (RocketMQ's rocketmq_rpc_latency):
    # cumulative buckets up to +Inf, which equals the count
    sends = 'protocol_type="remoting",request_code="SEND_MESSAGE_V2",response_code="SUCCESS"'
    count = samples[f"rocketmq_rpc_latency_count{{{sends}}}"]
    assert count >= 5
    assert samples[f'rocketmq_rpc_latency_bucket{{{sends},le="+Inf"}}'] == count
    assert samples[f'rocketmq_rpc_latency_bucket{{{sends},le="3000"}}'] <= count
    assert (
        samples[f'rocketmq_rpc_latency_bucket{{{sends},le="0.1"}}']
        <= (samples[f'rocketmq_rpc_latency_bucket{{{sends},le="1"}}'])
    )
    assert 0 < samples[f"rocketmq_rpc_latency_sum{{{sends}}}"] < count * 3000


def test_message_sizes_are_kept_by_topic_and_message_type(cluster: tuple[str, str]) -> None:
    namesrv, metrics = cluster
    # Given sends of two small messages, a 5,000-byte one with a sharding key (FIFO), a delayed
    # 2,000-byte one, and a batch of three 100-byte ones
    with Producer("sizes-producer", namesrv=namesrv) as producer:
        producer.send(Message("SizedTopic", b"a" * 100))
        producer.send(Message("SizedTopic", b"b" * 100))
        # (random: a body over 4 KiB is compressed by the client, and sized as it arrives)
        producer.send(Message("SizedTopic", os.urandom(5000)), sharding_key="order-7")
        producer.send(Message("SizedTopic", b"d" * 2000, delay_level=1))
        producer.send_batch([Message("SizedTopic", b"x" * 100) for _ in range(3)])
    # When Prometheus scrapes the broker
    _content_type, samples = scrape(metrics)

    def bucket(kind: str, le: str) -> float:
        labels = f'topic="SizedTopic",message_type="{kind}",le="{le}"'
        return samples[f"rocketmq_message_size_bucket{{{labels}}}"]

    # Then each send is in RocketMQ's size buckets (its records' average size as stored: body,
    # properties and the record's header), by the type its send said (the batch one normal)
    assert [bucket("normal", le) for le in ("1024", "4096", "+Inf")] == [3, 3, 3]
    total = samples['rocketmq_message_size_sum{topic="SizedTopic",message_type="normal"}']
    assert 3 * 100 < total < 3 * 1024
    assert [bucket("fifo", le) for le in ("1024", "4096", "524288", "+Inf")] == [0, 0, 1, 1]
    assert [bucket("delay", le) for le in ("1024", "4096")] == [0, 1]
    assert 'rocketmq_message_size_count{topic="SizedTopic",message_type="transaction"}' not in (
        samples
    )


def test_other_paths_and_methods_and_a_silent_peer(cluster: tuple[str, str]) -> None:
    _namesrv, metrics = cluster
    # Given the endpoint, When asked for another path or with POST, Then 404 / 405
    with pytest.raises(urllib.error.HTTPError) as not_found:
        scrape(metrics, "/other")
    assert not_found.value.code == 404
    request = urllib.request.Request(f"http://{metrics}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as not_allowed:
        urllib.request.urlopen(request, timeout=10)
    assert not_allowed.value.code == 405
    # And a peer that connects and says nothing does not stop the next scrape
    with socket.create_connection(parse_address(metrics), timeout=5):
        _content_type, samples = scrape(metrics)
    assert "rocketmq_topic_number{}" in samples


def test_a_promoted_slave_serves_its_metrics_as_the_master(tmp_path: pathlib.Path) -> None:
    from tests.integration.test_ha_process import FILES, Cluster

    # Given a controller-mode group whose slave exports metrics
    c = Cluster(tmp_path, "2m-2s-async")
    try:
        master, _ = c.broker("broker-a.properties", "a0")
        conf = tmp_path / "slave.properties"
        shipped = (FILES / "2m-2s-async" / "broker-a-s.properties").read_text()
        conf.write_text(shipped + "\nmetricsExporterType=PROM\n")
        data = str(tmp_path / "a1")
        args = ["broker", "-c", str(conf), "--namesrv-addr", c.namesrv, "--data-dir", data]
        slave = c.spawn(args)
        metrics = slave.wait_ready()["metrics@broker-a/1"]
        c.ns.wait_line(r"broker-a in-sync set now \[1\]", 30)
        assert 'broker_id="1"' in _text(metrics)
        # When the master is killed and the controller promotes the slave (its node is rebuilt
        # as the master, on the same sockets)
        master.signal(signal.SIGKILL)
        master.wait(10)
        slave.wait_line(r"master of epoch 2", 30)
        # Then the same endpoint answers, now as broker 0
        wait_until(lambda: 'broker_id="0"' in _text(metrics), 20, "the master's metrics")
    finally:
        c.close()


def _text(address: str) -> str:
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""
