"""What a session lets one connection, and the process, have in flight (runtime.in_flight):
past a bound a request is answered SYSTEM_BUSY at once and never served."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent.event
import pytest

from runtime import in_flight
from runtime.net import Acceptor, bind
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle, session_factory
from tests.wire import WireClient as Client

pytestmark = pytest.mark.timeout(20)

HOLD, FAST = 920, 921
MIB = 1 << 20


class HoldProcessor:
    """HOLD waits until released; FAST answers at once. Counts what it served."""

    def __init__(self) -> None:
        self.release = gevent.event.Event()
        self.served = 0

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        self.served += 1
        if request.code == HOLD:
            self.release.wait(10)
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS)

    def on_close(self, session: SessionHandle) -> None:
        pass


Server = Callable[..., tuple[HoldProcessor, Any]]


@pytest.fixture
def server() -> Iterator[Server]:
    started: list[tuple[Any, Any]] = []

    def start(**options: Any) -> tuple[HoldProcessor, Any]:
        processor = HoldProcessor()
        sock = bind("127.0.0.1", 0, what="test")
        acceptor = Acceptor.start("test", sock, session_factory("test", processor, **options))
        started.append((acceptor, sock))
        return processor, sock.getsockname()

    yield start
    for acceptor, sock in started:
        acceptor.stop(timeout=5)
        sock.close()


def request(code: int, size: int = 0) -> RemotingCommand:
    return RemotingCommand.request(code, body=b"x" * size)


def answer_to(client: Client, sent: RemotingCommand) -> RemotingCommand:
    reply = client.receive()
    assert reply.opaque == sent.opaque, (reply.opaque, sent.opaque, reply.remark)
    return reply


def test_requests_past_the_count_bound_are_busy_and_never_served(server: Server) -> None:
    processor, address = server(max_in_flight=2)
    client = Client(address)
    # Given two requests held in flight on a connection allowed two
    held = [request(HOLD), request(HOLD)]
    for r in held:
        client.send(r)
    # When a third arrives
    third = request(FAST)
    client.send(third)
    # Then it is answered SYSTEM_BUSY at once and never served
    reply = answer_to(client, third)
    assert reply.code == ResponseCode.SYSTEM_BUSY and "requests in flight (> 2)" in reply.remark
    assert processor.served == 2
    # And once the held ones are answered, the connection is served again
    processor.release.set()
    assert sorted(client.receive().opaque for _ in held) == sorted(r.opaque for r in held)
    again = request(FAST)
    client.send(again)
    assert answer_to(client, again).code == ResponseCode.SUCCESS


def test_bodies_past_the_connections_byte_bound_are_busy_small_requests_still_pass(
    server: Server,
) -> None:
    processor, address = server(max_in_flight_bytes=int(2.5 * MIB))
    client = Client(address)
    # Given two 1 MiB requests held in flight on a connection allowed 2.5 MiB
    held = [request(HOLD, MIB), request(HOLD, MIB)]
    for r in held:
        client.send(r)
    # When another 1 MiB request and a bodiless one arrive
    big, small = request(FAST, MIB), request(FAST)
    client.send(big)
    client.send(small)
    # Then the big one is busy and the small one is served
    busy = answer_to(client, big)
    assert busy.code == ResponseCode.SYSTEM_BUSY
    assert "bytes in flight on this connection (> 2.5 MiB)" in busy.remark
    assert answer_to(client, small).code == ResponseCode.SUCCESS
    processor.release.set()
    for _ in held:
        assert client.receive().code == ResponseCode.SUCCESS


def test_a_lone_request_larger_than_the_byte_bound_is_served(server: Server) -> None:
    _processor, address = server(max_in_flight_bytes=MIB)
    client = Client(address)
    # Given nothing in flight, When a request larger than the bound arrives, Then it is served
    lone = request(FAST, 3 * MIB)
    client.send(lone)
    assert answer_to(client, lone).code == ResponseCode.SUCCESS


def test_the_process_byte_bound_refuses_large_requests_of_any_connection(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(in_flight, "MAX_PROCESS_IN_FLIGHT_BYTES", int(2.5 * MIB))
    processor, address = server()
    hog, other = Client(address), Client(address)
    # Given one connection holding 2 MiB in flight of a process allowed 2.5 MiB
    held = [request(HOLD, MIB), request(HOLD, MIB)]
    for r in held:
        hog.send(r)
    ping = request(FAST)  # the hog's requests are read (in order) before this is answered
    hog.send(ping)
    assert answer_to(hog, ping).code == ResponseCode.SUCCESS
    # When another connection sends a 1 MiB request and a 64 KiB one
    big, small = request(FAST, MIB), request(FAST, in_flight.SMALL_REQUEST)
    other.send(big)
    other.send(small)
    # Then the large one is busy and the small one is served
    busy = answer_to(other, big)
    assert busy.code == ResponseCode.SYSTEM_BUSY
    assert "bytes in flight on this server (> 2.5 MiB)" in busy.remark
    assert answer_to(other, small).code == ResponseCode.SUCCESS
    # And once the hog's requests are answered, the large one goes through
    processor.release.set()
    for _ in held:
        assert hog.receive().code == ResponseCode.SUCCESS
    retry = request(FAST, MIB)
    other.send(retry)
    assert answer_to(other, retry).code == ResponseCode.SUCCESS
