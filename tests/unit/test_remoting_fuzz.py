"""Property and fuzz tests of the remoting codec (RELIABILITY.md R24 / R25).

Invariant everywhere: a decoder returns a value or raises ProtocolError, nothing else; memory is
bounded by the frame cap; encode(decode(x)) == x for every valid command.
"""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import ProtocolError
from runtime.remoting import (
    MAX_FRAME,
    REQUEST_HEADERS,
    BatchEntry,
    ClusterInfo,
    FrameDecoder,
    Header,
    HeartbeatData,
    LanguageCode,
    LockBatchRequestBody,
    LockBatchResponseBody,
    RegisterBrokerBody,
    RemotingCommand,
    RequestCode,
    ResponseCode,
    SerializeType,
    TopicRouteData,
    decode_batch,
    decode_body,
    decode_frame,
    decode_header,
    decode_properties,
    decode_send_header,
    encode,
    encode_batch,
    encode_header,
    encode_properties,
    encode_send_header_v2,
)
from runtime.remoting.headers import SendMessageRequestHeader

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT32 = st.integers(-(2**31), 2**31 - 1)
INT16 = st.integers(-(2**15), 2**15 - 1)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
NONEMPTY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)
LANGS = st.sampled_from([m.name for m in LanguageCode])
EXT = st.dictionaries(TEXT, TEXT, max_size=6)
BODY = st.binary(max_size=96)


def frame(header: bytes, body: bytes = b"", stype: int = 0) -> bytes:
    hword = (stype << 24) | len(header)
    return struct.pack(">iI", 4 + len(header) + len(body), hword) + header + body


json_commands = st.builds(
    RemotingCommand,
    code=INT32,
    language=LANGS | TEXT,
    version=INT32,
    opaque=INT32,
    flag=INT32,
    remark=st.none() | TEXT,
    ext_fields=EXT,
    body=BODY,
)
binary_commands = st.builds(
    RemotingCommand,
    code=INT16,
    language=LANGS,
    version=INT16,
    opaque=INT32,
    flag=INT32,
    remark=st.none() | NONEMPTY_TEXT,
    ext_fields=EXT,
    body=BODY,
)
any_commands = st.tuples(json_commands, st.just(SerializeType.JSON)) | st.tuples(
    binary_commands, st.just(SerializeType.ROCKETMQ)
)


def must_decode_or_protocol_error(data: bytes, **limits: int) -> list[RemotingCommand]:
    dec = FrameDecoder(**limits)
    out: list[RemotingCommand] = []
    for _ in range(64):  # keep going past non-fatal errors, like a session would
        try:
            out += dec.feed(data)
            assert not dec.pending  # a normal return leaves nothing decodable behind
            return out
        except ProtocolError as exc:
            if exc.fatal:
                return out
            data = b""
    raise AssertionError("decoder did not settle")


# ------------------------------------------------------------------------- R25 round trips


@FAST
@given(json_commands)
def test_json_round_trip(cmd: RemotingCommand) -> None:
    data = encode(cmd)
    assert decode_frame(data) == cmd
    assert encode(decode_frame(data)) == data


@FAST
@given(binary_commands)
def test_rocketmq_header_round_trip(cmd: RemotingCommand) -> None:
    data = encode(cmd, SerializeType.ROCKETMQ)
    assert decode_frame(data) == cmd
    assert encode(decode_frame(data), SerializeType.ROCKETMQ) == data


@FAST
@given(st.lists(any_commands, min_size=1, max_size=5), st.lists(st.integers(0, 4000), max_size=8))
def test_split_at_arbitrary_points(
    items: list[tuple[RemotingCommand, int]], cuts: list[int]
) -> None:
    cmds = [c for c, _ in items]
    stream = b"".join(encode(c, t) for c, t in items)
    points = sorted({min(c, len(stream)) for c in cuts})
    dec = FrameDecoder()
    out: list[RemotingCommand] = []
    last = 0
    for p in [*points, len(stream)]:
        out += dec.feed(stream[last:p])
        last = p
    assert out == cmds
    assert dec.buffered == 0
    # the same through push / next_command
    dec = FrameDecoder()
    pulled: list[RemotingCommand] = []
    last = 0
    for p in [*points, len(stream)]:
        dec.push(stream[last:p])
        last = p
        while (cmd := dec.next_command()) is not None:
            pulled.append(cmd)
    assert pulled == cmds


def _header_strategy(cls: type[Header]) -> st.SearchStrategy[Header]:
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for field in msgspec.structs.fields(cls):
        info = msgspec.inspect.type_info(field.type)
        optional = False
        if isinstance(info, msgspec.inspect.UnionType):
            optional = True
            [info] = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if isinstance(info, msgspec.inspect.IntType):
            lo = info.ge if info.ge is not None else -(2**63)
            hi = info.le if info.le is not None else 2**63 - 1
            strat: st.SearchStrategy[Any] = st.integers(lo, hi)
        elif isinstance(info, msgspec.inspect.BoolType):
            strat = st.booleans()
        else:
            strat = TEXT
        kwargs[field.name] = st.none() | strat if optional else strat
    return st.builds(cls, **kwargs)


