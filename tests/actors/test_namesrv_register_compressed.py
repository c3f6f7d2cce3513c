"""Compressed broker registrations end to end: a broker's NamesrvRegistrar and a name server
over a real socket. With ``compressedRegister``, or a table too large for JSON (the retry topics
of very many consumer groups), the broker sends RocketMQ's compressed binary body and its topics
route; a body that inflates past the limit, or is not the binary form, is refused with an error
reply and a WARNING naming the broker, and the connection goes on."""

from __future__ import annotations

import json
import zlib
from typing import Any

import gevent.event
import pytest

from actors.broker.registrar import NamesrvRegistrar
from config import BrokerConfig
from runtime.remoting.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
    encode_body,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.frame import MAX_FRAME
from runtime.remoting.register_body import (
    MAX_INFLATED_REGISTER,
    body_crc32,
    encode_register_body,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


def retry_topics(n: int) -> dict[str, TopicConfig]:
    names = (f"%RETRY%consumer-group-with-a-long-name-{i:06d}" for i in range(n))
    return {t: TopicConfig(topic_name=t, read_queue_nums=1, write_queue_nums=1) for t in names}


def queue_count(client: WireClient, topic: str) -> int | None:
    reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    if reply.code != ResponseCode.SUCCESS:
        return None
    return int(json.loads(reply.body)["queueDatas"][0]["writeQueueNums"])


def registration(body: bytes, name: str = "broker-hostile") -> tuple[dict[str, Any], bytes]:
    header = {
        "brokerName": name,
        "brokerAddr": "127.0.0.1:10977",
        "clusterName": "DefaultCluster",
        "brokerId": 0,
        "compressed": "true",
        "actormqFull": "true",
    }
    return header, body


def test_compressed_register_true_sends_the_binary_form_and_topics_route(lone_namesrv: str) -> None:
    # Given a broker with compressedRegister=true and a few topics, one of them with attributes
    topics = {
        "Orders": TopicConfig(topic_name="Orders", read_queue_nums=4, write_queue_nums=4),
        "Typed": TopicConfig(
            topic_name="Typed",
            read_queue_nums=2,
            write_queue_nums=2,
            attributes={"+message.type": "FIFO"},
        ),
    }
    # When it registers
    registered = gevent.event.Event()
    cfg = BrokerConfig(broker_name="broker-c", namesrv_addr=lone_namesrv, compressed_register=True)
    registrar = NamesrvRegistrar.start(
        cfg, lambda _names: dict(topics), on_registered=registered.set
    )
    try:
        assert registered.wait(timeout=10)
        # Then both topics route with their queue counts
        client = WireClient(lone_namesrv)
        assert queue_count(client, "Orders") == 4
        assert queue_count(client, "Typed") == 2
    finally:
        registrar.stop(timeout=5)


def test_a_table_too_large_for_a_json_frame_registers_compressed(lone_namesrv: str) -> None:
    # Given a broker (compressedRegister=false) with 90,000 retry topics: as JSON its
    # registration would pass the 16 MiB frame limit and be dropped by the name server
    topics = retry_topics(90_000)
    wrapper = TopicConfigSerializeWrapper(topic_config_table=topics, data_version=DataVersion())
    assert len(encode_body(RegisterBrokerBody(topic_config_serialize_wrapper=wrapper))) > MAX_FRAME
    registered = gevent.event.Event()
    cfg = BrokerConfig(broker_name="broker-big", namesrv_addr=lone_namesrv)
    registrar = NamesrvRegistrar.start(cfg, lambda _names: topics, on_registered=registered.set)
    try:
        # When it registers, Then the name server takes it (sent compressed: COMPRESS_ABOVE)
        assert registered.wait(timeout=30), "the registration was not taken"
        # And its topics route, first and last
        client = WireClient(lone_namesrv)
        assert queue_count(client, "%RETRY%consumer-group-with-a-long-name-000000") == 1
        assert queue_count(client, "%RETRY%consumer-group-with-a-long-name-089999") == 1
        listed = client.call(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER, {})
        assert len(json.loads(listed.body)["topicList"]) == 90_000
    finally:
        registrar.stop(timeout=5)


def test_an_inflation_bomb_is_refused_and_the_connection_goes_on(
    lone_namesrv: str, warnings: list[str]
) -> None:
    broker = WireClient(lone_namesrv)
    # Given a compressed body of ~65 KiB that inflates past 64 MiB
    bomb = zlib.compress(b"\x00" * (MAX_INFLATED_REGISTER + 1024), 9)
    # When a broker registers with it
    reply = broker.call(RequestCode.REGISTER_BROKER, *registration(bomb))
    # Then it gets an error reply naming the limit, and a WARNING names the broker
    assert reply.code == ResponseCode.SYSTEM_ERROR
    assert "inflates past" in (reply.remark or "")
    assert any("broker-hostile" in w and "inflates past" in w for w in warnings)
    # And a JSON body zlib'd (what the name server used to accept; nobody sends it) is refused
    zipped_json = zlib.compress(encode_body(RegisterBrokerBody()))
    reply = broker.call(RequestCode.REGISTER_BROKER, *registration(zipped_json))
    assert reply.code == ResponseCode.SYSTEM_ERROR
    # And the same connection still registers a good compressed body
    body = encode_register_body(
        RegisterBrokerBody(
            topic_config_serialize_wrapper=TopicConfigSerializeWrapper(
                topic_config_table={"Fine": TopicConfig(topic_name="Fine", write_queue_nums=3)}
            )
        )
    )
    assert broker.call(RequestCode.REGISTER_BROKER, *registration(body)).code == 0
    assert queue_count(WireClient(lone_namesrv), "Fine") == 3


@pytest.mark.parametrize("compressed", [False, True])
def test_a_registration_carries_the_crc_of_its_body(compressed: bool) -> None:
    # Given a broker's registrar (JSON or compressed bodies)
    cfg = BrokerConfig(broker_name="broker-c", compressed_register=compressed)
    topics = {"Orders": TopicConfig(topic_name="Orders", read_queue_nums=4, write_queue_nums=4)}
    registrar = NamesrvRegistrar(cfg, lambda _names: dict(topics))
    # When it builds a registration, Then its bodyCrc32 is the body's, as RocketMQ's broker
    # sends it (the name server refuses a nonzero one that does not match)
    request = registrar._full_request(1)
    assert request.body
    assert int(request.ext_fields["bodyCrc32"]) == body_crc32(request.body) != 0
