"""Registrations of part of a broker's table over a real socket, as RocketMQ 5's name server
takes them: a REGISTER_BROKER naming a lone topic (RocketMQ's brokers, unmarked) or only the
created topics (actormq's, ``actormqIncremental``) from a broker not registered under its id
is refused with SYSTEM_ERROR "register broker failed"; REGISTER_TOPIC_IN_NAMESRV (217, RocketMQ
5's brokers with ``enableSingleTopicRegister``) adds a topic's queue data for registered broker
groups only, and is answered SUCCESS either way."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config import NamesrvConfig
from runtime.remoting.bodies import QueueData, TopicRouteData, encode_body
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.namesrv_support import running_namesrv
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)


def register(client: WireClient, name: str, topics: dict[str, int], mark: str | None) -> Any:
    table = {
        t: {"topicName": t, "readQueueNums": n, "writeQueueNums": n, "perm": 6}
        for t, n in topics.items()
    }
    body = {
        "topicConfigSerializeWrapper": {
            "topicConfigTable": table,
            "dataVersion": {"timestamp": 1, "counter": 1},
        },
        "filterServerList": [],
    }
    header: dict[str, Any] = {
        "brokerName": name,
        "brokerAddr": "127.0.0.1:10911" if name == "broker-a" else "127.0.0.1:10921",
        "clusterName": "DefaultCluster",
        "brokerId": 0,
    }
    if mark is not None:
        header[mark] = "true"
    return client.call(RequestCode.REGISTER_BROKER, header, json.dumps(body).encode())


def register_topic(client: WireClient, topic: str, *groups: tuple[str, int]) -> Any:
    route = TopicRouteData(
        queue_datas=[
            QueueData(broker_name=name, read_queue_nums=n, write_queue_nums=n, perm=6)
            for name, n in groups
        ]
    )
    return client.call(RequestCode.REGISTER_TOPIC_IN_NAMESRV, {"topic": topic}, encode_body(route))


def queues(client: WireClient, topic: str) -> dict[str, int]:
    """Broker name -> write queues of ``topic``'s route (empty: no route)."""
    reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    if reply.code != ResponseCode.SUCCESS:
        return {}
    return {q["brokerName"]: q["writeQueueNums"] for q in json.loads(reply.body)["queueDatas"]}


@pytest.mark.parametrize("mark", [None, "actormqIncremental"])
def test_part_of_a_table_from_a_broker_not_registered_is_refused(
    lone_namesrv: str, mark: str | None
) -> None:
    client = WireClient(lone_namesrv)
    # When a broker the name server does not know registers a single topic (unmarked, as
    # RocketMQ's registerIncrementBrokerData; or marked incremental, as actormq's)
    reply = register(client, "broker-a", {"Created": 2}, mark)
    # Then it is refused as RocketMQ 5 refuses it, and nothing routes
    assert reply.code == ResponseCode.SYSTEM_ERROR
    assert reply.remark == "register broker failed"
    assert queues(client, "Created") == {}
    cluster = client.call(RequestCode.GET_BROKER_CLUSTER_INFO, {})
    assert json.loads(cluster.body)["brokerAddrTable"] == {}
    # And once it registered its whole table, the same registration is taken
    assert register(client, "broker-a", {"Orders": 4}, "actormqFull").code == 0
    assert register(client, "broker-a", {"Created": 2}, mark).code == ResponseCode.SUCCESS
    assert queues(client, "Created") == {"broker-a": 2}
    assert queues(client, "Orders") == {"broker-a": 4}


def test_register_topic_in_namesrv_adds_queue_data_of_registered_groups(
    lone_namesrv: str,
) -> None:
    client = WireClient(lone_namesrv)
    # Given broker-a and broker-b registered, Orders on broker-a
    assert register(client, "broker-a", {"Orders": 4}, "actormqFull").code == 0
    assert register(client, "broker-b", {"Other": 1}, "actormqFull").code == 0
    # When broker-b registers Orders alone, and broker-a a new topic
    assert register_topic(client, "Orders", ("broker-b", 2)).code == ResponseCode.SUCCESS
    assert register_topic(client, "Created", ("broker-a", 8)).code == ResponseCode.SUCCESS
    # Then both routes have them, beside what was there
    assert queues(client, "Orders") == {"broker-a": 4, "broker-b": 2}
    assert queues(client, "Created") == {"broker-a": 8}


def test_register_topic_in_namesrv_naming_an_unknown_group_changes_nothing(
    lone_namesrv: str,
) -> None:
    client = WireClient(lone_namesrv)
    assert register(client, "broker-a", {"Orders": 4}, "actormqFull").code == 0
    # When a topic is registered on broker-x, which never registered (alone, or with broker-a)
    alone = register_topic(client, "Ghost", ("broker-x", 4))
    mixed = register_topic(client, "Orders", ("broker-a", 1), ("broker-x", 4))
    # Then the name server answers SUCCESS, as RocketMQ does, and no route changes (RocketMQ
    # 5 would have applied broker-a's queue data, named before the unknown group, to the
    # existing topic: actormq checks every group first)
    assert alone.code == mixed.code == ResponseCode.SUCCESS
    assert queues(client, "Ghost") == {}
    assert queues(client, "Orders") == {"broker-a": 4}
    # And one without its topic is refused by name, the connection kept
    bad = client.call(RequestCode.REGISTER_TOPIC_IN_NAMESRV, {})
    assert bad.code == ResponseCode.SYSTEM_ERROR and "topic" in (bad.remark or "")
    assert queues(client, "Orders") == {"broker-a": 4}


def test_register_topic_in_namesrv_needs_the_inner_account_when_one_is_set() -> None:
    # Given a name server with innerClientAuthenticationCredentials
    inner = '{"accessKey": "cluster-inner", "secretKey": "inner-secret"}'
    cfg = NamesrvConfig(inner_client_authentication_credentials=inner)
    with running_namesrv(cfg) as (address, _directory):
        client = WireClient(address)
        # When a topic registration comes unsigned
        reply = register_topic(client, "Forged", ("broker-a", 4))
        # Then it is refused as the brokers' other writes are
        assert reply.code == ResponseCode.SYSTEM_ERROR
        assert (reply.remark or "").startswith("AclException: ")
