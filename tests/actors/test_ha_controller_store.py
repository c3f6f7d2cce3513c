"""The controller remembers its decisions (``controller_store``): a restarted controller elects
from the in-sync set it acknowledged, never before a lease its previous incarnation granted
ran out, and never hands a new member an id of one it remembers; the last master is electable
again even when it comes back configured as a slave (chaos R27: the group kept no master)."""

from __future__ import annotations

import pathlib
from typing import Any

import gevent.event
import msgspec
import pytest
from gevent.event import AsyncResult

from actors.namesrv import controller, election
from actors.namesrv.controller import Controller, ControllerTick, Groups, Heartbeat
from actors.namesrv.controller_store import COMPACT_MIN, LOG, SNAPSHOT, ControllerStore, GroupRecord
from actors.namesrv.group_commit import settled
from actors.namesrv.handover import ElectMaster
from runtime.errors import StoreError
from runtime.ha.control import LEASE_S, MARGIN_S, ControllerHeartbeat, ControlRole
from tests.actors.ha_support import wait_until
from tests.actors.test_ha_controller import Clock, Fixture, T, hb, outlive_the_lease, start_group

pytestmark = pytest.mark.timeout(30)


class Stored(Fixture):
    """A Fixture whose controller keeps its decisions in ``directory``."""

    def __init__(self, directory: pathlib.Path, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.ref = Controller.start(
            grace_s=0.0, clock=self.clock, store=ControllerStore(str(directory))
        )

    def restart(self, directory: pathlib.Path) -> Stored:
        """Stop this controller, start another on the same directory and clock (once it has
        started: it counts the restored master's lease from its start)."""
        self.ref.stop()
        again = Stored(directory, self.clock)
        again.ref.ask(Groups(), timeout=T)
        return again


def saved(directory: pathlib.Path) -> GroupRecord:
    """Group g as a restarted controller would read it."""
    return ControllerStore(str(directory)).load(lock=False)["g"]


def test_an_acknowledged_in_sync_set_is_on_disk_before_the_reply_carries_it(
    tmp_path: pathlib.Path,
) -> None:
    f = Stored(tmp_path)
    start_group(f)  # its last reply acknowledged node 1 as in sync
    assert saved(tmp_path).isr == (1,) and saved(tmp_path).epoch == 1
    # When the master reports the slave out of sync, Then the reply saying so follows the file
    assert f.beat(node=0, claim=True, epoch=1, isr=[]).in_sync == []
    assert saved(tmp_path).isr == ()
    f.ref.stop()


def test_a_restarted_controller_elects_the_in_sync_slave_once_the_old_lease_ran_out(
    tmp_path: pathlib.Path,
) -> None:
    # Given a group whose master 0 has slave 1 in sync
    f = Stored(tmp_path)
    start_group(f)
    # When the controller restarts and the master is gone (only the slave heartbeats)
    f = f.restart(tmp_path)
    assert f.groups()["master"] == 0 and f.groups()["isr"] == [1]
    # Then nobody is elected while a lease the previous incarnation granted may hold
    outlive_the_lease(f)
    # And then the in-sync slave is, for the next term
    assert f.groups()["master"] == 1 and f.groups()["epoch"] == 2
    f.ref.stop()


def test_a_restarted_controller_gives_the_living_master_its_lease_back(
    tmp_path: pathlib.Path,
) -> None:
    f = Stored(tmp_path)
    start_group(f)
    f = f.restart(tmp_path)
    renewed = f.beat(node=0, claim=True, epoch=1, isr=[1])
    assert renewed.role is ControlRole.MASTER and renewed.lease_ms == int(LEASE_S * 1000)
    assert f.groups()["epoch"] == 1
    f.ref.stop()


def test_the_last_master_back_as_a_slave_is_elected_again(tmp_path: pathlib.Path) -> None:
    # Given master 0 with no slave in sync, and the controller restarted meanwhile
    f = Stored(tmp_path)
    start_group(f)
    f.beat(node=0, claim=True, epoch=1, isr=[])
    f = f.restart(tmp_path)
    # When the master stays silent past its lease (the group loses it: nobody else is in sync)
    f.clock.now += LEASE_S + MARGIN_S + 0.01
    f.beat(node=1, epoch=1, offset=9000)
    f.tick()
    assert f.groups()["master"] is None
    # And its process comes back configured as a slave (it claims nothing), while the other
    # node, never in sync, has more bytes
    f.beat(node=0, epoch=1, offset=700)
    f.tick()
    # Then the last master is elected (it holds everything it acknowledged), not the other
    assert f.groups()["master"] == 0 and f.groups()["epoch"] == 2
    f.ref.stop()


def test_a_new_member_never_gets_the_id_of_one_the_controller_remembers(
    tmp_path: pathlib.Path,
) -> None:
    # Given a group whose slave 1 was elected (epoch 2) and a member 5
    f = Stored(tmp_path)
    start_group(f)
    f.beat(node=5, epoch=1)
    outlive_the_lease(f)
    assert f.groups()["master"] == 1
    f = f.restart(tmp_path)
    # When a node asking for an id (0, not the master) heartbeats after a restart
    reply = f.beat(node=0, claim=False, epoch=1)
    # Then it is not given an id the controller remembers (0 .. 5)
    assert reply.role is ControlRole.SLAVE and reply.register_id == 6
    f.ref.stop()


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: pathlib.Path) -> None:
    (tmp_path / SNAPSHOT).write_text("{not json")
    with pytest.raises(StoreError, match=SNAPSHOT):
        ControllerStore(str(tmp_path)).load()
    (tmp_path / SNAPSHOT).unlink()
    (tmp_path / LOG).write_text('{"seq": 1, "group": "g", "record": {}}\nnot json\n{"seq": 3}\n')
    with pytest.raises(StoreError, match="line 2"):
        ControllerStore(str(tmp_path)).load()


