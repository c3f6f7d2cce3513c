"""ClientSession over real loopback sockets: concurrency, oneway, errors, idle expiry."""

from __future__ import annotations

import struct
from typing import Any

import gevent
import gevent.event
import gevent.socket
import pytest

from runtime.net import Acceptor, bind
from runtime.receive import receiver
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import READ_SIZE, SessionHandle, session_factory
from runtime.session_handle import send_frame
from tests.wire import WireClient as Client

pytestmark = pytest.mark.timeout(20)

SLOW, FAST, ONEWAY, RAISE, PUSH = 900, 901, 902, 903, 904


class EchoProcessor:
    """Test processor: SLOW waits on an event, FAST answers at once, ONEWAY records."""

    def __init__(self) -> None:
        self.release = gevent.event.Event()
        self.oneways: list[RemotingCommand] = []
        self.closed: list[SessionHandle] = []
        self.sessions: list[SessionHandle] = []

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        self.sessions.append(session)
        if request.code == SLOW:
            self.release.wait(10)
            return RemotingCommand.response_to(request, 0, ext_fields={"who": "slow"})
        if request.code == FAST:
            return RemotingCommand.response_to(request, 0, ext_fields={"who": "fast"})
        if request.code == ONEWAY:
            self.oneways.append(request)
            return None
        if request.code == RAISE:
            raise KeyError("bug")
        if request.code == PUSH:
            session.send_oneway(RemotingCommand.request(40, {"consumerGroup": "g"}))
            return RemotingCommand.response_to(request, 0)
        return RemotingCommand.response_to(request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)

    def on_close(self, session: SessionHandle) -> None:
        self.closed.append(session)


@pytest.fixture
def server() -> Any:
    processor = EchoProcessor()
    sock = bind("127.0.0.1", 0, what="test")
    acceptor = Acceptor.start("test", sock, session_factory("test", processor, idle_timeout=0.3))
    yield processor, sock.getsockname()
    acceptor.stop(timeout=5)
    sock.close()


def test_requests_on_one_connection_are_served_concurrently(server: Any) -> None:
    processor, address = server
    client = Client(address)
    # Given a slow request in flight
    slow = RemotingCommand.request(SLOW)
    fast = RemotingCommand.request(FAST)
    client.send(slow)
    client.send(fast)
    # Then the fast one is answered first, matched by opaque
    first = client.receive()
    assert (first.opaque, first.ext_fields["who"]) == (fast.opaque, "fast")
    processor.release.set()
    second = client.receive()
    assert (second.opaque, second.ext_fields["who"]) == (slow.opaque, "slow")
    assert second.is_response


def test_oneway_gets_no_reply(server: Any) -> None:
    processor, address = server
    client = Client(address)
    client.send(RemotingCommand.request(ONEWAY, oneway=True))
    ping = RemotingCommand.request(FAST)
    client.send(ping)
    assert client.receive().opaque == ping.opaque
    assert len(processor.oneways) == 1


def test_unknown_code_and_handler_bug_get_error_replies_and_connection_survives(
    server: Any,
) -> None:
    _processor, address = server
    client = Client(address)
    client.send(RemotingCommand.request(12345))
    assert client.receive().code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    boom = RemotingCommand.request(RAISE)
    client.send(boom)
    reply = client.receive()
    assert reply.code == ResponseCode.SYSTEM_ERROR and "KeyError" in (reply.remark or "")
    ok = RemotingCommand.request(FAST)
    client.send(ok)
    assert client.receive().opaque == ok.opaque


def test_bad_header_json_gets_error_reply_and_stream_goes_on(server: Any) -> None:
    _processor, address = server
    client = Client(address)
    header = b'{"code":901,"opaque":77,"extFields":{"a":{"nested":1}}}'
    client.send_raw(struct.pack(">ii", 4 + len(header), len(header)) + header)
    reply = client.receive()
    assert reply.opaque == 77 and reply.code == ResponseCode.SYSTEM_ERROR
    ok = RemotingCommand.request(FAST)
    client.send(ok)
    assert client.receive().opaque == ok.opaque


def test_framing_error_closes_only_that_connection(server: Any) -> None:
    processor, address = server
    good, bad = Client(address), Client(address)
    # When one client sends an absurd length
    bad.send_raw(struct.pack(">i", 2**31 - 1) + b"xxxx")
    # Then its connection closes (the server's FIN) and the other client is still served
    assert bad.is_closed()
    ping = RemotingCommand.request(FAST)
    good.send(ping)
    assert good.receive().opaque == ping.opaque
    # And once the bad client closes too (the server read on until then: no RST), its session
    # ends
    bad.close()
    with gevent.Timeout(5):
        while len(processor.closed) < 1:
            gevent.sleep(0.01)
    assert len(processor.closed) == 1


def test_server_can_push_oneway_requests_to_the_client(server: Any) -> None:
    _processor, address = server
    client = Client(address)
    req = RemotingCommand.request(PUSH)
    client.send(req)
    got = [client.receive(), client.receive()]
    pushed = next(c for c in got if not c.is_response)
    assert pushed.code == 40 and pushed.is_oneway
    assert any(c.is_response and c.opaque == req.opaque for c in got)


