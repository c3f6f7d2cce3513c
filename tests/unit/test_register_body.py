"""RocketMQ's compressed REGISTER_BROKER body (``runtime.remoting.register_body``): round trips,
both RocketMQ layouts (4.x: five-field topic lines, no mapping section; 5.x: attributes, the
mapping section), the inflate limit, and fuzz: the decoder returns a value or raises
ProtocolError, nothing else."""

from __future__ import annotations

import contextlib
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.broker.registrar import COMPRESS_ABOVE, register_body
from runtime.errors import ProtocolError
from runtime.remoting.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
    decode_body,
    encode_body,
)
from runtime.remoting.register_body import (
    MAX_INFLATED_REGISTER,
    decode_register_body,
    decode_topic_line,
    encode_register_body,
    encode_topic_line,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def body_of(topics: list[TopicConfig], servers: list[str] | None = None) -> RegisterBrokerBody:
    wrapper = TopicConfigSerializeWrapper(
        topic_config_table={t.topic_name: t for t in topics},
        data_version=DataVersion(timestamp=1_700_000_000_000, counter=7),
    )
    return RegisterBrokerBody(
        topic_config_serialize_wrapper=wrapper, filter_server_list=servers or []
    )


def framed(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def raw_body(
    lines: list[bytes], *, version: bytes = b'{"counter":1,"timestamp":2}', tail=b""
) -> bytes:
    """An inflated body put together by hand (``tail``: what follows the filter list)."""
    out = framed(version) + struct.pack(">i", len(lines)) + b"".join(framed(x) for x in lines)
    return out + framed(b"[]") + tail


def test_round_trip_keeps_what_the_binary_form_carries() -> None:
    topics = [
        TopicConfig(topic_name="Orders", read_queue_nums=8, write_queue_nums=4, perm=6),
        TopicConfig(
            topic_name="%RETRY%group-1",
            read_queue_nums=1,
            write_queue_nums=1,
            perm=2,
            topic_filter_type="MULTI_TAG",
            attributes={"+message.type": "FIFO", "note": "with spaces in it"},
        ),
        # sys flag and order are not carried: they come back as 0 / false
        TopicConfig(topic_name="Unit", read_queue_nums=2, write_queue_nums=2, topic_sys_flag=3),
    ]
    body = body_of(topics, ["10.0.0.1:40000"])
    decoded = decode_register_body(encode_register_body(body, [b'{"topic":"Orders"}']))
    wrapper = decoded.body.topic_config_serialize_wrapper
    assert wrapper.data_version == DataVersion(timestamp=1_700_000_000_000, counter=7)
    assert decoded.body.filter_server_list == ["10.0.0.1:40000"]
    assert decoded.queue_mappings == (b'{"topic":"Orders"}',)
    assert wrapper.topic_config_table["Orders"] == topics[0]
    assert wrapper.topic_config_table["%RETRY%group-1"] == topics[1]
    unit = wrapper.topic_config_table["Unit"]
    assert unit.topic_sys_flag == 0 and unit.order is False and unit.read_queue_nums == 2


def test_topic_lines_are_rocketmqs_four_and_five_forms() -> None:
    plain = TopicConfig(topic_name="T", read_queue_nums=4, write_queue_nums=2, perm=6)
    # Without attributes: 4.x's exact five fields (its name server takes no more)
    assert encode_topic_line(plain) == "T 4 2 6 SINGLE_TAG"
    # With attributes: 5.x's sixth field
    typed = TopicConfig(topic_name="T", attributes={"+message.type": "NORMAL"})
    assert encode_topic_line(typed) == 'T 16 16 6 SINGLE_TAG {"+message.type":"NORMAL"}'
    # 5.x's broker writes a trailing separator when attributes are null, "{}" when empty
    assert decode_topic_line("T 4 2 6 SINGLE_TAG ") == plain
    assert decode_topic_line("T 4 2 6 SINGLE_TAG {}") == plain
    assert decode_topic_line("T +4 02 6 MULTI_TAG").topic_filter_type == "MULTI_TAG"


@pytest.mark.parametrize(
    "line",
    [
        "T 4 2 6",  # four fields
        " 4 2 6 SINGLE_TAG",  # no name
        "T four 2 6 SINGLE_TAG",
        "T 4 2 6.0 SINGLE_TAG",
        "T 4 ٤ 6 SINGLE_TAG",  # a non-ASCII digit
        "T 4 2147483648 6 SINGLE_TAG",  # past int32
        "T 4 2 6 NO_TAG",
        "T 4 2 6 SINGLE_TAG {not json",
        'T 4 2 6 SINGLE_TAG {"a":1}',  # attributes are strings
    ],
)
def test_bad_topic_lines_are_protocol_errors(line: str) -> None:
    with pytest.raises(ProtocolError):
        decode_topic_line(line)


def test_a_4x_body_ends_after_the_filter_server_list() -> None:
    # Given a RocketMQ 4 broker's body: no mapping section at all
    data = zlib.compress(raw_body([b"A 4 4 6 SINGLE_TAG", b"B 1 1 6 SINGLE_TAG"]))
    decoded = decode_register_body(data)
    assert sorted(decoded.body.topic_config_serialize_wrapper.topic_config_table) == ["A", "B"]
    assert decoded.queue_mappings == ()
    # And a 5.x body: a stateVersion in its data version, an empty mapping section
    version = b'{"counter":3,"stateVersion":0,"timestamp":9}'
    data = zlib.compress(raw_body([], version=version, tail=struct.pack(">i", 0)))
    wrapper = decode_register_body(data).body.topic_config_serialize_wrapper
    assert wrapper.data_version == DataVersion(timestamp=9, counter=3)


def test_the_mapping_entries_stay_raw_even_when_not_json() -> None:
    # fastjson writes currIdMap with bare integer keys
    entry = b'{"bname":"broker-a","currIdMap":{0:0},"topic":"S","totalQueues":1}'
    data = zlib.compress(raw_body([], tail=struct.pack(">i", 1) + framed(entry)))
    assert decode_register_body(data).queue_mappings == (entry,)


@pytest.mark.parametrize(
    ("inflated", "problem"),
    [
        (raw_body([])[:-3], "truncated filter list"),
        (framed(b"{}")[:4], "data version cut"),
        (raw_body([b"A 4 4 6 SINGLE_TAG"])[:30], "topic line cut"),
        (framed(b'{"counter":1}') + struct.pack(">i", -1), "negative topic count"),
        (framed(b'{"counter":1}') + struct.pack(">i", 2**31 - 1), "count past the bytes"),
        (framed(b'{"counter":1}') + struct.pack(">ii", 1, -5), "negative line length"),
        (raw_body([b"\xff\xfe 1 1 6 SINGLE_TAG"]), "not UTF-8"),
        (raw_body([], version=b"[]"), "data version not an object"),
        (raw_body([], tail=struct.pack(">i", -1)), "negative mapping count"),
        (raw_body([], tail=b"\x00\x00"), "mapping count cut"),
        (framed(b'{"counter":1}') + struct.pack(">i", 0) + framed(b"{}"), "filter list not a list"),
    ],
)
def test_malformed_bodies_are_protocol_errors(inflated: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError) as err:
        decode_register_body(zlib.compress(inflated), opaque=42)
    assert err.value.fatal is False and err.value.opaque == 42, problem


def test_a_body_that_inflates_past_the_limit_is_refused_early() -> None:
    # Given 64 MiB + 1 of zeros in ~65 KiB of deflate stream
    bomb = zlib.compress(b"\x00" * (MAX_INFLATED_REGISTER + 1), 9)
    assert len(bomb) < 100_000
    # Then it is refused, naming the limit
    with pytest.raises(ProtocolError, match="inflates past"):
        decode_register_body(bomb)
    with pytest.raises(ProtocolError, match="inflates past"):
        decode_register_body(zlib.compress(raw_body([b"A 4 4 6 SINGLE_TAG"])), limit=20)
    with pytest.raises(ProtocolError, match="does not inflate"):
        decode_register_body(b"not zlib at all")
    with pytest.raises(ProtocolError, match="does not inflate"):
        decode_register_body(zlib.compress(raw_body([]))[:-5])  # truncated stream


NAMES = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters=" "), min_size=1, max_size=20
)
TOPICS = st.builds(
    TopicConfig,
    topic_name=NAMES,
    read_queue_nums=st.integers(0, 2**31 - 1),
    write_queue_nums=st.integers(-(2**31), 2**31 - 1),
    perm=st.integers(0, 7),
    topic_filter_type=st.sampled_from(["SINGLE_TAG", "MULTI_TAG"]),
    attributes=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


@FAST
@given(
    st.lists(TOPICS, max_size=12, unique_by=lambda t: t.topic_name),
    st.lists(st.text(max_size=12), max_size=3),
)
def test_round_trip_property(topics: list[TopicConfig], servers: list[str]) -> None:
    body = body_of(topics, servers)
    decoded = decode_register_body(encode_register_body(body, level=1)).body
    assert decoded == body


@FAST
@given(st.binary(max_size=300))
def test_fuzz_inflated_bytes(inflated: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_register_body(zlib.compress(inflated))


@FAST
@given(st.data())
def test_fuzz_mutations_of_a_valid_body(data: st.DataObject) -> None:
    topics = [TopicConfig(topic_name=f"T{i}", attributes={"k": "v"}) for i in range(3)]
    inflated = bytearray(zlib.decompress(encode_register_body(body_of(topics, ["h:1"]))))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(inflated) - 1))
        inflated[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(inflated)))
    for candidate in (bytes(inflated), bytes(inflated[:cut])):
        with contextlib.suppress(ProtocolError):
            decode_register_body(zlib.compress(candidate))
    # and the compressed bytes themselves, damaged
    packed = bytearray(zlib.compress(bytes(inflated)))
    packed[data.draw(st.integers(0, len(packed) - 1))] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(ProtocolError):
        decode_register_body(bytes(packed))


