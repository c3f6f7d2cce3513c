"""REGISTER_BROKER's ``heartbeatTimeoutMillis`` and BROKER_HEARTBEAT (904) over a real socket,
with the name server's own HeartbeatScanner (RocketMQ 5's per-broker liveness timeout)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent.event
import pytest
from loguru import logger

from actors.namesrv.node import namesrv_spec
from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def namesrv() -> Iterator[tuple[Directory, WireClient]]:
    """A name server scanning every 50 ms, with the default 120 s expiry."""
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    cfg = NamesrvConfig(scan_not_active_broker_interval=50)
    sup = namesrv_spec("ns", cfg, sock, directory).start()
    yield directory, WireClient(sock.getsockname())
    sup.stop(timeout=5)
    sock.close()


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


def test_a_broker_registered_with_a_heartbeat_timeout_expires_after_it(namesrv: Any) -> None:
    directory, client = namesrv
    dropped = gevent.event.Event()

    def sink(message: Any) -> None:
        if "dropped broker broker-a/0" in str(message):
            dropped.set()

    handler = logger.add(sink, level="INFO")
    try:
        # Given broker-a registered with heartbeatTimeoutMillis 300 and broker-b without one,
        # each on its own connection (an expired broker's connection is closed)
        other = WireClient(client.sock.getpeername())
        assert register(client, "broker-a", "127.0.0.1:10911", 300).code == ResponseCode.SUCCESS
        assert register(other, "broker-b", "127.0.0.1:10921", None).code == ResponseCode.SUCCESS
        # Then the scanner drops broker-a once it is silent for 300 ms
        assert dropped.wait(timeout=10)
    finally:
        logger.remove(handler)
    # And broker-b, under the 120 s default, stays
    live = directory.proxy("ns/routes").live_brokers().get(timeout=5)
    assert live == {"127.0.0.1:10921": "broker-b/0"}


def test_broker_heartbeat_is_served(namesrv: Any) -> None:
    _directory, client = namesrv
    register(client, "broker-a", "127.0.0.1:10911", None)
    header = {
        "clusterName": "DefaultCluster",
        "brokerAddr": "127.0.0.1:10911",
        "brokerName": "broker-a",
        "brokerId": 0,
        "heartbeatTimeoutMills": 10_000,
    }
    # A registered broker's heartbeat and an unknown one's are both SUCCESS, as in RocketMQ
    assert client.call(RequestCode.BROKER_HEARTBEAT, header).code == ResponseCode.SUCCESS
    unknown = {**header, "brokerAddr": "127.0.0.1:1"}
    assert client.call(RequestCode.BROKER_HEARTBEAT, unknown).code == ResponseCode.SUCCESS
    # And one without its cluster is refused by name, the connection kept
    bad = client.call(RequestCode.BROKER_HEARTBEAT, {"brokerAddr": "127.0.0.1:10911"})
    assert bad.code == ResponseCode.SYSTEM_ERROR and "clusterName" in (bad.remark or "")
