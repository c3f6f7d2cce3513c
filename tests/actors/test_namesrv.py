"""Name server actors over real sockets: registration, routes, expiry, connection loss."""

from __future__ import annotations

import json
from typing import Any

import gevent
import pytest

from actors.namesrv.node import namesrv_spec
from actors.namesrv.route_table import RegisterBroker, RouteTable, TopicConfigEntry
from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)


def register_body(topics: dict[str, int], counter: int = 1) -> bytes:
    table = {
        name: {
            "topicName": name,
            "readQueueNums": n,
            "writeQueueNums": n,
            "perm": 6,
            "topicSysFlag": 0,
            "order": False,
        }
        for name, n in topics.items()
    }
    return json.dumps(
        {
            "topicConfigSerializeWrapper": {
                "topicConfigTable": table,
                "dataVersion": {"timestamp": 1, "counter": counter},
            },
            "filterServerList": [],
        }
    ).encode()


def register(
    client: WireClient,
    name: str,
    addr: str,
    broker_id: int = 0,
    topics: dict[str, int] | None = None,
    counter: int = 1,
    incremental: bool = False,
    full: bool = True,
) -> Any:
    """REGISTER_BROKER as actormq's brokers send it (``actormqFull`` or, with ``incremental``,
    ``actormqIncremental``); ``full=False`` and no ``incremental``: as RocketMQ's brokers do."""
    header = {
        "brokerName": name,
        "brokerAddr": addr,
        "clusterName": "DefaultCluster",
        "haServerAddr": addr.replace(":109", ":119"),
        "brokerId": broker_id,
    }
    if incremental:
        header["actormqIncremental"] = "true"
    elif full:
        header["actormqFull"] = "true"
    return client.call(RequestCode.REGISTER_BROKER, header, register_body(topics or {}, counter))


def queue_nums(client: WireClient, topic: str) -> int | None:
    """The write queue count of ``topic``'s first queue data, or None without a route."""
    reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    return json.loads(reply.body)["queueDatas"][0]["writeQueueNums"] if reply.code == 0 else None


@pytest.fixture
def namesrv() -> Any:
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    sup = namesrv_spec("ns", NamesrvConfig(), sock, directory).start()
    yield directory, sock.getsockname()
    sup.stop(timeout=5)
    sock.close()


def test_register_then_route_lists_queues_and_addresses(namesrv: Any) -> None:
    _directory, address = namesrv
    a_master, b_master, a_slave = WireClient(address), WireClient(address), WireClient(address)
    # Given two masters with a topic and a slave of broker-a
    assert register(a_master, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4}).code == 0
    assert register(b_master, "broker-b", "127.0.0.1:10921", 0, {"Orders": 8}).code == 0
    slave = register(a_slave, "broker-a", "127.0.0.1:10931", 1, {"Orders": 4})
    # Then the slave learns its master
    assert slave.ext_fields["masterAddr"] == "127.0.0.1:10911"
    # When a client asks for the route
    reply = WireClient(address).call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"})
    assert reply.code == ResponseCode.SUCCESS
    route = json.loads(reply.body)
    # Then both brokers and their queue counts are listed, addresses as strings by id
    assert [q["brokerName"] for q in route["queueDatas"]] == ["broker-a", "broker-b"]
    assert [q["writeQueueNums"] for q in route["queueDatas"]] == [4, 8]
    a = next(b for b in route["brokerDatas"] if b["brokerName"] == "broker-a")
    assert a["brokerAddrs"] == {"0": "127.0.0.1:10911", "1": "127.0.0.1:10931"}


