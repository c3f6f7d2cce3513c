"""The ControllerClient when a rebuild of its node fails, and replies applied in order.

A failed rebuild (the handle refuses or raises, or the node is still here long after it was
asked) used to leave the node silent for good: no heartbeat was sent again, so a slave told to
become master never was and a fenced master never learned anything more. Now it logs, heartbeats
on, and retries the rebuild at the controller's next word after a backoff.

The controller is a closed port (heartbeats fail at once: the replies are told by the test)."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import gevent
import pykka
import pytest

import actors.broker.controller_client as cc
from actors.broker.controller_client import ControllerClient
from actors.broker.ha_messages import HeartbeatDone
from actors.broker.ha_service import HAContext
from config import BrokerConfig, BrokerRole
from runtime.directory import Directory
from runtime.ha.control import ControllerReply, ControlRole
from runtime.ha.epoch import EpochFile
from runtime.ha.state import HAState, Role
from tests.actors.ha_support import free_port, wait_until

pytestmark = pytest.mark.timeout(30)


class Handle:
    """A BrokerHandle whose ``replace`` answers ``outcome`` (an exception: raised)."""

    def __init__(self, outcome: Any) -> None:
        self.name = "broker-a"
        self.outcome = outcome
        self.rebuilding = False
        self.asked: list[BrokerConfig] = []

    def replace(self, cfg: BrokerConfig) -> bool:
        self.asked.append(cfg)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        self.rebuilding = bool(self.outcome)
        return bool(self.outcome)


class Counting(ControllerClient):
    """Counts the heartbeats it builds."""

    beats = 0

    def _heartbeat(self) -> Any:
        Counting.beats += 1
        return super()._heartbeat()


class Client:
    def __init__(self, tmp: pathlib.Path, handle: Handle, role: Role) -> None:
        cfg = BrokerConfig(
            broker_name="broker-a",
            broker_role=BrokerRole.SLAVE if role is Role.SLAVE else BrokerRole.ASYNC_MASTER,
            broker_id=1 if role is Role.SLAVE else 0,
            controller_addr=f"127.0.0.1:{free_port()}",  # nobody listens: heartbeats fail
        )
        self.state = HAState(node_id=1, role=role, sync=False, controller_mode=True)
        store: Any = SimpleNamespace(opened=None, directory=Directory())
        ha = HAContext(store, self.state, EpochFile(str(tmp)), prefix="broker-a")
        self.registered = 0
        self.handle = handle
        Counting.beats = 0
        self.ref = Counting.start(cfg, ha, handle, self._register)

    def _register(self) -> None:
        self.registered += 1

    def told(self, reply: ControllerReply, sent_at: float | None = None) -> None:
        now = time.monotonic() if sent_at is None else sent_at
        self.ref.tell(HeartbeatDone(now, reply, frozenset()))

    def beats_go_on(self) -> None:
        """At least two more heartbeats are built (the timer sends one a second)."""
        seen = Counting.beats
        wait_until(lambda: Counting.beats >= seen + 2, timeout=5.0, what="heartbeats go on")


PROMOTE = ControllerReply(role=ControlRole.MASTER, epoch=1, sync=False)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cc, "REBUILD_RETRY_S", 0.2, raising=False)
    monkeypatch.setattr(cc, "REBUILD_CHECK_S", 0.1, raising=False)


@pytest.fixture
def stop_all() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=5.0)


@pytest.mark.parametrize("outcome", [False, RuntimeError("no spec")], ids=["refused", "raised"])
def test_a_failed_rebuild_keeps_heartbeating_and_is_retried(
    tmp_path: pathlib.Path, outcome: Any, stop_all: None
) -> None:
    # Given a slave the controller tells to become master, whose rebuild fails
    c = Client(tmp_path, Handle(outcome), Role.SLAVE)
    c.told(PROMOTE)
    wait_until(lambda: len(c.handle.asked) == 1, what="a rebuild asked for")
    # Then the ControllerClient is still running and heartbeats on (it went silent)
    assert c.ref.is_alive()
    c.beats_go_on()
    # When the controller says it again after the backoff, Then the rebuild is retried
    c.told(PROMOTE)
    wait_until(lambda: len(c.handle.asked) == 2, what="the rebuild retried")
    assert c.handle.asked[-1].broker_role is BrokerRole.ASYNC_MASTER
    assert c.ref.is_alive()


def test_a_retry_waits_for_its_backoff(tmp_path: pathlib.Path, stop_all: None) -> None:
    # Given a rebuild that failed a moment ago (backoff 0.2 s, then 0.4 s)
    c = Client(tmp_path, Handle(False), Role.SLAVE)
    c.told(PROMOTE)
    wait_until(lambda: len(c.handle.asked) == 1, what="a rebuild asked for")
    # When the controller says it again at once, Then no rebuild yet
    c.told(PROMOTE)
    c.ref.proxy().address.get(timeout=5.0)  # (handled in order: the tell is done)
    assert len(c.handle.asked) == 1


def test_a_rebuild_not_under_way_is_given_up_and_heartbeats_resume(
    tmp_path: pathlib.Path, stop_all: None
) -> None:
    # Given a master told SLAVE whose rebuild was asked for but is not under way (the
    # handle took it, then dropped it: ``rebuilding`` false while this node is still here)
    handle = Handle(True)
    c = Client(tmp_path, handle, Role.MASTER)
    c.told(ControllerReply(role=ControlRole.SLAVE, epoch=2, register_id=1))
    wait_until(lambda: len(handle.asked) == 1, what="a rebuild asked for")
    assert c.state.fenced
    handle.rebuilding = False
    # Then the check finds it failed: heartbeats resume, the master stays fenced
    c.beats_go_on()
    assert c.state.fenced and not c.state.accepting_writes()


def test_heartbeats_stop_while_the_rebuild_is_under_way(
    tmp_path: pathlib.Path, stop_all: None
) -> None:
    # Given a rebuild the node's supervisor is on (``rebuilding``)
    handle = Handle(True)
    c = Client(tmp_path, handle, Role.SLAVE)
    c.told(PROMOTE)
    wait_until(lambda: len(handle.asked) == 1, what="a rebuild asked for")
    seen = Counting.beats
    # When several checks pass (0.1 s each), Then no heartbeat is sent meanwhile
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        gevent.sleep(0.05)
    assert Counting.beats <= seen + 1  # (one may have been on its way)


def test_an_older_reply_does_not_override_a_newer_one(
    tmp_path: pathlib.Path, stop_all: None
) -> None:
    # Given a master holding a lease from a heartbeat sent at t2 naming slave 2 in sync
    c = Client(tmp_path, Handle(False), Role.MASTER)
    t2 = time.monotonic()
    lease = ControllerReply(role=ControlRole.MASTER, epoch=0, lease_ms=3000, in_sync=[2])
    c.told(lease, sent_at=t2)
    wait_until(lambda: c.state.isr_acknowledged == {2}, what="the lease applied")
    # When the reply to a heartbeat sent earlier (naming slave 1) is applied after it
    older = ControllerReply(role=ControlRole.MASTER, epoch=0, lease_ms=3000, in_sync=[1])
    c.told(older, sent_at=t2 - 0.5)
    c.beats_go_on()
    # Then the newer reply's in-sync set and lease stand
    assert c.state.isr_acknowledged == {2}
    assert c.state.lease_until == t2 + 3.0
