"""Listeners on IPv6 hosts (``runtime.net.bind``): ``::1`` binds AF_INET6, ``::`` is dual stack
(IPv4 peers show as IPv4, as Java reports them), and addresses read back RocketMQ style."""

from __future__ import annotations

import socket

import pytest

from runtime.errors import ConfigError
from runtime.hostport import format_address
from runtime.net import address_of, bind


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _ipv6(), reason="IPv6 is unavailable: cannot bind ::1")


def _peer_seen(listener: socket.socket, family: socket.AddressFamily, host: str) -> str:
    port = listener.getsockname()[1]
    with socket.create_connection((host, port), timeout=5) as client:
        assert client.family == family
        listener.settimeout(5)
        conn, peer = listener.accept()
        conn.close()
    return format_address(peer[0], peer[1])


def test_loopback_v6_listener() -> None:
    sock = bind("::1", 0, what="listenPort")
    try:
        # Given a listener on ::1, Then its address is unbracketed and IPv6 clients connect
        assert sock.family == socket.AF_INET6
        assert address_of(sock) == f"::1:{sock.getsockname()[1]}"
        assert _peer_seen(sock, socket.AF_INET6, "::1").startswith("::1:")
    finally:
        sock.close()


def test_any_v6_listener_is_dual_stack() -> None:
    sock = bind("::", 0, what="listenPort")
    try:
        # Given a listener on ::, When an IPv4 client connects, Then it is seen as IPv4
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        assert _peer_seen(sock, socket.AF_INET, "127.0.0.1").startswith("127.0.0.1:")
        assert _peer_seen(sock, socket.AF_INET6, "::1").startswith("::1:")
    finally:
        sock.close()


def test_a_busy_v6_port_is_a_config_error() -> None:
    sock = bind("::1", 0, what="listenPort")
    try:
        with pytest.raises(ConfigError) as err:
            bind("::1", sock.getsockname()[1], what="listenPort")
        assert "address already in use" in err.value.problem and "::1:" in err.value.problem
    finally:
        sock.close()
