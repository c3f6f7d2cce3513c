"""The name server's admin requests: the KVConfig actor (persistence across restarts), the
route table's write perms, topics by cluster and system topics, and each request code over a
real socket, bad headers included."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from actors.namesrv.kv_config import ORDER_TOPIC_CONFIG, KVConfig
from actors.namesrv.node import namesrv_spec
from actors.namesrv.route_table import RegisterBroker, RouteTable, TopicConfigEntry
from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.test_namesrv import register
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)


# -- KVConfig -------------------------------------------------------------------------------


def test_kv_table_survives_a_restart_in_rocketmq_shape(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "namesrv" / "kvConfig.json"
    # Given values put in two namespaces, one replaced and one deleted, each on disk
    kv = KVConfig.start(str(path)).proxy()
    kv.put("ns-a", "k1", "v1").get(timeout=5).get(timeout=5)
    kv.put("ns-a", "k1", "v2").get(timeout=5).get(timeout=5)
    kv.put("ns-a", "k2", "gone").get(timeout=5).get(timeout=5)
    kv.delete("ns-a", "k2").get(timeout=5).get(timeout=5)
    kv.put(ORDER_TOPIC_CONFIG, "Orders", "broker-a:4;broker-b:4").get(timeout=5).get(timeout=5)
    kv.stop()
    # Then the file is RocketMQ's kvConfig.json
    assert json.loads(path.read_text()) == {
        "configTable": {
            "ns-a": {"k1": "v2"},
            ORDER_TOPIC_CONFIG: {"Orders": "broker-a:4;broker-b:4"},
        }
    }
    # When a new actor starts on the same file
    again = KVConfig.start(str(path)).proxy()
    # Then it serves what the first one held
    assert again.get("ns-a", "k1").get(timeout=5) == "v2"
    assert again.get("ns-a", "k2").get(timeout=5) is None
    assert again.namespace(ORDER_TOPIC_CONFIG).get(timeout=5) == {"Orders": "broker-a:4;broker-b:4"}


def test_kv_without_a_file_is_memory_only_and_keeps_emptied_namespaces() -> None:
    kv = KVConfig.start(None).proxy()
    assert kv.namespace("ns").get(timeout=5) is None
    assert kv.put("ns", "k", "v").get(timeout=5).get(timeout=0) is None  # nothing to write
    kv.delete("ns", "k").get(timeout=5).get(timeout=0)
    kv.delete("other", "k").get(timeout=5).get(timeout=0)  # absent: no error, nothing created
    # As RocketMQ: the namespace stays, empty; a never-created one is still unknown
    assert kv.namespace("ns").get(timeout=5) == {}
    assert kv.namespace("other").get(timeout=5) is None


def test_a_failed_write_leaves_the_table_unchanged(tmp_path: pathlib.Path) -> None:
    kv = KVConfig.start(str(tmp_path / "d" / "kvConfig.json")).proxy()
    assert kv.get("ns", "k").get(timeout=5) is None  # started: nothing to load
    (tmp_path / "d").write_text("")  # its directory cannot be made now
    with pytest.raises(OSError):
        kv.put("ns", "k", "v").get(timeout=5).get(timeout=5)
    assert kv.get("ns", "k").get(timeout=5) is None
    assert kv.namespace("ns").get(timeout=5) is None  # the namespace it created went too


# -- RouteTable -----------------------------------------------------------------------------


def registration(
    name: str, addr: str, topics: dict[str, int], version: str, cluster: str = "c1"
) -> RegisterBroker:
    return RegisterBroker(
        cluster_name=cluster,
        broker_name=name,
        broker_addr=addr,
        broker_id=0,
        ha_server_addr="",
        topics=tuple(TopicConfigEntry(t, n, n) for t, n in topics.items()),
        data_version=version,
    )


def perms(table: Any, topic: str) -> dict[str, int]:
    return {q.broker_name: q.perm for q in table.route(topic).get(timeout=5).queue_datas}


def test_wiped_write_perm_lasts_until_the_brokers_topics_change() -> None:
    table = RouteTable.start().proxy()
    table.register_broker(registration("a", "h:1", {"T": 4, "U": 4}, "1")).get(timeout=5)
    table.register_broker(registration("b", "h:2", {"T": 4}, "1")).get(timeout=5)
    # When broker a's write perm is wiped
    assert table.wipe_write_perm("a").get(timeout=5) == 2
    assert perms(table, "T") == {"a": 4, "b": 6} and perms(table, "U") == {"a": 4}
    # Then a periodic registration with the same topics keeps it wiped (actormq's brokers send
    # a new data version every time; RocketMQ's would send the same one)
    table.register_broker(registration("a", "h:1", {"T": 4, "U": 4}, "2")).get(timeout=5)
    assert perms(table, "T")["a"] == 4
    # And a registration whose topics changed restores the broker's own perms, as in RocketMQ
    table.register_broker(registration("a", "h:1", {"T": 4, "U": 4, "V": 1}, "3")).get(timeout=5)
    assert perms(table, "T")["a"] == 6 and perms(table, "U")["a"] == 6


def test_add_write_perm_sets_read_write_and_unknown_brokers_count_zero() -> None:
    table = RouteTable.start().proxy()
    ro = RegisterBroker(
        cluster_name="c1",
        broker_name="a",
        broker_addr="h:1",
        broker_id=0,
        ha_server_addr="",
        topics=(TopicConfigEntry("R", 2, 2, perm=4),),
        data_version="1",
    )
    table.register_broker(ro).get(timeout=5)
    # RocketMQ 5 sets READ|WRITE, whatever the perm was (a read-only topic included)
    assert table.add_write_perm("a").get(timeout=5) == 1
    assert perms(table, "R") == {"a": 6}
    assert table.wipe_write_perm("nobody").get(timeout=5) == 0
    assert table.add_write_perm("nobody").get(timeout=5) == 0


def test_a_topic_deleted_in_the_name_server_returns_with_the_next_registration() -> None:
    table = RouteTable.start().proxy()
    table.register_broker(registration("a", "h:1", {"T": 4}, "1")).get(timeout=5)
    table.delete_topic("T").get(timeout=5)
    assert table.route("T").get(timeout=5) is None
    table.register_broker(registration("a", "h:1", {"T": 4}, "2")).get(timeout=5)
    assert perms(table, "T") == {"a": 6}


def test_topics_by_cluster_and_system_topics() -> None:
    table = RouteTable.start().proxy()
    table.register_broker(registration("a", "h:1", {"T": 4, "A": 1}, "1")).get(timeout=5)
    table.register_broker(registration("b", "h:2", {"T": 4}, "1")).get(timeout=5)
    table.register_broker(registration("z", "h:3", {"Z": 4}, "1", cluster="c2")).get(timeout=5)
    assert table.topics_by_cluster("c1").get(timeout=5) == ["A", "T"]
    assert table.topics_by_cluster("c2").get(timeout=5) == ["Z"]
    assert table.topics_by_cluster("nope").get(timeout=5) == []
    names, addr = table.system_topic_list().get(timeout=5)
    assert names == ["c1", "a", "b", "c2", "z"]
    assert addr == "h:1"


# -- the requests over a socket ---------------------------------------------------------------


@pytest.fixture
def namesrv(tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    yield from _namesrv(tmp_path, NamesrvConfig(order_message_enable=True))


def _namesrv(tmp_path: pathlib.Path, cfg: NamesrvConfig) -> Iterator[tuple[str, pathlib.Path]]:
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    path = tmp_path / "kvConfig.json"
    sup = namesrv_spec("ns", cfg, sock, directory, kv_config_path=str(path)).start()
    host, port = sock.getsockname()
    yield f"{host}:{port}", path
    sup.stop(timeout=5)
    sock.close()


def kv(namespace: str, key: str, value: str | None = None) -> dict[str, str]:
    ext = {"namespace": namespace, "key": key}
    return ext if value is None else {**ext, "value": value}


def test_kv_requests(namesrv: tuple[str, pathlib.Path]) -> None:
    address, path = namesrv
    client = WireClient(address)
    # Given a value put
    assert client.call(RequestCode.PUT_KV_CONFIG, kv("ns", "k", "v")).code == 0
    # Then it is read back, listed and durable
    got = client.call(RequestCode.GET_KV_CONFIG, kv("ns", "k"))
    assert (got.code, got.ext_fields["value"]) == (0, "v")
    listed = client.call(RequestCode.GET_KVLIST_BY_NAMESPACE, {"namespace": "ns"})
    assert (listed.code, json.loads(listed.body)) == (0, {"table": {"k": "v"}})
    assert json.loads(path.read_text())["configTable"] == {"ns": {"k": "v"}}
    # When it is deleted (twice: an absent key is no error)
    assert client.call(RequestCode.DELETE_KV_CONFIG, kv("ns", "k")).code == 0
    assert client.call(RequestCode.DELETE_KV_CONFIG, kv("ns", "k")).code == 0
    # Then a read finds nothing, with RocketMQ's remark
    missing = client.call(RequestCode.GET_KV_CONFIG, kv("ns", "k"))
    assert missing.code == ResponseCode.QUERY_NOT_FOUND
    assert missing.remark == "No config item, Namespace: ns Key: k"
    unknown = client.call(RequestCode.GET_KVLIST_BY_NAMESPACE, {"namespace": "other"})
    assert unknown.code == ResponseCode.QUERY_NOT_FOUND
    assert unknown.remark == "No config item, Namespace: other"


@pytest.mark.parametrize(
    ("code", "ext", "field"),
    [
        (RequestCode.PUT_KV_CONFIG, {"namespace": "ns", "key": "k"}, "value"),
        (RequestCode.GET_KV_CONFIG, {"namespace": "ns"}, "key"),
        (RequestCode.DELETE_KV_CONFIG, {"key": "k"}, "namespace"),
        (RequestCode.GET_KVLIST_BY_NAMESPACE, {}, "namespace"),
        (RequestCode.WIPE_WRITE_PERM_OF_BROKER, {}, "brokerName"),
        (RequestCode.ADD_WRITE_PERM_OF_BROKER, {"broker": "a"}, "brokerName"),
        (RequestCode.GET_TOPICS_BY_CLUSTER, {"clusterName": "c"}, "cluster"),
    ],
)
def test_a_missing_header_field_is_a_system_error_and_the_server_keeps_serving(
    namesrv: tuple[str, pathlib.Path], code: int, ext: dict[str, str], field: str
) -> None:
    address, _path = namesrv
    client = WireClient(address)
    reply = client.call(code, ext)
    assert reply.code == ResponseCode.SYSTEM_ERROR and field in reply.remark
    assert client.call(RequestCode.PUT_KV_CONFIG, kv("ns", "k", "v")).code == 0


def test_write_perm_requests_answer_the_topic_count(namesrv: tuple[str, pathlib.Path]) -> None:
    address, _path = namesrv
    client = WireClient(address)
    register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4, "Audit": 1})
    wiped = client.call(RequestCode.WIPE_WRITE_PERM_OF_BROKER, {"brokerName": "broker-a"})
    assert (wiped.code, wiped.ext_fields["wipeTopicCount"]) == (0, "2")
    route = json.loads(client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).body)
    assert route["queueDatas"][0]["perm"] == 4
    added = client.call(RequestCode.ADD_WRITE_PERM_OF_BROKER, {"brokerName": "broker-a"})
    assert (added.code, added.ext_fields["addTopicCount"]) == (0, "2")
    route = json.loads(client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).body)
    assert route["queueDatas"][0]["perm"] == 6
    none = client.call(RequestCode.WIPE_WRITE_PERM_OF_BROKER, {"brokerName": "broker-x"})
    assert (none.code, none.ext_fields["wipeTopicCount"]) == (0, "0")


def test_topic_lists_by_cluster_and_of_the_system(namesrv: tuple[str, pathlib.Path]) -> None:
    address, _path = namesrv
    client = WireClient(address)
    register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4})
    by_cluster = client.call(RequestCode.GET_TOPICS_BY_CLUSTER, {"cluster": "DefaultCluster"})
    assert json.loads(by_cluster.body)["topicList"] == ["Orders"]
    nothing = client.call(RequestCode.GET_TOPICS_BY_CLUSTER, {"cluster": "Nope"})
    assert (nothing.code, json.loads(nothing.body)["topicList"]) == (0, [])
    system = json.loads(client.call(RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS).body)
    assert system == {"topicList": ["DefaultCluster", "broker-a"], "brokerAddr": "127.0.0.1:10911"}


def test_order_topic_conf_in_routes_and_registrations(namesrv: tuple[str, pathlib.Path]) -> None:
    address, _path = namesrv
    client = WireClient(address)
    register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4, "Other": 4})
    # Given an order conf for one topic (what mqadmin updateOrderConf puts)
    conf = kv(ORDER_TOPIC_CONFIG, "Orders", "broker-a:4")
    assert client.call(RequestCode.PUT_KV_CONFIG, conf).code == 0
    # Then that topic's route carries it, and another topic's has no such key
    route = json.loads(client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).body)
    assert route["orderTopicConf"] == "broker-a:4"
    other = json.loads(client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Other"}).body)
    assert "orderTopicConf" not in other
    # And a broker's registration is answered with the namespace, as RocketMQ's is
    reply = register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4, "Other": 4})
    assert json.loads(reply.body) == {"table": {"Orders": "broker-a:4"}}


def test_without_order_message_enable_routes_carry_no_order_conf(tmp_path: pathlib.Path) -> None:
    for address, _path in _namesrv(tmp_path, NamesrvConfig()):
        client = WireClient(address)
        register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4})
        conf = kv(ORDER_TOPIC_CONFIG, "Orders", "broker-a:4")
        assert client.call(RequestCode.PUT_KV_CONFIG, conf).code == 0
        reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"})
        assert "orderTopicConf" not in json.loads(reply.body)


def test_kv_config_outlives_the_name_server(tmp_path: pathlib.Path) -> None:
    # Given a value put in one name server
    for address, _path in _namesrv(tmp_path, NamesrvConfig()):
        assert WireClient(address).call(RequestCode.PUT_KV_CONFIG, kv("ns", "k", "v")).code == 0
    # When another starts on the same data
    for address, _path in _namesrv(tmp_path, NamesrvConfig()):
        got = WireClient(address).call(RequestCode.GET_KV_CONFIG, kv("ns", "k"))
        # Then it answers the value
        assert (got.code, got.ext_fields["value"]) == (0, "v")