def test_an_incremental_registration_merges_its_topics(namesrv: Any) -> None:
    _directory, address = namesrv
    broker, client = WireClient(address), WireClient(address)
    # Given a master registered with two topics
    register(broker, "broker-a", "127.0.0.1:10911", 0, {"A": 4, "B": 4})
    # When it registers only a created topic and a changed one (actormqIncremental)
    assert register(broker, "broker-a", "127.0.0.1:10911", 0, {"C": 2, "B": 8}, 2, True).code == 0
    # Then both apply and the topic it left out stays
    assert [queue_nums(client, t) for t in "ABC"] == [4, 8, 2]
    # When a full registration leaves one out, Then that one goes (the broker deleted it)
    register(broker, "broker-a", "127.0.0.1:10911", 0, {"A": 4, "C": 2}, 3)
    assert [queue_nums(client, t) for t in "ABC"] == [4, None, 2]


def test_a_registration_without_marks_merges_as_rocketmqs_name_server(namesrv: Any) -> None:
    _directory, address = namesrv
    broker, client = WireClient(address), WireClient(address)

    def plain(topics: dict[str, int], counter: int) -> Any:  # a RocketMQ broker's registration
        return register(broker, "broker-a", "127.0.0.1:10911", 0, topics, counter, full=False)

    # Given a RocketMQ broker registered with two topics
    assert plain({"A": 4, "B": 4}, 1).code == ResponseCode.SUCCESS
    # When it registers only a created topic (its registerIncrementBrokerData has no mark)
    plain({"C": 2}, 2)
    # Then the topics it left out keep their routes
    assert [queue_nums(client, t) for t in "ABC"] == [4, 4, 2]
    # When its next registration changes one and leaves two out
    plain({"B": 8}, 3)
    # Then the change applies and nothing leaves a route (deleting takes DELETE_TOPIC_IN_NAMESRV)
    assert [queue_nums(client, t) for t in "ABC"] == [4, 8, 2]
    # When an unchanged registration follows a write-perm wipe
    wiped = client.call(RequestCode.WIPE_WRITE_PERM_OF_BROKER, {"brokerName": "broker-a"})
    assert wiped.code == ResponseCode.SUCCESS
    plain({"A": 4, "B": 8, "C": 2}, 4)
    # Then the wipe lasts (only new or changed topics are applied, as RocketMQ's data version)
    route = json.loads(client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "A"}).body)
    assert route["queueDatas"][0]["perm"] == 4


def test_unknown_topic_is_topic_not_exist_and_retry_topic_is_served(namesrv: Any) -> None:
    _directory, address = namesrv
    client = WireClient(address)
    register(client, "broker-a", "127.0.0.1:10911", 0, {"TBW102": 8})
    missing = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Nope"})
    assert missing.code == ResponseCode.TOPIC_NOT_EXIST and "Nope" in missing.remark
    retry = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "%RETRY%group-1"})
    assert retry.code == ResponseCode.SUCCESS
    assert json.loads(retry.body)["queueDatas"][0]["brokerName"] == "broker-a"
    tbw = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "TBW102"})
    assert tbw.code == ResponseCode.SUCCESS


def test_cluster_info_and_topic_list(namesrv: Any) -> None:
    _directory, address = namesrv
    client = WireClient(address)
    register(client, "broker-a", "127.0.0.1:10911", 0, {"A": 1, "B": 2})
    info = json.loads(client.call(RequestCode.GET_BROKER_CLUSTER_INFO).body)
    assert info["clusterAddrTable"] == {"DefaultCluster": ["broker-a"]}
    assert info["brokerAddrTable"]["broker-a"]["brokerAddrs"] == {"0": "127.0.0.1:10911"}
    topics = json.loads(client.call(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER).body)
    assert topics["topicList"] == ["A", "B"]


def test_closed_broker_connection_drops_broker_at_once(namesrv: Any) -> None:
    _directory, address = namesrv
    broker = WireClient(address)
    register(broker, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4})
    client = WireClient(address)
    assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).code == 0
    # When the broker's connection closes
    broker.close()
    # Then its routes disappear without waiting for the 120 s expiry
    with gevent.Timeout(5):
        while client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).code == 0:
            gevent.sleep(0.01)


