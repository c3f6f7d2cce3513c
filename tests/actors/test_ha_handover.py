"""The controller's handovers (mqadmin electMaster) and its view of a group (getSyncStateSet),
on a fake clock: a chosen in-sync slave becomes master only after the old master's lease ran
out and it holds everything the old master wrote; refusals name their reason; a target that
does not catch up is not elected; members taken out of service are forgotten on request
(mqadmin cleanBrokerMetadata), living ones and the master only as the rules allow."""

from __future__ import annotations

from typing import Any

import pytest
from gevent.event import AsyncResult

from actors.namesrv.controller import Groups, Replicas
from actors.namesrv.group_commit import settled
from actors.namesrv.handover import (
    HANDOVER_CATCHUP_S,
    CleanBrokerData,
    ElectMaster,
    ElectOutcome,
)
from runtime.ha.control import LEASE_S, MARGIN_S, ControlRole
from runtime.remoting.codes import ResponseCode
from tests.actors.test_ha_controller import Fixture, T, start_group

pytestmark = pytest.mark.timeout(30)


def elect(f: Fixture, node: int | None, group: str = "g") -> Any:
    return settled(f.ref.ask(ElectMaster(group, node), timeout=T), T)


TOKENS: dict[int, int] = {}
"""Fixture id -> the resign token the simulated master 0 gave its lease up for."""


def step(f: Fixture, dt: float, writable: bool = False, **offsets: int) -> None:
    """``dt`` later: each node named (``n0=...``) heartbeats with that offset, then a tick.
    Node 0, the master, behaves as a broker does: it says whether it may still write and,
    once a reply told it to resign, gives its lease up and carries the token from then on."""
    f.clock.now += dt
    for name, offset in offsets.items():
        node = int(name[1:])
        claim = node == 0 and f.groups()["master"] == 0
        isr = [1] if claim else []
        token = TOKENS.get(id(f), 0) if claim else 0
        reply = f.beat(
            node=node,
            claim=claim,
            epoch=1,
            offset=offset,
            isr=isr,
            writable=claim and writable and not token,
            resigned=token,
        )
        if claim and reply.resign:
            TOKENS[id(f)] = reply.resign
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
    step(f, LEASE_S - 0.5, writable=True, n0=100, n1=100)
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


def test_a_heartbeat_built_while_the_master_could_still_write_is_not_its_final_end() -> None:
    # Given a handover whose old master's lease is over at the controller
    f = Fixture()
    start_group(f)
    pending = elect(f, 1)
    # When a heartbeat it built just before its own lease ended (it could still write and
    # acknowledge more) arrives late, with the slave as far as that heartbeat says
    step(f, LEASE_S + MARGIN_S + 0.05, writable=True, n0=1000, n1=1000)
    # Then that is not its final end: nobody is elected
    assert f.groups()["master"] == 0 and not pending.ready()
    # When its next heartbeat, built without write rights, says 1100 (acks given meanwhile)
    step(f, 0.5, n0=1100, n1=1000)
    # Then the slave must hold those too
    assert f.groups()["master"] == 0 and not pending.ready()
    step(f, 0.5, n1=1100)
    assert f.groups()["master"] == 1
    assert pending.get(timeout=T).code == ResponseCode.SUCCESS


def test_an_out_of_sync_member_is_refused_even_when_the_group_has_no_master() -> None:
    # Given master 0 and its in-sync slave 1 (holding every ack) gone, slave 2 far behind
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    for _ in range(5):
        step(f, 1.0, n2=10)
    assert f.groups()["master"] is None  # the usual election refuses 2
    # When an operator asks for 2, Then it is refused: electing it could lose acks
    refused = elect(f, 2)
    assert isinstance(refused, ElectOutcome)
    assert refused.code == ResponseCode.CONTROLLER_ELECT_MASTER_FAILED
    assert "in-sync set [1]" in refused.remark and f.groups()["master"] is None


def test_a_target_that_dies_is_given_up_and_the_usual_election_runs() -> None:
    # Given a handover to node 1, which then goes silent
    f = Fixture()
    start_group(f)
    pending = elect(f, 1)
    step(f, LEASE_S - 0.5, writable=True, n0=900, n1=900)
    step(f, 0.5 + MARGIN_S + 0.05, n0=1000)
    assert not pending.ready()  # behind, still heard from within a lease
    # When it has been silent for a lease, before the catch-up deadline
    step(f, LEASE_S, n0=1000)
    # Then the handover gives up: the old master, the only candidate, serves a new term
    assert (f.groups()["master"], f.groups()["epoch"]) == (0, 2)
    outcome = pending.get(timeout=T)
    assert outcome.code == ResponseCode.CONTROLLER_ELECT_MASTER_FAILED
    assert outcome.remark == "1 was not elected: 0 was"