HEADER_CLASSES = sorted(set(REQUEST_HEADERS.values()), key=lambda c: c.__name__)
CODE_OF = {cls: code for code, cls in REQUEST_HEADERS.items()}


@pytest.mark.parametrize("cls", HEADER_CLASSES, ids=lambda c: c.__name__)
@QUICK
@given(data=st.data())
def test_every_request_type_round_trips(cls: type[Header], data: st.DataObject) -> None:
    header = data.draw(_header_strategy(cls))
    code = CODE_OF[cls]
    if cls is SendMessageRequestHeader:
        code = data.draw(st.sampled_from([10, 310, 320]))
        if code == 320:
            header = msgspec.structs.replace(header, batch=True)
        ext = encode_header(header) if code == 10 else encode_send_header_v2(header)
    else:
        ext = encode_header(header)
    req = RemotingCommand.request(code, ext, b"", opaque=data.draw(INT32))
    wire = encode(req)
    got = decode_frame(wire)
    assert got == req and encode(got) == wire
    if cls is SendMessageRequestHeader:
        assert decode_send_header(got.code, got.ext_fields) == header
    else:
        assert decode_header(cls, got.ext_fields) == header
    resp = RemotingCommand.response_to(got, ResponseCode.SUCCESS, ext_fields={"x": 1})
    assert decode_frame(encode(resp)) == resp


@FAST
@given(st.integers(0, 2**31 - 1), json_commands)
def test_unknown_request_codes_decode(code: int, cmd: RemotingCommand) -> None:
    """Forward compatibility: unknown codes decode (the server answers
    REQUEST_CODE_NOT_SUPPORTED); unknown serialize types are fatal (see below)."""
    cmd = msgspec.structs.replace(cmd, code=code)
    assert decode_frame(encode(cmd)).code == code


# ---------------------------------------------------------------------------- R24 fuzzing


@MANY
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    must_decode_or_protocol_error(data)
    with contextlib.suppress(ProtocolError):
        decode_frame(data)


@MANY
@given(st.binary(max_size=300), st.binary(max_size=40), st.integers(0, 255))
def test_random_payload_in_valid_framing(header: bytes, body: bytes, stype: int) -> None:
    data = frame(header, body, stype)
    try:
        cmd = decode_frame(data)
    except ProtocolError as exc:
        # framing is intact: only an unknown serialize type may be fatal
        assert exc.fatal == (stype not in (0, 1))
    else:
        assert cmd.body == body
    must_decode_or_protocol_error(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)
header_like = st.fixed_dictionaries(
    {},
    optional={
        "code": json_values | INT32,
        "opaque": json_values | INT32,
        "flag": json_values | INT32,
        "language": json_values | LANGS,
        "version": json_values | INT32,
        "remark": json_values,
        "extFields": json_values | st.dictionaries(TEXT, json_values, max_size=4),
    },
)


@MANY
@given(json_values | header_like, BODY)
def test_arbitrary_json_headers_never_fatal(value: Any, body: bytes) -> None:
    data = frame(msgspec.json.encode(value), body)
    try:
        cmd = decode_frame(data)
    except ProtocolError as exc:
        assert exc.fatal is False
        if isinstance(value, dict) and "opaque" in value:
            op = value["opaque"]
            if type(op) is int and -(2**31) <= op < 2**31:
                assert exc.opaque == op
    else:
        assert all(type(v) is str for v in cmd.ext_fields.values())
        assert decode_frame(encode(cmd)) == cmd


@FAST
@given(any_commands)
def test_truncation_at_every_byte(item: tuple[RemotingCommand, int]) -> None:
    cmd, stype = item
    data = encode(cmd, stype)
    for i in range(len(data)):
        with pytest.raises(ProtocolError) as info:
            decode_frame(data[:i])
        assert info.value.fatal
        dec = FrameDecoder()
        assert dec.feed(data[:i]) == []
        assert dec.buffered == i
        assert dec.feed(data[i:]) == [cmd]


