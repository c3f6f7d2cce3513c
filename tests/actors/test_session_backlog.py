"""A client that sends requests and never reads their answers (runtime.session_handle's
back-pressure): the server stops reading it once its answers waiting to be written pass the
session's ``max_backlog``, so its memory stays bounded, and goes on once the client reads; left
so, it is closed after the idle timeout, and a stopping acceptor stops its session."""

from __future__ import annotations

import collections
import socket
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.socket
import pykka
import pytest

from runtime.net import Acceptor, bind
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import FrameDecoder, encode
from runtime.session import ClientSession, SessionHandle, session_factory
from runtime.session_handle import QUEUED_FRAME_COST

pytestmark = pytest.mark.timeout(30)

FAST = 930
MAX_BACKLOG = 256 * 1024
MAX_IN_FLIGHT = 100
WRITE_LIMIT = 48 * 1024 * 1024
"""Bytes the client writes at most: far more than the socket buffers of both ends hold."""
BLOCKED_S = 2.0
"""A write that makes no progress for this long: the server stopped reading."""


class AnswerAll:
    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response_to(request, 0, ext_fields={"answer": "x" * 64})

    def on_close(self, session: SessionHandle) -> None:
        pass


def _start(idle_timeout: float) -> tuple[Any, Any, socket.socket]:
    sock = bind("127.0.0.1", 0, what="test")
    factory = session_factory(
        "test",
        AnswerAll(),
        max_backlog=MAX_BACKLOG,
        max_in_flight=MAX_IN_FLIGHT,
        idle_timeout=idle_timeout,
    )
    return Acceptor.start("test", sock, factory), sock.getsockname(), sock


@pytest.fixture
def address() -> Iterator[Any]:
    acceptor, address, sock = _start(float("inf"))
    yield address
    acceptor.stop(timeout=5)
    sock.close()


def _blocked_client(address: Any) -> tuple[socket.socket, list[bytes], int]:
    """A client that wrote the same 1,000 small requests (of one length) over and over, read
    nothing, until its writes blocked; its frames and the bytes it wrote."""
    client = gevent.socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(address)
    requests = [RemotingCommand.request(FAST, opaque=1_000_000 + i) for i in range(1000)]
    frames = [encode(r) for r in requests]
    assert len({len(f) for f in frames}) == 1
    return client, frames, _write_until_blocked(client, b"".join(frames))


def _session() -> ClientSession:
    refs = [r for r in pykka.ActorRegistry.get_all() if r.actor_class is ClientSession]
    assert len(refs) == 1
    actor = refs[0]._actor_weakref()
    assert isinstance(actor, ClientSession)
    return actor


def _write_until_blocked(sock: socket.socket, data: bytes) -> int:
    """Write ``data`` over and over; the bytes written once a write made no progress for
    ``BLOCKED_S`` (or ``WRITE_LIMIT`` was passed, or the server closed the connection)."""
    sock.settimeout(BLOCKED_S)
    written = 0
    view = memoryview(data)
    while written < WRITE_LIMIT:
        try:
            written += sock.send(view[written % len(data) :])
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            break
    return written


def test_a_client_that_never_reads_is_no_longer_read_and_its_answers_stay_bounded(
    address: Any,
) -> None:
    # Given a client with a small receive buffer
    # When it writes small requests over and over and reads nothing
    client, frames, written = _blocked_client(address)
    # Then the server stopped reading it: its writes block long before it wrote 48 MiB
    assert written < WRITE_LIMIT
    # And the answers the server holds stay within its bound, plus those of the requests in
    # flight and of one read's worth of requests
    session = _session()
    probe = RemotingCommand(code=FAST, opaque=1_000_000)
    answer = len(encode(RemotingCommand.response_to(probe, 0, ext_fields={"answer": "x" * 64})))
    one_read = (65536 // len(frames[0]) + 1) * (answer + QUEUED_FRAME_COST)
    bound = MAX_BACKLOG + MAX_IN_FLIGHT * answer + one_read
    assert session.handle.backlog <= bound
    # When the client finishes the frame it was writing and reads, Then every request it wrote
    # is answered
    frame_len = len(frames[0])
    done, part = divmod(written, frame_len)
    expected = done + (1 if part else 0)
    received: list[RemotingCommand] = []

    def read_all() -> None:
        decoder = FrameDecoder()
        while len(received) < expected:
            data = client.recv(1 << 20)
            assert data, "closed early"
            received.extend(decoder.feed(data))

    reader = gevent.spawn(read_all)
    client.settimeout(20)
    if part:
        client.sendall(frames[done % len(frames)][part:])
    reader.get(timeout=20)
    opaques = collections.Counter(r.opaque for r in received)
    assert opaques == collections.Counter(1_000_000 + i % 1000 for i in range(expected))
    client.close()


def test_a_client_that_never_reads_is_closed_after_the_idle_timeout() -> None:
    acceptor, address, sock = _start(idle_timeout=0.5)
    try:
        # Given a client that writes requests until blocked and reads nothing (the session's
        # writes to it block; the server stops reading it)
        client, _frames, written = _blocked_client(address)
        assert written < WRITE_LIMIT
        # When it stays so past the idle timeout (0.5 s, less than the 2 s its writes wait:
        # they may end with the close), still reading nothing, Then the session stops
        with gevent.Timeout(10):
            while pykka.ActorRegistry.get_by_class(ClientSession):
                gevent.sleep(0.01)
        # And what the client then reads ends (EOF or reset)
        client.settimeout(10)
        with gevent.Timeout(10):
            while True:
                try:
                    if not client.recv(1 << 20):
                        break
                except ConnectionResetError:
                    break
        client.close()
    finally:
        acceptor.stop(timeout=10)
        sock.close()


def test_stopping_the_acceptor_stops_a_session_blocked_writing_to_its_client() -> None:
    acceptor, address, sock = _start(idle_timeout=float("inf"))
    # Given a session blocked writing to a client that reads nothing
    client, _frames, written = _blocked_client(address)
    assert written < WRITE_LIMIT
    # When the acceptor stops, Then it stops within its two waits and the session with it
    try:
        assert acceptor.stop(timeout=10)
        assert not pykka.ActorRegistry.get_by_class(ClientSession)
    finally:
        client.close()
        sock.close()
