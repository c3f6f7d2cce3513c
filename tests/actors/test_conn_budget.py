"""Accepted connections are held against the process's budget (``runtime.conn_budget``): one
past it is closed at once, the others are served, and a closed one frees its place; an
``accept`` that finds no descriptor pauses the listener without a traceback."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from runtime.conn_budget import ConnectionBudget, default_limit
from runtime.net import Acceptor, _Server, bind
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle, session_factory
from tests.actors.ha_support import wait_until
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)


class Answer:
    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        return RemotingCommand.response_to(request, 0)

    def on_close(self, session: SessionHandle) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, ConnectionBudget]]:
    budget = ConnectionBudget(limit=2)
    sock = bind("127.0.0.1", 0, what="test")
    acceptor = Acceptor.start("test", sock, session_factory("test", Answer()), budget=budget)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", budget
    finally:
        acceptor.stop(timeout=5)
        sock.close()


def test_a_connection_past_the_budget_is_closed_and_a_freed_place_is_taken(
    listener: tuple[str, ConnectionBudget],
) -> None:
    address, budget = listener
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        # Given two connections served, the budget's two
        first, second = WireClient(address), WireClient(address)
        assert first.call(10).code == 0 and second.call(10).code == 0
        # When a third connects
        third = WireClient(address)
        # Then it is closed at once, with a warning, and the first two go on being served
        with pytest.raises(ConnectionError):
            third.call(10)
        assert any("refusing connections" in w for w in warnings)
        assert first.call(10).code == 0 and budget.held == 2
        # When one of the two closes
        first.sock.close()
        wait_until(lambda: budget.held == 1, what="the closed connection's place freed")
        # Then a new connection is served
        fourth = WireClient(address)
        assert fourth.call(10).code == 0
        for client in (second, third, fourth):
            client.sock.close()
    finally:
        logger.remove(sink)


class _NoDescriptors:
    """A listening socket whose ``accept`` finds no descriptor free."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock

    def _accept(self) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_accept_out_of_descriptors_pauses_the_listener_without_a_traceback() -> None:
    # Given a started server whose accept fails for want of descriptors
    budget = ConnectionBudget(limit=2)
    sock = bind("127.0.0.1", 0, what="test")
    server = _Server(sock, lambda *_: None)
    server.budget = budget
    server.start()
    server.socket = _NoDescriptors(sock)
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        # When it reads an accept
        assert server.do_read() is None
        # Then it stops accepting, says why, and accepts again after the pause
        assert server._watcher is None  # (gevent: not accepting)
        assert any("out of file descriptors (Too many open files)" in w for w in warnings)
        wait_until(lambda: server._watcher is not None, what="accepting again")
    finally:
        logger.remove(sink)
        server.socket = sock
        server.stop()
        sock.close()


def test_the_default_is_half_the_open_files_limit_less_a_reserve(monkeypatch: Any) -> None:
    monkeypatch.setattr("resource.getrlimit", lambda _which: (20_000, 20_000))
    assert default_limit() == 9_744
    monkeypatch.setenv("ACTORMQ_MAX_CONNECTIONS", "5")
    assert default_limit() == 5


def test_a_full_process_budget_never_keeps_a_slave_off_the_ha_port(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import conn_budget
    from runtime.ha import protocol as P
    from tests.actors.ha_support import FakeSlave, broker_config, label, start_broker, stop_node

    master = start_broker(broker_config("broker-a", 0, "SYNC_MASTER", ""), tmp_path / "m")
    try:
        # Given a process whose client connections used its whole budget
        monkeypatch.setattr(conn_budget.PROCESS, "_limit", conn_budget.PROCESS.held)
        with pytest.raises(ConnectionError):
            WireClient(master.addresses[label(master)]).call(10)
        # When a slave links, Then the HA port takes it (its own budget)
        slave = FakeSlave(master.ha_addresses[label(master)], node=1)
        assert isinstance(slave.next_frame(), P.Accept)
        slave.close()
    finally:
        stop_node(master)
