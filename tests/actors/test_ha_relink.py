"""A slave told by its master to link again (a new term whose epoch entries it must mirror:
REFUSED not ready after the ACCEPT) links again at once, not at its next tick (0.2 s), so a
SYNC_MASTER answers SLAVE_NOT_AVAILABLE for as short a while as it can after every new term
(a reconciliation's end, a controller's new term for a master that stays)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

import actors.broker.ha_client as ha_client
from actors.broker.ha_messages import NewEpoch
from runtime.actor import new_future
from tests.actors.ha_support import (
    T,
    broker_config,
    ha_state,
    label,
    start_broker,
    start_namesrv,
    stop_node,
    wait_in_sync,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def namesrv() -> Iterator[str]:
    ns = start_namesrv()
    yield ns.addresses["namesrv"]
    stop_node(ns)


def test_a_slave_told_to_link_again_does_so_at_once(
    tmp_path: pathlib.Path, namesrv: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a slave whose ticks (when it links again after a refusal) come a minute apart
    monkeypatch.setattr(ha_client, "TICK_S", 60.0)
    master = start_broker(broker_config("broker-a", 0, "ASYNC_MASTER", namesrv), tmp_path / "m")
    try:
        ha = master.ha_addresses[label(master)]
        cfg = broker_config("broker-a", 1, "SLAVE", namesrv, ha_master_address=ha)
        slave = start_broker(cfg, tmp_path / "s")
        try:
            wait_in_sync(master, 1)
            state = ha_state(slave)
            # When the master begins a new term (its links told to link again)
            term = new_future()
            master.directory.require(f"{label(master)}/ha-service").tell(NewEpoch(1, term))
            assert term.get(timeout=5) is True
            # Then the slave links again and mirrors epoch 1 at once, not a tick later
            assert state.wait_until(lambda s: s.master_link_up and s.epoch == 1, T), state.epoch
            wait_in_sync(master, 1)
        finally:
            stop_node(slave)
    finally:
        stop_node(master)
