"""FirstBytes: a connection's opening (PROXY header, then first message) read a piece at a
time, as the front's relay thread reads a non-blocking socket."""

from __future__ import annotations

import pytest

from actors.proxy.opening import PREFACE, TLS_RECORD_MAX, FirstBytes
from runtime.errors import ProtocolError
from tests.balancer import v1_header, v2_header

HELLO = bytes([0x16, 3, 1, 0, 200]) + bytes(range(200))
"""A TLS record of 200 bytes (as a client hello begins)."""
AFTER = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
"""What a client sends after its first message (an empty SETTINGS frame)."""


def _read(first: FirstBytes, stream: bytes, piece: int | None = None) -> int:
    """Feed ``stream`` as a socket would give it (at most ``want()``, and at most ``piece``
    at a time); how many bytes were taken when it was done (or all, if never)."""
    taken = 0
    while not first.done:
        if taken == len(stream):
            first.feed(b"")
            break
        n = first.want()
        assert n >= 1
        if piece is not None:
            n = min(n, piece)
        chunk = stream[taken : taken + n]
        taken += len(chunk)
        first.feed(chunk)
    return taken


@pytest.mark.parametrize("piece", [1, 3, None])
def test_the_preface_is_read_whole_and_not_a_byte_more(piece: int | None) -> None:
    # Given a plain client's preface and SETTINGS, arriving byte by byte or at once
    first = FirstBytes(proxy_protocol=False)
    # When read, Then the opening is done at the preface's last byte
    assert _read(first, PREFACE + AFTER, piece) == len(PREFACE)
    assert first.message == PREFACE and first.is_preface() and not first.is_tls()
    assert first.source is None and not first.ended


@pytest.mark.parametrize("piece", [1, 4, None])
def test_a_tls_record_is_read_whole(piece: int | None) -> None:
    first = FirstBytes(proxy_protocol=False)
    assert _read(first, HELLO + AFTER, piece) == len(HELLO)
    assert first.message == HELLO and first.is_tls()


def test_a_huge_tls_record_is_read_only_up_to_the_bound() -> None:
    # Given a record announcing 64 KiB (more than a TLS record may hold)
    record = bytes([0x16, 3, 1, 0xFF, 0xFF]) + b"x" * 0xFFFF
    first = FirstBytes(proxy_protocol=False)
    # Then at most TLS_RECORD_MAX of it is read before the connection is relayed
    assert _read(first, record) == 5 + TLS_RECORD_MAX


def test_a_stream_ending_early_gives_what_came() -> None:
    # Given a stream that ends before a byte (a health check): nothing
    silent = FirstBytes(proxy_protocol=False)
    assert silent.feed(b"") and silent.message == b"" and silent.ended
    # Given one ending inside the preface: what came, no preface
    cut = FirstBytes(proxy_protocol=False)
    _read(cut, PREFACE[:10])
    assert cut.done and cut.ended and cut.message == PREFACE[:10] and not cut.is_preface()
    # And feeding a done opening is a caller's bug
    with pytest.raises(ValueError):
        cut.feed(b"x")


V4, V6 = ("203.0.113.7", 4242), ("2001:db8::9", 443)


@pytest.mark.parametrize(
    ("header", "source"),
    [
        (v1_header(*V4), V4),
        (v1_header(*V6, ("2001:db8::1", 8081)), V6),
        (v2_header(*V4), V4),
        (v2_header(*V6, ("2001:db8::1", 8081), tlvs=b"\x04\x00\x02ab"), V6),
    ],
)
@pytest.mark.parametrize("piece", [1, 5, None])
def test_a_proxy_header_in_pieces_names_the_client(
    header: bytes, source: tuple[str, int], piece: int | None
) -> None:
    # Given a balancer's header, then a client's preface, in pieces of any size
    first = FirstBytes(proxy_protocol=True)
    _read(first, header + PREFACE + AFTER, piece)
    # Then the client it names is the source, and the header is not in the message
    assert first.source == source
    assert first.message.startswith(PREFACE) and first.is_preface()
    # (the header's pieces may carry a few of the message's bytes, never past its own bound)
    assert len(first.message) <= len(PREFACE) + len(AFTER)


def test_a_local_header_keeps_the_connections_own_address() -> None:
    first = FirstBytes(proxy_protocol=True)
    _read(first, v2_header(None) + HELLO, 3)
    assert first.done and first.source is None and first.message == HELLO


