"""A restarted name server gets the broker's routes back within about a second
(``NamesrvRegistrar``'s ``Recheck``), not at the next 30 s registration round; a name server
that stays down is logged once, not every second."""

from __future__ import annotations

import json
import socket

import gevent.event
import pytest
from loguru import logger

from actors.broker.registrar import NamesrvRegistrar
from actors.namesrv.node import namesrv_spec
from config import BrokerConfig, NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind
from runtime.remoting.bodies import TopicConfig
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import free_port, wait_until
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

TOPICS = {"Orders": TopicConfig(topic_name="Orders", read_queue_nums=4, write_queue_nums=4)}


class NameServer:
    """A name server on a fixed port, started and stopped by the test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.sup = None
        self.sock: socket.socket | None = None

    def start(self) -> None:
        self.sock = bind("127.0.0.1", self.port, what="namesrv")
        self.sup = namesrv_spec("ns", NamesrvConfig(), self.sock, Directory()).start()

    def stop(self) -> None:
        assert self.sup is not None and self.sock is not None
        self.sup.stop(timeout=5)
        self.sock.close()

    def routes(self) -> bool:
        try:
            client = WireClient(self.address, timeout=2)
        except OSError:
            return False
        reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"})
        client.sock.close()
        return reply.code == ResponseCode.SUCCESS and bool(json.loads(reply.body)["queueDatas"])


def test_a_restarted_name_server_routes_the_broker_again_within_seconds() -> None:
    ns = NameServer(free_port())
    ns.start()
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    registered = gevent.event.Event()
    cfg = BrokerConfig(broker_name="broker-r", namesrv_addr=ns.address)  # 30 s rounds
    registrar = NamesrvRegistrar.start(cfg, lambda _n: dict(TOPICS), on_registered=registered.set)
    try:
        # Given a broker registered with a name server
        assert registered.wait(timeout=10)
        assert ns.routes()
        # When the name server is down for a few rechecks
        ns.stop()
        down = len(warnings)
        wait_until(lambda: len(warnings) > down, 5, "the failed registration logged")
        gevent.sleep(2.5)  # (the fault: down over two more rechecks)
        # Then the failure was logged once
        failed = [w for w in warnings if "register with" in w]
        assert len(failed) == 1, failed
        # When it is back (empty: no routes), Then the broker is routed again within seconds
        ns.start()
        wait_until(ns.routes, 8, "the broker routed again")  # (rechecks back off to 5 s)
    finally:
        logger.remove(sink)
        registrar.stop(timeout=5)
        ns.stop()


def test_a_registration_prepared_before_the_master_was_deposed_is_not_sent() -> None:
    ns = NameServer(free_port())
    ns.start()
    asked: list[bool] = []

    def registrable() -> bool:  # a master's lease: held when the round began, gone just after
        asked.append(True)
        return len(asked) == 1

    registered = gevent.event.Event()
    cfg = BrokerConfig(broker_name="broker-d", namesrv_addr=ns.address)
    registrar = NamesrvRegistrar.start(
        cfg, lambda _n: dict(TOPICS), registrable=registrable, on_registered=registered.set
    )
    try:
        # When the round's request is ready to go out, the lease is gone
        wait_until(lambda: len(asked) >= 3, 5, "the round and a recheck asked for the lease")
        # Then nothing was registered (a deposed master never takes brokerId 0 back)
        assert not registered.is_set() and not ns.routes()
    finally:
        registrar.stop(timeout=5)
        ns.stop()