# -- the broker's choice ---------------------------------------------------------------------


def retry_topics(n: int) -> list[TopicConfig]:
    return [
        TopicConfig(
            topic_name=f"%RETRY%consumer-group-{i:06d}", read_queue_nums=1, write_queue_nums=1
        )
        for i in range(n)
    ]


def test_the_broker_sends_json_unless_asked_or_the_json_is_large() -> None:
    # Given a small table: JSON, unless compressedRegister
    small = body_of(retry_topics(3))
    data, compressed = register_body(small, False)
    assert not compressed and decode_body(RegisterBrokerBody, data) == small
    data, compressed = register_body(small, True)
    assert compressed and decode_register_body(data).body == small
    # Given a table whose JSON passes COMPRESS_ABOVE (4 MiB: ~25,000 retry topics)
    large = body_of(retry_topics(25_000))
    assert len(encode_body(large)) > COMPRESS_ABOVE
    # Then it goes compressed without compressedRegister, a small fraction of the size
    data, compressed = register_body(large, False)
    assert compressed and len(data) < COMPRESS_ABOVE // 20
    table = decode_register_body(data).body.topic_config_serialize_wrapper.topic_config_table
    assert len(table) == 25_000


def test_a_registration_naming_too_many_topics_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.remoting import register_body as rb

    monkeypatch.setattr(rb, "MAX_REGISTER_TOPICS", 10)
    lines = [f"T{i} 1 1 6 SINGLE_TAG".encode() for i in range(11)]
    with pytest.raises(ProtocolError, match="11 topics, more than 10"):
        decode_register_body(zlib.compress(raw_body(lines)))
    assert (
        len(
            decode_register_body(
                zlib.compress(raw_body(lines[:10]))
            ).body.topic_config_serialize_wrapper.topic_config_table
        )
        == 10
    )