def test_a_torn_last_line_is_cut_off_and_the_log_goes_on(tmp_path: pathlib.Path) -> None:
    # Given a log whose last append was torn by a crash
    store = ControllerStore(str(tmp_path))
    store.load()
    store.stage("g", GroupRecord(epoch=1, master=0))
    store.flush()
    with open(tmp_path / LOG, "ab") as fh:
        fh.write(b'{"seq": 2, "group": "g", "rec')
    # When a controller reads it and goes on appending
    store.close()
    again = ControllerStore(str(tmp_path))
    assert again.load()["g"].epoch == 1
    again.stage("g", GroupRecord(epoch=2, master=1))
    again.flush()
    # Then the next one reads every acknowledged change
    assert ControllerStore(str(tmp_path)).load(lock=False)["g"] == GroupRecord(epoch=2, master=1)


def test_a_long_log_is_compacted_into_the_snapshot(tmp_path: pathlib.Path) -> None:
    store = ControllerStore(str(tmp_path))
    store.load()
    for i in range(COMPACT_MIN + 5):
        store.stage(f"g{i % 10}", GroupRecord(epoch=i))
        store.flush()
    # Then the log was emptied into the snapshot once, and nothing was lost
    assert len((tmp_path / LOG).read_bytes().splitlines()) < 10
    loaded = ControllerStore(str(tmp_path)).load(lock=False)
    assert {g: r.epoch for g, r in loaded.items()} == {
        f"g{i % 10}": i for i in range(COMPACT_MIN - 5, COMPACT_MIN + 5)
    }


def test_without_a_directory_nothing_is_kept(tmp_path: pathlib.Path) -> None:
    store = ControllerStore(None)
    store.stage("g", GroupRecord(epoch=1))
    assert store.load() == {} and not store.staged
    f = Stored.__new__(Stored)
    f.clock = Clock()
    f.ref = Controller.start(grace_s=0.0, clock=f.clock)
    start_group(f)
    assert f.ref.ask(Groups(), timeout=T)["g"]["master"] == 0
    f.ref.stop()
    assert not list(tmp_path.iterdir())


class CountingStore(ControllerStore):
    flushes = 0

    def flush(self) -> None:
        if self.staged:
            self.flushes += 1
        super().flush()


def test_one_flush_answers_every_heartbeat_that_came_while_the_previous_one_ran(
    tmp_path: pathlib.Path,
) -> None:
    store = CountingStore(str(tmp_path))
    clock = Clock()
    ref = Controller.start(grace_s=0.0, clock=clock, store=store)
    try:
        # When 200 heartbeats, each naming a new group, come at once
        futures = [ref.ask(Heartbeat(_beat(i)), block=False) for i in range(200)]
        replies = [settled(f.get(timeout=T), T) for f in futures]
        # Then each is answered (its group adopted its master), after fewer flushes than groups
        assert all(r.role is ControlRole.MASTER for r in replies)
        assert 1 <= store.flushes < 50
        assert len(ControllerStore(str(tmp_path)).load(lock=False)) == 200
    finally:
        ref.stop()


