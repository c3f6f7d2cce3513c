"""The inventory commands without a cluster: ProducerTableInfo on the wire, the broker's producer
table, ``ExportAdmin``'s filtering and merging over a fake transport, and the command line's
parsing and output forms (exportMetadata, exportConfigs, getConsumerConfig, allocateMQ,
producer)."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import pytest

from actors.broker.producer_manager import ProducerManager
from actors.client.admin import BrokerAddress
from actors.client.admin_export import (
    ClusterConfigs,
    ClusterMetadata,
    ExportAdmin,
    GroupConfigOnBroker,
    is_system_group,
)
from actors.client.errors import ClientError
from runtime.admin import build_parser, main
from runtime.admin_export import (
    DEFAULT_PATH,
    _write,
    client_ids,
    configs_json,
    consumer_config_lines,
    metadata_json,
)
from runtime.errors import ProtocolError
from runtime.remoting.bodies import (
    MessageQueue,
    SubscriptionGroupConfig,
    SubscriptionGroupWrapper,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicList,
    encode_body,
)
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.producer_bodies import (
    ProducerInfo,
    ProducerTableInfo,
    decode_producer_table,
)

pytestmark = pytest.mark.timeout(10)


# -- ProducerTableInfo ---------------------------------------------------------------------------


def test_producer_table_has_rocketmqs_field_names_and_text() -> None:
    # Given one producer of a group
    info = ProducerInfo(
        client_id="10.0.0.9@77",
        remote_ip="/127.0.0.1:53422",
        language="JAVA",
        version=453,
        last_update_timestamp=1700000000123,
    )
    # When the table is encoded, Then a Java reader finds every field by its name
    doc = json.loads(encode_body(ProducerTableInfo(data={"pg": [info]})))
    assert doc == {
        "data": {
            "pg": [
                {
                    "clientId": "10.0.0.9@77",
                    "remoteIP": "/127.0.0.1:53422",
                    "language": "JAVA",
                    "version": 453,
                    "lastUpdateTimestamp": 1700000000123,
                }
            ]
        }
    }
    # And it decodes back; the line mqadmin prints is Java's toString
    assert decode_producer_table(json.dumps(doc).encode()) == {"pg": [info]}
    assert info.describe() == (
        "clientId=10.0.0.9@77,remoteIP=/127.0.0.1:53422, language=JAVA, version=453, "
        "lastUpdateTimestamp=1700000000123"
    )


@pytest.mark.parametrize("body", [b"", b"[", b'{"data": {"pg": [{"version": 1}]}}', b'{"data": 3}'])
def test_a_bad_producer_table_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_producer_table(body)


class _Session:
    def __init__(self, session_id: int, remote_address: str) -> None:
        self.session_id = session_id
        self.remote_address = remote_address
        self.alive = True


def test_the_brokers_producer_table_gives_wall_clock_heartbeat_times() -> None:
    # Given a manager whose clock reads 100 s, two producers of one group and one of another
    now = [100.0]
    manager = ProducerManager(clock=lambda: now[0])
    manager.register("pg", "b@2", _Session(2, "10.0.0.2:40002"), "JAVA", 453)
    now[0] = 130.0
    manager.register("pg", "a@1", _Session(1, "10.0.0.1:40001"), "CPP", 400)
    manager.register("other", "c@3", _Session(3, "10.0.0.3:40003"))
    # When the table is read
    wall = time.time() * 1000
    table = manager.producer_table()
    # Then groups and ids are sorted, addresses written as Java's remoteAddress().toString()
    assert list(table) == ["other", "pg"]
    assert [(p.client_id, p.remote_ip, p.language, p.version) for p in table["pg"]] == [
        ("a@1", "/10.0.0.1:40001", "CPP", 400),
        ("b@2", "/10.0.0.2:40002", "JAVA", 453),
    ]
    # And each heartbeat's time is wall-clock ms: b@2's 30 s before a@1's, a@1's about now
    a, b = table["pg"]
    assert abs(a.last_update_timestamp - wall) < 1000
    assert abs((a.last_update_timestamp - b.last_update_timestamp) - 30_000) <= 1
    # And a closed connection's producer leaves the table with its group, and is forgotten
    manager.channel_closed(3)
    assert list(manager.producer_table()) == ["pg"]
    assert "c@3" not in manager._speaks and "a@1" in manager._speaks
    manager.unregister("pg", "a@1")
    assert set(manager._speaks) == {"b@2"}


# -- ExportAdmin over a fake transport -------------------------------------------------------------


def _topic(name: str, queues: int) -> TopicConfig:
    return TopicConfig(topic_name=name, read_queue_nums=queues, write_queue_nums=queues)


def _group(name: str, retry_queues: int = 1) -> SubscriptionGroupConfig:
    return SubscriptionGroupConfig(group_name=name, retry_queue_nums=retry_queues)


class FakeAdmin(ExportAdmin):
    """Two masters (broker-a with a slave, broker-b) of DefaultCluster, answering from tables."""

    class config:
        namesrv = ["ns1:9876", "ns2:9876"]

    def __init__(self) -> None:
        self.topics = {
            "a:1": [_topic("Orders", 3), _topic("OnlyA", 2), _topic("TBW102", 8)],
            "b:1": [_topic("Orders", 5), _topic("%RETRY%g1", 1), _topic("broker-b", 1)],
        }
        self.own = {"a:1": ["TBW102", "broker-a"], "b:1": ["broker-b"]}
        self.groups = {
            "a:1": [_group("g1", 1), _group("TOOLS_CONSUMER"), _group("CID_RMQ_SYS_X")],
            "b:1": [_group("g1", 2), _group("g2"), _group("SELF_TEST_C_GROUP")],
            "a:2": [_group("g-from-slave")],
        }
        self.asked: list[tuple[str, int]] = []

    def brokers(self, cluster: str | None = None) -> list[BrokerAddress]:
        if cluster not in (None, "DefaultCluster"):
            raise ClientError(f"no cluster {cluster!r}")
        return [
            BrokerAddress("DefaultCluster", "broker-a", 0, "a:1"),
            BrokerAddress("DefaultCluster", "broker-a", 1, "a:2"),
            BrokerAddress("DefaultCluster", "broker-b", 0, "b:1"),
        ]

    def masters(self, cluster: str | None = None) -> dict[str, str]:
        return {b.name: b.address for b in self.brokers(cluster) if b.broker_id == 0}

    def broker_config(self, broker_addr: str) -> dict[str, str]:
        name = "broker-a" if broker_addr == "a:1" else "broker-b"
        return {"brokerName": name, "brokerId": "0", "listenPort": "10911", "traceOn": "true"}

    def fetch_queues(self, topic: str) -> list[MessageQueue]:
        return [MessageQueue(topic=topic, broker_name="broker-a", queue_id=i) for i in range(5)]

    def _broker(
        self,
        address: str,
        code: int,
        ext: dict[str, str],
        what: str,
        body: bytes = b"",
        timeout: float | None = None,
    ) -> RemotingCommand:
        self.asked.append((address, code))
        answer: Any
        if code == RequestCode.GET_ALL_TOPIC_CONFIG:
            table = {t.topic_name: t for t in self.topics[address]}
            answer = TopicConfigSerializeWrapper(topic_config_table=table)
        elif code == RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER:
            answer = TopicList(topic_list=self.own[address])
        elif code == RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG:
            table = {g.group_name: g for g in self.groups[address]}
            answer = SubscriptionGroupWrapper(subscription_group_table=table)
        elif code == RequestCode.GET_ALL_PRODUCER_INFO:
            answer = ProducerTableInfo(data={"pg": [ProducerInfo(client_id="x@1")]})
        else:
            raise AssertionError(code)
        return RemotingCommand.request(0, None, encode_body(answer))


def test_user_topics_leave_out_the_brokers_own_and_special_topics() -> None:
    admin = FakeAdmin()
    assert set(admin.user_topic_configs("b:1").topic_config_table) == {"Orders"}
    special = admin.user_topic_configs("b:1", special_topics=True)
    assert set(special.topic_config_table) == {"Orders", "%RETRY%g1"}
    assert set(admin.user_topic_configs("a:1").topic_config_table) == {"Orders", "OnlyA"}


def test_export_metadata_sums_queue_counts_and_retry_queues_across_masters() -> None:
    admin = FakeAdmin()
    meta = admin.export_metadata("DefaultCluster")
    assert set(meta.topics) == {"Orders", "OnlyA"}
    assert (meta.topics["Orders"].read_queue_nums, meta.topics["Orders"].write_queue_nums) == (
        8,
        8,
    )
    assert meta.topics["OnlyA"].write_queue_nums == 2
    # system groups (TOOLS_CONSUMER, CID_RMQ_SYS_*, SELF_TEST_C_GROUP) are left out; the
    # slave's table is not read
    assert set(meta.groups) == {"g1", "g2"} and meta.groups["g1"].retry_queue_nums == 3
    assert all(address != "a:2" for address, _code in admin.asked)


def test_export_metadata_reads_only_the_tables_asked_for() -> None:
    admin = FakeAdmin()
    meta = admin.export_metadata("DefaultCluster", topics=False)
    assert meta.topics == {} and set(meta.groups) == {"g1", "g2"}
    assert {code for _a, code in admin.asked} == {RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG}
    with pytest.raises(ClientError, match="NoSuchCluster"):
        admin.export_metadata("NoSuchCluster")


def test_export_configs_keeps_mqadmins_keys_by_broker_name_and_counts_the_cluster() -> None:
    configs = FakeAdmin().export_configs("DefaultCluster")
    assert configs.broker_configs == {
        "broker-a": {"brokerName": "broker-a", "brokerId": "0", "traceOn": "true"},
        "broker-b": {"brokerName": "broker-b", "brokerId": "0", "traceOn": "true"},
    }
    assert (configs.namesrv_size, configs.master_broker_size, configs.slave_broker_size) == (
        2,
        2,
        1,
    )


def test_consumer_configs_ask_each_broker_groups_master() -> None:
    admin = FakeAdmin()
    found = admin.consumer_configs("g1")
    assert [(r.cluster, r.broker_name, r.config.retry_queue_nums) for r in found] == [
        ("DefaultCluster", "broker-a", 1),
        ("DefaultCluster", "broker-b", 2),
    ]
    assert admin.consumer_configs("g-from-slave") == []  # the master answers for broker-a


def test_allocate_mq_gives_each_id_its_average_share_in_the_order_given() -> None:
    table = FakeAdmin().allocate_mq("T", ["c2", "c1", "c2"])
    assert list(table) == ["c2", "c1"]  # duplicates once
    assert [q.queue_id for q in table["c1"]] == [0, 1, 2]
    assert [q.queue_id for q in table["c2"]] == [3, 4]


def test_system_groups_are_rocketmqs() -> None:
    assert is_system_group("CID_RMQ_SYS_TRANS") and is_system_group("TOOLS_CONSUMER")
    assert is_system_group("SCHEDULE_CONSUMER") and not is_system_group("billing")


# -- command line --------------------------------------------------------------------------------


def test_export_metadata_needs_a_cluster_or_a_broker_and_one_table_at_most() -> None:
    args = build_parser().parse_args(["exportMetadata", "-c", "DefaultCluster"])
    assert (args.cluster, args.broker, args.file_path) == ("DefaultCluster", None, DEFAULT_PATH)
    assert DEFAULT_PATH == "/tmp/rocketmq/export"
    for bad in (
        ["exportMetadata"],
        ["exportMetadata", "-c", "C", "-b", "h:1"],
        ["exportMetadata", "-c", "C", "-t", "-g"],
        ["exportConfigs"],
        ["getConsumerConfig"],
        ["allocateMQ", "-t", "T"],
        ["producer"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


@pytest.mark.parametrize(
    "argv",
    [
        ["exportMetadata", "-b", "h:1"],
        ["exportMetadata", "-b", " ", "-t"],
        ["allocateMQ", "-t", "T", "-i", " , "],
    ],
)
def test_usage_errors_argparse_cannot_see_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2


def test_client_ids_are_split_on_commas() -> None:
    assert client_ids(" a@1, b@2 ,,c@3") == ["a@1", "b@2", "c@3"]


def test_documents_have_mqadmins_keys() -> None:
    meta = ClusterMetadata({"T": _topic("T", 4)}, {"g": _group("g")}, 1700000000000)
    both = metadata_json(meta, topics=True, groups=True)
    assert set(both) == {"topicConfigTable", "subscriptionGroupTable", "exportTime"}
    assert both["topicConfigTable"]["T"]["readQueueNums"] == 4
    assert set(metadata_json(meta, topics=True, groups=False)) == {"topicConfigTable", "exportTime"}
    configs = configs_json(ClusterConfigs({"broker-a": {"brokerId": "0"}}, 1, 1, 0))
    assert configs == {
        "brokerConfigs": {"broker-a": {"brokerId": "0"}},
        "clusterScale": {"namesrvSize": 1, "masterBrokerSize": 1, "slaveBrokerSize": 0},
    }


def test_consumer_config_lines_are_mqadmins() -> None:
    lines = consumer_config_lines([GroupConfigOnBroker("C", "broker-a", _group("g", 2))])
    assert lines[0] == "=" * 29 + "C:broker-a" + "=" * 29
    assert lines[1] == "groupName" + " " * 31 + "=  g"
    assert f"{'consumeMessageOrderly':<40s}=  false" == lines[5]
    assert f"{'retryQueueNums':<40s}=  2" in lines
    assert len(lines) == 11


def test_exports_replace_files_whole_and_say_when_the_path_is_a_file(
    tmp_path: pathlib.Path,
) -> None:
    # Given an export already there, and a symlink where the next one goes
    target = tmp_path / "configs.json"
    _write(target, {"old": 1})
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (tmp_path / "metadata.json").symlink_to(victim)
    # When both are written
    _write(target, {"new": 2})
    _write(tmp_path / "metadata.json", {"x": 1})
    # Then each file is the new document, and the symlink was replaced, not followed
    assert json.loads(target.read_text()) == {"new": 2}
    assert victim.read_text() == "untouched"
    assert not (tmp_path / "metadata.json").is_symlink()
    # And a -f naming a file says so
    with pytest.raises(ClientError, match="is not a directory"):
        _write(victim / "configs.json", {})
