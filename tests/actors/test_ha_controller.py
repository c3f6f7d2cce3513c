"""The controller's decisions on a fake clock: adoption of a fresh group's master, leases, no
election before the old lease ran out (two masters never both hold one), elections by offset
within the in-sync set, epochs, a restarted controller that only adopts the newest claimant."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from actors.namesrv.controller import (
    BrokerDown,
    Controller,
    ControllerTick,
    Groups,
    Heartbeat,
    Refused,
    Replicas,
    SessionClosed,
)
from actors.namesrv.group_commit import settled
from actors.namesrv.handover import CleanBrokerData, ElectMaster
from runtime.ha.control import LEASE_S, MARGIN_S, ControllerHeartbeat, ControlRole
from runtime.remoting.codes import ResponseCode

pytestmark = pytest.mark.timeout(30)
T = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hb(
    node: int,
    *,
    claim: bool = False,
    epoch: int = 0,
    offset: int = 0,
    isr: Any = (),
    writable: bool = False,
    resigned: int = 0,
    confirmed: int = 0,
    power_cut: bool = False,
) -> Any:
    return ControllerHeartbeat(
        cluster="C",
        group="g",
        node=node,
        addr=f"10.0.0.{node}:10911",
        ha_addr=f"10.0.0.{node}:10912",
        claim_master=claim,
        epoch=epoch,
        max_offset=offset,
        in_sync=list(isr),
        writable=writable,
        resigned=resigned,
        confirmed=confirmed,
        power_cut=power_cut,
    )


class Fixture:
    def __init__(self, grace: float = 0.0) -> None:
        self.clock = Clock()
        self.ref = Controller.start(grace_s=grace, clock=self.clock)

    def beat(self, **kw: Any) -> Any:
        node = kw.pop("node")
        return settled(self.ref.ask(Heartbeat(hb(node, **kw)), timeout=T), T)

    def tick(self) -> None:
        settled(self.ref.ask(ControllerTick(), timeout=T), T)

    def groups(self) -> Any:
        return self.ref.ask(Groups(), timeout=T)["g"]


def start_group(f: Fixture) -> None:
    """Node 0 (configured master) is adopted for epoch 1, takes its lease; node 1 is in sync."""
    assert f.beat(node=1, offset=0).role is ControlRole.SLAVE  # no claimant yet
    first = f.beat(node=0, claim=True)
    assert (first.role, first.epoch, first.lease_ms) == (ControlRole.MASTER, 1, 0)
    leased = f.beat(node=0, claim=True, epoch=1, isr=[1])
    assert leased.role is ControlRole.MASTER and leased.lease_ms == int(LEASE_S * 1000)
    assert leased.in_sync == [1]


def outlive_the_lease(f: Fixture) -> None:
    """Slave 1 heartbeats (offset 500) while master 0 is silent: nobody is elected before the
    lease (3 s) + margin ran out; then one more tick."""
    for _ in range(3):
        f.clock.now += 1.0
        f.beat(node=1, epoch=1, offset=500)
        f.tick()
        assert f.groups()["master"] == 0
    f.clock.now += MARGIN_S + 0.01
    f.beat(node=1, epoch=1, offset=500)
    f.tick()


def test_a_fresh_group_adopts_its_configured_master() -> None:
    f = Fixture()
    start_group(f)
    # A slave learns where its master is and which id to register with
    slave = f.beat(node=1, epoch=1, offset=10)
    assert slave.role is ControlRole.SLAVE
    assert (slave.master_node, slave.master_ha_addr, slave.register_id) == (0, "10.0.0.0:10912", 1)


def test_no_election_before_the_old_lease_ran_out() -> None:
    f = Fixture()
    start_group(f)
    # When the master goes silent, the slave keeps heartbeating
    # Then nobody is elected while the master's lease (3 s) + margin may still hold
    outlive_the_lease(f)
    # After it ran out the in-sync slave is elected for epoch 2
    assert f.groups()["master"] == 1 and f.groups()["epoch"] == 2
    promoted = f.beat(node=1, epoch=1, offset=500)
    assert (promoted.role, promoted.epoch, promoted.lease_ms) == (ControlRole.MASTER, 2, 0)
    # The old master, back with its old term, is told it is a slave now (id 2 to register)
    old = f.beat(node=0, claim=True, epoch=1, offset=600)
    assert old.role is ControlRole.SLAVE and old.register_id == 2
    assert old.master_addr == "10.0.0.1:10911"


def test_a_master_that_renews_in_time_keeps_its_group() -> None:
    f = Fixture()
    start_group(f)
    for _ in range(10):
        f.clock.now += LEASE_S - 0.5
        assert f.beat(node=0, claim=True, epoch=1, isr=[1]).lease_ms > 0
        f.tick()
    assert f.groups()["master"] == 0 and f.groups()["epoch"] == 1


def test_only_an_in_sync_slave_is_elected_and_the_most_caught_up_one() -> None:
    f = Fixture()
    start_group(f)
    f.beat(node=0, claim=True, epoch=1, isr=[1, 2])
    f.beat(node=2, epoch=1, offset=900)
    f.beat(node=3, epoch=1, offset=5000)  # not in sync: never elected
    f.beat(node=1, epoch=1, offset=800)
    f.clock.now += LEASE_S + MARGIN_S + 0.01
    for node, offset in ((1, 800), (2, 900), (3, 5000)):
        f.beat(node=node, epoch=1, offset=offset)
    f.tick()
    assert f.groups()["master"] == 2


def test_no_candidate_means_no_election_until_the_master_returns() -> None:
    f = Fixture()
    assert f.beat(node=0, claim=True).epoch == 1
    f.beat(node=0, claim=True, epoch=1, isr=[])  # no slave in sync
    f.beat(node=1, epoch=1, offset=10)
    f.clock.now += LEASE_S + MARGIN_S + 0.01
    f.beat(node=1, epoch=1, offset=10)
    f.tick()
    assert f.groups()["master"] is None
    # When the old master comes back with its term, it is adopted again (a new epoch)
    back = f.beat(node=0, claim=True, epoch=1)
    assert back.role is ControlRole.MASTER and back.epoch == 2


def test_grace_period_grants_nothing() -> None:
    f = Fixture(grace=LEASE_S + 1)
    assert f.beat(node=0, claim=True, epoch=4).role is ControlRole.WAIT
    f.clock.now += LEASE_S + 1.01
    answer = f.beat(node=0, claim=True, epoch=4)
    assert (answer.role, answer.epoch) == (ControlRole.MASTER, 5)


def test_a_restarted_controller_adopts_only_the_newest_claimant() -> None:
    f = Fixture(grace=1.0)
    # During the grace period a zombie claims epoch 3 and a slave reports it mirrors epoch 4
    assert f.beat(node=0, claim=True, epoch=3, offset=100).role is ControlRole.WAIT
    f.beat(node=1, epoch=4, offset=90)
    f.clock.now += 1.01
    f.tick()
    # Then the zombie is not adopted
    assert f.groups()["master"] is None
    # The real master of epoch 4 shows up: adopted for epoch 5
    answer = f.beat(node=2, claim=True, epoch=4, offset=95)
    assert (answer.role, answer.epoch) == (ControlRole.MASTER, 5)
    assert f.beat(node=0, claim=True, epoch=3).role is ControlRole.SLAVE


def test_broker_down_voids_the_lease_at_once() -> None:
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=10)
    f.ref.tell(BrokerDown("g", 0))
    # the election runs at once: no tick needed, and the node restarting cannot claim back
    assert f.groups()["master"] == 1
    assert f.beat(node=0, claim=True, epoch=1).role is ControlRole.SLAVE


class _Conn:
    """A stand-in for the SessionHandle a heartbeat came on."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.alive = True


