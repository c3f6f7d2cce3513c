"""Frames: encode shape, decoding rules, the incremental decoder, the replayed seed corpus."""

from __future__ import annotations

import enum
import json
import struct
import tracemalloc
from pathlib import Path

import pytest

from runtime.errors import ProtocolError
from runtime.remoting import (
    MAX_FRAME,
    FrameDecoder,
    HeartbeatData,
    PullMessageRequestHeader,
    RemotingCommand,
    RequestCode,
    ResponseCode,
    SerializeType,
    decode_batch,
    decode_body,
    decode_frame,
    decode_header,
    decode_payload,
    decode_send_header,
    encode,
    encode_head,
)

CORPUS = Path(__file__).parent / "corpus" / "remoting"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())


def frame(header: bytes, body: bytes = b"", stype: int = 0) -> bytes:
    return (
        struct.pack(">iI", 4 + len(header) + len(body), (stype << 24) | len(header)) + header + body
    )


def split_header(data: bytes) -> tuple[dict, bytes]:
    length, hword = struct.unpack_from(">iI", data)
    assert length == len(data) - 4
    hlen = hword & 0xFFFFFF
    return json.loads(data[8 : 8 + hlen]), data[8 + hlen :]


# ------------------------------------------------------------------------------ encoding


class Color(enum.Enum):
    RED = "red"


def test_response_shape_matches_java_broker() -> None:
    req = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, {"a": "g"}, opaque=77)
    resp = RemotingCommand.response_to(
        req,
        ResponseCode.SUCCESS,
        ext_fields={
            "queueId": 3,
            "queueOffset": 12,
            "ok": True,
            "no": False,
            "c": Color.RED,
            "code": ResponseCode.TOPIC_NOT_EXIST,
            "gone": None,
            "f": 2.0,
        },
    )
    data = encode(resp)
    header_bytes = data[8:]
    assert header_bytes.startswith(b'{"code":0,"extFields":{')
    header, body = split_header(data)
    assert body == b""
    assert list(header) == [
        "code",
        "extFields",
        "flag",
        "language",
        "opaque",
        "serializeTypeCurrentRPC",
        "version",
    ]
    assert header["flag"] == 1 and header["opaque"] == 77 and header["language"] == "JAVA"
    assert header["serializeTypeCurrentRPC"] == "JSON" and header["version"] == 401
    assert header["extFields"] == {
        "queueId": "3",
        "queueOffset": "12",
        "ok": "true",
        "no": "false",
        "c": "red",
        "code": "17",
        "f": "2",
    }
    assert all(isinstance(v, str) for v in header["extFields"].values())


def test_remark_present_only_when_set_and_ext_always_present() -> None:
    req = RemotingCommand.request(RequestCode.HEART_BEAT, None, b"{}", opaque=5)
    header, _ = split_header(encode(RemotingCommand.response_to(req, ResponseCode.SUCCESS)))
    assert "remark" not in header and header["extFields"] == {}
    header, _ = split_header(
        encode(RemotingCommand.response_to(req, ResponseCode.SYSTEM_ERROR, remark="boom"))
    )
    assert header["remark"] == "boom"
    assert list(header).index("remark") == list(header).index("opaque") + 1


def test_request_flags_and_opaque() -> None:
    a = RemotingCommand.request(RequestCode.UPDATE_CONSUMER_OFFSET, {"queueId": 1}, oneway=True)
    b = RemotingCommand.request(RequestCode.PULL_MESSAGE, {})
    assert a.is_oneway and not a.is_response
    assert not b.is_oneway and not b.is_response
    assert 0 < a.opaque < b.opaque < 2**31
    resp = RemotingCommand.response_to(a, ResponseCode.SUCCESS)
    assert resp.is_response and not resp.is_oneway and resp.opaque == a.opaque
    assert a.ext_fields == {"queueId": "1"}


def test_frame_lengths_and_head() -> None:
    cmd = RemotingCommand.request(RequestCode.SEND_MESSAGE, {"topic": "T"}, b"body!", opaque=1)
    data = encode(cmd)
    length, hword = struct.unpack_from(">iI", data)
    assert length == len(data) - 4
    assert hword >> 24 == 0
    assert data == encode_head(cmd) + b"body!"
    assert decode_frame(data) == cmd


def test_encode_rejects_unknown_serialize_type() -> None:
    with pytest.raises(ValueError):
        encode(RemotingCommand(code=1), serialize_type=5)


