"""Front: plain and TLS gRPC on one port, relayed to grpcio's two loopback ports."""

from __future__ import annotations

import concurrent.futures
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from loguru import logger

from actors.proxy import front as front_module
from actors.proxy import native, self_signed
from actors.proxy import openings as openings_module
from actors.proxy import origins as origins_module
from actors.proxy import relay as relay_module
from actors.proxy.front import Front, origin
from actors.proxy.port_tls import PLAIN, port_tls
from runtime.errors import ConfigError
from runtime.tls import TlsMode, TlsSettings
from tests.balancer import Balancer, v1_header, v2_header

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not self_signed.available(), reason="needs cryptography"),
]


def _ident(x: bytes) -> bytes:
    return x


class Echo:
    """A grpcio server answering each call with the peer grpcio saw and its origin."""

    def __init__(self) -> None:
        key, self.cert = self_signed.make()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))

        def echo(request: bytes, context: Any) -> bytes:
            peer = context.peer()
            return f"{peer}|{origin(peer)}|".encode() + request

        handler = grpc.unary_unary_rpc_method_handler(echo, _ident, _ident)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("t.Echo", {"Call": handler}),)
        )
        self.plain = self.server.add_insecure_port("127.0.0.1:0")
        creds = grpc.ssl_server_credentials([(key, self.cert)])
        self.secure = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()


@pytest.fixture
def served() -> Iterator[tuple[Echo, Front]]:
    echo = Echo()
    front = Front("127.0.0.1", 0, echo.plain, echo.secure)
    front.start()
    yield echo, front
    front.stop()
    echo.server.stop(0)


def _call(channel: grpc.Channel, body: bytes) -> list[str]:
    call = channel.unary_unary(
        "/t.Echo/Call", request_serializer=_ident, response_deserializer=_ident
    )
    return call(body, timeout=10).decode().split("|")


def test_plain_and_tls_clients_are_served_on_one_port(
    served: tuple[Echo, Front],
) -> None:
    echo, front = served
    address = f"127.0.0.1:{front.port}"
    # Given a plain client and a TLS client (trusting the made certificate) of the one port
    tls = grpc.ssl_channel_credentials(root_certificates=echo.cert)
    with grpc.insecure_channel(address) as plain, grpc.secure_channel(address, tls) as secure:
        # When each calls, Then both are answered, bodies intact
        plain_peer, plain_origin, body = _call(plain, b"plain")
        tls_peer, tls_origin, tls_body = _call(secure, b"x" * 100_000)
        assert body == "plain" and tls_body == "x" * 100_000
        # And grpcio saw the front's loopback connections, origin() the clients' own
        for peer, client in ((plain_peer, plain_origin), (tls_peer, tls_origin)):
            assert peer.startswith("ipv4:127.0.0.1:") and client.startswith("ipv4:127.0.0.1:")
            assert client != peer
        assert plain_origin != tls_origin
    # And once the clients closed, their origins are forgotten
    assert origin(plain_peer) == plain_peer or _wait_forgotten(plain_peer)


def _wait_forgotten(peer: str) -> bool:
    from tests.client_support import wait_until

    wait_until(lambda: origin(peer) == peer, timeout=10, what="the origin forgotten")
    return True


