"""The HA wire codec: round trips, frames split at every byte, bounds checked before buffering,
and hostile input that must raise ProtocolError and nothing else."""

from __future__ import annotations

import contextlib
import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import ProtocolError
from runtime.ha import protocol as P

pytestmark = pytest.mark.timeout(60)

EPOCHS = (P.Epoch(1, 0, 0), P.Epoch(2, 4096, 1), P.Epoch(5, 9000, 0))
HELLO = P.Hello(node=3, segment_size=1 << 20, epochs=EPOCHS, max_offset=123_456, group="broker-a")
MASTER_FRAMES: list[P.MasterFrame] = [
    P.Accept(offset=4096, epoch=5, epochs=EPOCHS),
    P.Data(offset=4096, data=b"x" * 300),
    P.Data(offset=4396, data=b""),
    P.Truncate(offset=777),
    P.Refused(P.RefuseReason.FENCED, "not the master (epoch 6 elected)"),
    P.Challenge(bytes(range(16))),
    P.Refused(P.RefuseReason.UNAUTHENTICATED, "proof does not match"),
    P.Fetch(offset=8192),
    P.Confirm(offset=4396),
]


def encode_master(frame: P.MasterFrame) -> bytes:
    if isinstance(frame, P.Accept):
        return P.encode_accept(frame)
    if isinstance(frame, P.Data):
        return P.encode_data(frame.offset, frame.data)
    if isinstance(frame, P.Truncate):
        return P.encode_truncate(frame.offset)
    if isinstance(frame, P.Challenge):
        return P.encode_challenge(frame.nonce)
    if isinstance(frame, P.Fetch):
        return P.encode_fetch(frame.offset)
    if isinstance(frame, P.Confirm):
        return P.encode_confirm(frame.offset)
    return P.encode_refused(frame.reason, frame.text)


def slave_stream() -> bytes:
    return (
        P.encode_hello(HELLO)
        + P.encode_tail(8192, b"r" * 200)
        + P.encode_tail(8392, b"")
        + P.encode_report(5)
        + P.encode_report(2**40)
    )


def test_slave_stream_round_trips_split_at_every_byte() -> None:
    # Given a HELLO, a TAIL (what a FETCH asks for) and its end, and two REPORTs
    raw = slave_stream()
    want = [HELLO, P.Tail(8192, b"r" * 200), P.Tail(8392, b""), P.Report(5), P.Report(2**40)]
    for cut in range(len(raw) + 1):
        # When it arrives in two chunks cut anywhere
        dec = P.SlaveStreamDecoder()
        got = dec.feed(raw[:cut]) + dec.feed(raw[cut:])
        # Then the same messages come out, in order
        assert got == want, cut


def test_a_version_1_hello_names_no_group() -> None:
    # Given an older slave's HELLO (version 1: it ends at the max offset), then a REPORT
    raw = struct.pack(">4siqqi", b"AMQH", 1, 3, 4096, 1) + struct.pack(">4q", 1, 0, 0, 77)
    raw += P.encode_report(80)
    for cut in range(len(raw) + 1):
        dec = P.SlaveStreamDecoder()
        # When it arrives cut anywhere
        got = dec.feed(raw[:cut]) + dec.feed(raw[cut:])
        # Then it is read, with no group
        want = P.Hello(3, 4096, (P.Epoch(1, 0, 0),), 77, version=1)
        assert got == [want, P.Report(80)], cut


def test_a_version_2_hello_is_read_and_says_its_slave_takes_no_confirm() -> None:
    # Given an older slave's HELLO (version 2: laid out as 3)
    old = msgspec.structs.replace(HELLO, version=2)
    raw = P.encode_hello(old)
    # When it is read, Then its version says the slave takes no CONFIRM frames
    (got,) = P.SlaveStreamDecoder().feed(raw)
    assert got == old and got.version < P.CONFIRMING
    (new,) = P.SlaveStreamDecoder().feed(P.encode_hello(HELLO))
    assert new.version == P.VERSION >= P.CONFIRMING


def test_a_hello_of_an_unknown_version_is_not_sent() -> None:
    with pytest.raises(ProtocolError, match="version"):
        P.encode_hello(msgspec.structs.replace(HELLO, version=9))


def test_a_group_name_too_long_is_not_sent() -> None:
    with pytest.raises(ProtocolError, match="group name"):
        P.encode_hello(P.Hello(1, 4096, (), 0, group="g" * (P.MAX_GROUP + 1)))