def test_ext_value_type_error() -> None:
    with pytest.raises(TypeError):
        RemotingCommand.request(1, {"x": object()})


# ------------------------------------------------------------------------------ decoding


def test_trailing_newline_and_whitespace_tolerated() -> None:
    cmd = decode_frame(frame(b' \r\n{ "code" : 10 , "opaque" : 4 }\n\t '))
    assert cmd.code == 10 and cmd.opaque == 4


def test_defaults_for_missing_fields() -> None:
    cmd = decode_frame(frame(b'{"code":34}'))
    assert (cmd.language, cmd.version, cmd.opaque, cmd.flag, cmd.remark, cmd.ext_fields) == (
        "OTHER",
        0,
        0,
        0,
        None,
        {},
    )


def test_ext_values_normalised_to_strings() -> None:
    cmd = decode_frame(
        frame(
            b'{"code":10,"extFields":{"a":1,"b":true,"c":false,"d":null,"e":"x","f":2.5,'
            b'"g":3.0,"h":-7}}'
        )
    )
    assert cmd.ext_fields == {
        "a": "1",
        "b": "true",
        "c": "false",
        "e": "x",
        "f": "2.5",
        "g": "3",
        "h": "-7",
    }


def test_language_number_and_null_remark() -> None:
    cmd = decode_frame(frame(b'{"code":10,"language":1,"remark":null,"extFields":null}'))
    assert cmd.language == "CPP" and cmd.remark is None and cmd.ext_fields == {}


@pytest.mark.parametrize(
    ("header", "opaque"),
    [
        (b"", None),
        (b"not json", None),
        (b"[1,2]", None),
        (b'"str"', None),
        (b'{"opaque":3}', 3),
        (b'{"code":"10","opaque":3}', 3),
        (b'{"code":10,"opaque":3,"extFields":{"a":[1]}}', 3),
        (b'{"code":10,"opaque":3,"extFields":{"a":{"b":1}}}', 3),
        (b'{"code":10,"opaque":3,"extFields":[]}', 3),
        (b'{"code":10,"opaque":3,"remark":5}', 3),
        (b'{"code":10,"opaque":3,"flag":"x"}', 3),
        (b'{"code":4294967296,"opaque":3}', 3),
        (b'{"code":10,"opaque":4294967296}', None),
        (b'{"code":10,"opaque":3} trailing', None),
        (b'{"code":10,"opaque":3,"remark":"\xff"}', 3),
    ],
)
def test_bad_header_is_non_fatal(header: bytes, opaque: int | None) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame(header))
    assert info.value.fatal is False
    assert info.value.opaque == opaque


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00",
        b"\x00\x00\x00\x03\x00\x00\x00\x00",  # length < 4
        b"\xff\xff\xff\xff\x00\x00\x00\x00",  # negative
        struct.pack(">iI", MAX_FRAME + 1, 0),
        struct.pack(">iI", 6, 10) + b"{}",  # header longer than frame
        struct.pack(">iI", 4 + 2, (2 << 24) | 2) + b"{}",  # unknown serialize type
        struct.pack(">iI", 4 + 2, 2) + b"{}x",  # extra byte
        struct.pack(">iI", 4 + 3, 2) + b"{}",  # missing byte
    ],
)
def test_decode_frame_fatal(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_frame(data)
    assert info.value.fatal is True


def test_header_limit() -> None:
    header = b'{"code":1,"opaque":5,"remark":"' + b"x" * 100 + b'"}'
    assert decode_frame(frame(header), max_header=len(header)).code == 1
    # A header past the limit inside a whole frame is refused alone, with its request id
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame(header), max_header=len(header) - 1)
    assert not info.value.fatal and info.value.opaque == 5
    assert "exceeds the limit" in info.value.reason


def test_decode_payload_without_prefix() -> None:
    cmd = RemotingCommand.request(RequestCode.HEART_BEAT, {"k": "v"}, b"body", opaque=9)
    assert decode_payload(encode(cmd)[4:]) == cmd


# ------------------------------------------------------------------- ROCKETMQ binary header


def test_rocketmq_header_round_trip() -> None:
    cmd = RemotingCommand(
        code=14,
        language="CPP",
        version=401,
        opaque=555,
        flag=2,
        remark="r\u00e9",
        ext_fields={"topic": "T\u00fcpic", "queueId": "3"},
        body=b"abc",
    )
    data = encode(cmd, SerializeType.ROCKETMQ)
    assert struct.unpack_from(">I", data, 4)[0] >> 24 == 1
    assert decode_frame(data) == cmd
    assert FrameDecoder().feed(data) == [cmd]


