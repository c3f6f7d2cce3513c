"""REGISTER_BROKER's ``bodyCrc32`` over a real socket: RocketMQ's brokers (4.9+, 5) send the
CRC-32 of the body as sent; its name server refuses a nonzero one that does not match."""

from __future__ import annotations

import pytest

from runtime.remoting.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
    encode_body,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.register_body import body_crc32, encode_register_body
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def client(lone_namesrv: str) -> WireClient:
    return WireClient(lone_namesrv)


def body(topic: str) -> RegisterBrokerBody:
    """A table of ``topic`` and TBW102, as a RocketMQ broker's first registration names
    several (RocketMQ 5 refuses one naming a single topic)."""
    table = {
        t: TopicConfig(topic_name=t, read_queue_nums=4, write_queue_nums=4)
        for t in (topic, "TBW102")
    }
    wrapper = TopicConfigSerializeWrapper(
        topic_config_table=table, data_version=DataVersion(timestamp=1, counter=1)
    )
    return RegisterBrokerBody(topic_config_serialize_wrapper=wrapper)


def register(client: WireClient, data: bytes, crc: int, compressed: bool = False) -> object:
    header = {
        "brokerName": "broker-a",
        "brokerAddr": "127.0.0.1:10911",
        "clusterName": "DefaultCluster",
        "brokerId": 0,
        "compressed": compressed,
        "bodyCrc32": crc,
    }
    return client.call(RequestCode.REGISTER_BROKER, header, data)


def routed(client: WireClient, topic: str) -> bool:
    return client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}).code == 0


def test_body_crc32_is_rocketmqs_masked_crc32() -> None:
    # CRC-32 of "123456789" is 0xCBF43926; UtilAll.crc32 clears the sign bit
    assert body_crc32(b"123456789") == 0x4BF43926
    assert body_crc32(b"") == 0


def test_a_registration_whose_body_crc32_does_not_match_is_refused(
    client: WireClient, warnings: list[str]
) -> None:
    json_body = encode_body(body("Json"))
    packed = encode_register_body(body("Packed"))
    # When a body arrives with a bodyCrc32 that is not its own (JSON, then compressed)
    bad = register(client, json_body, body_crc32(json_body) ^ 1)
    bad_packed = register(client, packed, body_crc32(packed) ^ 1, compressed=True)
    # Then each is refused as RocketMQ refuses it, with a WARNING naming the broker
    for reply in (bad, bad_packed):
        assert reply.code == ResponseCode.SYSTEM_ERROR and reply.remark == "crc32 not match"
    assert not routed(client, "Json") and not routed(client, "Packed")
    assert any("crc32 not match" in w and "broker-a" in w for w in warnings)
    # When the bodies come with their own CRC, or none (0: not checked)
    assert register(client, json_body, body_crc32(json_body)).code == ResponseCode.SUCCESS
    assert register(client, packed, 0, compressed=True).code == ResponseCode.SUCCESS
    # Then they register, on the same connection
    assert routed(client, "Json") and routed(client, "Packed")