def test_no_broker_id_after_the_master_lost_its_lease_elects_at_once() -> None:
    f = Fixture()
    start_group(f)
    f.clock.now += LEASE_S + MARGIN_S + 0.05  # the master silent: its lease ran out
    f.beat(node=1, epoch=1, offset=10)
    outcome = elect(f, None)
    assert outcome.code == ResponseCode.SUCCESS and outcome.view.master == 1
    assert outcome.view.epoch == 2


def test_cleaning_forgets_gone_members_and_refuses_living_ones() -> None:
    f = Fixture()
    start_group(f)
    f.beat(node=2, epoch=1, offset=10)

    def clean(*nodes: int, group: str = "g", living: bool = False) -> ElectOutcome:
        return settled(f.ref.ask(CleanBrokerData(group, tuple(nodes), living), timeout=T), T)

    invalid = ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA
    # Refused: an unknown group or member, a living member, the master, a handover's member
    assert clean(2, group="nope").code == ResponseCode.CONTROLLER_BROKER_METADATA_NOT_EXIST
    assert clean(9).code == invalid
    alive = clean(2)
    assert alive.code == invalid and "alive" in alive.remark
    assert "is the master" in clean(0, living=True).remark
    # When node 2 is silent for longer than a lease (taken out of service)
    f.clock.now += LEASE_S + 0.5
    f.beat(node=0, claim=True, epoch=1, isr=[1], writable=True)
    f.beat(node=1, epoch=1)
    done = clean(2)
    # Then it is forgotten; the others stay
    assert done.code == ResponseCode.SUCCESS and sorted(done.view.members) == [0, 1]
    # And a living member goes only when asked to (it comes back at its next heartbeat)
    assert clean(1, living=True).code == ResponseCode.SUCCESS
    assert sorted(f.groups()["members"]) == [0]
    f.beat(node=1, epoch=1)
    assert sorted(f.groups()["members"]) == [0, 1]
    # And a handover's members cannot be cleaned while it runs
    f.beat(node=0, claim=True, epoch=1, isr=[1], writable=True)  # in sync again
    pending = elect(f, 1)
    assert isinstance(pending, AsyncResult)
    assert "handing over" in clean(1, living=True).remark


def test_a_master_that_resigns_is_replaced_without_waiting_for_its_lease() -> None:
    # Given a group whose master holds its lease, and a heartbeat of it (taken before the
    # handover) saying it could not write for a moment
    f = Fixture()
    start_group(f)
    f.beat(node=0, claim=True, epoch=1, offset=500, isr=[1], writable=False)
    pending = elect(f, 1)
    # Then that heartbeat does not count: its reply may have granted a lease
    f.beat(node=1, epoch=1, offset=500)
    f.tick()
    assert f.groups()["master"] == 0 and not pending.ready()
    # When the master's next heartbeat is answered "resign" (no lease) and it says at once
    # that it gave up its lease, at 520
    asked = f.beat(node=0, claim=True, epoch=1, offset=520, isr=[1], writable=True)
    assert asked.role is ControlRole.MASTER and asked.resign and asked.lease_ms == 0
    # (a heartbeat saying it cannot write, without the handover's token, is not enough: one
    # built earlier and delivered late, on another connection, would say the same)
    f.beat(node=0, claim=True, epoch=1, offset=520, isr=[1], writable=False)
    f.tick()
    assert f.groups()["master"] == 0 and not pending.ready()
    f.beat(node=0, claim=True, epoch=1, offset=520, isr=[1], writable=False, resigned=asked.resign)
    f.beat(node=1, epoch=1, offset=520)
    f.tick()
    # Then the slave holding it all is elected at once, long before the lease would end
    assert (f.groups()["master"], f.groups()["epoch"]) == (1, 2)
    assert pending.get(timeout=T).code == ResponseCode.SUCCESS


