"""A broker in controller mode registers with its master epoch as the DataVersion's
``stateVersion`` (RocketMQ 5's ReplicasManager: ``nextVersion(newMasterEpoch)``), so the name
server ignores an old master's registration for brokerId 0 ("Registered Broker conflicts with
the existed one", actors.namesrv.route_table) instead of routing clients back to it."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.node import Node
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import (
    T,
    broker_config,
    ha_state,
    label,
    start_broker,
    start_namesrv,
    stop_node,
    wait_until,
)
from tests.actors.namesrv_support import logged
from tests.actors.test_namesrv_prime_slave import rocketmq5_register
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

OLD_MASTER = "127.0.0.1:10999"


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    # A controller that starts waits this long before granting leases (the real one: 4 s)
    monkeypatch.setattr("actors.namesrv.node.GRACE_S", 0.3)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    running: list[Node] = []
    yield running
    for node in reversed(running):
        stop_node(node)


def route_of(namesrv: str, topic: str) -> Any:
    client = WireClient(namesrv, timeout=2)
    try:
        reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    finally:
        client.close()
    return json.loads(reply.body) if reply.code == ResponseCode.SUCCESS else None


def addrs(namesrv: str, topic: str) -> dict[str, str]:
    route = route_of(namesrv, topic)
    return route["brokerDatas"][0]["brokerAddrs"] if route else {}


def test_an_old_masters_registration_is_ignored_by_the_name_server(
    tmp_path: pathlib.Path, nodes: list[Node]
) -> None:
    ns = start_namesrv(controller=True)
    nodes.append(ns)
    namesrv = ns.addresses["namesrv"]
    cfg = broker_config("broker-a", 0, "ASYNC_MASTER", namesrv, controller_addr=namesrv)
    master = start_broker(cfg, tmp_path / "m")
    nodes.append(master)
    address = master.addresses[label(master)]
    # Given a controller-mode master holding its lease (epoch >= 1), its topic SV routed
    state = ha_state(master)
    assert state.wait_until(lambda s: s.accepting_writes(), T), "no master lease"
    epoch = state.epoch
    assert epoch >= 1
    client = WireClient(address)
    ext = {"topic": "SV", "readQueueNums": 4, "writeQueueNums": 4, "perm": 6}
    assert client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext).code == ResponseCode.SUCCESS
    client.close()
    wait_until(lambda: addrs(namesrv, "SV") == {"0": address}, T, "SV routed on the master")
    # When an old master at another address registers brokerId 0 with the epoch before
    # (a registration sent before it was deposed, arriving late)
    old = WireClient(namesrv)
    with logged("WARNING") as warnings:
        reply = rocketmq5_register(old, OLD_MASTER, 0, {"SV": 8, "B": 2}, state=epoch - 1)
    old.close()
    # Then the name server ignores it: the route keeps the master, with its queues
    assert reply.code == ResponseCode.SUCCESS
    assert any("conflicts" in w for w in warnings), warnings
    route = route_of(namesrv, "SV")
    assert route["brokerDatas"][0]["brokerAddrs"] == {"0": address}
    assert [q["writeQueueNums"] for q in route["queueDatas"]] == [4]