def test_a_live_members_identity_is_not_taken_from_another_connection() -> None:
    f = Fixture()
    real, forged = _Conn(1), _Conn(2)

    def beat(node: int, conn: _Conn, addr: str, **kw: Any) -> Any:
        heartbeat = msgspec.structs.replace(hb(node, **kw), addr=addr, ha_addr=addr + "2")
        return settled(f.ref.ask(Heartbeat(heartbeat, conn), timeout=T), T)

    # Given master 0 heartbeating from its own connection
    assert beat(0, real, "10.0.0.1:10911", claim=True).role is ControlRole.MASTER
    beat(0, real, "10.0.0.1:10911", claim=True, epoch=1)
    # When another connection heartbeats as node 0 from another address (its own HA port)
    forged_reply = beat(0, forged, "10.6.6.6:10911", claim=True, epoch=1)
    # Then it is refused and the member keeps its address
    assert isinstance(forged_reply, Refused) and "live at 10.0.0.1:10911" in forged_reply.remark
    view = f.ref.ask(Replicas(("g",)), timeout=T)["g"]
    assert view.master_addr == "10.0.0.1:10911"
    # And the same broker reconnecting (same addresses, a new connection) is taken
    again = _Conn(3)
    assert beat(0, again, "10.0.0.1:10911", claim=True, epoch=1).role is ControlRole.MASTER
    # And once the live member's connection is gone, a broker elsewhere may take the id
    again.alive = False
    f.ref.tell(SessionClosed(3))
    assert beat(0, forged, "10.6.6.6:10911", claim=True, epoch=1).role is ControlRole.MASTER


