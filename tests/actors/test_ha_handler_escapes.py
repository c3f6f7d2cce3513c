"""What must not escape the ControllerClient's and the HAService's handlers (or leave them
stuck): a heartbeat greenlet ended by a gevent.Timeout or a GreenletExit still reports back
(else ``_in_flight`` stayed set and the node never heartbeated again); an epoch file that
cannot be written answers the ControllerClient's ``NewEpoch`` False instead of failing the
HAService, and the ControllerClient then waits for its timer before asking again."""

from __future__ import annotations

import os
import pathlib
from types import SimpleNamespace
from typing import Any

import gevent
import pykka
import pytest

import actors.broker.controller_client as cc
from actors.broker.ha_messages import HeartbeatNow, NewEpoch
from runtime.actor import actor_of, new_future
from runtime.ha.state import Role
from tests.actors.ha_support import T, broker_config, label, start_broker, stop_node
from tests.actors.test_controller_client_rebuild import Client, Handle

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("raised", [gevent.Timeout, gevent.GreenletExit])
def test_a_heartbeat_ended_by_a_base_exception_still_reports_back(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, raised: type[BaseException]
) -> None:
    # Given heartbeats whose connect ends with a BaseException (not an Exception)
    def connect(*_a: Any, **_kw: Any) -> Any:
        raise raised()

    monkeypatch.setattr(cc, "connect", connect)
    c = Client(tmp_path, Handle(False), Role.SLAVE)
    try:
        # Then heartbeats go on (each reported back): the node is not silenced
        c.beats_go_on()
        assert c.ref.is_alive()
    finally:
        pykka.ActorRegistry.stop_all(timeout=5.0)


def test_an_epoch_file_that_cannot_be_written_answers_false_and_the_service_goes_on(
    tmp_path: pathlib.Path, namesrv: str
) -> None:
    master = start_broker(broker_config("broker-a", 0, "ASYNC_MASTER", namesrv), tmp_path / "m")
    try:
        service = master.directory.require(f"{label(master)}/ha-service")
        ha = actor_of(service).ha  # type: ignore[union-attr]
        # Given an epoch file that cannot be written (a directory where it goes)
        os.mkdir(ha.epochs.path)
        # When the ControllerClient asks for a new term
        term = new_future()
        service.tell(NewEpoch(1, term))
        # Then it is answered False (no lease is taken for it) and the HAService runs on
        assert term.get(timeout=T) is False
        assert ha.epochs.last_epoch == 0
        again = master.directory.require(f"{label(master)}/ha-service")
        assert again.actor_urn == service.actor_urn and service.is_alive()
        # When the file can be written again, Then the next ask begins the term
        os.rmdir(ha.epochs.path)
        term = new_future()
        service.tell(NewEpoch(1, term))
        assert term.get(timeout=T) is True
        assert ha.epochs.last_epoch == 1
    finally:
        stop_node(master)


def test_a_term_whose_entry_was_not_written_is_not_asked_again_at_once() -> None:
    # Given the HAService's answers to NewEpoch
    told: list[Any] = []
    ref: Any = SimpleNamespace(tell=told.append)
    for answer, heartbeats in ((False, 0), (True, 1)):
        told.clear()
        done = new_future()
        done.set(answer)
        # When the ControllerClient hears it
        cc._epoch_written(ref, done)
        # Then only a written entry sends a heartbeat at once (the timer asks again)
        assert [m for m in told if isinstance(m, HeartbeatNow)] == [HeartbeatNow()] * heartbeats
    failed = new_future()
    failed.set_exception(exc_info=(RuntimeError, RuntimeError("died"), None))
    told.clear()
    cc._epoch_written(ref, failed)
    assert told == []