def test_idle_channel_expires(server: Any) -> None:
    processor, address = server
    client = Client(address)
    # Given a connection that sends nothing, Then the server closes it after the idle timeout
    with gevent.Timeout(5):
        assert client.is_closed()
    gevent.sleep(0.05)
    assert len(processor.closed) == 1


def test_unreadable_header_without_request_id_closes_that_connection(server: Any) -> None:
    _processor, address = server
    good, bad = Client(address), Client(address)
    # When a frame's JSON header cannot be read at all (no opaque to answer)
    header = b"{code: oops"
    bad.send_raw(struct.pack(">ii", 4 + len(header), len(header)) + header)
    # Then that connection closes (as RocketMQ's servers do) and the other one is served
    assert bad.is_closed()
    ping = RemotingCommand.request(FAST)
    good.send(ping)
    assert good.receive().opaque == ping.opaque


def test_writes_never_block_the_caller_and_frames_stay_whole_and_in_order() -> None:
    import gevent.socket

    from runtime.remoting.frame import FrameDecoder
    from runtime.session import connect

    # Given a peer that does not read yet
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    host, port = listener.getsockname()
    handle = connect(f"{host}:{port}")
    peer, _ = listener.accept()
    # When a hub callback (which must never block) writes 24 MiB of frames, far more than
    # the socket buffers take
    bodies = [bytes([i]) * (1 << 20) for i in range(24)]
    wrote: list[bool] = []

    def write_all() -> None:
        for i, body in enumerate(bodies):
            wrote.append(handle.send_oneway(RemotingCommand.request(ONEWAY, {"i": i}, body)))

    done = gevent.event.Event()
    gevent.get_hub().loop.run_callback(lambda: (write_all(), done.set()))
    assert done.wait(5)
    # Then every write was accepted at once (the rest queued on the session actor)
    assert wrote == [True] * len(bodies)
    # When the peer reads, Then it gets every frame whole and in order
    decoder = FrameDecoder()
    got: list[RemotingCommand] = []
    with gevent.Timeout(10):
        while len(got) < len(bodies):
            data = peer.recv(1 << 20)
            assert data, "closed early"
            got.extend(decoder.feed(data))
    assert [c.ext_fields["i"] for c in got] == [str(i) for i in range(len(bodies))]
    assert all(c.body == body for c, body in zip(got, bodies, strict=True))
    handle.close()
    peer.close()
    listener.close()


def _read_exactly(sock: Any, n: int) -> bytes:
    chunks = []
    while n:
        data = sock.recv(min(n, 65536))
        assert data, "peer closed early"
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


@pytest.mark.parametrize("direct", [True, False])
def test_send_frame_writes_all_of_a_frame_larger_than_the_send_buffer(direct: bool) -> None:
    # Given a connected pair whose sending side has a small buffer
    a, b = gevent.socket.socketpair()
    try:
        a.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_SNDBUF, 4096)
        frame = bytes(range(256)) * 2048  # 512 KiB: the first send takes only part of it
        # When it is sent (first directly on the raw socket, or all through sendall) while a
        # reader drains the other end
        reader = gevent.spawn(_read_exactly, b, len(frame))
        send_frame(a, a._sock if direct else None, frame)
        # Then every byte arrives, in order
        assert reader.get(timeout=10) == frame
    finally:
        a.close()
        b.close()


class _CountingRaw:
    """A non-blocking socket stand-in that counts ``recv`` calls (EAGAIN when empty)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.recvs = 0

    def recv(self, n: int) -> bytes:
        self.recvs += 1
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.pop(0)[:n]


def test_the_read_loop_waits_before_reading_after_a_short_read() -> None:
    raw = _CountingRaw()
    waits: list[int] = []
    arriving: list[bytes] = []

    class Sock:
        _sock = raw
        _read_event = object()

        def _wait(self, _event: object) -> None:  # the hub: bytes arrive while we wait
            waits.append(raw.recvs)
            raw.chunks.append(arriving.pop(0))

    receive = receiver(Sock(), READ_SIZE)  # type: ignore[arg-type]
    # Given a short frame already there, When the loop reads first, Then it tries at once
    raw.chunks.append(b"short frame")
    assert receive() == b"short frame" and raw.recvs == 1 and waits == []
    # When it reads after that short read, Then it waits first: no recv that fails
    arriving.append(b"x" * READ_SIZE)
    assert receive() == b"x" * READ_SIZE and raw.recvs == 2 and waits == [1]
    # When it reads after a full buffer, Then it tries at once: more was likely waiting
    raw.chunks.append(b"rest")
    assert receive() == b"rest" and raw.recvs == 3 and waits == [1]
    # And after a short read with nothing there, it waits, then reads once
    arriving.append(b"next")
    assert receive() == b"next" and raw.recvs == 4 and waits == [1, 3]
