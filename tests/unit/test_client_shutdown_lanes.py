"""A producer's shutdown fails the sends that wait for a route (or a connection) at once, as it
fails the sends whose requests are out: none is left pending for good."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import ClientError, ClientStateError, Message, Producer

pytestmark = pytest.mark.timeout(30)


class SilentNamesrv:
    """A name server that takes connections and requests and never answers; ``asked`` is set
    once some request bytes arrived."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.asked = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.asked.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def namesrv() -> Iterator[SilentNamesrv]:
    ns = SilentNamesrv()
    yield ns
    ns.close()


def test_sends_waiting_for_a_route_fail_at_once_when_the_producer_shuts_down(
    namesrv: SilentNamesrv,
) -> None:
    # Given a producer whose name server never answers the route request of its topic
    producer = Producer("lane-closing", namesrv=namesrv.address).start()
    outcomes: list[BaseException | None] = []
    called = threading.Event()

    def callback(_result: Any, error: BaseException | None) -> None:
        outcomes.append(error)
        called.set()

    # And an async send and a sync send (another thread) waiting for that route
    future = producer.send_async(Message("Orders", b"async"), callback)
    sync_outcome: list[BaseException] = []

    def sender() -> None:
        try:
            producer.send(Message("Orders", b"sync"))
        except ClientError as exc:
            sync_outcome.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    assert namesrv.asked.wait(5)
    # When the producer shuts down without waiting for them
    started = time.monotonic()
    producer.shutdown(timeout=0.3)
    # Then both failed as the client is stopping, promptly (not after their 3 s timeout, and
    # the async one not left pending for good once the client's hub stopped)
    error = future.exception(timeout=5)
    assert isinstance(error, ClientStateError) and "stopping" in str(error), error
    assert called.wait(5) and outcomes == [error]
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2.5
    assert len(sync_outcome) == 1 and isinstance(sync_outcome[0], ClientStateError)
    assert "stopping" in str(sync_outcome[0])


def test_a_request_async_waiting_for_its_route_fails_when_the_producer_shuts_down(
    namesrv: SilentNamesrv,
) -> None:
    # Given a producer whose name server never answers, and a request_async waiting for the
    # route of its topic
    producer = Producer("request-closing", namesrv=namesrv.address).start()
    outcomes: list[BaseException | None] = []
    called = threading.Event()

    def callback(_reply: Any, error: BaseException | None) -> None:
        outcomes.append(error)
        called.set()

    future = producer.request_async(Message("Orders", b"question"), callback, timeout=3.0)
    assert namesrv.asked.wait(5)
    # When the producer shuts down
    producer.shutdown(timeout=0.3)
    # Then the request failed (the producer shut down) and its callback ran once, instead of
    # staying pending for good once the client's hub stopped
    error = future.exception(timeout=5)
    assert isinstance(error, ClientStateError), error
    assert called.wait(5) and outcomes == [error]
