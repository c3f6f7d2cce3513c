"""The controller remembers its decisions (``controller_store``): a restarted controller elects
from the in-sync set it acknowledged, never before a lease its previous incarnation granted
ran out, and never hands a new member an id of one it remembers; the last master is electable
again even when it comes back configured as a slave (chaos R27: the group kept no master)."""

from __future__ import annotations

import json
import pathlib

import pytest

from actors.namesrv.controller import Controller, Groups
from actors.namesrv.controller_store import FILE_NAME, ControllerStore
from runtime.errors import StoreError
from runtime.ha.control import LEASE_S, MARGIN_S, ControlRole
from tests.actors.test_ha_controller import Clock, Fixture, T, outlive_the_lease, start_group

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


def saved(directory: pathlib.Path) -> dict:
    return json.loads((directory / FILE_NAME).read_text())["groups"]["g"]


def test_an_acknowledged_in_sync_set_is_on_disk_before_the_reply_carries_it(
    tmp_path: pathlib.Path,
) -> None:
    f = Stored(tmp_path)
    start_group(f)  # its last reply acknowledged node 1 as in sync
    assert saved(tmp_path)["isr"] == [1] and saved(tmp_path)["epoch"] == 1
    # When the master reports the slave out of sync, Then the reply saying so follows the file
    assert f.beat(node=0, claim=True, epoch=1, isr=[]).in_sync == []
    assert saved(tmp_path)["isr"] == []
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
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(StoreError, match=FILE_NAME):
        ControllerStore(str(tmp_path)).load()


def test_without_a_directory_nothing_is_kept(tmp_path: pathlib.Path) -> None:
    store = ControllerStore(None)
    assert store.load() == {} and store.save({}) is False
    f = Stored.__new__(Stored)
    f.clock = Clock()
    f.ref = Controller.start(grace_s=0.0, clock=f.clock)
    start_group(f)
    assert f.ref.ask(Groups(), timeout=T)["g"]["master"] == 0
    f.ref.stop()
    assert not list(tmp_path.iterdir())
