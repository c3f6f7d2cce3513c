"""The controller's handovers (mqadmin electMaster) and its view of a group (getSyncStateSet),
on a fake clock: a chosen in-sync slave becomes master only after the old master's lease ran
out and it holds everything the old master wrote; refusals name their reason; a target that
does not catch up is not elected."""

from __future__ import annotations

from typing import Any

import pytest
from gevent.event import AsyncResult

from actors.namesrv.controller import Groups, Replicas
from actors.namesrv.handover import HANDOVER_CATCHUP_S, ElectMaster, ElectOutcome
from runtime.ha.control import LEASE_S, MARGIN_S, ControlRole
from runtime.remoting.codes import ResponseCode
from tests.actors.test_ha_controller import Fixture, T, start_group

pytestmark = pytest.mark.timeout(30)


def elect(f: Fixture, node: int | None, group: str = "g") -> Any:
    return f.ref.ask(ElectMaster(group, node), timeout=T)


def step(f: Fixture, dt: float, **offsets: int) -> None:
    """``dt`` later: each node named (``n0=...``) heartbeats with that offset, then a tick."""
    f.clock.now += dt
    for name, offset in offsets.items():
        node = int(name[1:])
        claim = node == 0 and f.groups()["master"] == 0
        f.beat(node=node, claim=claim, epoch=1, offset=offset, isr=[1] if claim else [])
    f.tick()


def test_a_handover_elects_the_slave_once_the_lease_ran_out_and_it_caught_up() -> None:
    # Given a group with master 0 (epoch 1, its lease held) and node 1 in sync
    f = Fixture()
    start_group(f)
    # When an operator asks for node 1
    pending = elect(f, 1)
    # Then the answer waits, and the master's heartbeats no longer renew its lease
    assert isinstance(pending, AsyncResult) and not pending.ready()
    renewal = f.beat(node=0, claim=True, epoch=1, offset=100, isr=[1])
    assert renewal.role is ControlRole.MASTER and renewal.lease_ms == 0
    # And nobody is elected while the old lease may still hold
    step(f, LEASE_S - 0.5, n0=100, n1=100)
    assert f.groups()["master"] == 0 and not pending.ready()
    # When the lease is over, the old master reports its final end and the slave is behind
    step(f, 0.5 + MARGIN_S + 0.01, n0=1000, n1=900)
    # Then it is not elected yet
    assert f.groups()["master"] == 0 and not pending.ready()
    # When the slave holds as much as the old master wrote
    step(f, 0.5, n1=1000)
    # Then it is master of epoch 2 and the operator is told
    assert (f.groups()["master"], f.groups()["epoch"]) == (1, 2)
    outcome = pending.get(timeout=T)
    assert outcome.code == ResponseCode.SUCCESS and outcome.view.master == 1
    assert outcome.view.master_addr == "10.0.0.1:10911" and outcome.view.epoch == 2
    # And the old master learns it is a slave of node 1 at its next heartbeat
    old = f.beat(node=0, claim=True, epoch=1, offset=1000)
    assert old.role is ControlRole.SLAVE and old.master_node == 1
    promoted = f.beat(node=1, epoch=1, offset=1000)
    assert promoted.role is ControlRole.MASTER and promoted.epoch == 2


def test_refusals_name_their_reason() -> None:
    f = Fixture()
    start_group(f)
    f.beat(node=2, epoch=1, offset=10)  # live, but the master does not report it in sync
    cases: list[tuple[Any, int, str]] = [
        (elect(f, 1, group="nope"), ResponseCode.CONTROLLER_BROKER_METADATA_NOT_EXIST, "nope"),
        (elect(f, 2), ResponseCode.CONTROLLER_ELECT_MASTER_FAILED, "in-sync set"),
        (elect(f, 7), ResponseCode.CONTROLLER_BROKER_NOT_ALIVE, "not alive"),
        (elect(f, None), ResponseCode.CONTROLLER_ELECT_MASTER_FAILED, "is alive"),
    ]
    for outcome, code, words in cases:
        assert isinstance(outcome, ElectOutcome)
        assert outcome.code == code and words in outcome.remark, outcome
    # The master itself: nothing to do
    same = elect(f, 0)
    assert same.code == ResponseCode.SUCCESS and same.view.master == 0
    # One handover at a time: another target is refused, the same one waits with the first
    first = elect(f, 1)
    assert isinstance(first, AsyncResult)
    assert elect(f, 2).remark == "g is already handing over to 1"
    assert isinstance(elect(f, 1), AsyncResult)
    assert f.groups()["master"] == 0


def test_a_controller_in_its_grace_period_elects_nobody() -> None:
    f = Fixture(grace=10.0)
    f.beat(node=0, claim=True)
    refused = elect(f, 0)
    assert refused.code == ResponseCode.CONTROLLER_ELECT_MASTER_FAILED
    assert "just started" in refused.remark


def test_a_target_that_does_not_catch_up_is_not_elected() -> None:
    # Given a handover to node 1 whose log stays behind the old master's
    f = Fixture()
    start_group(f)
    pending = elect(f, 1)
    step(f, LEASE_S + MARGIN_S + 0.01, n0=1000, n1=500)
    # When the catch-up time passes
    for _ in range(int(HANDOVER_CATCHUP_S) + 1):
        step(f, 1.0, n0=1000, n1=500)
    # Then the usual election ran: the old master, the most caught up, serves a new term
    assert (f.groups()["master"], f.groups()["epoch"]) == (0, 2)
    outcome = pending.get(timeout=T)
    assert outcome.code == ResponseCode.CONTROLLER_ELECT_MASTER_FAILED
    assert outcome.remark == "1 was not elected: 0 was"


def test_replicas_show_the_master_the_in_sync_set_and_who_is_alive() -> None:
    f = Fixture()
    start_group(f)
    f.beat(node=2, epoch=1, offset=10)
    before = f.ref.ask(Replicas(("g", "unknown")), timeout=T)
    assert list(before) == ["g"]
    view = before["g"]
    assert (view.cluster, view.master, view.master_addr, view.epoch) == (
        "C",
        0,
        "10.0.0.0:10911",
        1,
    )
    assert view.isr == [0, 1]
    assert view.members == {
        0: ("10.0.0.0:10911", True),
        1: ("10.0.0.1:10911", True),
        2: ("10.0.0.2:10911", True),
    }
    # When the master reports node 2 in sync too, the set's epoch goes up
    f.beat(node=0, claim=True, epoch=1, isr=[1, 2])
    after = f.ref.ask(Replicas(("g",)), timeout=T)["g"]
    assert after.isr == [0, 1, 2] and after.isr_epoch == view.isr_epoch + 1
    # And a member silent for longer than a lease shows as not alive
    f.clock.now += LEASE_S + 1
    f.beat(node=0, claim=True, epoch=1, isr=[1, 2])
    assert f.ref.ask(Replicas(("g",)), timeout=T)["g"].members[2] == ("10.0.0.2:10911", False)
    assert f.ref.ask(Groups(), timeout=T)["g"]["master"] == 0