def _binary(ext: bytes, remark_len: int = 0, ext_len: int | None = None) -> bytes:
    head = struct.pack(">hBhiii", 14, 0, 401, 7, 0, remark_len)
    return frame(head + struct.pack(">i", len(ext) if ext_len is None else ext_len) + ext, stype=1)


@pytest.mark.parametrize(
    "data",
    [
        _binary(b"", remark_len=5),
        _binary(b"", remark_len=-1),
        _binary(b"", ext_len=3),
        _binary(b"", ext_len=-3),
        _binary(struct.pack(">h", 5) + b"ab"),
        _binary(struct.pack(">h", 1) + b"a"),
        _binary(struct.pack(">h", 1) + b"a" + struct.pack(">i", 9) + b"x"),
        _binary(struct.pack(">h", 1) + b"\xff" + struct.pack(">i", 0)),
        _binary(b"\x00"),
    ],
)
def test_rocketmq_header_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_frame(data)
    assert info.value.fatal is False and info.value.opaque == 7


def test_rocketmq_header_too_short() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame(b"\x00\x0e\x00", stype=1))
    assert info.value.fatal is False and info.value.opaque is None


# --------------------------------------------------------------------------- FrameDecoder


def _commands(n: int) -> list[RemotingCommand]:
    return [
        RemotingCommand.request(
            RequestCode.SEND_MESSAGE_V2, {"a": "g", "b": f"t{i}"}, bytes([i]) * i, opaque=i + 1
        )
        for i in range(n)
    ]


def test_decoder_every_split_point() -> None:
    cmds = _commands(3)
    stream = b"".join(encode(c) for c in cmds)
    for cut in range(len(stream) + 1):
        dec = FrameDecoder()
        assert dec.feed(stream[:cut]) + dec.feed(stream[cut:]) == cmds
        assert dec.buffered == 0


def test_decoder_byte_by_byte() -> None:
    cmds = _commands(4)
    stream = b"".join(encode(c) for c in cmds)
    dec = FrameDecoder()
    out: list[RemotingCommand] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i : i + 1])
    assert out == cmds


def test_decoder_accepts_bytearray_and_memoryview() -> None:
    cmds = _commands(2)
    stream = b"".join(encode(c) for c in cmds)
    dec = FrameDecoder()
    out = dec.feed(bytearray(stream[:5])) + dec.feed(memoryview(stream)[5:])
    assert out == cmds
    assert all(type(c.body) is bytes for c in out)


def test_decoder_rejects_huge_length_from_four_bytes() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"\x7f\xff") == []
    with pytest.raises(ProtocolError) as info:
        dec.feed(b"\xff\xff")
    assert info.value.fatal
    # poisoned: every later call raises the same error
    with pytest.raises(ProtocolError) as again:
        dec.feed(encode(_commands(1)[0]))
    assert again.value is info.value
    assert dec.buffered == 0


def test_decoder_two_gib_prefix_allocates_nothing() -> None:
    tracemalloc.start()
    try:
        dec = FrameDecoder()
        with pytest.raises(ProtocolError):
            dec.feed(b"\x7f\xff\xff\xff")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_decoder_buffers_only_what_arrived() -> None:
    dec = FrameDecoder(max_frame=MAX_FRAME)
    dec.feed(struct.pack(">iI", MAX_FRAME, 10))  # a legal but huge declared frame
    dec.feed(b"x" * 1000)
    assert dec.buffered == 1008
    assert dec.pending is False


def test_decoder_configurable_max_frame() -> None:
    data = encode(RemotingCommand(code=1, body=b"x" * 100))
    with pytest.raises(ProtocolError):
        FrameDecoder(max_frame=50).feed(data)
    assert len(FrameDecoder(max_frame=len(data) - 4).feed(data)) == 1


def test_decoder_non_fatal_error_keeps_neighbours() -> None:
    good = _commands(3)
    bad = frame(b'{"code":10,"opaque":99,"extFields":{"x":[1]}}')
    stream = encode(good[0]) + bad + encode(good[1]) + encode(good[2])[:7]
    dec = FrameDecoder()
    with pytest.raises(ProtocolError) as info:
        dec.feed(stream)
    assert info.value.fatal is False and info.value.opaque == 99
    assert dec.pending
    assert dec.feed(b"") == [good[0], good[1]]
    assert dec.feed(encode(good[2])[7:]) == [good[2]]