def test_a_proof_follows_the_hello_when_the_master_challenged() -> None:
    # Given a slave's HELLO, its PROOF for a nonce, and a REPORT
    nonce = bytes(range(16, 32))
    proof = P.proof_of("inner-secret", nonce)
    raw = P.encode_hello(HELLO) + proof + P.encode_report(7)
    for cut in range(len(raw) + 1):
        # When a master that challenged decodes it, cut anywhere
        dec = P.SlaveStreamDecoder(proof=True)
        got = dec.feed(raw[:cut]) + dec.feed(raw[cut:])
        # Then the PROOF comes out between them, whole
        assert got == [HELLO, P.Proof(proof), P.Report(7)], cut
    assert P.proof_matches("inner-secret", nonce, proof)
    assert not P.proof_matches("guessed", nonce, proof)
    assert not P.proof_matches("inner-secret", bytes(16), proof)  # another link's nonce
    assert len(proof) == P.PROOF_SIZE


def test_master_stream_round_trips_byte_by_byte() -> None:
    raw = b"".join(encode_master(f) for f in MASTER_FRAMES)
    dec = P.MasterStreamDecoder()
    got: list[P.MasterFrame] = []
    # When the stream arrives one byte at a time, Then every frame decodes once, in order
    for i in range(len(raw)):
        got += dec.feed(raw[i : i + 1])
    assert got == MASTER_FRAMES


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"XXXX" + b"\x00" * 40, "magic"),
        (struct.pack(">4siqqi", b"AMQH", 4, 1, 4096, 0), "version"),
        (struct.pack(">4siqqiqH", b"AMQH", 2, 1, 4096, 0, 0, P.MAX_GROUP + 1), "group name"),
        (struct.pack(">4siqqiqH", b"AMQH", 2, 1, 4096, 0, 0, 2) + b"\xff\xfe", "UTF-8"),
        (struct.pack(">4siqqi", b"AMQH", 1, 1, 0, 0), "segment size"),
        (struct.pack(">4siqqi", b"AMQH", 1, 1, 4096, 10**9), "epoch count"),
        (struct.pack(">4siqqi", b"AMQH", 1, 1, 4096, -1), "epoch count"),
        (struct.pack(">4siqqiqqqq", b"AMQH", 1, 1, 4096, 1, -1, 0, 0, 0), "negative"),
        (
            struct.pack(">4siqqi", b"AMQH", 1, 1, 4096, 2)
            + struct.pack(">7q", 2, 0, 0, 1, 0, 0, 0),
            "out of order",
        ),
        (P.encode_hello(HELLO) + struct.pack(">q", -5), "negative"),
        (P.encode_hello(HELLO) + struct.pack(">qqi", -1, -3, 0), "negative tail offset"),
        (P.encode_hello(HELLO) + struct.pack(">qqi", -1, 0, P.MAX_DATA + 1), "out of range"),
        (P.encode_hello(HELLO) + struct.pack(">qqi", -1, 0, -1), "out of range"),
    ],
)
def test_bad_slave_streams_raise_protocol_error(raw: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        P.SlaveStreamDecoder().feed(raw)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x09", "unknown HA frame type"),
        (struct.pack(">bqi", 4, 0, P.MAX_DATA + 1), "out of range"),
        (struct.pack(">bqi", 4, 0, -1), "out of range"),
        (struct.pack(">bqi", 4, -8, 0), "negative"),
        (struct.pack(">bqqi", 1, 0, 1, P.MAX_EPOCHS + 1), "epoch count"),
        (struct.pack(">bbh", 3, 99, 0), "refusal reason"),
        (struct.pack(">bbh", 3, 1, -3), "out of range"),
        (struct.pack(">bq", 2, -1), "negative"),
        (struct.pack(">bq", 6, -1), "negative fetch offset"),
        (struct.pack(">bq", 7, -1), "negative confirm offset"),
    ],
)
def test_bad_master_streams_raise_protocol_error(raw: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        P.MasterStreamDecoder().feed(raw)


def test_a_huge_declared_size_fails_before_any_payload_arrives() -> None:
    # Given only the 13-byte header of a DATA frame declaring 2 GiB (KAFKA-14063)
    header = struct.pack(">bqi", 4, 0, 2**31 - 1)
    # Then the decoder refuses at once instead of waiting to buffer it
    with pytest.raises(ProtocolError):
        P.MasterStreamDecoder().feed(header)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=300))
def test_random_bytes_only_ever_raise_protocol_error(data: bytes, cut: int) -> None:
    for dec in (P.SlaveStreamDecoder(), P.SlaveStreamDecoder(proof=True), P.MasterStreamDecoder()):
        try:
            dec.feed(data[:cut])
            dec.feed(data[cut:])
        except ProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=60), st.binary(min_size=1, max_size=4))
def test_mutated_valid_streams_only_ever_raise_protocol_error(pos: int, junk: bytes) -> None:
    for raw, dec in (
        (slave_stream(), P.SlaveStreamDecoder()),
        (b"".join(encode_master(f) for f in MASTER_FRAMES), P.MasterStreamDecoder()),
    ):
        at = min(pos, len(raw))
        with contextlib.suppress(ProtocolError):
            dec.feed(raw[:at] + junk + raw[at + len(junk) :])