def test_a_silent_connection_is_closed_and_garbage_goes_to_the_plain_port(
    served: tuple[Echo, Front], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, front = served
    monkeypatch.setattr(openings_module, "FIRST_BYTE_S", 0.3)
    # Given a connection that never sends a byte, Then the front closes it
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as silent:
        assert silent.recv(1) == b""
    # Given a connection that sends what is no HTTP/2 preface, Then grpcio closes it, and so
    # does the front (its answer, if any, and then the end)
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as junk:
        junk.sendall(b"hello, this is no gRPC\r\n\r\n" * 4)
        while junk.recv(65536):
            pass


def test_stopping_the_front_closes_its_connections(served: tuple[Echo, Front]) -> None:
    _, front = served
    # Given a plain connection relayed (its preface sent)
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as conn:
        conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        conn.recv(9)  # grpcio's SETTINGS frame header: relayed back
        # When the front stops, Then the connection ends
        front.stop()
        while conn.recv(65536):
            pass
    # And the port no longer takes connections
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", front.port), timeout=2).close()
    # And the relay's thread has ended
    from tests.client_support import wait_until

    wait_until(lambda: front._relay._done, timeout=5, what="the relay's thread ended")


def test_the_port_mode_follows_rocketmqs_defaults() -> None:
    # Given no TLS file (or one that names no tls.server.mode): permissive, a certificate made
    made = port_tls(None, None, ["0.0.0.0", "10.0.0.7"])
    assert made.mode is TlsMode.PERMISSIVE and made.credentials is not None
    assert made.made_certificate is not None and b"BEGIN CERTIFICATE" in made.made_certificate
    unnamed = port_tls(TlsSettings(enable=True), "tls.properties", [], mode_given=False)
    assert unnamed.mode is TlsMode.PERMISSIVE and unnamed.made_certificate is not None
    # Given tls.server.mode=disabled: plain only, nothing made
    assert port_tls(TlsSettings(), "tls.properties", []) == PLAIN
    # Given an encrypted key: a ConfigError naming the file and the key
    with pytest.raises(ConfigError) as refused:
        settings = TlsSettings(server_mode=TlsMode.ENFORCING, server_key_password="secret")
        port_tls(settings, "tls.properties", [])
    assert "tls.server.keyPassword" in str(refused.value) and "tls.properties" in str(refused.value)


def test_a_kept_certificate_is_made_once_and_read_after(tmp_path: pathlib.Path) -> None:
    # Given no certificate kept yet: one is made and written, its key for its owner only
    key, cert = self_signed.kept(tmp_path / "proxy", ["10.0.0.7"])
    assert (tmp_path / "proxy" / self_signed.CERT_FILE).read_bytes() == cert
    assert (tmp_path / "proxy" / self_signed.KEY_FILE).stat().st_mode & 0o777 == 0o600
    # When asked again (a restart), Then the same one is used
    assert self_signed.kept(tmp_path / "proxy") == (key, cert)
    # And a damaged one is made anew
    (tmp_path / "proxy" / self_signed.CERT_FILE).write_text("not a certificate")
    assert self_signed.kept(tmp_path / "proxy")[1] != cert


def test_without_cryptography_the_default_port_is_plain_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no cryptography package (the proxy extra not installed whole)
    monkeypatch.setattr(self_signed, "available", lambda: False)
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING", format="{message}")
    try:
        # When the default port's TLS is chosen, Then it is plain only, and the log says why
        assert port_tls(None, None, []) == PLAIN
    finally:
        logger.remove(sink)
    assert any("pip install cryptography" in line for line in seen), seen


@pytest.fixture
def balanced() -> Iterator[tuple[Echo, Front]]:
    echo = Echo()
    front = Front("127.0.0.1", 0, echo.plain, echo.secure, proxy_protocol=True)
    front.start()
    yield echo, front
    front.stop()
    echo.server.stop(0)


def test_behind_a_balancer_the_origin_is_the_client_its_header_names(
    balanced: tuple[Echo, Front],
) -> None:
    echo, front = balanced
    target = ("127.0.0.1", front.port)
    tls = grpc.ssl_channel_credentials(root_certificates=echo.cert)
    # Given balancers sending v1 and v2 headers before a plain and a TLS client's bytes
    with (
        Balancer(target, v1_header("203.0.113.7", 4242)) as one,
        Balancer(target, v2_header("2001:db8::9", 443, ("2001:db8::1", 8081))) as two,
        grpc.insecure_channel(one.address) as plain,
        grpc.secure_channel(two.address, tls) as secure,
        grpc.insecure_channel(f"127.0.0.1:{front.port}") as direct,
    ):
        # When each calls, Then the origin is the client the header named
        assert _call(plain, b"a")[1:] == ["ipv4:203.0.113.7:4242", "a"]
        assert _call(secure, b"b")[1:] == ["ipv6:[2001:db8::9]:443", "b"]
        # And a client without a header (inside the network) is served as itself
        peer, client, body = _call(direct, b"c")
        assert client.startswith("ipv4:127.0.0.1:") and client != peer and body == "c"


def test_a_malformed_header_closes_only_its_connection(balanced: tuple[Echo, Front]) -> None:
    _, front = balanced
    # Given a connection whose PROXY header is malformed
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as bad:
        bad.sendall(b"PROXY TCP4 203.0.113.7 nowhere 1 2\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        # Then the front closes it, relaying nothing
        assert bad.recv(65536) == b""
    assert front.turned_away == 1
    # And the port goes on serving
    with grpc.insecure_channel(f"127.0.0.1:{front.port}") as channel:
        assert _call(channel, b"still")[2] == "still"


def test_a_front_for_one_kind_closes_the_other(served: tuple[Echo, Front]) -> None:
    echo, _ = served
    # Given a front for TLS clients only (enforcing, behind a balancer)
    front = Front("127.0.0.1", 0, None, echo.secure, proxy_protocol=True)
    front.start()
    try:
        # When a plain client connects, Then it is closed
        with socket.create_connection(("127.0.0.1", front.port), timeout=10) as plain:
            plain.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            assert plain.recv(65536) == b""
        assert front.turned_away == 1
        # And a TLS client is served
        tls = grpc.ssl_channel_credentials(root_certificates=echo.cert)
        with grpc.secure_channel(f"127.0.0.1:{front.port}", tls) as secure:
            assert _call(secure, b"tls")[2] == "tls"
    finally:
        front.stop()


def test_a_kind_the_port_refuses_is_closed_at_its_first_byte(
    served: tuple[Echo, Front],
) -> None:
    echo, _ = served
    # Given fronts for one kind only (the 10 s deadline)
    tls_only = Front("127.0.0.1", 0, None, echo.secure)
    plain_only = Front("127.0.0.1", 0, echo.plain, None)
    try:
        for front, byte in ((tls_only, b"P"), (plain_only, b"\x16")):
            front.start()
            # When a client of the other kind sends its first byte and waits
            with socket.create_connection(("127.0.0.1", front.port), timeout=10) as conn:
                conn.sendall(byte)
                # Then it is closed at once (not once its whole message is in, or at the
                # deadline), counted as turned away
                assert _closed_within(conn, 3)
            assert front.turned_away == 1
    finally:
        tls_only.stop()
        plain_only.stop()


def _closed_within(conn: socket.socket, seconds: float) -> bool:
    """The peer ended ``conn`` within ``seconds`` (whatever it wrote first is skipped)."""
    conn.settimeout(seconds)
    try:
        while conn.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def test_one_host_cannot_take_every_connection(
    served: tuple[Echo, Front], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, front = served
    from actors.proxy.conn_limits import HOST_FULL, ConnectionLimits

    # Given a front taking 3 connections per host (8 in all)
    front.limits = ConnectionLimits(total=8, per_host=3)
    # When one host (127.0.0.2) opens 3 connections that each send one byte and wait
    held = []
    for _ in range(3):
        conn = socket.create_connection(("127.0.0.1", front.port), 10, ("127.0.0.2", 0))
        conn.sendall(b"P")
        held.append(conn)
    try:
        # Then its fourth is closed at once
        with socket.create_connection(("127.0.0.1", front.port), 10, ("127.0.0.2", 0)) as extra:
            assert _closed_within(extra, 5)
        assert front.refusals.count(HOST_FULL) == 1
        # And a client of another host is served meanwhile
        with grpc.insecure_channel(f"127.0.0.1:{front.port}") as channel:
            assert _call(channel, b"served")[2] == "served"
        # And the refusal is logged once, not again within the warning interval
        seen: list[str] = []
        sink = logger.add(lambda m: seen.append(str(m)), level="WARNING", format="{message}")
        try:
            front.refusals.report()
            front.refusals.note(HOST_FULL)
            assert front.refusals.report() is None
        finally:
            logger.remove(sink)
        assert len(seen) == 1 and "1 for one host's connection limit" in seen[0], seen
    finally:
        for conn in held:
            conn.close()


def test_a_connection_without_a_whole_preface_in_time_is_closed_before_grpcio(
    served: tuple[Echo, Front], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, front = served
    from actors.proxy.conn_limits import SLOW_START

    monkeypatch.setattr(openings_module, "FIRST_BYTE_S", 0.5)
    # Given connections that send the preface's first byte, or a TLS record's header, then
    # nothing (grpcio, behind the front, would wait 120 s for the rest)
    with (
        socket.create_connection(("127.0.0.1", front.port), timeout=10) as plain,
        socket.create_connection(("127.0.0.1", front.port), timeout=10) as tls,
    ):
        plain.sendall(b"P")
        tls.sendall(bytes([0x16, 3, 1, 2, 0]))  # (a 512-byte hello announced)
        # Then the front closes both within its deadline
        assert _closed_within(plain, 5) and _closed_within(tls, 5)
    assert front.refusals.count(SLOW_START) == 2
    # And their places are given back
    from tests.client_support import wait_until

    wait_until(lambda: front.limits.held == 0, timeout=5, what="the places given back")


def test_what_can_be_no_preface_nor_header_is_turned_away_at_once(
    balanced: tuple[Echo, Front],
) -> None:
    from tests.client_support import wait_until

    _, front = balanced
    # Given (the 10 s deadline) connections sending a few bytes and waiting: no HTTP/2
    # preface, a PROXY v1 header of no known protocol, a v2 one with an unknown command
    streams = [b"hello\n", b"PROXY HTTP/1.1 ", v2_header("203.0.113.7", 1)[:12] + b"\x22"]
    for stream in streams:
        with socket.create_connection(("127.0.0.1", front.port), timeout=10) as conn:
            conn.sendall(stream)
            # Then the front closes each at once, not at its deadline
            assert _closed_within(conn, 3), stream
    assert front.turned_away == len(streams)
    wait_until(lambda: front.limits.held == 0, timeout=5, what="the places given back")


def test_grpcio_closes_a_connection_that_sends_no_settings_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unittest import mock

    from actors.proxy import server as server_module
    from actors.proxy.server import ProxyServer

    # Given a proxy whose port grpcio owns (plain only), its handshake deadline 0.5 s
    monkeypatch.setattr(server_module, "HANDSHAKE_TIMEOUT_MS", 500)
    proxy = ProxyServer(mock.MagicMock(), "127.0.0.1", 0, workers=8)
    port = proxy.start()
    try:
        # When a connection sends the HTTP/2 preface and no SETTINGS frame
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(front_module.PREFACE)
            # Then grpcio closes it (its default waits 120 s)
            assert _closed_within(conn, 5)
    finally:
        proxy.stop(grace=0)


def test_the_per_host_bound_can_be_set_or_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from actors.proxy import conn_limits

    # (clients behind one source-NAT address all count as one host)
    monkeypatch.delenv(conn_limits.PER_HOST_ENV, raising=False)
    assert conn_limits.per_host_limit() == conn_limits.MAX_PER_HOST
    monkeypatch.setenv(conn_limits.PER_HOST_ENV, "4000")
    assert conn_limits.per_host_limit() == 4000
    monkeypatch.setenv(conn_limits.PER_HOST_ENV, "0")
    assert conn_limits.per_host_limit() is None


def _threads() -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(not pathlib.Path("/proc/self/status").exists(), reason="needs /proc")
def test_relayed_connections_cost_no_thread_each(served: tuple[Echo, Front]) -> None:
    _, front = served
    settings = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # (an empty SETTINGS frame)
    # Given one relayed connection (the relay's thread running)
    first = socket.create_connection(("127.0.0.1", front.port), timeout=10)
    first.sendall(front_module.PREFACE + settings)
    assert first.recv(9)
    before = _threads()
    # When 100 more are relayed and idle
    conns = [socket.create_connection(("127.0.0.1", front.port), timeout=10) for _ in range(100)]
    try:
        for conn in conns:
            conn.sendall(front_module.PREFACE + settings)
        for conn in conns:
            assert conn.recv(9)  # grpcio's SETTINGS: relayed back
        # Then the front holds them without a thread each (the opening ones have ended)
        from tests.client_support import wait_until

        wait_until(lambda: _threads() <= before + 4, timeout=10, what="the opening threads gone")
        assert front.limits.held == 101
    finally:
        for conn in (first, *conns):
            conn.close()


class Sink:
    """A TCP server standing for grpcio's port: takes one connection, reads it only when told."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.conn = self.pool.submit(lambda: self.listener.accept()[0])

    def close(self) -> None:
        self.listener.close()
        self.pool.shutdown(wait=False)


def test_the_relay_holds_back_a_side_whose_peer_does_not_read_and_keeps_half_closes() -> None:
    import hashlib

    sink = Sink()
    front = Front("127.0.0.1", 0, sink.port, None)
    front.start()
    try:
        # Given a relayed connection whose other end (grpcio's port) reads nothing yet
        client = socket.create_connection(("127.0.0.1", front.port), timeout=10)
        client.sendall(front_module.PREFACE)
        upstream = sink.conn.result(timeout=10)
        # When the client sends 64 MiB
        block = bytes(range(256)) * 4096  # 1 MiB
        total = 0
        client.settimeout(1.0)
        try:
            for _ in range(64):
                client.sendall(block)
                total += len(block)
        except TimeoutError:
            pass
        # Then the relay stopped taking them (what it holds is bounded: socket buffers and
        # one chunk), not all 64 MiB
        assert total < 48 * 1024 * 1024, total
        # When the other end reads, and the client ends its sending (after what it sent)
        client.settimeout(10)
        received = hashlib.sha256()
        got = 0
        expected = len(front_module.PREFACE) + total
        upstream.settimeout(10)
        done = concurrent.futures.ThreadPoolExecutor(1).submit(client.shutdown, socket.SHUT_WR)
        while True:
            chunk = upstream.recv(1 << 20)
            if not chunk:
                break
            received.update(chunk)
            got += len(chunk)
        done.result(timeout=10)
        # Then it got every byte, in order, and then the end (the client's half-close)
        assert got == expected
        check = hashlib.sha256(front_module.PREFACE)
        for _ in range(total // len(block)):
            check.update(block)
        assert received.digest() == check.digest()
        # And its answer still reaches the client (the other direction is open)
        upstream.sendall(b"answer")
        assert client.recv(6) == b"answer"
        # When grpcio's side ends, Then so does the client's connection
        upstream.close()
        assert _closed_within(client, 5)
        client.close()
        from tests.client_support import wait_until

        wait_until(lambda: front.limits.held == 0, timeout=5, what="the place given back")
        assert not any(k for k in origins_module.ORIGINS if k == client.getsockname())
    finally:
        front.stop()
        sink.close()


def test_the_relay_runs_in_a_monkey_patched_process() -> None:
    import subprocess
    import sys
    import textwrap

    # Given a process monkey-patched by gevent, grpcio on its hub (as `cluster --proxy`)
    script = textwrap.dedent(
        """
        from gevent import monkey; monkey.patch_all()
        import grpc.experimental.gevent as grpc_gevent; grpc_gevent.init_gevent()
        import gevent, grpc, threading
        from tests.unit.test_proxy_front import Echo, _call
        from actors.proxy.front import Front
        echo = Echo()
        front = Front("127.0.0.1", 0, echo.plain, echo.secure)
        front.start()
        address = f"127.0.0.1:{front.port}"
        tls = grpc.ssl_channel_credentials(root_certificates=echo.cert)
        import sys, traceback
        def front_threads():  # (native threads: gevent's greenlets are not in the list)
            stacks = [traceback.extract_stack(f) for f in sys._current_frames().values()]
            ours = ("front.py", "relay.py")  # (the accepting thread, the relay's)
            return sum(any(f.filename.endswith(ours) for f in s) for s in stacks)
        options = [("grpc.use_local_subchannel_pool", 1)]
        channels = [
            grpc.secure_channel(address, tls, options) if i % 2
            else grpc.insecure_channel(address, options)
            for i in range(4)
        ]
        def one(i):
            for n in range(3):
                body = bytes([65 + i + n]) * 300_000
                assert _call(channels[i], body)[2].encode() == body
        # When 4 clients call at once, plain and TLS, big bodies both ways
        # (grpcio's gevent mode with a 4-greenlet pool serves no more at once)
        gevent.joinall([gevent.spawn(one, i) for i in range(4)], raise_error=True)
        gevent.sleep(0.5)
        # Then the 4 connections relayed cost no native thread each: the accepting one and
        # the relay's
        assert front_threads() == 2, front_threads()
        for channel in channels:
            channel.close()
        front.stop(); echo.server.stop(0)
        print("ok", front.limits.held)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=pathlib.Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=25,
    )
    # Then every call is answered (the relay's thread used nothing of gevent's hub)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


@pytest.mark.skipif(not pathlib.Path("/proc/self/status").exists(), reason="needs /proc")
def test_connections_sending_nothing_cost_no_thread_each_and_close_at_their_deadline(
    served: tuple[Echo, Front], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from actors.proxy.conn_limits import SLOW_START
    from tests.client_support import wait_until

    _, front = served
    assert openings_module.FIRST_BYTE_S == 10.0  # (the default, shortened here)
    monkeypatch.setattr(openings_module, "FIRST_BYTE_S", 2.0)
    before = _threads()
    # Given 200 connections that send nothing (each held a thread while it opened, before)
    conns = []
    try:
        for _ in range(200):
            conns.append(socket.create_connection(("127.0.0.1", front.port), timeout=10))
        connected = time.monotonic()
        wait_until(lambda: front.limits.held == 200, timeout=10, what="all 200 taken")
        # Then they are held without a thread each
        assert _threads() <= before + 4, (before, _threads())
        # And each is closed at its deadline, not before (the first accepted before `connected`)
        assert _closed_within(conns[-1], 10)
        assert time.monotonic() - connected >= 2.0 - 0.1
        assert all(_closed_within(conn, 10) for conn in conns)
    finally:
        for conn in conns:
            conn.close()
    assert front.refusals.count(SLOW_START) == 200
    wait_until(lambda: front.limits.held == 0, timeout=5, what="the places given back")


def _unread(front: Front, conn: socket.socket) -> int | None:
    """Bytes of ``conn``'s the front has not read yet (the receive queue of its accepted
    socket, from /proc/net/tcp); None: not listed."""
    local = f"0100007F:{front.port:04X}"
    remote = f"0100007F:{conn.getsockname()[1]:04X}"
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[4].split(":")[1], 16)
    return None


def _send_slowly(front: Front, conn: socket.socket, pieces: list[bytes]) -> None:
    """Each piece sent once the front has read the one before (a client sending its first
    bytes a few at a time)."""
    from tests.client_support import wait_until

    for piece in pieces:
        wait_until(lambda: _unread(front, conn) == 0, timeout=5, what="the piece read")
        conn.sendall(piece)


@pytest.mark.skipif(not pathlib.Path("/proc/net/tcp").exists(), reason="needs /proc/net/tcp")
def test_first_bytes_sent_a_few_at_a_time_are_relayed(served: tuple[Echo, Front]) -> None:
    import ssl

    _, front = served
    settings = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
    preface = front_module.PREFACE
    # Given a plain client sending its preface in three pieces, then a SETTINGS frame
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as plain:
        _send_slowly(front, plain, [preface[:1], preface[1:9], preface[9:], settings])
        # Then grpcio's SETTINGS frame comes back (relayed to the plain port)
        assert plain.recv(9)[3] == 4
    # Given a TLS client sending its hello in four pieces
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as conn:
        _send_slowly(front, conn, [hello[:1], hello[1:5], hello[5:50], hello[50:]])
        # Then the handshake completes with grpcio's TLS port (h2 agreed)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    conn.sendall(outgoing.read())
                data = conn.recv(65536)
                assert data, "closed during the handshake"
                incoming.write(data)
        assert tls.selected_alpn_protocol() == "h2"
    assert front.refusals.total == {}


def test_stopping_the_front_closes_connections_still_opening(served: tuple[Echo, Front]) -> None:
    from tests.client_support import wait_until

    _, front = served
    # Given connections that sent nothing, or part of a preface (10 s to go)
    conns = [socket.create_connection(("127.0.0.1", front.port), timeout=10) for _ in range(3)]
    try:
        conns[0].sendall(b"PRI")
        wait_until(lambda: front.limits.held == 3, timeout=10, what="all 3 taken")
        # When the front stops, Then they are closed at once, none counted as refused
        front.stop()
        assert all(_closed_within(conn, 5) for conn in conns)
        wait_until(lambda: front._relay._done, timeout=5, what="the relay's thread ended")
        assert front.limits.held == 0 and front.refusals.total == {}
    finally:
        for conn in conns:
            conn.close()


def test_stopping_a_balanced_front_counts_no_header_it_cut_as_malformed() -> None:
    from tests.client_support import wait_until

    echo = Echo()
    front = Front("127.0.0.1", 0, echo.plain, echo.secure, proxy_protocol=True)
    front.start()
    # Given connections that sent part of a PROXY header (v1, v2), 10 s to go
    conns = [socket.create_connection(("127.0.0.1", front.port), timeout=10) for _ in range(2)]
    try:
        conns[0].sendall(b"PROXY TCP4 203.0.113.7")
        conns[1].sendall(v2_header("203.0.113.7", 1)[:20])
        wait_until(lambda: front.limits.held == 2, timeout=10, what="both taken")
        # When the front stops, Then they are closed, not counted as malformed headers (the
        # stop cut them: the end of their stream was the front's)
        front.stop()
        assert all(_closed_within(conn, 5) for conn in conns)
        wait_until(lambda: front._relay._done, timeout=5, what="the relay's thread ended")
        assert front.limits.held == 0 and front.refusals.total == {}
    finally:
        for conn in conns:
            conn.close()
        front.stop()
        echo.server.stop(0)


def test_a_grpcio_port_not_answering_in_time_is_not_counted_as_a_slow_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from actors.proxy.conn_limits import GRPCIO_SLOW, SLOW_START
    from tests.client_support import wait_until

    # Given a "grpcio" port whose accept queue is full (a connect to it waits: SYNs dropped)
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(0)
    filling = []
    for _ in range(4):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(backend.getsockname())
        filling.append(sock)
    monkeypatch.setattr(openings_module, "FIRST_BYTE_S", 0.5)
    front = Front("127.0.0.1", 0, backend.getsockname()[1], None)
    front.start()
    try:
        # When a client sends its whole preface at once
        with socket.create_connection(("127.0.0.1", front.port), timeout=10) as conn:
            conn.sendall(front_module.PREFACE)
            # Then the front gives up on grpcio's port at the connect's deadline
            assert _closed_within(conn, 5)
        wait_until(lambda: front.limits.held == 0, timeout=5, what="the place given back")
        # And the client, which sent all in time, is not counted as one that did not
        assert front.refusals.count(SLOW_START) == 0
        assert front.refusals.count(GRPCIO_SLOW) == 1
    finally:
        front.stop()
        for sock in (*filling, backend):
            sock.close()


def test_health_checks_are_closed_quietly_and_the_port_goes_on_serving(
    served: tuple[Echo, Front],
) -> None:
    from tests.client_support import wait_until

    _, front = served
    # Given 600 connections that end before a byte (a balancer's TCP health checks), more
    # than the opening deadlines' heap keeps before it forgets ended ones
    for _ in range(600):
        socket.create_connection(("127.0.0.1", front.port), timeout=10).close()
    # Then a client is served after them (so all of them were accepted and handed over)
    with grpc.insecure_channel(f"127.0.0.1:{front.port}") as channel:
        assert _call(channel, b"after")[2] == "after"
    # And their places (and the client's) are given back, none counted as refused
    wait_until(lambda: front.limits.held == 0, timeout=10, what="the places given back")
    assert front.refusals.total == {}


def test_ending_the_openings_gives_back_the_places_of_those_about_to_connect() -> None:
    # Given (the relay loop's own objects, no thread) an opening whose first message is whole,
    # decided and waiting to be connected to grpcio once the poller's batch is done
    front = Front("127.0.0.1", 0, 1, None)
    poller = native.new_poller()
    openings = openings_module.Openings(front._relay, poller, {})
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    client = listener.accept()[0]
    listener.close()
    try:
        assert front.limits.take("127.0.0.1") is None
        opening = openings_module.Opening(
            client, ("127.0.0.1", 1), front_module.FirstBytes(False), 10.0
        )
        openings.begin(opening)
        peer.sendall(front_module.PREFACE)
        for fd, events in poller.poll(5):
            openings.step(openings.by_fd[fd], events)
        assert opening in openings._ready
        # When the loop ends before connecting it (an error escaping the loop)
        openings.end_all()
        # Then its socket is closed and its place given back
        assert client.fileno() == -1 and front.limits.held == 0
    finally:
        client.close()
        peer.close()
        poller.close()


def test_a_relay_that_cannot_make_its_poller_fails_the_fronts_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    # Given no poller to be had (no descriptor left, say)
    def no_poller() -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(relay_module, "new_poller", no_poller)
    front = Front("127.0.0.1", 0, 1, None)
    threads = set(threading.enumerate())
    # Then starting the front fails (before: it listened, and the relay's thread died at once,
    # leaving every connection it took held, never read nor closed)
    with pytest.raises(OSError):
        front.start()
    # (no thread of its own left: compared as a set, as another test's threads may end meanwhile)
    assert front._relay._done and set(threading.enumerate()) <= threads
    # And its port is closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", front.port), timeout=2).close()
