"""A broker the name server's scan expires (silent past its timeout) has its connection closed,
as RocketMQ's scanNotActiveBroker closes the channel: the broker's NamesrvRegistrar then
registers its whole table on a new connection within about a second, instead of going on
sending only the topics it creates on the old one (routes listing just those) until its next
full registration, up to 30 s later."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actors.broker.registrar import NamesrvRegistrar, RegisterNow
from config import BrokerConfig, NamesrvConfig
from runtime.remoting.bodies import TopicConfig
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import wait_until
from tests.actors.namesrv_support import running_namesrv
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)


def register(client: WireClient, name: str, addr: str, timeout_ms: int | None) -> Any:
    header: dict[str, Any] = {
        "brokerName": name,
        "brokerAddr": addr,
        "clusterName": "DefaultCluster",
        "brokerId": 0,
    }
    if timeout_ms is not None:
        header["heartbeatTimeoutMillis"] = timeout_ms
    return client.call(RequestCode.REGISTER_BROKER, header)


def closed_within(client: WireClient, seconds: float) -> bool:
    """Whether the server closes ``client``'s connection within ``seconds``."""
    client.sock.settimeout(seconds)
    try:
        return client.sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def routed(address: str, topic: str) -> bool:
    client = WireClient(address, timeout=2)
    try:
        reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    finally:
        client.close()
    return reply.code == ResponseCode.SUCCESS and bool(json.loads(reply.body)["queueDatas"])


def test_an_expired_brokers_connection_is_closed() -> None:
    # Given a name server scanning every 50 ms, broker-a registered with a 300 ms timeout on
    # its own connection and broker-b (the default 120 s) on another
    cfg = NamesrvConfig(scan_not_active_broker_interval=50)
    with running_namesrv(cfg) as (address, directory):
        a, b = WireClient(address), WireClient(address)
        assert register(a, "broker-a", "127.0.0.1:10911", 300).code == ResponseCode.SUCCESS
        assert register(b, "broker-b", "127.0.0.1:10921", None).code == ResponseCode.SUCCESS
        # When broker-a stays silent past its timeout
        # Then the name server closes broker-a's connection
        assert closed_within(a, 10), "the expired broker's connection stayed open"
        # And broker-b's stays, broker-b registered
        assert not closed_within(b, 0.2)
        live = directory.proxy("ns/routes").live_brokers().get(timeout=5)
        assert live == {"127.0.0.1:10921": "broker-b/0"}


def test_an_expired_broker_registers_its_whole_table_again() -> None:
    # Given a broker registered with topic Orders, its 30 s registration rounds far apart
    topics = {"Orders": TopicConfig(topic_name="Orders", read_queue_nums=4, write_queue_nums=4)}
    with running_namesrv() as (address, directory):
        broker = BrokerConfig(
            broker_name="broker-e", namesrv_addr=address, register_name_server_period=30_000
        )
        registrar = NamesrvRegistrar.start(
            broker, lambda names: {t: c for t, c in topics.items() if names is None or t in names}
        )
        try:
            wait_until(lambda: routed(address, "Orders"), what="the first registration")
            # When a scan finds it expired (here: a scan with a 0 ms timeout, while its
            # connection is not idle: as after its own heartbeatTimeoutMillis, or in the
            # moments before the session's idle check closes a silent one)
            dropped = directory.proxy("ns/routes").scan_not_active(0).get(timeout=5)
            assert dropped == ["broker-e/0"] and not routed(address, "Orders")
            # Then it registers its whole table again (its connection was closed): Orders
            # routes again long before the next round
            wait_until(lambda: routed(address, "Orders"), 5, "Orders routed again")
            # And a topic it creates next is routed beside it
            topics["Created"] = TopicConfig(
                topic_name="Created", read_queue_nums=1, write_queue_nums=1
            )
            registrar.tell(RegisterNow(topics=("Created",)))
            wait_until(
                lambda: routed(address, "Created") and routed(address, "Orders"),
                5,
                "Created and Orders routed together",
            )
        finally:
            registrar.stop(timeout=5)
