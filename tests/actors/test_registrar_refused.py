"""A name server that refuses a broker's incremental registration (it dropped the broker while
the connection stayed open) gets the broker's whole table within seconds: the NamesrvRegistrar
stops counting it as holding the table, and its ``Recheck`` registers in full after the 1 s
backoff, instead of the broker staying out of the routes until its next 30 s round."""

from __future__ import annotations

import json

import pytest

from actors.broker.registrar import NamesrvRegistrar, RegisterNow
from config import BrokerConfig
from runtime.remoting.bodies import TopicConfig
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import wait_until
from tests.actors.namesrv_support import logged, running_namesrv
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)


def routed(address: str, topic: str) -> bool:
    client = WireClient(address, timeout=2)
    try:
        reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    finally:
        client.close()
    return reply.code == ResponseCode.SUCCESS and bool(json.loads(reply.body)["queueDatas"])


def test_a_refused_incremental_registration_is_followed_by_a_full_one_within_seconds() -> None:
    # Given a broker registered with topic Orders, its 30 s registration rounds far apart
    topics = {"Orders": TopicConfig(topic_name="Orders", read_queue_nums=4, write_queue_nums=4)}
    with running_namesrv() as (address, _directory), logged("WARNING") as warnings:
        broker = BrokerConfig(
            broker_name="broker-i", namesrv_addr=address, register_name_server_period=30_000
        )
        registrar = NamesrvRegistrar.start(
            broker, lambda names: {t: c for t, c in topics.items() if names is None or t in names}
        )
        try:
            wait_until(lambda: routed(address, "Orders"), what="the first registration")
            # And the name server dropped it while its connection stays open (an
            # UNREGISTER_BROKER for its address sent on another connection)
            admin = WireClient(address)
            header = {
                "brokerName": "broker-i",
                "brokerAddr": broker.broker_addr(),
                "clusterName": broker.broker_cluster_name,
                "brokerId": 0,
            }
            assert admin.call(RequestCode.UNREGISTER_BROKER, header).code == ResponseCode.SUCCESS
            admin.close()
            assert not routed(address, "Orders")
            # When the broker creates a topic (an incremental registration: refused)
            topics["Created"] = TopicConfig(
                topic_name="Created", read_queue_nums=1, write_queue_nums=1
            )
            registrar.tell(RegisterNow(topics=("Created",)))
            wait_until(
                lambda: any("refused" in w for w in warnings), 5, "the incremental one refused"
            )
            # Then it registers its whole table within seconds: both topics routed
            wait_until(
                lambda: routed(address, "Orders") and routed(address, "Created"),
                5,
                "Orders and Created routed after a full registration",
            )
        finally:
            registrar.stop(timeout=5)
