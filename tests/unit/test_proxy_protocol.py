"""The PROXY protocol header reader: v1 and v2, what follows it left in the stream, malformed
headers refused with ProtocolError only."""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from runtime.errors import ProtocolError
from runtime.proxy_protocol import V2_SIGNATURE, Absent, parse_v1, parse_v2, read_header
from tests.balancer import v1_header, v2_header

pytestmark = pytest.mark.timeout(30)

PAYLOAD = b"\x00\x00\x00\x10rest-of-the-stream"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def _read(pair: tuple[socket.socket, socket.socket], data: bytes) -> tuple[object, bytes]:
    """What ``read_header`` finds in ``data``, and the bytes left after it."""
    writer, reader = pair
    writer.sendall(data)
    writer.shutdown(socket.SHUT_WR)
    found = read_header(reader, 5.0)
    rest = b""
    while chunk := reader.recv(65536):
        rest += chunk
    return found, rest


@pytest.mark.parametrize(
    ("header", "source"),
    [
        (v1_header("203.0.113.7", 4242), ("203.0.113.7", 4242)),
        (v1_header("2001:db8::7", 443, ("2001:db8::1", 8081)), ("2001:db8::7", 443)),
        (v1_header("::ffff:198.51.100.3", 7, ("::1", 8)), ("198.51.100.3", 7)),
        (b"PROXY UNKNOWN\r\n", None),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
        (v2_header("203.0.113.7", 4242), ("203.0.113.7", 4242)),
        (v2_header("2001:db8::7", 443, ("2001:db8::1", 8081)), ("2001:db8::7", 443)),
        (v2_header("::ffff:198.51.100.3", 7, ("::ffff:192.0.2.1", 8)), ("198.51.100.3", 7)),
        (v2_header("203.0.113.7", 4242, tlvs=b"\x05\x00\x03abc"), ("203.0.113.7", 4242)),
        (v2_header(None), None),  # LOCAL: the balancer's own health check
        (V2_SIGNATURE + bytes([0x21, 0x31]) + struct.pack(">H", 216) + b"\0" * 216, None),
    ],
)
def test_a_header_names_the_client_and_leaves_the_stream_after_it(
    pair: tuple[socket.socket, socket.socket], header: bytes, source: object
) -> None:
    # Given a connection that begins with a header and goes on with the client's bytes
    # When the header is read, Then it names the client (or none), and the rest is intact
    assert _read(pair, header + PAYLOAD) == (source, PAYLOAD)


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        (PAYLOAD, b""),  # a remoting frame
        (b"\x16\x03\x01\x02\x00", b""),  # a TLS ClientHello
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"PRI"),  # the HTTP/2 preface
        (b"\r\n\r\nXY", b"\r\n\r\nX"),
        (b"", b""),  # a balancer's health check: connect, close
    ],
)
def test_a_stream_without_a_header_is_absent_with_the_bytes_read(
    pair: tuple[socket.socket, socket.socket], data: bytes, prefix: bytes
) -> None:
    # Given a connection that begins with no header
    found, rest = _read(pair, data)
    # Then it is absent; only what began like a header was read, handed back as a prefix
    assert isinstance(found, Absent)
    assert found.prefix == prefix and prefix + rest == data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 4242\r\n", "4 fields"),
        (b"PROXY TCP4 203.0.113.999 192.0.2.1 1 2\r\n", "bad address"),
        (b"PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n", "not IPv4"),
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n", "bad port"),
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 042 2\r\n", "bad port"),
        (b"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n", "TCP4|TCP6"),
        (b"PROXY " + b"x" * 120, "longer than 107"),
        (b"PROXY TCP4 \xff\r\n", "not ASCII"),
        (b"PROXY TCP4 203.0.113.7", "closed inside"),
        (V2_SIGNATURE + bytes([0x11, 0x11, 0, 12]) + b"\0" * 12, "0x11"),
        (V2_SIGNATURE + bytes([0x21, 0x11, 0, 4]) + b"\0" * 4, "want 12"),
        (V2_SIGNATURE + bytes([0x21, 0x21, 0, 12]) + b"\0" * 12, "want 36"),
        (V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack(">H", 60_000), "> 4096"),
        (V2_SIGNATURE + bytes([0x21, 0x11, 0, 12]) + b"\0" * 5, "closed inside"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad address"),
    ],
)
def test_a_malformed_header_is_a_protocol_error(
    pair: tuple[socket.socket, socket.socket], data: bytes, problem: str
) -> None:
    # Given a connection whose header is malformed, When it is read
    # Then ProtocolError names the problem
    with pytest.raises(ProtocolError, match=problem.replace("|", r"\|")):
        _read(pair, data)


def test_a_header_split_across_writes_is_read_whole(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # Given a v1 header arriving in pieces (a slow balancer), then the client's bytes
    writer, reader = pair
    header = v1_header("203.0.113.7", 4242)
    for start in range(0, len(header), 5):
        writer.sendall(header[start : start + 5])
    writer.sendall(PAYLOAD)
    # When it is read, Then it is whole and the stream goes on after it
    assert read_header(reader, 5.0) == ("203.0.113.7", 4242)
    assert reader.recv(len(PAYLOAD), socket.MSG_WAITALL) == PAYLOAD


def test_a_stalled_header_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    # Given a connection that sends half a header and stops
    writer, reader = pair
    writer.sendall(b"PROXY TCP4 ")
    # When it is read, Then the wait ends at the timeout
    with pytest.raises(TimeoutError):
        read_header(reader, 0.2)


def test_a_header_trickled_a_byte_at_a_time_ends_at_the_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # Given a client sending a header's bytes one by one, each well within the timeout
    writer, reader = pair
    header = v1_header("203.0.113.7", 4242)
    stop = threading.Event()

    def trickle() -> None:
        for byte in header:
            if stop.wait(0.05):
                return
            writer.send(bytes([byte]))

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        # When it is read with a timeout shorter than the whole, Then the wait ends at it
        with pytest.raises(TimeoutError):
            read_header(reader, 0.5)
    finally:
        stop.set()
        sender.join()


FAMILIES = ["TCP4", "TCP6", "UNKNOWN", "UDP4", "", "tcp4"]
ADDRESSES = ["203.0.113.7", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3", "", "%"]
PORTS = ["0", "65535", "65536", "08", "-1", "", "1" * 40]
STRAY = ["\r", "\n", "\x00", "\xff", " ", "PROXY"]


def _v1_words(rng: random.Random) -> list[str]:
    """A v1 header's fields from the grammar's words, often bent (a field dropped, a stray
    word put in)."""
    words = [rng.choice(FAMILIES), *rng.choices(ADDRESSES, k=2), *rng.choices(PORTS, k=2)]
    if rng.random() < 0.3:
        del words[rng.randrange(len(words))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), rng.choice(STRAY))
    return words


def test_random_headers_raise_only_protocol_errors() -> None:
    # Given thousands of v1 lines made of the grammar's words and stray bytes, and random v2
    # bodies
    rng = random.Random(24)
    sources = 0
    for _ in range(3000):
        line = " ".join(_v1_words(rng)).encode("latin-1")
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        # When they are parsed, Then each gives a source or raises ProtocolError, nothing else
        with contextlib.suppress(ProtocolError):
            sources += parse_v1(b"PROXY " + line + b"\r\n") is not None
        with contextlib.suppress(ProtocolError):
            parse_v2(V2_SIGNATURE + junk[:4].ljust(4, b"\0"), junk[4:])
        with contextlib.suppress(ProtocolError):
            parse_v2(junk[:16], junk[16:])
    assert sources > 0  # (some lines were whole headers)
