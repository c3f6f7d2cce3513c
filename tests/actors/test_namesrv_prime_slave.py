"""Two rules of RocketMQ 5's RouteInfoManager.registerBroker: the "prime slave" (a group's
lowest-id slave, from a RocketMQ 5 broker, while no master is registered) has its topics routed
read-only; and a registration for an id another live address holds with a higher
``stateVersion`` is ignored ("Registered Broker conflicts with the existed one")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from actors.namesrv.node import namesrv_spec
from actors.namesrv.route_table import (
    RegisterBroker,
    Registration,
    RouteTable,
    TopicConfigEntry,
)
from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)

MASTER, SLAVE, SLAVE2 = "127.0.0.1:10911", "127.0.0.1:10921", "127.0.0.1:10931"
RW, RO = 6, 4


@pytest.fixture
def table() -> Iterator[Any]:
    ref = RouteTable.start()
    yield ref.proxy()
    ref.stop()


def register(
    table: Any,
    addr: str,
    broker_id: int,
    topics: dict[str, int],
    kind: Registration = Registration.WHOLE,
    *,
    acting: bool | None = None,
    state: int = 0,
) -> Any:
    """The registration's RegisterResult (None: refused)."""
    return table.register_broker(
        RegisterBroker(
            cluster_name="c",
            broker_name="broker-a",
            broker_addr=addr,
            broker_id=broker_id,
            ha_server_addr="",
            topics=tuple(TopicConfigEntry(t, n, n, perm=RW) for t, n in topics.items()),
            data_version="1:1",
            kind=kind,
            enable_acting_master=acting,
            state_version=state,
        )
    ).get(timeout=5)


def queues(table: Any, topic: str) -> tuple[int, int] | None:
    """``topic``'s (write queue count, perm) on broker-a, None when it has no route there."""
    route = table.route(topic).get(timeout=5)
    qd = [q for q in route.queue_datas if q.broker_name == "broker-a"] if route else []
    return (qd[0].write_queue_nums, qd[0].perm) if qd else None


def addrs(table: Any) -> dict[int, str]:
    info = table.cluster_info().get(timeout=5)
    group = info.broker_addr_table.get("broker-a")
    return dict(group.broker_addrs) if group else {}


# -- prime slave ------------------------------------------------------------------------------


def test_a_slave_registering_while_no_master_is_routed_read_only_until_the_master_returns(
    table: Any,
) -> None:
    # Given a name server (re)started while broker-a's master is down
    # When its slave (an actormq broker) registers its whole table
    assert register(table, SLAVE, 1, {"A": 4, "S": 2}) is not None
    # Then its topics are routed on the slave, read-only
    assert [queues(table, t) for t in "AS"] == [(4, RO), (2, RO)]
    assert addrs(table) == {1: SLAVE}
    # When the master registers (its whole table: A with 8 queues, no S)
    register(table, MASTER, 0, {"A": 8})
    # Then the master's own perms and table apply
    assert [queues(table, t) for t in "AS"] == [(8, RW), None]


def test_a_rocketmq5_slave_is_prime_and_a_rocketmq4_slave_is_not(table: Any) -> None:
    # Given a RocketMQ 4 slave (no enableActingMaster header) registering without a master
    register(table, SLAVE, 1, {"A": 4}, Registration.MERGE)
    # Then its topics are not routed (RocketMQ 5's name server treats it as an old version)
    assert queues(table, "A") is None
    # When it registers again as RocketMQ 5 does (enableActingMaster false), topics changed
    register(table, SLAVE, 1, {"A": 4, "B": 2}, Registration.MERGE, acting=False)
    # Then the new topic and the one missing from the group's routes are routed read-only
    assert [queues(table, t) for t in "AB"] == [(4, RO), (2, RO)]


def test_only_the_lowest_id_slave_is_prime(table: Any) -> None:
    # Given slave 2 registered alone (prime then) and then slave 1
    register(table, SLAVE2, 2, {"A": 4})
    register(table, SLAVE, 1, {"A": 4, "B": 2})
    assert [queues(table, t) for t in "AB"] == [(4, RO), (2, RO)]
    # When slave 2 registers a topic slave 1 does not have
    register(table, SLAVE2, 2, {"A": 4, "Z": 1})
    # Then it is not routed: slave 1 is the prime slave
    assert queues(table, "Z") is None