def test_decoder_next_command() -> None:
    cmds = _commands(3)
    dec = FrameDecoder()
    assert dec.feed(b"") == []
    assert dec.next_command() is None
    stream = b"".join(encode(c) for c in cmds)
    bad = frame(b'{"code":10,"opaque":99,"extFields":{"x":[1]}}')
    dec.push(stream[:10])
    assert dec.next_command() is None
    dec.push(stream[10:] + bad + encode(cmds[0]))
    assert [dec.next_command(), dec.next_command(), dec.next_command()] == cmds
    with pytest.raises(ProtocolError) as info:
        dec.next_command()
    assert info.value.opaque == 99 and not info.value.fatal
    assert dec.next_command() == cmds[0]
    assert dec.next_command() is None


def test_decoder_header_past_the_limit_is_refused_alone_and_the_stream_goes_on() -> None:
    big = RemotingCommand.request(1, {"k": "v" * 400}, opaque=41)
    after = RemotingCommand.request(2, opaque=42)
    for serialize_type in (SerializeType.JSON, SerializeType.ROCKETMQ):
        dec = FrameDecoder(max_header=256)
        data = encode(big, serialize_type) + encode(after)
        # Given a header past the limit: nothing is said until its frame is whole
        assert dec.feed(data[:8]) == []
        # When the frame is whole, Then it alone is refused, with its request id
        with pytest.raises(ProtocolError) as info:
            dec.feed(data[8:])
        assert not info.value.fatal and info.value.opaque == 41
        # And the frame after it is decoded
        assert dec.feed(b"") == [after]
        # (the same one frame at a time)
        dec = FrameDecoder(max_header=256)
        dec.push(data)
        with pytest.raises(ProtocolError) as info:
            dec.next_command()
        assert not info.value.fatal and info.value.opaque == 41
        assert dec.next_command() == after


# ------------------------------------------------------------------------------ corpus


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus(name: str) -> None:
    expect = MANIFEST[name]
    data = (CORPUS / name).read_bytes()
    if "error" in expect:
        with pytest.raises(ProtocolError) as info:
            FrameDecoder().feed(data)
        assert info.value.fatal is (expect["error"] == "fatal")
        if "opaque" in expect:
            assert info.value.opaque == expect["opaque"]
        if "opaque_in" in expect:
            assert info.value.opaque in expect["opaque_in"]
        return
    # whole, and fed in pieces
    [cmd] = FrameDecoder().feed(data)
    dec = FrameDecoder()
    pieces: list[RemotingCommand] = []
    for i in range(0, len(data), 7):
        pieces += dec.feed(data[i : i + 7])
    assert pieces == [cmd]
    assert decode_frame(data) == cmd
    for key in ("code", "opaque", "language", "flag", "remark"):
        assert getattr(cmd, key) == expect[key], key
    for key, value in expect.get("ext", {}).items():
        assert cmd.ext_fields[key] == value
    if "body_bytes" in expect:
        assert cmd.body == expect["body_bytes"].encode()
    if "send" in expect:
        header = decode_send_header(cmd.code, cmd.ext_fields, opaque=cmd.opaque)
        for key, value in expect["send"].items():
            assert getattr(header, key) == value, key
        if "batch" in expect:
            entries = decode_batch(cmd.body)
            assert [[e.flag, e.body.decode()] for e in entries] == expect["batch"]
    if "pull" in expect:
        pull = decode_header(PullMessageRequestHeader, cmd.ext_fields)
        for key, value in expect["pull"].items():
            assert getattr(pull, key) == value, key
    if "heartbeat" in expect:
        hb = decode_body(HeartbeatData, cmd.body)
        want = expect["heartbeat"]
        assert hb.client_id == want["clientID"]
        [consumer] = hb.consumer_data_set
        assert consumer.consume_type == want["consumeType"]
        assert consumer.message_model == want["messageModel"]
        assert consumer.consume_from_where == want["consumeFromWhere"]
        assert [s.tags_set for s in consumer.subscription_data_set] == want["tags"]
        assert [s.code_set for s in consumer.subscription_data_set] == want["codes"]
    # our own re-encoding decodes to the same command (JSON answers always)
    assert decode_frame(encode(cmd)) == cmd


def test_corpus_all_in_one_stream() -> None:
    good = [n for n in sorted(MANIFEST) if "error" not in MANIFEST[n]]
    stream = b"".join((CORPUS / n).read_bytes() for n in good)
    assert [c.opaque for c in FrameDecoder().feed(stream)] == [MANIFEST[n]["opaque"] for n in good]
