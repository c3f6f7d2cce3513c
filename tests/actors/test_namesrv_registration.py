"""RouteTable registrations checked against RocketMQ's RouteInfoManager: partial (incremental)
registrations, cluster moves, each broker's own heartbeat timeout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.namesrv.route_table import (
    RegisterBroker,
    Registration,
    RouteTable,
    TopicConfigEntry,
)

pytestmark = pytest.mark.timeout(20)

MASTER, SLAVE = "127.0.0.1:10911", "127.0.0.1:10921"


@pytest.fixture
def now() -> list[float]:
    return [1000.0]


@pytest.fixture
def table(now: list[float]) -> Iterator[Any]:
    """A RouteTable (proxy) whose clock reads ``now[0]``."""
    ref = RouteTable.start(clock=lambda: now[0])
    yield ref.proxy()
    ref.stop()


def register(
    table: Any,
    addr: str,
    broker_id: int,
    topics: dict[str, int],
    kind: Registration = Registration.WHOLE,
    *,
    cluster: str = "c",
    version: str = "1:1",
) -> Any:
    """The registration's RegisterResult (None: refused)."""
    return table.register_broker(
        RegisterBroker(
            cluster_name=cluster,
            broker_name="broker-a",
            broker_addr=addr,
            broker_id=broker_id,
            ha_server_addr="",
            topics=tuple(TopicConfigEntry(t, n, n) for t, n in topics.items()),
            data_version=version,
            kind=kind,
        )
    ).get(timeout=5)


def routed(table: Any, *topics: str) -> list[int | None]:
    """Each topic's write queue count on broker-a, None when it has no route there."""
    counts: list[int | None] = []
    for topic in topics:
        route = table.route(topic).get(timeout=5)
        qd = [q for q in route.queue_datas if q.broker_name == "broker-a"] if route else []
        counts.append(qd[0].write_queue_nums if qd else None)
    return counts


def test_an_incremental_registration_from_a_dropped_master_is_refused(
    table: Any, now: list[float]
) -> None:
    # Given broker-a's master (topics A and B) and its slave
    register(table, MASTER, 0, {"A": 4, "B": 4})
    register(table, SLAVE, 1, {"A": 4, "B": 4})
    # And the master silent past the expiry (a long pause) while the slave keeps registering,
    # so the scan drops the master alone
    now[0] += 121
    register(table, SLAVE, 1, {"A": 4, "B": 4}, version="1:2")
    assert table.scan_not_active(120_000).get(timeout=5) == ["broker-a/0"]
    # When the master resumes with an incremental registration naming only a created topic
    refused = register(table, MASTER, 0, {"C": 2}, Registration.INCREMENT, version="1:3")
    # Then it is refused: the master stays unregistered, C unrouted, A and B as they were
    assert refused is None
    assert table.live_brokers().get(timeout=5) == {SLAVE: "broker-a/1"}
    assert routed(table, "A", "B", "C") == [4, 4, None]
    # And its next full registration applies its whole table (B was deleted meanwhile)
    assert register(table, MASTER, 0, {"A": 4, "C": 2}, version="1:4") is not None
    assert routed(table, "A", "B", "C") == [4, None, 2]


def test_an_incremental_registration_from_an_address_that_lost_its_id_is_refused(
    table: Any,
) -> None:
    # Given broker-a's master at MASTER, then another master at NEW_MASTER taking id 0
    new_master = "127.0.0.1:10931"
    register(table, MASTER, 0, {"A": 4})
    register(table, new_master, 0, {"A": 4}, version="1:2")
    # When the old master sends an incremental registration
    refused = register(table, MASTER, 0, {"C": 2}, Registration.INCREMENT, version="1:3")
    # Then it is refused and id 0 stays the new master's
    assert refused is None
    info = table.cluster_info().get(timeout=5)
    assert info.broker_addr_table["broker-a"].broker_addrs == {0: new_master}
    assert routed(table, "C") == [None]


def test_an_unmarked_single_topic_registration_needs_the_broker_registered(table: Any) -> None:
    # When a RocketMQ broker not registered yet registers one topic, unmarked (RocketMQ 5's
    # "register single topic" case)
    refused = register(table, MASTER, 0, {"A": 4}, Registration.MERGE)
    # Then it is refused, and nothing of it is kept
    assert refused is None
    assert table.cluster_info().get(timeout=5).cluster_addr_table == {}
    assert table.live_brokers().get(timeout=5) == {}
    # And the same broker's registration of its table is taken, then one topic alone too
    assert register(table, MASTER, 0, {"A": 4, "B": 4}, Registration.MERGE) is not None
    assert register(table, MASTER, 0, {"C": 2}, Registration.MERGE, version="1:2") is not None
    assert routed(table, "A", "B", "C") == [4, 4, 2]


def test_a_group_that_registers_under_another_cluster_name_leaves_the_old_cluster(
    table: Any,
) -> None:
    # Given broker-a registered in cluster c1
    register(table, MASTER, 0, {"A": 4}, cluster="c1")
    # When it registers under cluster c2 (its brokerClusterName changed)
    register(table, MASTER, 0, {"A": 4}, cluster="c2", version="1:2")
    # Then it is listed in c2 only, and its broker data names c2
    info = table.cluster_info().get(timeout=5)
    assert info.cluster_addr_table == {"c2": ["broker-a"]}
    assert info.broker_addr_table["broker-a"].cluster == "c2"
    assert table.topics_by_cluster("c1").get(timeout=5) == []
    assert table.topics_by_cluster("c2").get(timeout=5) == ["A"]
    # And once it goes, no cluster lists it
    table.unregister_broker("c2", "broker-a", MASTER, 0).get(timeout=5)
    assert table.cluster_info().get(timeout=5).cluster_addr_table == {}


def test_each_broker_expires_after_its_own_heartbeat_timeout(table: Any, now: list[float]) -> None:
    # Given a master registered with heartbeatTimeoutMillis 10 s and a slave without one
    table.register_broker(
        RegisterBroker(
            cluster_name="c",
            broker_name="broker-a",
            broker_addr=MASTER,
            broker_id=0,
            ha_server_addr="",
            topics=(TopicConfigEntry("A", 4, 4),),
            data_version="1:1",
            heartbeat_timeout_ms=10_000,
        )
    ).get(timeout=5)
    register(table, SLAVE, 1, {"A": 4})
    # When 9 s pass, then a BROKER_HEARTBEAT of the master, then 9 s more: both stay
    now[0] += 9
    assert table.scan_not_active(120_000).get(timeout=5) == []
    assert table.broker_heartbeat("c", MASTER).get(timeout=5) is True
    now[0] += 9
    assert table.scan_not_active(120_000).get(timeout=5) == []
    # When 11 s pass without a sign of life: the master goes, the slave (120 s) stays
    now[0] += 11
    assert table.scan_not_active(120_000).get(timeout=5) == ["broker-a/0"]
    assert table.live_brokers().get(timeout=5) == {SLAVE: "broker-a/1"}
    # And a heartbeat of a broker not registered in that cluster refreshes nothing
    assert table.broker_heartbeat("other", SLAVE).get(timeout=5) is False
    assert table.broker_heartbeat("c", MASTER).get(timeout=5) is False
