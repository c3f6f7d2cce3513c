"""Heartbeats that reach the controller out of order: a broker's heartbeat that went on a
connection that failed can arrive after the next one, sent on a new connection. The controller
applies none older than one it applied (``ControllerHeartbeat.incarnation`` / ``seq``), so a
stale in-sync set never overwrites a newer one (a slave the master dropped would be electable
again, lacking what the master acknowledged since)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from actors.namesrv.controller import Heartbeat
from actors.namesrv.group_commit import settled
from runtime.ha.control import ControlRole
from tests.actors.test_ha_controller import Fixture, hb, start_group

pytestmark = pytest.mark.timeout(30)
T = 5.0


def beat(f: Fixture, incarnation: int, seq: int, **kw: Any) -> Any:
    node = kw.pop("node")
    message = msgspec.structs.replace(hb(node, **kw), incarnation=incarnation, seq=seq)
    return settled(f.ref.ask(Heartbeat(message), timeout=T), T)


def test_an_older_heartbeat_arriving_late_does_not_bring_back_its_in_sync_set() -> None:
    # Given master 0 (epoch 1) whose heartbeat 6 says slave 1 is in sync
    f = Fixture()
    start_group(f)
    beat(f, 77, 6, node=0, claim=True, epoch=1, isr=[1])
    assert f.groups()["isr"] == [1]
    # When its heartbeat 8 (slave 1 left the set) arrives before its heartbeat 7 (still [1])
    newer = beat(f, 77, 8, node=0, claim=True, epoch=1, isr=[])
    assert newer.lease_ms > 0 and newer.in_sync == []
    late = beat(f, 77, 7, node=0, claim=True, epoch=1, isr=[1])
    # Then the late one changes nothing: the in-sync set stays the newer one's
    assert late.role is ControlRole.WAIT and late.lease_ms == 0
    assert f.groups()["isr"] == []
    # and a repeated number is as stale
    assert beat(f, 77, 8, node=0, claim=True, epoch=1, isr=[1]).role is ControlRole.WAIT
    assert f.groups()["isr"] == []


def test_a_late_heartbeat_of_a_replaced_incarnation_is_not_taken() -> None:
    # Given master 0's ControllerClient restarted: incarnation 5 followed by incarnation 9
    f = Fixture()
    start_group(f)
    beat(f, 5, 40, node=0, claim=True, epoch=1, isr=[1])
    beat(f, 9, 1, node=0, claim=True, epoch=1, isr=[])
    # When a heartbeat of the old incarnation arrives late
    late = beat(f, 5, 41, node=0, claim=True, epoch=1, isr=[1])
    # Then it is not taken; the new incarnation's next one is
    assert late.role is ControlRole.WAIT
    assert f.groups()["isr"] == []
    assert beat(f, 9, 2, node=0, claim=True, epoch=1, isr=[1]).lease_ms > 0
    assert f.groups()["isr"] == [1]


def test_a_broker_without_numbers_is_taken_as_before() -> None:
    # Given an older broker (no incarnation, no seq), When its heartbeats arrive, Then each is taken
    f = Fixture()
    start_group(f)
    assert f.beat(node=0, claim=True, epoch=1, isr=[]).lease_ms > 0
    assert f.beat(node=0, claim=True, epoch=1, isr=[1]).lease_ms > 0
    assert f.groups()["isr"] == [1]
