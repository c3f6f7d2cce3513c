"""mqadmin's inventory commands against a real two-group cluster (broker-a: master and slave,
broker-b: master): exportMetadata, exportConfigs, getConsumerConfig, allocateMQ, producer, and
the broker's GET_ALL_PRODUCER_INFO (328) over the wire."""

from __future__ import annotations

import json
import pathlib
import subprocess
import time
from collections.abc import Iterator

import pytest

from actors.client import Admin, Message, Producer
from runtime.remoting.bodies import SubscriptionGroupConfig
from runtime.remoting.codes import RequestCode, ResponseCode
from tests import forked_cli
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)

PROFILE = """
[[namesrv]]
listenPort = 9876

[[broker]]
brokerName = "broker-a"
brokerId = 0
brokerRole = "ASYNC_MASTER"
listenPort = 10911
haListenPort = 10912

[[broker]]
brokerName = "broker-a"
brokerId = 1
brokerRole = "SLAVE"
listenPort = 10921
haListenPort = 10922

[[broker]]
brokerName = "broker-b"
brokerId = 0
brokerRole = "ASYNC_MASTER"
listenPort = 10931
haListenPort = 10932
"""
CLUSTER = "DefaultCluster"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("admin-export")
    profile = root / "two-groups.toml"
    profile.write_text(PROFILE)
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports", "--data-dir"]
    with RuntimeProcess([*args, str(root / "data")]) as node:
        yield node.wait_ready(timeout=30)
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture(scope="module")
def admin(cluster: dict[str, str]) -> Iterator[Admin]:
    with Admin(cluster["namesrv"]) as a:
        # the three brokers registered (the slave too) before any test reads the cluster
        wait_until(lambda: len(a.brokers(CLUSTER)) == 3, timeout=30, what="three brokers")
        yield a


@pytest.fixture(scope="module")
def stocked(cluster: dict[str, str], admin: Admin) -> dict[str, str]:
    """Topics and groups on the masters: Inventory (3 queues on broker-a, 5 on broker-b),
    OnlyOnA (2 queues, broker-a), %RETRY%stock-audit (1 queue each), group stock-audit (retry
    queues 1 on broker-a, 2 on broker-b), group b-only (broker-b)."""
    a, b = cluster["broker-a/0"], cluster["broker-b/0"]
    admin.create_topic("Inventory", broker_addr=a, queues=3)
    admin.create_topic("Inventory", broker_addr=b, queues=5)
    admin.create_topic("OnlyOnA", broker_addr=a, queues=2)
    admin.create_topic("%RETRY%stock-audit", cluster=CLUSTER, queues=1)
    for address, retry_queues in ((a, 1), (b, 2)):
        config = SubscriptionGroupConfig(group_name="stock-audit", retry_queue_nums=retry_queues)
        admin.update_subscription_group(config, broker_addr=address)
    admin.update_subscription_group(
        SubscriptionGroupConfig(group_name="b-only", retry_max_times=3), broker_addr=b
    )
    wait_until(
        lambda: sum(q.read_queue_nums for q in admin.topic_route("Inventory").queue_datas) == 8,
        what="Inventory's route on both masters",
    )
    return cluster