@pytest.mark.parametrize("reported", [True, False], ids=["confirmed", "older-master"])
def test_a_candidate_short_of_the_acknowledged_offset_is_not_elected(reported: bool) -> None:
    # Given a master that acknowledged up to offset 5000, held by its in-sync slave 1
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=5000, confirmed=5000 if reported else 0)
    # When the master's machine loses power: its lease runs out while slave 1 is down too, and
    # it comes back (configured as a slave: no claim) with the unflushed tail gone
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()  # (the lease is lost: the lost master is not a candidate on this tick)
    back = f.beat(node=0, epoch=1, offset=3000)
    f.tick()
    if not reported:
        # (a master that reports nothing: the last master is taken back, as before)
        assert back.role is ControlRole.MASTER and f.groups()["master"] == 0
        return
    # Then the controller elects nobody over the records slave 1 still holds
    assert back.role is not ControlRole.MASTER and f.groups()["master"] is None
    assert f.groups()["confirmed"] == 5000
    # When slave 1 returns holding them, Then it is elected
    f.beat(node=1, epoch=1, offset=5000)
    assert f.groups()["master"] == 1 and f.groups()["epoch"] == 2


def test_a_slave_whose_last_report_lags_is_elected_once_it_reports_the_end() -> None:
    # Given a master that acknowledged up to 800 while slave 1's last heartbeat said 500
    f = Fixture()
    start_group(f)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=800, confirmed=800)
    f.beat(node=1, epoch=1, offset=500)
    # When the master dies, Then the election waits for the slave's next report, not for ever
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()
    assert f.groups()["master"] is None
    f.beat(node=1, epoch=1, offset=800)
    assert f.groups()["master"] == 1


def test_a_master_back_from_a_power_loss_waits_for_its_in_sync_slave() -> None:
    # Given a group whose master 0 has slave 1 in sync at offset 5000
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=5000)
    # When both machines lose power and the master comes back first, within its lease, with
    # its log cut to 4900 (the part the last heartbeat had not reported as acknowledged)
    f.clock.now += 1.0
    back = f.beat(node=0, claim=True, epoch=1, isr=[], offset=4900, power_cut=True)
    # Then it gets no lease, and once the old one ran out nobody is elected while slave 1
    # (which may hold more) is away
    assert back.lease_ms == 0
    for _ in range(3):
        f.clock.now += 1.0
        f.beat(node=0, claim=True, epoch=1, isr=[], offset=4900, power_cut=True)
        f.tick()
    assert f.groups()["master"] is None
    # When slave 1 comes back holding more, Then it is elected
    f.beat(node=1, epoch=1, offset=5000)
    assert f.groups()["master"] == 1 and f.groups()["epoch"] == 2