@MANY
@given(
    any_commands,
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_mutated_frames(item: tuple[RemotingCommand, int], edits: list[tuple[int, int]]) -> None:
    cmd, stype = item
    data = bytearray(encode(cmd, stype) * 2)
    for pos, byte in edits:
        data[pos % len(data)] = byte
    must_decode_or_protocol_error(bytes(data))


@MANY
@given(st.integers(-(2**31), 2**31 - 1).filter(lambda n: not 4 <= n <= MAX_FRAME))
def test_bad_lengths_fail_on_four_bytes(length: int) -> None:
    dec = FrameDecoder()
    with pytest.raises(ProtocolError) as info:
        dec.feed(struct.pack(">i", length))
    assert info.value.fatal
    assert dec.buffered == 0


@MANY
@given(st.integers(4, MAX_FRAME), st.integers(0, 0xFFFFFF), st.integers(0, 255))
def test_header_word_checked_before_body(length: int, hlen: int, stype: int) -> None:
    dec = FrameDecoder()
    prefix = struct.pack(">iI", length, (stype << 24) | hlen)
    valid = stype in (0, 1) and hlen <= length - 4  # (a header past max_header: refused alone)
    try:
        out = dec.feed(prefix)
    except ProtocolError as exc:
        # invalid prefix: fatal at once; a valid 4-byte frame (empty header) is complete and bad
        assert exc.fatal is not valid
        if not exc.fatal:
            assert length == 4
    else:
        assert valid and out == [] and dec.buffered == 8


def test_deep_nesting() -> None:
    for depth in (100, 10_000, 32_000):
        nested = b"[" * depth + b"]" * depth
        with pytest.raises(ProtocolError) as info:
            decode_frame(frame(nested))
        assert not info.value.fatal
        with pytest.raises(ProtocolError):
            decode_frame(frame(b'{"code":1,"extFields":{"a":' + nested + b"}}"))
        # an unknown key holding deep nesting: skipped or rejected, never a crash
        try:
            decode_frame(frame(b'{"code":1,"zz":' + nested + b"}"))
        except ProtocolError as exc:
            assert not exc.fatal
        with pytest.raises(ProtocolError):
            decode_body(HeartbeatData, b'{"clientID":"x","producerDataSet":' + nested + b"}")
        with contextlib.suppress(ProtocolError):
            decode_body(HeartbeatData, b'{"clientID":"x","zz":' + nested + b"}")


def test_many_frames_in_one_chunk_linear() -> None:
    cmd = RemotingCommand.request(RequestCode.HEART_BEAT, {"a": "b"}, b"x" * 10, opaque=1)
    stream = encode(cmd) * 20_000
    assert len(FrameDecoder().feed(stream)) == 20_000


def test_big_frame_in_small_chunks() -> None:
    cmd = RemotingCommand.request(RequestCode.SEND_MESSAGE, {}, b"z" * (4 * 1024 * 1024))
    data = encode(cmd)
    dec = FrameDecoder()
    out: list[RemotingCommand] = []
    for i in range(0, len(data), 1024):
        out += dec.feed(data[i : i + 1024])
    assert out == [cmd]


# ---------------------------------------------------------------------- headers and bodies

wire_names = sorted(
    {f.encode_name for cls in HEADER_CLASSES for f in msgspec.structs.fields(cls)}
    | set("abcdefghijklmn")
)
ext_like = st.dictionaries(
    st.sampled_from(wire_names) | TEXT,
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT | json_values,
    max_size=16,
)


@MANY
@given(ext_like, st.sampled_from([*HEADER_CLASSES, None]), st.sampled_from([10, 310, 320]))
def test_headers_from_anything(ext: dict, cls: type[Header] | None, code: int) -> None:
    try:
        if cls is None:
            decode_send_header(code, ext, opaque=1)
        else:
            decode_header(cls, ext, opaque=1)
    except ProtocolError as exc:
        assert exc.fatal is False and exc.opaque == 1


BODY_CLASSES = [
    HeartbeatData,
    TopicRouteData,
    RegisterBrokerBody,
    ClusterInfo,
    LockBatchRequestBody,
    LockBatchResponseBody,
]


@MANY
@given(
    st.binary(max_size=200) | json_values.map(msgspec.json.encode), st.sampled_from(BODY_CLASSES)
)
def test_bodies_from_anything(data: bytes, cls: type) -> None:
    try:
        decode_body(cls, data, opaque=2)
    except ProtocolError as exc:
        assert exc.fatal is False and exc.opaque == 2


batch_entries = st.lists(
    st.builds(
        BatchEntry,
        flag=INT32,
        body=BODY,
        properties=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    ),
    max_size=6,
)


@FAST
@given(batch_entries)
def test_batch_round_trip(entries: list[BatchEntry]) -> None:
    data = encode_batch(entries)
    assert decode_batch(data) == entries
    assert encode_batch(decode_batch(data)) == data
    for i in range(len(data)):
        try:
            decode_batch(data[:i])
        except ProtocolError as exc:
            assert not exc.fatal


@MANY
@given(st.binary(max_size=300))
def test_batch_random_bytes(data: bytes) -> None:
    try:
        entries = decode_batch(data)
    except ProtocolError as exc:
        assert not exc.fatal
    else:
        assert decode_batch(encode_batch(entries)) == entries


PROP_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x01\x02"), max_size=16
)


@FAST
@given(st.dictionaries(PROP_TEXT, PROP_TEXT, max_size=8))
def test_properties_round_trip(props: dict[str, str]) -> None:
    text = encode_properties(props)
    assert decode_properties(text) == props
    if props:
        assert decode_properties(text[:-1]) == props  # without the trailing \x02


@FAST
@given(st.text(max_size=100))
def test_properties_decode_anything(text: str) -> None:
    assert isinstance(decode_properties(text), dict)
