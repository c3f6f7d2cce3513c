"""Name-server races on gevent: a broker's registration and the close of its connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import gevent.event
import pytest

from actors.namesrv import processor as processor_module
from actors.namesrv.node import namesrv_spec
from actors.namesrv.processor import NamesrvProcessor
from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind
from runtime.remoting.bodies import (
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.register_body import encode_register_body
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)

WAIT_S = 5.0


def test_a_registration_finished_after_its_connection_closed_does_not_keep_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a name server whose decoding of a compressed register body can be held (it runs in
    # the thread pool: the request's greenlet yields there), and events for the connection's
    # close having been handled and for the registration having been answered
    decoding, release = gevent.event.Event(), gevent.event.Event()
    closed, answered = gevent.event.Event(), gevent.event.Event()

    def held_offload(fn: Callable[..., Any], *args: Any, **_kw: Any) -> Any:
        decoding.set()
        assert release.wait(WAIT_S)
        return fn(*args)

    real_on_close, real_register = NamesrvProcessor.on_close, NamesrvProcessor._register

    def on_close(self: NamesrvProcessor, session: Any) -> None:
        real_on_close(self, session)
        closed.set()

    def register(self: NamesrvProcessor, session: Any, request: Any) -> Any:
        try:
            return real_register(self, session, request)
        finally:
            answered.set()

    monkeypatch.setattr(processor_module, "offload", held_offload)
    monkeypatch.setattr(NamesrvProcessor, "on_close", on_close)
    monkeypatch.setattr(NamesrvProcessor, "_register", register)
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    sup = namesrv_spec("ns", NamesrvConfig(), sock, directory).start()
    try:
        body = encode_register_body(
            RegisterBrokerBody(
                topic_config_serialize_wrapper=TopicConfigSerializeWrapper(
                    topic_config_table={"Orders": TopicConfig(topic_name="Orders")}
                )
            )
        )
        header = {
            "brokerName": "broker-a",
            "brokerAddr": "127.0.0.1:10911",
            "clusterName": "DefaultCluster",
            "brokerId": 0,
            "compressed": "true",
            "actormqFull": "true",
        }
        broker = WireClient(sock.getsockname())
        # When a broker sends a compressed registration and its connection closes (the broker
        # died) while the name server is still decoding the body
        broker.send(RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body))
        assert decoding.wait(WAIT_S)
        broker.close()
        assert closed.wait(WAIT_S)
        # And only then the registration reaches the route table
        release.set()
        assert answered.wait(WAIT_S)
        # Then the broker is not left registered (it would be routed until the 120 s scan)
        routes = directory.proxy("ns/routes")
        assert routes.live_brokers().get(timeout=WAIT_S) == {}
        client = WireClient(sock.getsockname())
        reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"})
        assert reply.code == ResponseCode.TOPIC_NOT_EXIST, json.loads(reply.body or b"null")
    finally:
        release.set()
        sup.stop(timeout=5)
        sock.close()