def test_a_master_back_from_a_power_loss_with_nobody_in_sync_is_elected_again() -> None:
    # Given a master with no slave in sync
    f = Fixture()
    start_group(f)
    f.beat(node=0, claim=True, epoch=1, isr=[], offset=5000)
    # When it comes back from a power loss, Then (nobody can hold more) it gets a new term
    f.clock.now += 1.0
    f.beat(node=0, claim=True, epoch=1, isr=[], offset=4900, power_cut=True)
    f.clock.now += LEASE_S + MARGIN_S
    f.tick()
    f.tick()
    f.beat(node=0, claim=True, epoch=1, isr=[], offset=4900, power_cut=True)
    assert f.groups()["master"] == 0 and f.groups()["epoch"] == 2


def test_after_a_term_never_run_a_power_loss_waits_for_that_terms_in_sync_set() -> None:
    # Given master 0 with slaves 1, 2, 3 in sync; it dies and 2 is elected for epoch 2 but
    # dies before running it (the term counts as not begun: epoch 1's set stays the candidates)
    f = Fixture()
    start_group(f)
    for node in (1, 2, 3):
        f.beat(node=node, epoch=1, offset=5000 if node == 2 else 4990)
    f.beat(node=0, claim=True, epoch=1, isr=[1, 2, 3], offset=5000, confirmed=4990)
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    for node in (1, 2, 3):
        f.beat(node=node, epoch=1, offset=5000 if node == 2 else 4990)
    f.tick()
    assert (f.groups()["master"], f.groups()["epoch"]) == (2, 2)
    # When every machine loses power, and 0, 1 and 2 come back while 3 (which may hold what
    # they lost) is away
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()
    for _ in range(3):
        f.clock.now += 1.0
        for node in (0, 1, 2):
            f.beat(node=node, epoch=1, offset=4990, power_cut=True)
        f.tick()
    # Then nobody is elected until 3 is back
    assert f.groups()["master"] is None
    f.beat(node=3, epoch=1, offset=5000, power_cut=True)
    assert f.groups()["master"] == 3


def acked_then_lost() -> Fixture:
    """Master 0 acknowledged up to 5000, held by slave 1 in sync; then the master's lease ran
    out (both machines lost power)."""
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=5000, confirmed=5000)
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()
    return f


def back_short(f: Fixture, *ends: tuple[int, int]) -> None:
    """Each (node, end) heartbeats back from a power loss; then a tick."""
    for node, end in ends:
        f.beat(node=node, epoch=1, offset=end, power_cut=True)
    f.tick()


def test_when_every_replica_came_back_short_the_longest_wins_after_a_lease() -> None:
    # Given master 0 that acknowledged up to 5000 with slave 1 in sync
    # When both machines lose power and both come back short of it (4900 and 4950)
    f = acked_then_lost()

    def both_back() -> None:
        back_short(f, (0, 4900), (1, 4950))

    both_back()
    # Then nobody is elected at once (a replica holding the records might still report) ...
    assert f.groups()["master"] is None
    f.clock.now += LEASE_S / 2
    both_back()
    assert f.groups()["master"] is None
    # ... but after a lease of every replica back without them, the longest log wins: the
    # records are gone everywhere, and waiting would keep the group down for ever
    f.clock.now += LEASE_S / 2 + 0.01
    both_back()
    assert (f.groups()["master"], f.groups()["epoch"]) == (1, 2)
    # And its end is the group's acknowledged offset now, so it takes its lease
    assert f.groups()["confirmed"] == 4950
    leased = f.beat(node=1, claim=True, epoch=2, offset=4950)
    assert leased.role is ControlRole.MASTER and leased.lease_ms > 0