def test_a_slave_is_not_applied_while_the_master_is_registered(table: Any) -> None:
    # Given a master and its slave, the slave with a topic the master lacks
    register(table, MASTER, 0, {"A": 4})
    register(table, SLAVE, 1, {"A": 4, "S": 2})
    # Then only the master's topics are routed, with its perms
    assert [queues(table, t) for t in "AS"] == [(4, RW), None]


def test_a_prime_slave_never_drops_queue_data_the_master_registered(table: Any) -> None:
    # Given a master with A and B and its slave with A only (B not synced yet)
    register(table, MASTER, 0, {"A": 4, "B": 4})
    register(table, SLAVE, 1, {"A": 4})
    # When the master leaves and the slave registers a changed table (A now 8 queues)
    table.unregister_broker("c", "broker-a", MASTER, 0).get(timeout=5)
    register(table, SLAVE, 1, {"A": 8})
    # Then A is the slave's, read-only, and B keeps the master's queue data
    assert [queues(table, t) for t in "AB"] == [(8, RO), (4, RW)]
    # When it registers the same table again
    register(table, SLAVE, 1, {"A": 8})
    # Then nothing changes
    assert [queues(table, t) for t in "AB"] == [(8, RO), (4, RW)]


def test_an_unchanged_prime_slave_keeps_the_masters_queue_data(table: Any) -> None:
    # Given a master and its slave with the same topics
    register(table, MASTER, 0, {"A": 4})
    register(table, SLAVE, 1, {"A": 4})
    # When the master's connection goes and the slave registers the same table
    table.unregister_broker("c", "broker-a", MASTER, 0).get(timeout=5)
    register(table, SLAVE, 1, {"A": 4})
    # Then the master's queue data stay as they were (RocketMQ re-applies only on a change)
    assert queues(table, "A") == (4, RW)


def test_an_incremental_registration_of_the_prime_slave_is_read_only(table: Any) -> None:
    # Given a prime slave registered
    register(table, SLAVE, 1, {"A": 4})
    # When it sends only a created topic
    register(table, SLAVE, 1, {"C": 2}, Registration.INCREMENT)
    # Then that topic is routed read-only beside the others
    assert [queues(table, t) for t in "AC"] == [(4, RO), (2, RO)]


# -- stateVersion conflicts -------------------------------------------------------------------


def test_a_registration_with_a_lower_state_version_does_not_take_the_id(table: Any) -> None:
    # Given the master at MASTER with stateVersion 2 (controller mode: its master epoch)
    register(table, MASTER, 0, {"A": 4}, state=2)
    # When an old master at another address registers id 0 with stateVersion 1
    result = register(table, SLAVE, 0, {"A": 8, "OLD": 1}, state=1)
    # Then it is answered without a master and ignored: the id, the routes stay
    assert result is not None and result.master_addr is None
    assert addrs(table) == {0: MASTER}
    assert [queues(table, t) for t in ("A", "OLD")] == [(4, RW), None]
    assert table.live_brokers().get(timeout=5) == {MASTER: "broker-a/0"}


def test_an_ignored_address_leaves_the_id_it_held(table: Any) -> None:
    # Given the master (stateVersion 3) and a slave at SLAVE
    register(table, MASTER, 0, {"A": 4}, state=3)
    register(table, SLAVE, 1, {"A": 4}, state=3)
    # When SLAVE registers as id 0 with a stale stateVersion
    register(table, SLAVE, 0, {"A": 4}, state=2)
    # Then it is ignored and, as in RocketMQ 5, leaves the group and the live brokers
    assert addrs(table) == {0: MASTER}
    assert table.live_brokers().get(timeout=5) == {MASTER: "broker-a/0"}


def test_an_equal_or_higher_state_version_takes_the_id(table: Any) -> None:
    # Given the master at MASTER with stateVersion 2
    register(table, MASTER, 0, {"A": 4}, state=2)
    # When another address registers id 0 with the same stateVersion
    register(table, SLAVE, 0, {"A": 4}, state=2)
    # Then it takes the id (the latest registration, as before)
    assert addrs(table) == {0: SLAVE}
    # When a third one registers with a higher one, Then it takes it too
    register(table, SLAVE2, 0, {"A": 4}, state=3)
    assert addrs(table) == {0: SLAVE2}


