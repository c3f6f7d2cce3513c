"""How a server's ClientSession ends a connection it cannot go on reading, over real loopback
sockets: after a fatal framing error the answers already on their way still arrive whole, then
the end of the stream (a FIN behind them, what the client still sends read and dropped, not a
RST that discards them); a fault of the read loop itself closes the connection at once and is
logged with the peer; a header past the server's limit inside a valid frame is refused alone
and the connection goes on, and one of RocketMQ's sizes above the old 64 KiB is served."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import gevent.socket
import pytest
from loguru import logger

from runtime.in_flight import InFlight
from runtime.net import Acceptor, bind
from runtime.remoting.codes import ResponseCode, SerializeType
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import MAX_HEADER, FrameDecoder, encode
from runtime.session import SessionHandle, session_factory
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)

FAST, BIG = 901, 905
BIG_BODY = 8 * 1024 * 1024
"""An answer larger than what the loopback socket buffers of both ends hold."""
FAULT_BODY = b"fault!!"
"""A request body the injected read-loop fault fires on."""


class Answers:
    """FAST answers at once, BIG with an 8 MiB body."""

    def __init__(self) -> None:
        self.closed = gevent.event.Event()

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand:
        if request.code == BIG:
            return RemotingCommand.response_to(request, 0, body=b"b" * BIG_BODY)
        return RemotingCommand.response_to(request, 0, ext_fields={"who": "fast"})

    def on_close(self, session: SessionHandle) -> None:
        self.closed.set()


@pytest.fixture
def server() -> Iterator[tuple[Answers, Any]]:
    processor = Answers()
    sock = bind("127.0.0.1", 0, what="test")
    factory = session_factory("test", processor, idle_timeout=float("inf"))
    acceptor = Acceptor.start("test", sock, factory)
    yield processor, sock.getsockname()
    acceptor.stop(timeout=5)
    sock.close()


def _read_to_the_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything ``sock`` receives, and how the stream ended: "eof" or "reset"."""
    received = bytearray()
    while True:
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            return bytes(received), "reset"
        if not data:
            return bytes(received), "eof"
        received += data


def test_a_fatal_framing_error_closes_behind_the_answers_already_on_their_way(
    server: tuple[Answers, Any],
) -> None:
    _processor, address = server
    client = gevent.socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    client.connect(address)
    client.settimeout(10)
    try:
        # Given a request whose 8 MiB answer the server is writing (its first bytes arrived)
        big = RemotingCommand.request(BIG)
        client.sendall(encode(big))
        first = client.recv(8)
        # When the client then sends a frame of absurd length followed by 1 MiB it never
        # finishes (bytes the server will not have read when it closes)
        junk = struct.pack(">i", 2**31 - 1) + b"x" * (1 << 20)
        writer = gevent.spawn(client.sendall, junk)
        # Then the whole answer arrives, and then the end of the stream, not a reset
        rest, end = _read_to_the_end(client)
        assert end == "eof"
        answers = FrameDecoder(max_frame=BIG_BODY + 4096).feed(first + rest)
        assert [(a.opaque, len(a.body)) for a in answers] == [(big.opaque, BIG_BODY)]
        writer.join(timeout=10)
    finally:
        client.close()


def test_a_fault_of_the_read_loop_closes_the_connection_and_is_logged_with_the_peer(
    server: tuple[Answers, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor, address = server
    admit = InFlight.admit

    def faulty_admit(self: InFlight, size: int) -> str | None:
        if size == len(FAULT_BODY):
            raise RuntimeError("injected fault")
        return admit(self, size)

    monkeypatch.setattr(InFlight, "admit", faulty_admit)
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR", format="{message}")
    client = WireClient(address, timeout=10)
    try:
        # Given a connection that is served (no idle timeout)
        assert client.call(FAST).code == ResponseCode.SUCCESS
        host, port = client.sock.getsockname()[:2]
        peer = f"{host}:{port}"
        # When reading its next request fails with a fault of the server's own
        client.send(RemotingCommand.request(FAST, body=FAULT_BODY))
        # Then the server closes the connection at once
        with gevent.Timeout(5):
            assert client.is_closed()
        assert processor.closed.wait(5)
        # And says so, naming the peer and the fault
        assert any(peer in e and "read loop failed" in e and "injected" in e for e in errors)
    finally:
        logger.remove(sink)
        client.close()


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
def test_a_header_past_the_limit_is_refused_alone_and_a_large_one_below_it_is_served(
    server: tuple[Answers, Any], serialize_type: SerializeType
) -> None:
    _processor, address = server
    client = WireClient(address, timeout=10)
    try:
        # Given a request whose header is 100 KiB (a send with 32 KiB of escaped properties
        # has up to ~200 KiB; RocketMQ bounds a header by the frame only)
        large = RemotingCommand.request(FAST, {"properties": "p" * 100_000})
        client.sock.sendall(encode(large, serialize_type))
        # Then it is served
        answer = client.receive()
        assert (answer.opaque, answer.code) == (large.opaque, ResponseCode.SUCCESS)
        # When a request's header passes the server's limit (in a frame well within 16 MiB)
        huge = RemotingCommand.request(FAST, {"properties": "p" * (MAX_HEADER + 1)})
        client.sock.sendall(encode(huge, serialize_type))
        # Then that request alone is refused, saying why
        refused = client.receive()
        assert (refused.opaque, refused.code) == (huge.opaque, ResponseCode.SYSTEM_ERROR)
        assert f"exceeds the limit of {MAX_HEADER} bytes" in (refused.remark or "")
        # And the connection goes on
        assert client.call(FAST).code == ResponseCode.SUCCESS
    finally:
        client.close()