def test_unregister_and_unknown_code(namesrv: Any) -> None:
    _directory, address = namesrv
    client = WireClient(address)
    register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4})
    reply = client.call(
        RequestCode.UNREGISTER_BROKER,
        {
            "brokerName": "broker-a",
            "brokerAddr": "127.0.0.1:10911",
            "clusterName": "DefaultCluster",
            "brokerId": 0,
        },
    )
    assert reply.code == 0
    assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).code == 17
    assert client.call(9999).code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED


def test_unregister_drops_an_address_only_from_the_group_named(namesrv: Any) -> None:
    _directory, address = namesrv
    a, b, admin = WireClient(address), WireClient(address), WireClient(address)
    # Given broker-a and broker-b registered with a topic each
    assert register(a, "broker-a", "127.0.0.1:10911", 0, {"A": 4}).code == 0
    assert register(b, "broker-b", "127.0.0.1:10921", 0, {"B": 4}).code == 0

    def unregister(name: str, addr: str, broker_id: int) -> None:
        header = {
            "brokerName": name,
            "brokerAddr": addr,
            "clusterName": "DefaultCluster",
            "brokerId": broker_id,
        }
        assert admin.call(RequestCode.UNREGISTER_BROKER, header).code == ResponseCode.SUCCESS

    # When broker-a's address is unregistered under broker-b's name
    unregister("broker-b", "127.0.0.1:10911", 0)
    # Then both stay routed (RocketMQ 5 removes the address from the named group only)
    assert queue_nums(admin, "A") == queue_nums(admin, "B") == 4
    # When it is unregistered under its own name, with another id
    unregister("broker-a", "127.0.0.1:10911", 1)
    # Then it leaves the routes (RocketMQ 5 removes it under whatever id), broker-b stays
    assert queue_nums(admin, "A") is None and queue_nums(admin, "B") == 4


def test_bad_register_request_gets_error_and_connection_survives(namesrv: Any) -> None:
    _directory, address = namesrv
    client = WireClient(address)
    # Missing brokerAddr, then a body that is not JSON
    reply = client.call(
        RequestCode.REGISTER_BROKER, {"brokerName": "x", "clusterName": "c", "brokerId": 0}
    )
    assert reply.code == ResponseCode.SYSTEM_ERROR and "brokerAddr" in reply.remark
    reply = client.call(
        RequestCode.REGISTER_BROKER,
        {"brokerName": "x", "brokerAddr": "1.2.3.4:5", "clusterName": "c", "brokerId": 0},
        b"{not json",
    )
    assert reply.code == ResponseCode.SYSTEM_ERROR
    assert register(client, "broker-a", "127.0.0.1:10911").code == 0


def clocked_table(now: list[float], data_version: str = "1") -> Any:
    """A RouteTable (proxy) whose clock reads ``now[0]``, with broker-a (cluster ``c``,
    127.0.0.1:10911) registered with topic T."""
    table = RouteTable.start(clock=lambda: now[0]).proxy()
    table.register_broker(
        RegisterBroker(
            cluster_name="c",
            broker_name="broker-a",
            broker_addr="127.0.0.1:10911",
            broker_id=0,
            ha_server_addr="",
            topics=(TopicConfigEntry("T", 4, 4),),
            data_version=data_version,
        )
    ).get(timeout=5)
    return table


def test_silent_broker_expires() -> None:
    # Given a route table with a controllable clock
    now = [1000.0]
    table = clocked_table(now)
    # When 119 s pass nothing is dropped; after 121 s the broker and its routes are gone
    now[0] += 119
    assert table.scan_not_active(120_000).get(timeout=5) == []
    now[0] += 2
    assert table.scan_not_active(120_000).get(timeout=5) == ["broker-a/0"]
    assert table.route("T").get(timeout=5) is None
    assert table.cluster_info().get(timeout=5).cluster_addr_table == {}


