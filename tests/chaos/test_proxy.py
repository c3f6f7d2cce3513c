"""The link proxy: pass, blackhole, reset, delay, heal; seeded jitter."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.chaos.admin import split_address
from tests.chaos.proxy import DelaySchedule, Mode, TcpProxy

pytestmark = pytest.mark.timeout(30)


class EchoServer:
    """Echoes every byte back; counts what it received."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "{}:{}".format(*self.sock.getsockname())
        self.received = 0
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.received += len(data)
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[TcpProxy]:
    with TcpProxy(echo.address, seed=7, name="test") as p:
        yield p


def connect(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection(split_address(proxy.address), timeout=5)
    sock.settimeout(5)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def is_reset(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the connection ends (RST or FIN) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def new_connection_is_reset(proxy: TcpProxy) -> bool:
    """True when a new connection through the proxy is reset: during connect (the proxy's RST
    can arrive before a timed connect reads SO_ERROR on a loaded machine) or on first read."""
    try:
        sock = connect(proxy)
    except ConnectionResetError:
        return True
    with sock:
        return is_reset(sock)


def test_pass_forwards_a_megabyte_both_ways_intact(proxy: TcpProxy) -> None:
    # Given a client connected through the proxy
    payload = bytes(range(256)) * 4096
    with connect(proxy) as sock:
        # When it sends 1 MiB while reading the echo
        reader_out: list[bytes] = []
        reader = threading.Thread(
            target=lambda: reader_out.append(recv_exactly(sock, len(payload)))
        )
        reader.start()
        sock.sendall(payload)
        reader.join(10)
        # Then the same bytes come back in order
        assert reader_out == [payload]
    # (the proxy's thread counts a chunk just after its send returns, so the last one may be
    # counted a moment after the client has read it)
    wait_for(lambda: proxy.stats.forwarded >= 2 * len(payload))


def test_blackhole_drops_both_ways_and_heal_resets_the_damaged_connection(
    proxy: TcpProxy, echo: EchoServer
) -> None:
    with connect(proxy) as damaged, connect(proxy) as idle:
        damaged.sendall(b"ping")
        assert recv_exactly(damaged, 4) == b"ping"
        # When the link is blackholed and the client writes
        proxy.blackhole()
        assert proxy.mode is Mode.BLACKHOLE
        before = echo.received
        damaged.sendall(b"x" * 1000)
        wait_for(lambda: proxy.stats.dropped >= 1000)
        # Then the bytes never reach the server and nothing comes back
        damaged.settimeout(0.3)
        with pytest.raises(TimeoutError):
            damaged.recv(1)
        assert echo.received == before
        # and a new connection is accepted but goes nowhere
        with connect(proxy) as late:
            late.sendall(b"hello")
            wait_for(lambda: proxy.stats.dropped >= 1005)
        # When the link heals
        proxy.heal()
        # Then the connection that lost bytes is reset, the idle one still works
        assert is_reset(damaged)
        idle.sendall(b"still here")
        assert recv_exactly(idle, 10) == b"still here"
    with connect(proxy) as fresh:
        fresh.sendall(b"new")
        assert recv_exactly(fresh, 3) == b"new"


def test_reset_closes_connections_and_refuses_new_ones_until_heal(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"a")
        assert recv_exactly(sock, 1) == b"a"
        wait_for(lambda: proxy.connections == 1)
        # When the link is reset
        proxy.reset()
        # Then the open connection ends and a new one is reset at once
        assert is_reset(sock)
    assert new_connection_is_reset(proxy)
    # When healed, connections work again
    proxy.heal()
    with connect(proxy) as healed:
        healed.sendall(b"ok")
        assert recv_exactly(healed, 2) == b"ok"


def test_delay_holds_bytes_keeps_order_and_heal_flushes(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        # Given a 150 ms delay each way
        proxy.delay(150)
        start = time.monotonic()
        sock.sendall(b"abc")
        assert recv_exactly(sock, 3) == b"abc"
        # Then a round trip takes at least two delays
        assert time.monotonic() - start >= 0.3
        # and many small writes arrive in order
        proxy.delay(5, jitter_ms=20)
        parts = [b"%04d" % i for i in range(200)]
        for part in parts:
            sock.sendall(part)
        assert recv_exactly(sock, 800) == b"".join(parts)
        # When healed while bytes are held, they are delivered at once, in order
        proxy.delay(5000)
        sock.sendall(b"held")
        proxy.heal()
        start = time.monotonic()
        assert recv_exactly(sock, 4) == b"held"
        assert time.monotonic() - start < 2.0


def test_a_dead_upstream_resets_the_client(echo: EchoServer) -> None:
    # Given a proxy to a port where nothing listens
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = "{}:{}".format(*probe.getsockname())
    probe.close()
    with TcpProxy(dead, name="dead") as proxy:
        # Then the client is reset
        assert new_connection_is_reset(proxy)
        # When it is pointed at a live upstream, new connections pass
        proxy.set_upstream(echo.address)
        with connect(proxy) as sock:
            sock.sendall(b"up")
            assert recv_exactly(sock, 2) == b"up"


def test_the_server_closing_still_delivers_what_it_sent() -> None:
    # Given an upstream that answers once and closes
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer_and_close() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1)
            conn.sendall(b"bye")

    threading.Thread(target=answer_and_close, daemon=True).start()
    upstream = "{}:{}".format(*server.getsockname())
    with TcpProxy(upstream, name="closing") as proxy, connect(proxy) as sock:
        sock.sendall(b"?")
        assert recv_exactly(sock, 3) == b"bye"
        assert sock.recv(1) == b""
    server.close()


def test_one_seed_gives_one_jitter_sequence() -> None:
    a = DelaySchedule(42, 10, 50)
    b = DelaySchedule(42, 10, 50)
    c = DelaySchedule(43, 10, 50)
    seq_a = [a.next() for _ in range(20)]
    assert seq_a == [b.next() for _ in range(20)]
    assert seq_a != [c.next() for _ in range(20)]
    assert all(0.010 <= d <= 0.060 for d in seq_a)


def test_close_ends_the_thread_and_every_connection(echo: EchoServer) -> None:
    proxy = TcpProxy(echo.address, name="closing").start()
    sock = connect(proxy)
    sock.sendall(b"z")
    assert recv_exactly(sock, 1) == b"z"
    proxy.close()
    assert not proxy._thread.is_alive()
    assert is_reset(sock)
    with contextlib.suppress(OSError):
        sock.close()
    with pytest.raises(RuntimeError):
        proxy.blackhole()