def _beat(i: int) -> Any:
    return msgspec.structs.replace(hb(0, claim=True), group=f"g{i}")


def test_groups_past_the_limit_are_refused(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller, "MAX_GROUPS", 3)
    ref = Controller.start(grace_s=0.0, clock=Clock(), store=ControllerStore(str(tmp_path)))
    try:
        answers = [settled(ref.ask(Heartbeat(_beat(i)), timeout=T), T) for i in range(4)]
        assert [type(a).__name__ for a in answers] == ["ControllerReply"] * 3 + ["Refused"]
        assert "at most 3 broker groups" in answers[3].remark
        assert sorted(ControllerStore(str(tmp_path)).load(lock=False)) == ["g0", "g1", "g2"]
    finally:
        ref.stop()


def test_an_absurd_epoch_or_id_does_not_decode() -> None:
    good = msgspec.json.encode(hb(1, epoch=3))
    assert msgspec.json.decode(good, type=ControllerHeartbeat).epoch == 3
    for field, value in (("epoch", 2**63 - 1), ("node", -1), ("maxOffset", -5)):
        body = msgspec.json.encode({**msgspec.json.decode(good), field: value})
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(body, type=ControllerHeartbeat)


class FailingStore(ControllerStore):
    def flush(self) -> None:
        if self.staged:
            raise OSError(28, "No space left on device")


def test_a_store_that_cannot_write_fails_the_controller_and_answers_nothing(
    tmp_path: pathlib.Path,
) -> None:
    ref = Controller.start(grace_s=0.0, clock=Clock(), store=FailingStore(str(tmp_path)))
    answer = ref.ask(Heartbeat(_beat(0)), timeout=T)
    # Then the heartbeat is not answered with a role the disk does not hold
    with pytest.raises(OSError, match="No space"):
        settled(answer, T)
    # And the controller stops (its supervisor restarts it from the files)
    wait_until(lambda: not ref.is_alive(), what="the controller failed")


def test_a_restored_master_that_heartbeats_through_the_grace_keeps_its_group(
    tmp_path: pathlib.Path,
) -> None:
    # Given a group whose master 0 has slave 1 in sync, and a controller restarted with the
    # default grace (lease + 1 s: heartbeats are answered WAIT meanwhile)
    f = Stored(tmp_path)
    start_group(f)
    f.ref.stop()
    f.ref = Controller.start(
        grace_s=LEASE_S + 1.0, clock=f.clock, store=ControllerStore(str(tmp_path))
    )
    f.ref.ask(Groups(), timeout=T)
    # When the master and the slave heartbeat every second through the grace and after it
    for _ in range(8):
        f.clock.now += 1.0
        f.beat(node=0, claim=True, epoch=1, isr=[1])
        f.beat(node=1, epoch=1, offset=500)
        f.tick()
    # Then the master kept its group, in its term, and holds a lease again
    assert (f.groups()["master"], f.groups()["epoch"]) == (0, 1)
    assert f.beat(node=0, claim=True, epoch=1, isr=[1]).lease_ms > 0
    f.ref.stop()


def test_a_term_whose_master_never_ran_it_leaves_the_previous_one_electable(
    tmp_path: pathlib.Path,
) -> None:
    # Given master 0 (epoch 1) with slave 1 in sync; the master goes silent and 1 is elected
    f = Stored(tmp_path)
    start_group(f)
    outlive_the_lease(f)
    assert (f.groups()["master"], f.groups()["epoch"]) == (1, 2)
    # When node 1 dies before it ran epoch 2 (it never heartbeats claiming it), and the
    # controller restarts meanwhile
    f = f.restart(tmp_path)
    f.clock.now += 2 * LEASE_S
    f.tick()
    assert f.groups()["master"] is None
    # And the old master comes back (epoch 1 in its file; configured as a slave, it claims
    # nothing)
    f.beat(node=0, epoch=1, offset=700)
    f.tick()
    # Then it is elected (epoch 2 never began: the group is as epoch 1 left it)
    assert f.groups()["master"] == 0 and f.groups()["epoch"] == 3
    f.ref.stop()