def test_slave_promoted_to_master_moves_address() -> None:
    table = RouteTable.start().proxy()

    def reg(addr: str, broker_id: int) -> None:
        table.register_broker(
            RegisterBroker(
                cluster_name="c",
                broker_name="broker-a",
                broker_addr=addr,
                broker_id=broker_id,
                ha_server_addr="",
                topics=(TopicConfigEntry("T", 4, 4),),
                data_version="1",
            )
        ).get(timeout=5)

    reg("127.0.0.1:1", 0)
    reg("127.0.0.1:2", 1)
    table.unregister_broker("c", "broker-a", "127.0.0.1:1", 0).get(timeout=5)
    reg("127.0.0.1:2", 0)
    route = table.route("T").get(timeout=5)
    assert route.broker_datas[0].broker_addrs == {0: "127.0.0.1:2"}


def test_delete_topic_in_namesrv_drops_its_route_and_answers_success_for_an_unknown_one(
    namesrv: Any,
) -> None:
    _directory, address = namesrv
    client = WireClient(address)
    # Given a broker registered with two topics
    register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4, "Keep": 2})
    # When DELETE_TOPIC_IN_NAMESRV names one of them
    assert client.call(RequestCode.DELETE_TOPIC_IN_NAMESRV, {"topic": "Orders"}).code == 0
    # Then its route is gone and the other topic stays
    assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).code == 17
    assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Keep"}).code == 0
    topics = json.loads(client.call(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER).body)
    assert topics["topicList"] == ["Keep"]
    # And a topic nobody knows (or one already deleted) is SUCCESS too, as in RocketMQ
    assert client.call(RequestCode.DELETE_TOPIC_IN_NAMESRV, {"topic": "Orders"}).code == 0
    # And without its topic the request is a plain error naming the field
    reply = client.call(RequestCode.DELETE_TOPIC_IN_NAMESRV, {})
    assert reply.code == ResponseCode.SYSTEM_ERROR and "topic" in reply.remark
    # And the broker's next registration with a new data version brings the topic back
    register(client, "broker-a", "127.0.0.1:10911", 0, {"Orders": 4, "Keep": 2}, counter=2)
    assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).code == 0


def test_delete_topic_with_a_cluster_removes_only_that_clusters_brokers() -> None:
    table = RouteTable.start().proxy()

    def reg(cluster: str, name: str, addr: str) -> None:
        table.register_broker(
            RegisterBroker(
                cluster_name=cluster,
                broker_name=name,
                broker_addr=addr,
                broker_id=0,
                ha_server_addr="",
                topics=(TopicConfigEntry("T", 4, 4),),
                data_version="1",
            )
        ).get(timeout=5)

    try:
        # Given topic T on broker-a of cluster c1 and broker-b of cluster c2
        reg("c1", "broker-a", "127.0.0.1:1")
        reg("c2", "broker-b", "127.0.0.1:2")
        # When it is deleted in cluster c1 (and in a cluster nobody registered)
        assert table.delete_topic("T", "c1").get(timeout=5) is True
        assert table.delete_topic("T", "no-such-cluster").get(timeout=5) is False
        # Then only broker-b still serves it
        route = table.route("T").get(timeout=5)
        assert [q.broker_name for q in route.queue_datas] == ["broker-b"]
        assert [b.broker_name for b in route.broker_datas] == ["broker-b"]
        # And deleting it in c2 too removes the topic
        assert table.delete_topic("T", "c2").get(timeout=5) is True
        assert table.route("T").get(timeout=5) is None
        assert table.topic_list().get(timeout=5) == []
        assert table.delete_topic("T").get(timeout=5) is False
    finally:
        table.actor_ref.stop()


def query_data_version(
    client: WireClient, addr: str, counter: int | None, cluster: str = "DefaultCluster"
) -> Any:
    """QUERY_DATA_VERSION as a RocketMQ broker with ``forceRegister=false`` sends it before
    registering (its DataVersion as the body; none when ``counter`` is None)."""
    header = {"brokerName": "broker-a", "brokerAddr": addr, "clusterName": cluster, "brokerId": 0}
    body = b"" if counter is None else json.dumps({"timestamp": 1, "counter": counter}).encode()
    return client.call(RequestCode.QUERY_DATA_VERSION, header, body)