def mqadmin(namesrv: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m runtime admin <command> -n <namesrv> <args>`` (forked: ``tests.forked_cli``)."""
    return forked_cli.run(["admin", args[0], "-n", namesrv, *args[1:]], timeout=60)


def read_json(path: pathlib.Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_export_metadata_of_a_cluster_merges_its_masters_user_topics_and_groups(
    stocked: dict[str, str], tmp_path: pathlib.Path
) -> None:
    namesrv = stocked["namesrv"]
    before = int(time.time() * 1000)
    # When the cluster's metadata is exported
    done = mqadmin(namesrv, "exportMetadata", "-c", CLUSTER, "-f", str(tmp_path / "all"))
    # Then metadata.json holds both tables and the export time
    path = tmp_path / "all" / "metadata.json"
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"export {path} success"
    document = read_json(path)
    assert set(document) == {"topicConfigTable", "subscriptionGroupTable", "exportTime"}
    assert before <= document["exportTime"] <= int(time.time() * 1000)
    # And a topic on both masters is there once, its queue counts summed; none of the
    # brokers' own topics (TBW102, SCHEDULE_TOPIC_XXXX, broker and cluster names, ...) nor
    # retry topics are
    topics = document["topicConfigTable"]
    assert set(topics) == {"Inventory", "OnlyOnA"}
    assert (topics["Inventory"]["readQueueNums"], topics["Inventory"]["writeQueueNums"]) == (8, 8)
    assert topics["OnlyOnA"]["writeQueueNums"] == 2 and topics["OnlyOnA"]["perm"] == 6
    # And a group on both masters is there once, its retry queues summed; system groups
    # (TOOLS_CONSUMER, CID_RMQ_SYS_TRANS, ...) are not
    groups = document["subscriptionGroupTable"]
    assert set(groups) == {"stock-audit", "b-only"}
    assert groups["stock-audit"]["retryQueueNums"] == 3
    assert groups["b-only"]["retryMaxTimes"] == 3
    # When only topics are exported, with the special ones (-s)
    done = mqadmin(namesrv, "exportMetadata", "-c", CLUSTER, "-t", "-s", "-f", str(tmp_path))
    assert done.returncode == 0, done.stderr
    # Then topic.json has the topic table alone, the retry topic in it (one queue per master)
    document = read_json(tmp_path / "topic.json")
    assert set(document) == {"topicConfigTable", "exportTime"}
    assert set(document["topicConfigTable"]) == {"Inventory", "OnlyOnA", "%RETRY%stock-audit"}
    assert document["topicConfigTable"]["%RETRY%stock-audit"]["readQueueNums"] == 2
    # And with -g, subscriptionGroup.json has the group table alone
    done = mqadmin(namesrv, "exportMetadata", "-c", CLUSTER, "-g", "-f", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert set(read_json(tmp_path / "subscriptionGroup.json")) == {
        "subscriptionGroupTable",
        "exportTime",
    }


def test_export_metadata_of_one_broker_writes_its_own_tables(
    stocked: dict[str, str], tmp_path: pathlib.Path
) -> None:
    namesrv, b = stocked["namesrv"], stocked["broker-b/0"]
    # When broker-b's groups are exported
    done = mqadmin(namesrv, "exportMetadata", "-b", b, "-g", "-f", str(tmp_path))
    assert done.returncode == 0, done.stderr
    # Then subscriptionGroup.json is that broker's wrapper: its own retry queue count, its
    # data version, no system group
    document = read_json(tmp_path / "subscriptionGroup.json")
    assert set(document) == {"subscriptionGroupTable", "dataVersion"}
    table = document["subscriptionGroupTable"]
    assert set(table) == {"stock-audit", "b-only"}
    assert table["stock-audit"]["retryQueueNums"] == 2
    # And its topics: broker-b's five queues of Inventory, not OnlyOnA
    done = mqadmin(namesrv, "exportMetadata", "-b", b, "-t", "-f", str(tmp_path))
    assert done.returncode == 0, done.stderr
    topics = read_json(tmp_path / "topic.json")["topicConfigTable"]
    assert set(topics) == {"Inventory"} and topics["Inventory"]["writeQueueNums"] == 5
    # And -b without -t or -g, or neither -b nor -c, is a usage error; a file that cannot be
    # written is a plain failure
    assert mqadmin(namesrv, "exportMetadata", "-b", b).returncode == 2
    assert mqadmin(namesrv, "exportMetadata", "-t").returncode == 2
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    failed = mqadmin(namesrv, "exportMetadata", "-b", b, "-t", "-f", str(blocker))
    assert failed.returncode == 1 and f"cannot write {blocker}/topic.json" in failed.stderr


def test_export_configs_keeps_each_masters_main_settings_and_the_cluster_scale(
    stocked: dict[str, str], tmp_path: pathlib.Path
) -> None:
    namesrv = stocked["namesrv"]
    # When the cluster's configs are exported
    done = mqadmin(namesrv, "exportConfigs", "-c", CLUSTER, "-f", str(tmp_path))
    path = tmp_path / "configs.json"
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"export {path} success"
    document = read_json(path)
    # Then each master's kept settings are there by broker name (the slave's are not)
    configs = document["brokerConfigs"]
    assert set(configs) == {"broker-a", "broker-b"}
    assert configs["broker-b"]["brokerName"] == "broker-b"
    assert configs["broker-a"]["brokerId"] == "0"
    assert configs["broker-a"]["brokerRole"] == "ASYNC_MASTER"
    assert configs["broker-a"]["brokerClusterName"] == CLUSTER
    assert "listenPort" not in configs["broker-a"]  # not one of the keys exportConfigs keeps
    # And the scale: one name server, two masters, one slave
    assert document["clusterScale"] == {
        "namesrvSize": 1,
        "masterBrokerSize": 2,
        "slaveBrokerSize": 1,
    }
    # And an unknown cluster is refused plainly
    failed = mqadmin(namesrv, "exportConfigs", "-c", "NoSuchCluster", "-f", str(tmp_path))
    assert failed.returncode == 1 and "NoSuchCluster" in failed.stderr


def test_get_consumer_config_prints_the_group_on_each_broker_that_has_it(
    stocked: dict[str, str], admin: Admin
) -> None:
    namesrv = stocked["namesrv"]
    # When a group both masters have is asked for
    shown = mqadmin(namesrv, "getConsumerConfig", "-g", "stock-audit")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    # Then one block per broker group, each with that broker's retry queue count
    banners = [line for line in lines if line.startswith("=")]
    bar = "=" * 29
    assert banners == [f"{bar}{CLUSTER}:broker-a{bar}", f"{bar}{CLUSTER}:broker-b{bar}"]
    assert lines[1] == f"{'groupName':<40s}=  stock-audit"
    retry = [line.split("=  ")[1] for line in lines if line.startswith("retryQueueNums ")]
    assert retry == ["1", "2"]
    assert f"{'consumeEnable':<40s}=  true" in lines
    # And a group one master has: its block alone; the Admin says the same
    found = admin.consumer_configs("b-only")
    assert [(r.cluster, r.broker_name, r.config.retry_max_times) for r in found] == [
        (CLUSTER, "broker-b", 3)
    ]
    shown = mqadmin(namesrv, "getConsumerConfig", "-g", "b-only")
    assert [line for line in shown.stdout.splitlines() if line.startswith("=")] == [
        f"{bar}{CLUSTER}:broker-b{bar}"
    ]
    # And a group no broker has prints nothing, as mqadmin
    shown = mqadmin(namesrv, "getConsumerConfig", "-g", "nobody-has-this")
    assert (shown.returncode, shown.stdout) == (0, "")


def test_allocate_mq_shares_the_topics_queues_averagely(stocked: dict[str, str]) -> None:
    namesrv = stocked["namesrv"]
    # When Inventory's 8 queues (3 on broker-a, 5 on broker-b) are shared among three ids
    shown = mqadmin(namesrv, "allocateMQ", "-t", "Inventory", "-i", "c2,c1,c3")
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)["result"]

    def queues(cid: str) -> list[tuple[str, int]]:
        return [(q["brokerName"], q["queueId"]) for q in result[cid]]

    # Then the ids sorted take contiguous blocks of 3, 3 and 2 queues
    assert queues("c1") == [("broker-a", 0), ("broker-a", 1), ("broker-a", 2)]
    assert queues("c2") == [("broker-b", 0), ("broker-b", 1), ("broker-b", 2)]
    assert queues("c3") == [("broker-b", 3), ("broker-b", 4)]
    assert all(q["topic"] == "Inventory" for qs in result.values() for q in qs)
    # And a topic without a route is refused plainly
    failed = mqadmin(namesrv, "allocateMQ", "-t", "NoSuchTopic", "-i", "c1")
    assert failed.returncode == 1 and "code 17" in failed.stderr


def test_producer_lists_a_brokers_producers_by_group(stocked: dict[str, str], admin: Admin) -> None:
    namesrv, a = stocked["namesrv"], stocked["broker-a/0"]
    before = int(time.time() * 1000)
    # Given a producer that sent to broker-a (so it heartbeats it)
    with Producer("export-test-producer", namesrv=namesrv) as producer:
        queue = next(q for q in producer.queues("OnlyOnA") if q.queue_id == 0)
        producer.send(Message("OnlyOnA", b"stock"), queue=queue)
        wait_until(lambda: "export-test-producer" in admin.producer_table(a), what="its heartbeat")
        # When the broker's producers are listed
        [info] = admin.producer_table(a)["export-test-producer"]
        # Then the group's producer is there with its client id, address and heartbeat time
        assert info.client_id == producer.client_id
        assert info.remote_ip.startswith("/127.0.0.1:")
        assert before - 1000 <= info.last_update_timestamp <= int(time.time() * 1000) + 1000
        # And the command line prints it as mqadmin does
        shown = mqadmin(namesrv, "producer", "-b", a)
        assert shown.returncode == 0, shown.stderr
        assert (
            f"producer group (export-test-producer) instance : clientId={producer.client_id},"
            f"remoteIP={info.remote_ip}, language={info.language}, version={info.version}, "
        ) in shown.stdout
    # And an unreachable broker is a plain failure
    failed = mqadmin(namesrv, "producer", "-b", "127.0.0.1:1")
    assert failed.returncode == 1 and failed.stderr.startswith("error:")


def test_the_broker_answers_get_all_producer_info_on_the_wire(stocked: dict[str, str]) -> None:
    b = stocked["broker-b/0"]
    asker = WireClient(b)
    producer = WireClient(b)
    try:
        # Given a producer of group "wire-producers" heartbeating broker-b on its own connection
        body = json.dumps(
            {"clientID": "10.0.0.9@77", "producerDataSet": [{"groupName": "wire-producers"}]}
        ).encode()
        assert producer.call(RequestCode.HEART_BEAT, body=body).code == ResponseCode.SUCCESS
        host, port = producer.sock.getsockname()[:2]
        local = f"{host}:{port}"
        # When GET_ALL_PRODUCER_INFO (328) is asked
        answer = asker.call(RequestCode.GET_ALL_PRODUCER_INFO)
        # Then the body is RocketMQ's ProducerTableInfo with that producer in it
        assert answer.code == ResponseCode.SUCCESS
        [info] = json.loads(answer.body)["data"]["wire-producers"]
        assert set(info) == {"clientId", "remoteIP", "language", "version", "lastUpdateTimestamp"}
        assert (info["clientId"], info["remoteIP"], info["language"]) == (
            "10.0.0.9@77",
            f"/{local}",
            "JAVA",
        )
        # And once its connection closes, the group goes from the table
        producer.close()

        def gone() -> bool:
            data = json.loads(asker.call(RequestCode.GET_ALL_PRODUCER_INFO).body)["data"]
            return "wire-producers" not in data

        wait_until(gone, what="the closed producer's group dropped")
    finally:
        producer.close()
        asker.close()