class BlockingStore(ControllerStore):
    """Its flushes wait for ``release``."""

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        self.release = gevent.event.Event()

    def flush(self) -> None:
        self.release.wait(T)
        super().flush()


def test_a_handover_is_answered_only_once_its_election_is_on_disk(
    tmp_path: pathlib.Path,
) -> None:
    store = BlockingStore(str(tmp_path))
    store.release.set()
    f = Stored.__new__(Stored)
    f.clock = Clock()
    f.ref = Controller.start(grace_s=0.0, clock=f.clock, store=store)
    start_group(f)
    # Given a handover to node 1 under way
    pending = settled(f.ref.ask(ElectMaster("g", 1), timeout=T), T)
    assert isinstance(pending, AsyncResult)
    # And the old master resigned and reported its final end, which node 1 lacks yet
    token = f.beat(node=0, claim=True, epoch=1, offset=100, isr=[1]).resign
    assert token
    f.beat(node=0, claim=True, epoch=1, offset=100, isr=[1], writable=False, resigned=token)
    f.beat(node=1, epoch=1, offset=50)
    f.tick()
    assert f.groups()["master"] == 0 and not pending.ready()
    # When node 1 catches up and is elected while the disk is slow
    store.release.clear()
    f.ref.ask(Heartbeat(hb(1, epoch=1, offset=100)), block=False)
    f.ref.ask(ControllerTick(), block=False)
    wait_until(lambda: f.ref.ask(Groups(), timeout=T)["g"]["master"] == 1, what="elected")
    # Then the operator is not told yet
    gevent.sleep(0.05)  # (the fault window: the disk is held)
    assert not pending.ready()
    # And once the disk holds the new term, it is
    store.release.set()
    assert pending.get(timeout=T).view.master == 1
    assert ControllerStore(str(tmp_path)).load(lock=False)["g"].master == 1
    f.ref.stop()


def test_two_controllers_never_share_a_directory(tmp_path: pathlib.Path) -> None:
    first = ControllerStore(str(tmp_path))
    first.load()
    # When a second controller would keep its decisions in the same directory
    with pytest.raises(StoreError, match="another controller"):
        ControllerStore(str(tmp_path)).load()
    # Then it is refused until the first lets it go
    first.close()
    assert ControllerStore(str(tmp_path)).load() == {}


def test_at_the_limit_a_group_silent_for_long_makes_room(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller, "MAX_GROUPS", 2)
    clock = Clock()
    ref = Controller.start(grace_s=0.0, clock=clock, store=ControllerStore(str(tmp_path)))
    try:
        # Given the limit reached by two groups
        for i in range(2):
            settled(ref.ask(Heartbeat(_beat(i)), timeout=T), T)
        # When a new one comes while both were heard from lately, Then it is refused
        clock.now += 60.0
        settled(ref.ask(Heartbeat(_beat(0)), timeout=T), T)  # (g0 keeps talking)
        assert type(settled(ref.ask(Heartbeat(_beat(2)), timeout=T), T)).__name__ == "Refused"
        # When g1 has been silent for an hour, Then the newcomer takes its place
        clock.now += controller.FORGET_SILENT_S
        settled(ref.ask(Heartbeat(_beat(0)), timeout=T), T)
        answer = settled(ref.ask(Heartbeat(_beat(2)), timeout=T), T)
        assert type(answer).__name__ == "ControllerReply"
        assert sorted(ControllerStore(str(tmp_path)).load(lock=False)) == ["g0", "g2"]
    finally:
        ref.stop()


def test_the_acknowledged_offset_is_saved_at_most_every_few_seconds(
    tmp_path: pathlib.Path,
) -> None:
    # Given a master reporting what it acknowledged at every heartbeat
    f = Stored(tmp_path)
    start_group(f)
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=100, confirmed=100)
    assert saved(tmp_path).confirmed == 100  # the first is saved with its reply
    f.clock.now += 1.0
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=200, confirmed=200)
    assert saved(tmp_path).confirmed == 100  # not a write per heartbeat
    f.clock.now += election.CONFIRMED_SAVE_S
    f.beat(node=0, claim=True, epoch=1, isr=[1], offset=300, confirmed=300)
    assert saved(tmp_path).confirmed == 300
    # When the controller restarts, Then it still elects nobody short of it
    f = f.restart(tmp_path)
    assert f.groups()["confirmed"] == 300
    f.ref.stop()