def test_a_holder_that_is_no_longer_live_does_not_conflict(table: Any) -> None:
    # Given the master at MASTER with stateVersion 5, dropped when its connection closed
    table.register_broker(
        RegisterBroker(
            cluster_name="c",
            broker_name="broker-a",
            broker_addr=MASTER,
            broker_id=0,
            ha_server_addr="",
            topics=(TopicConfigEntry("A", 4, 4),),
            data_version="1:1",
            session_id=7,
            state_version=5,
        )
    ).get(timeout=5)
    table.channel_closed(7).get(timeout=5)
    # When another address registers id 0 with stateVersion 1
    register(table, SLAVE, 0, {"A": 4}, state=1)
    # Then it takes the id
    assert addrs(table) == {0: SLAVE}


# -- over the wire ----------------------------------------------------------------------------


@pytest.fixture
def namesrv() -> Iterator[tuple[str, int]]:
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    sup = namesrv_spec("ns", NamesrvConfig(), sock, directory).start()
    yield sock.getsockname()
    sup.stop(timeout=5)
    sock.close()


def rocketmq5_register(
    client: WireClient, addr: str, broker_id: int, topics: dict[str, int], state: int
) -> Any:
    """REGISTER_BROKER as RocketMQ 5's brokers send it: ``enableActingMaster`` in the header,
    ``stateVersion`` in the body's data version, no actormq marks (a first registration names
    more than one topic: RocketMQ 5 refuses a lone one, and its brokers send system topics)."""
    table = {
        name: {"topicName": name, "readQueueNums": n, "writeQueueNums": n, "perm": RW}
        for name, n in topics.items()
    }
    body = {
        "topicConfigSerializeWrapper": {
            "topicConfigTable": table,
            "dataVersion": {"timestamp": 1, "counter": 1, "stateVersion": state},
        },
        "filterServerList": [],
    }
    header = {
        "brokerName": "broker-a",
        "brokerAddr": addr,
        "clusterName": "DefaultCluster",
        "haServerAddr": "",
        "brokerId": str(broker_id),
        "enableActingMaster": "false",
    }
    return client.call(RequestCode.REGISTER_BROKER, header, json.dumps(body).encode())


def route_of(client: WireClient, topic: str) -> Any:
    reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    return json.loads(reply.body) if reply.code == ResponseCode.SUCCESS else None


def test_over_the_wire_a_rocketmq5_prime_slave_is_routed_read_only(
    namesrv: tuple[str, int],
) -> None:
    slave, client = WireClient(namesrv), WireClient(namesrv)
    # Given a RocketMQ 5 slave registering while its master is down
    reply = rocketmq5_register(slave, SLAVE, 1, {"A": 4, "B": 2}, state=1)
    assert reply.code == ResponseCode.SUCCESS
    # Then A is routed on the slave, read-only
    route = route_of(client, "A")
    assert route is not None
    assert [(q["brokerName"], q["perm"]) for q in route["queueDatas"]] == [("broker-a", RO)]
    assert route["brokerDatas"][0]["brokerAddrs"] == {"1": SLAVE}


def test_over_the_wire_a_stale_state_version_is_ignored(namesrv: tuple[str, int]) -> None:
    master, old, client = WireClient(namesrv), WireClient(namesrv), WireClient(namesrv)
    # Given the master registered with stateVersion 2
    reply = rocketmq5_register(master, MASTER, 0, {"A": 4, "B": 2}, state=2)
    assert reply.code == ResponseCode.SUCCESS
    # When an old master at another address registers id 0 with stateVersion 1
    reply = rocketmq5_register(old, SLAVE, 0, {"A": 8, "B": 2}, state=1)
    # Then it is answered SUCCESS (as RocketMQ 5) and the route keeps the master
    assert reply.code == ResponseCode.SUCCESS
    route = route_of(client, "A")
    assert route["brokerDatas"][0]["brokerAddrs"] == {"0": MASTER}
    assert route["queueDatas"][0]["writeQueueNums"] == 4