def test_a_replica_away_stops_the_last_resort_and_starts_its_wait_over() -> None:
    # Given master 0 (acknowledged 5000) and slave 1 in sync, both lost power
    f = acked_then_lost()
    # When both are back short for most of a lease, then 1 goes silent for a lease
    back_short(f, (0, 4900), (1, 4950))
    f.clock.now += LEASE_S * 0.9
    back_short(f, (0, 4900))
    f.clock.now += LEASE_S * 0.2
    back_short(f, (0, 4900))
    # Then nobody is elected while it is away (it may hold the records) ...
    assert f.groups()["master"] is None
    # ... and once it is back, short, the wait starts over
    back_short(f, (1, 4950))
    assert f.groups()["master"] is None
    for _ in range(2):  # (both heartbeating)
        f.clock.now += LEASE_S / 2 + 0.01
        back_short(f, (0, 4900), (1, 4950))
    assert f.groups()["master"] == 1


def test_a_term_elected_by_a_handover_while_the_last_resort_waited_leaves_no_wait_behind() -> None:
    # Given master 0 (acknowledged 5000) and slave 1, both back short from a power loss: the
    # last resort's wait has begun
    f = acked_then_lost()
    back_short(f, (0, 4900), (1, 4950))
    assert f.groups()["master"] is None
    # When the operator hands the group to 1 and forgets 0 (what only 0 held is given up), so
    # the handover elects 1
    pending = settled(f.ref.ask(ElectMaster("g", 1), timeout=T), T)
    cleaned = settled(f.ref.ask(CleanBrokerData("g", (0,), True), timeout=T), T)
    assert cleaned.code == ResponseCode.SUCCESS, cleaned.remark
    f.clock.now += MARGIN_S + 0.01
    f.beat(node=1, epoch=1, offset=4950, power_cut=True)
    f.tick()
    assert pending.get(timeout=T).code == ResponseCode.SUCCESS
    assert (f.groups()["master"], f.groups()["epoch"]) == (1, 2)
    # ... and its term runs with 0 back in sync, until both lose power again (much later) and
    # come back short within 1's lease (so it gets no more), heartbeating as its lease lapses
    f.beat(node=0, epoch=2, offset=4950)
    f.clock.now += 60.0
    f.beat(node=1, claim=True, epoch=2, isr=[0], offset=6000, confirmed=6000)
    f.beat(node=0, epoch=2, offset=6000)

    def both_back() -> None:
        f.beat(node=0, epoch=2, offset=5800, power_cut=True)
        f.beat(node=1, claim=True, epoch=2, offset=5900, power_cut=True)
        f.tick()

    for step in (1.0, 1.0, 1.0 + MARGIN_S + 0.01):
        f.clock.now += step
        both_back()
    # Then nobody is elected at once: the wait of the earlier term does not count for this one
    assert f.groups()["master"] is None
    for _ in range(2):
        f.clock.now += LEASE_S / 2 + 0.01
        both_back()
    assert (f.groups()["master"], f.groups()["epoch"], f.groups()["confirmed"]) == (1, 3, 5900)


def test_the_last_resort_also_weighs_a_live_member_out_of_the_in_sync_set() -> None:
    # Given master 0 (acknowledged 5000) with slave 1 in sync and slave 2 out of it (it left
    # the set late: it holds more than 1)
    f = Fixture()
    start_group(f)
    f.beat(node=1, epoch=1, offset=5000)
    f.beat(node=2, epoch=1, offset=4990)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=5000, confirmed=5000)
    f.clock.now += LEASE_S + MARGIN_S + 0.1
    f.tick()
    # When every machine loses power and all come back short: 0 at 4900, 1 at 4950, 2 at 4990
    for _ in range(3):
        back_short(f, (0, 4900), (1, 4950), (2, 4990))
        f.clock.now += LEASE_S / 2 + 0.01
    back_short(f, (0, 4900), (1, 4950), (2, 4990))
    # Then the longest log of the term wins, in the set or not
    assert f.groups()["master"] == 2 and f.groups()["confirmed"] == 4990
