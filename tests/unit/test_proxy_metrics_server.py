"""The proxy's metrics server ends a connection that sends nothing: each connection holds a
thread, and an idle one held it for ever (connections that never send pile up threads)."""

from __future__ import annotations

import socket

import pytest

from actors.proxy.metrics import CallStats, MetricsServer

pytestmark = pytest.mark.timeout(20)


def test_an_idle_connection_is_closed_after_the_read_timeout() -> None:
    # Given the metrics server with a short read timeout
    server = MetricsServer(None, CallStats(), "127.0.0.1", 0, read_timeout_s=0.2)
    port = server.start()
    try:
        # When a client connects and sends nothing
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            # Then the server closes it (an empty read), well before the client's own timeout
            assert conn.recv(1) == b""
    finally:
        server.stop()