def test_query_data_version_answers_whether_the_broker_changed_since_it_registered(
    namesrv: Any,
) -> None:
    _directory, address = namesrv
    broker = WireClient(address)
    # Given a RocketMQ broker registered with data version (1, 1)
    topics = {"Orders": 4, "TBW102": 8}  # (RocketMQ 5 refuses a first one with a lone topic)
    assert register(broker, "broker-a", "127.0.0.1:10911", 0, topics, full=False).code == 0
    # When it asks with the same version, then a newer one
    same = query_data_version(broker, "127.0.0.1:10911", 1)
    newer = query_data_version(broker, "127.0.0.1:10911", 2)
    # Then the name server says unchanged, then changed, and sends the version it holds
    assert same.code == newer.code == ResponseCode.SUCCESS
    assert same.ext_fields["changed"] == "false" and newer.ext_fields["changed"] == "true"
    held = {"stateVersion": 0, "timestamp": 1, "counter": 1}  # (RocketMQ 5's fields)
    assert json.loads(same.body) == json.loads(newer.body) == held
    # And a broker it does not know (or in another cluster) is told to register, with no body
    for addr, cluster in (("127.0.0.1:10999", "DefaultCluster"), ("127.0.0.1:10911", "Other")):
        unknown = query_data_version(broker, addr, 1, cluster)
        assert unknown.code == ResponseCode.SUCCESS
        assert unknown.ext_fields["changed"] == "true" and unknown.body == b""
    # And a query without the header's broker id is refused by name, the connection kept
    bad = broker.call(RequestCode.QUERY_DATA_VERSION, {"brokerAddr": "127.0.0.1:10911"})
    assert bad.code == ResponseCode.SYSTEM_ERROR and "brokerName" in (bad.remark or "")
    assert query_data_version(broker, "127.0.0.1:10911", None).ext_fields["changed"] == "true"


def test_query_data_version_compares_the_state_version_too(namesrv: Any) -> None:
    _directory, address = namesrv
    broker = WireClient(address)
    # Given a RocketMQ 5 broker registered with data version (stateVersion 5, 1, 1)
    body = json.loads(register_body({"Orders": 4, "TBW102": 8}))
    version = {"stateVersion": 5, "timestamp": 1, "counter": 1}
    body["topicConfigSerializeWrapper"]["dataVersion"] = version
    header = {
        "brokerName": "broker-a",
        "brokerAddr": "127.0.0.1:10911",
        "clusterName": "DefaultCluster",
        "brokerId": 0,
    }
    reply = broker.call(RequestCode.REGISTER_BROKER, header, json.dumps(body).encode())
    assert reply.code == ResponseCode.SUCCESS
    # When it asks with the same timestamp and counter but another stateVersion, then the same
    changed = broker.call(
        RequestCode.QUERY_DATA_VERSION, header, json.dumps({**version, "stateVersion": 6}).encode()
    )
    same = broker.call(RequestCode.QUERY_DATA_VERSION, header, json.dumps(version).encode())
    # Then the first is changed (RocketMQ 5's DataVersion.equals compares all three), the second
    # not, and both carry the version held, its stateVersion included
    assert changed.ext_fields["changed"] == "true" and same.ext_fields["changed"] == "false"
    assert json.loads(changed.body) == json.loads(same.body) == version


def test_a_broker_that_only_queries_its_data_version_stays_registered() -> None:
    # Given a registered broker and a controllable clock
    now = [1000.0]
    table = clocked_table(now, data_version="1:1")
    # When it asks for its data version 100 s later (unchanged: it does not register again)
    now[0] += 100
    assert table.query_data_version("c", "127.0.0.1:10911", "1:1").get(timeout=5) == (False, "1:1")
    # Then 121 s after its registration it is still live, 121 s after the query it is not
    now[0] += 21
    assert table.scan_not_active(120_000).get(timeout=5) == []
    now[0] += 100
    assert table.scan_not_active(120_000).get(timeout=5) == ["broker-a/0"]
