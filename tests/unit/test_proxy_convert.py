"""actors/proxy/convert.py: gRPC Message <-> actormq Message / MessageExt."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from typing import Any

import pytest

from actors.client.message import MessageExt
from actors.proxy.convert import ConvertError, incoming, outgoing, resource_name
from actors.proxy.proto import Code, DigestType, Encoding, M, MessageType
from runtime.remoting import properties as P
from runtime.remoting.properties import encode_properties

BAD = 40000  # the code outgoing is told to answer a bad message with


def _grpc_message(body: bytes = b"hello", **system: Any) -> Any:
    msg = M.Message()
    msg.topic.name = "T"
    msg.body = body
    for name, value in system.items():
        setattr(msg.system_properties, name, value)
    return msg


# -- outgoing ---------------------------------------------------------------------------------


def test_outgoing_maps_tag_keys_properties_id_and_group() -> None:
    msg = _grpc_message(tag="TagA", message_id="01AB", message_group="g1")
    msg.system_properties.keys.extend(["k1", "k2"])
    msg.user_properties["color"] = "red"

    message, msg_id, group = outgoing(msg, BAD)

    assert message.topic == "T"
    assert message.body == b"hello"
    assert message.tags == "TagA"
    assert message.keys == ["k1", "k2"]
    assert dict(message.properties) == {"color": "red"}
    assert message.deliver_at_ms is None
    assert msg_id == "01AB"
    assert group == "g1"


def test_outgoing_without_tag_keys_or_group() -> None:
    message, msg_id, group = outgoing(_grpc_message(message_id="X"), BAD)
    assert message.tags is None
    assert message.keys is None
    assert dict(message.properties) == {}
    assert msg_id == "X"
    assert group is None


def test_outgoing_an_empty_tag_or_group_counts_as_none() -> None:
    message, _, group = outgoing(_grpc_message(tag="", message_group=""), BAD)
    assert message.tags is None
    assert group is None


def test_outgoing_namespace_resource_is_named_ns_percent_name() -> None:
    msg = _grpc_message()
    msg.topic.resource_namespace = "ns"
    message, _, _ = outgoing(msg, BAD)
    assert message.topic == "ns%T"
    assert resource_name(M.Resource(name="T")) == "T"


def test_outgoing_inflates_a_gzip_body() -> None:
    body = b"payload " * 100
    msg = _grpc_message(gzip.compress(body), body_encoding=Encoding.GZIP)
    message, _, _ = outgoing(msg, BAD)
    assert message.body == body


def test_outgoing_identity_body_is_kept_as_is() -> None:
    packed = gzip.compress(b"x")
    message, _, _ = outgoing(_grpc_message(packed, body_encoding=Encoding.IDENTITY), BAD)
    assert message.body == packed


@pytest.mark.parametrize(
    "body",
    [b"not gzip at all", gzip.compress(b"payload " * 50)[:-10]],
    ids=["garbage", "truncated"],
)
def test_outgoing_bad_gzip_body_raises_with_the_given_code(body: bytes) -> None:
    msg = _grpc_message(body, body_encoding=Encoding.GZIP)
    with pytest.raises(ConvertError) as caught:
        outgoing(msg, Code.ILLEGAL_MESSAGE_PROPERTY_KEY)
    assert caught.value.code == Code.ILLEGAL_MESSAGE_PROPERTY_KEY
    assert "GZIP" in str(caught.value)


def test_outgoing_gzip_body_with_a_bad_crc_raises() -> None:
    packed = bytearray(gzip.compress(b"payload"))
    packed[-8] ^= 0xFF  # the trailer's CRC32
    msg = _grpc_message(bytes(packed), body_encoding=Encoding.GZIP)
    with pytest.raises(ConvertError) as caught:
        outgoing(msg, BAD)
    assert caught.value.code == BAD


def test_outgoing_delivery_timestamp_in_the_past_is_no_delay() -> None:
    msg = _grpc_message()
    msg.system_properties.delivery_timestamp.seconds = int(time.time()) - 60
    message, _, _ = outgoing(msg, BAD)
    assert message.deliver_at_ms is None


def test_outgoing_delivery_timestamp_in_the_future_is_deliver_at_ms() -> None:
    seconds = int(time.time()) + 3600
    msg = _grpc_message()
    msg.system_properties.delivery_timestamp.seconds = seconds
    msg.system_properties.delivery_timestamp.nanos = 250_000_000
    message, _, _ = outgoing(msg, BAD)
    assert message.deliver_at_ms == seconds * 1000 + 250


def test_outgoing_delivery_seconds_holding_milliseconds_are_taken_as_ms() -> None:
    ms = int(time.time() * 1000) + 3_600_000
    assert ms > 10**11
    msg = _grpc_message()
    msg.system_properties.delivery_timestamp.seconds = ms
    message, _, _ = outgoing(msg, BAD)
    assert message.deliver_at_ms == ms


def test_outgoing_delivery_seconds_holding_past_milliseconds_are_no_delay() -> None:
    msg = _grpc_message()
    msg.system_properties.delivery_timestamp.seconds = int(time.time() * 1000) - 60_000
    message, _, _ = outgoing(msg, BAD)
    assert message.deliver_at_ms is None


# -- incoming ---------------------------------------------------------------------------------


def _ext(props: dict[str, str], body: bytes = b"stored body", **fields: Any) -> MessageExt:
    return MessageExt(
        "T",
        body,
        encode_properties(props),
        broker_name="broker-a",
        queue_id=fields.get("queue_id", 3),
        queue_offset=fields.get("queue_offset", 42),
        born_timestamp=1_700_000_000_123,
        born_ip=bytes([10, 0, 0, 1]),
        born_port=5555,
        store_timestamp=1_700_000_001_456,
        store_ip=bytes([10, 0, 0, 2]),
        store_port=10911,
    )


def _incoming(ext: MessageExt, **kw: Any) -> Any:
    topic = M.Resource(resource_namespace="ns", name="T")
    args: dict[str, Any] = {"receipt_handle": "h-1", "attempt": 2, "invisible_ms": 30_500}
    args.update(kw)
    return incoming(ext, topic, **args)


def test_incoming_maps_the_stored_message() -> None:
    ext = _ext(
        {
            P.TAGS: "TagA",
            P.KEYS: "k1 k2",
            P.UNIQ_KEY: "01UNIQ",
            "color": "red",
        }
    )

    out = _incoming(ext)

    system = out.system_properties
    assert out.topic == M.Resource(resource_namespace="ns", name="T")
    assert out.body == b"stored body"
    assert dict(out.user_properties) == {"color": "red"}
    assert system.tag == "TagA"
    assert list(system.keys) == ["k1", "k2"]
    assert system.message_id == "01UNIQ"
    assert system.body_digest.type == DigestType.MD5
    assert system.body_digest.checksum == hashlib.md5(b"stored body").hexdigest().upper()
    assert system.body_encoding == Encoding.IDENTITY
    assert system.message_type == MessageType.NORMAL
    assert not system.HasField("message_group")
    assert not system.HasField("delivery_timestamp")
    assert system.receipt_handle == "h-1"
    assert system.delivery_attempt == 2
    assert (system.invisible_duration.seconds, system.invisible_duration.nanos) == (
        30,
        500_000_000,
    )
    assert system.queue_id == 3
    assert system.HasField("queue_offset")
    assert system.queue_offset == 42
    assert (system.born_timestamp.seconds, system.born_timestamp.nanos) == (
        1_700_000_000,
        123_000_000,
    )
    assert (system.store_timestamp.seconds, system.store_timestamp.nanos) == (
        1_700_000_001,
        456_000_000,
    )
    assert system.born_host == "10.0.0.1:5555"
    assert system.store_host == "10.0.0.2:10911"


def test_incoming_born_host_is_the_sending_clients_when_a_proxy_stored_it() -> None:
    # Given a message a proxy stored for a gRPC client (its host in __BORNHOST)
    out = _incoming(_ext({P.UNIQ_KEY: "u", P.BORN_HOST: "client-host-7", "color": "red"}))
    # Then the client's host is its born host, and no user property
    assert out.system_properties.born_host == "client-host-7"
    assert dict(out.user_properties) == {"color": "red"}


def test_incoming_checksum_is_the_md5_in_upper_hex() -> None:
    out = _incoming(_ext({P.UNIQ_KEY: "u"}, body=b"abc"))
    assert out.system_properties.body_digest.checksum == "900150983CD24FB0D6963F7D28E17F72"
    empty = _incoming(_ext({P.UNIQ_KEY: "u"}, body=b""))
    assert empty.system_properties.body_digest.checksum == "D41D8CD98F00B204E9800998ECF8427E"


def test_incoming_after_the_timer_takes_its_due_time_from_timer_out_ms() -> None:
    out = _incoming(_ext({P.UNIQ_KEY: "u", "TIMER_OUT_MS": "1700000100250"}))
    system = out.system_properties
    assert system.message_type == MessageType.DELAY
    assert (system.delivery_timestamp.seconds, system.delivery_timestamp.nanos) == (
        1_700_000_100,
        250_000_000,
    )


def test_incoming_without_tag_has_no_tag_field() -> None:
    out = _incoming(_ext({P.UNIQ_KEY: "u"}))
    assert not out.system_properties.HasField("tag")
    assert list(out.system_properties.keys) == []


def test_incoming_sharding_key_makes_a_fifo_message_with_its_group() -> None:
    out = _incoming(_ext({P.UNIQ_KEY: "u", P.SHARDING_KEY: "order-7"}))
    assert out.system_properties.message_type == MessageType.FIFO
    assert out.system_properties.message_group == "order-7"
    assert P.SHARDING_KEY not in out.user_properties


def test_incoming_timer_deliver_ms_makes_a_delay_message_with_its_timestamp() -> None:
    out = _incoming(_ext({P.UNIQ_KEY: "u", P.TIMER_DELIVER_MS: "1700000100250"}))
    system = out.system_properties
    assert system.message_type == MessageType.DELAY
    assert system.HasField("delivery_timestamp")
    assert (system.delivery_timestamp.seconds, system.delivery_timestamp.nanos) == (
        1_700_000_100,
        250_000_000,
    )


@pytest.mark.parametrize("name", [P.TIMER_DELAY_MS, P.DELAY])
def test_incoming_other_delays_are_delay_messages(name: str) -> None:
    out = _incoming(_ext({P.UNIQ_KEY: "u", name: "3"}))
    assert out.system_properties.message_type == MessageType.DELAY
    assert not out.system_properties.HasField("delivery_timestamp")


def test_incoming_transaction_message_type() -> None:
    out = _incoming(_ext({P.UNIQ_KEY: "u", P.TRAN_MSG: "true"}))
    assert out.system_properties.message_type == MessageType.TRANSACTION


def test_incoming_without_uniq_key_uses_the_offset_message_id() -> None:
    ext = _ext({})
    out = _incoming(ext, attempt=1, invisible_ms=999)
    assert out.system_properties.message_id == ext.offset_msg_id != ""
    assert out.system_properties.delivery_attempt == 1
    duration = out.system_properties.invisible_duration
    assert (duration.seconds, duration.nanos) == (0, 999_000_000)


def test_outgoing_then_incoming_round_trip_over_the_wire() -> None:
    msg = _grpc_message(b"body", tag="T1", message_id="ID1", message_group="g")
    msg.user_properties["a"] = "b"
    message, msg_id, group = outgoing(msg, BAD)
    assert group is not None
    stored = {
        P.TAGS: message.tags or "",
        P.UNIQ_KEY: msg_id,
        P.SHARDING_KEY: group,
        **message.properties,
    }
    out = _incoming(_ext(stored, body=message.body_bytes()))
    decoded = M.Message.FromString(out.SerializeToString())
    assert decoded.system_properties.tag == "T1"
    assert decoded.system_properties.message_id == "ID1"
    assert decoded.system_properties.message_group == "g"
    assert dict(decoded.user_properties) == {"a": "b"}
    assert decoded.body == b"body"


def test_a_born_host_is_the_clients_unless_it_cannot_be_kept() -> None:
    from actors.proxy.service import born_host_of

    # Given a client's own born host, none, one too long, one with a property separator
    # Then its own is kept when it can be, else the address it called from
    assert born_host_of("client-host-7", "10.0.0.9:5000") == "client-host-7"
    assert born_host_of("", "10.0.0.9:5000") == "10.0.0.9:5000"
    assert born_host_of("h" * 256, "10.0.0.9:5000") == "10.0.0.9:5000"
    assert born_host_of("bad\x01host", "10.0.0.9:5000") == "10.0.0.9:5000"


def test_a_grpc_peer_string_gives_its_address_ipv6_decoded() -> None:
    from actors.proxy.auth import peer_host
    from actors.proxy.front import peer_address

    # Given peers as grpcio writes them (an IPv6 one URL-encoded)
    assert peer_address("ipv4:10.0.0.9:5000") == "10.0.0.9:5000"
    assert peer_address("ipv6:%5B::1%5D:43458") == "[::1]:43458"
    # Then the ACL sees the bare host
    assert peer_host("ipv6:%5B2001:db8::7%5D:1") == "2001:db8::7"


def test_outgoing_a_gzip_bomb_is_refused_without_inflating_it_whole() -> None:
    import zlib as _zlib

    # Given a GZIP body of ~150 KB that inflates to 150 MiB
    packer = _zlib.compressobj(9, _zlib.DEFLATED, 31)
    bomb = b"".join(packer.compress(b"\0" * 2**20) for _ in range(150)) + packer.flush()
    msg = M.Message()
    msg.topic.name, msg.body = "T", bomb
    msg.system_properties.body_encoding = Encoding.GZIP
    # When it is converted, Then it is MESSAGE_BODY_TOO_LARGE, found past the 4 MiB limit
    with pytest.raises(ConvertError) as refused:
        outgoing(msg, Code.BAD_REQUEST)
    assert refused.value.code == Code.MESSAGE_BODY_TOO_LARGE


@pytest.mark.parametrize("msg_id", ["ID1\x02TAGS\x01injected", "ID\x01x", "I" * 129, "tab\there"])
def test_outgoing_a_message_id_that_could_carry_properties_is_illegal(msg_id: str) -> None:
    # Given a message whose id holds a property separator, a control character, or is too long
    msg = M.Message()
    msg.topic.name, msg.body = "T", b"x"
    msg.system_properties.message_id = msg_id
    # Then it is refused as RocketMQ's ILLEGAL_MESSAGE_ID, before anything is stored
    with pytest.raises(ConvertError) as refused:
        outgoing(msg, Code.BAD_REQUEST)
    assert refused.value.code == Code.ILLEGAL_MESSAGE_ID


def test_a_forged_recall_handle_with_an_impossible_queue_is_not_one() -> None:
    import base64

    from actors.proxy.convert import decode_handle

    # Given handles naming a queue id past 32 bits, a negative one, a negative due time
    for fields in (["T", "broker-a", 2**40, "01ID", 5], ["T", "broker-a", -1, "01ID", 5]):
        text = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()
        # Then none is a handle (the recall answers BAD_REQUEST, the broker is not asked)
        assert decode_handle(text) is None