@pytest.mark.parametrize("piece", [1, None])
def test_without_a_header_the_bytes_are_the_message(piece: int | None) -> None:
    # Given PROXY protocol on and clients without a header (plain: 'P' as in 'PROXY', and TLS)
    plain, tls = FirstBytes(proxy_protocol=True), FirstBytes(proxy_protocol=True)
    _read(plain, PREFACE + AFTER, piece)
    _read(tls, HELLO, piece)
    # Then their bytes are their messages, whole
    assert plain.is_preface() and plain.source is None
    assert tls.message == HELLO and tls.source is None
    # And a stream ending before a byte is a health check, not a malformed header
    check = FirstBytes(proxy_protocol=True)
    assert check.feed(b"") and check.message == b""


@pytest.mark.parametrize(
    "stream",
    [
        b"PROXY TCP4 203.0.113.7 nowhere 1 2\r\n" + PREFACE,  # a bad address
        b"PROXY TCP4 " + b"1" * 120,  # no CRLF within V1_MAX
        v2_header("203.0.113.7", 1)[:12] + bytes([0x21, 0x11, 0xFF, 0xFF]),  # too long
        b"PROX",  # ended inside the header
        v1_header("203.0.113.7", 1)[:-5],
    ],
)
def test_a_malformed_or_cut_header_is_a_protocol_error(stream: bytes) -> None:
    first = FirstBytes(proxy_protocol=True)
    with pytest.raises(ProtocolError):
        _read(first, stream, 7)


@pytest.mark.parametrize("stream", [b"hello\n", b"PRI * HTTP/1.1", b"\x00", b"GET /"])
def test_what_can_be_no_preface_is_done_at_once(stream: bytes) -> None:
    # Given a client sending a few bytes that no HTTP/2 preface begins with, then waiting
    first = FirstBytes(proxy_protocol=False)
    # Then the opening is done with them (turned away at once, not at the deadline)
    assert first.feed(stream) and not first.ended
    assert first.message == stream and not first.is_preface() and not first.is_tls()


@pytest.mark.parametrize(
    "stream",
    [
        b"PROXY HTTP/1.1 ",  # no protocol parse_v1 takes
        b"PROXY TCP5",
        b"PROXY TCP4 \xff",  # not ASCII
        v2_header("203.0.113.7", 1)[:12] + b"\x22",  # a command neither LOCAL nor PROXY
    ],
)
def test_a_header_that_can_be_no_valid_one_is_refused_at_once(stream: bytes) -> None:
    # Given the first bytes of a header no parser would take, the rest not sent
    first = FirstBytes(proxy_protocol=True)
    # Then they are a protocol error as soon as they are in, not at V1_MAX or the deadline
    with pytest.raises(ProtocolError):
        first.feed(stream)


@pytest.mark.parametrize("piece", [1, 6, None])
def test_early_refusal_keeps_valid_headers(piece: int | None) -> None:
    # Given valid v1 headers followed, in the same reads, by a preface or a TLS record (whose
    # bytes are not ASCII), and an UNKNOWN one with no address
    for header, message, source in (
        (b"PROXY UNKNOWN\r\n", PREFACE, None),
        (b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n", HELLO, None),
        (v1_header(*V4), bytes([0x16, 3, 1, 0, 4, 0xFF, 0xFE, 0xFD, 0xFC]), V4),
    ):
        first = FirstBytes(proxy_protocol=True)
        _read(first, header + message, piece)
        # Then they are read as before
        assert first.source == source and first.message == message


def test_the_kind_is_known_from_the_messages_first_byte() -> None:
    # Given openings fed a byte of a preface, of a TLS record, and of a PROXY header
    plain, tls, header = (FirstBytes(proxy_protocol=p) for p in (False, False, True))
    for first, byte in ((plain, PREFACE[:1]), (tls, HELLO[:1]), (header, b"P")):
        assert first.begins_tls() is None
        first.feed(byte)
    # Then a message's kind is known at once; a header's 'P' could still be either
    assert plain.begins_tls() is False and tls.begins_tls() is True
    assert header.begins_tls() is None
    # And after a header, from the message's first byte
    header.feed(v1_header(*V4)[1:] + HELLO[:1])
    assert header.begins_tls() is True