def test_a_target_that_dies_before_the_old_master_resigned_elects_nobody_yet() -> None:
    # Given a handover to node 1, the master (whose lease holds) not answering the resign
    f = Fixture()
    start_group(f)
    f.beat(node=0, claim=True, epoch=1, isr=[1, 2], writable=True)
    f.beat(node=2, epoch=1, offset=150)
    pending = elect(f, 1)
    f.clock.now += 2.0
    f.beat(node=0, claim=True, epoch=1, offset=100, isr=[1, 2], writable=True)
    f.beat(node=2, epoch=1, offset=150)
    # When the target has been silent for a lease while the old lease may still hold
    f.clock.now += 1.1
    f.tick()
    # Then nobody else is elected: two masters would hold a lease
    assert f.groups()["master"] == 0 and f.groups()["epoch"] == 1 and not pending.ready()
    # And once that lease surely ran out, the usual election runs and the operator is told
    f.clock.now += 0.2
    f.beat(node=2, epoch=1, offset=150)
    f.tick()
    assert f.groups()["epoch"] == 2
    assert pending.get(timeout=T).code != ResponseCode.SUCCESS


@pytest.mark.parametrize("why", ["short", "power-cut"])
def test_a_handover_to_a_target_that_may_lack_acknowledged_records_elects_nobody(
    why: str,
) -> None:
    # Given master 0 that acknowledged up to 5000, held by its in-sync slave 1
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=5000, confirmed=5000)
    # When both lose power, the old master comes back alone (as a slave) short of it or from
    # a power loss, and the group has no master
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()
    back = {"offset": 3000} if why == "short" else {"offset": 5000, "power_cut": True}
    f.beat(node=0, epoch=1, **back)
    f.tick()
    assert f.groups()["master"] is None
    # And an operator asks for node 0 (mqadmin electMaster -b 0)
    pending = elect(f, 0)
    for _ in range(int((HANDOVER_CATCHUP_S + MARGIN_S) / 0.5) + 3):
        f.clock.now += 0.5
        f.beat(node=0, epoch=1, **back)
        f.tick()
    # Then it is not elected over the records slave 1 may hold: the operator is told
    assert f.groups()["master"] is None
    outcome = pending.get(timeout=T) if isinstance(pending, AsyncResult) else pending
    assert outcome.code != ResponseCode.SUCCESS
    # When slave 1 returns holding more, Then it is elected
    f.beat(node=1, epoch=1, offset=5100)
    assert f.groups()["master"] == 1


@pytest.mark.parametrize("survivor", [0, 1], ids=["last-master", "slave"])
def test_forgetting_the_members_that_held_them_accepts_the_loss(survivor: int) -> None:
    # Given master 0 that acknowledged up to 5000 with slaves 1 and 2 in sync, and a double
    # failure: the survivor comes back short (3000), the other machine is gone for good, and
    # slave 2 is gone too
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    f.beat(node=2, epoch=1, offset=5000)
    f.beat(node=0, claim=True, epoch=1, isr=[1, 2], offset=5000, confirmed=5000)
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()
    for _ in range(3):
        f.clock.now += 1.0
        f.beat(node=survivor, epoch=1, offset=3000, power_cut=True)
        f.tick()
    assert f.groups()["master"] is None
    # When the operator forgets the members that held the records (RELIABILITY.md R14: the
    # loss accepted), the survivor living
    gone = (1, 2) if survivor == 0 else (0, 2)
    done = settled(f.ref.ask(CleanBrokerData("g", gone, False), timeout=T), T)
    assert done.code == ResponseCode.SUCCESS
    # Then the survivor, which runs as a slave by now (it never claims), is elected
    for _ in range(2):
        f.clock.now += 1.0
        reply = f.beat(node=survivor, epoch=1, offset=3000, power_cut=True)
        f.tick()
    assert f.groups()["master"] == survivor and f.groups()["epoch"] == 2
    assert reply.role is ControlRole.MASTER and f.groups()["confirmed"] == 3000


def test_every_member_back_short_is_given_up_by_forgetting_the_shortest() -> None:
    # Given master 0 that acknowledged 5000 with slave 1 in sync, both back short of it
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=5000, confirmed=5000)
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()
    for _ in range(3):
        f.clock.now += 1.0
        f.beat(node=0, epoch=1, offset=4000, power_cut=True)
        f.beat(node=1, epoch=1, offset=3000, power_cut=True)
        f.tick()
    assert f.groups()["master"] is None
    # When the operator forgets the shorter, living slave (it comes back at its next heartbeat)
    done = settled(f.ref.ask(CleanBrokerData("g", (1,), True), timeout=T), T)
    assert done.code == ResponseCode.SUCCESS
    f.clock.now += 1.0
    f.beat(node=0, epoch=1, offset=4000, power_cut=True)
    # Then the longer log is elected and the slave follows it
    assert f.groups()["master"] == 0 and f.groups()["confirmed"] == 4000
    assert f.beat(node=1, epoch=1, offset=3000, power_cut=True).master_node == 0
