"""A controller-mode master appends nothing once its lease ran out (whoever asks: its own
timer and delay writers too), and answers PUT_OK only while it holds its lease *when the reply
is sent*: under SYNC_FLUSH a reply waits for its fsync, which may end after the lease ran out (a
paused or stalled master that another broker replaced meanwhile). docs/deploy.md: "any reply
still pending says FLUSH_SLAVE_TIMEOUT"; docs/ha-design.md: the lease is checked again "when
the reply is due"."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from actors.broker.ha_service import HACondition, HAContext
from actors.broker.store_results import PutStatus
from actors.broker.store_service import BrokerStore
from runtime.actor import new_future
from runtime.directory import Directory
from runtime.ha.epoch import EpochFile
from runtime.ha.state import HAState, Role
from runtime.store import record as R
from runtime.store.context import ReplicationStatus
from runtime.store.faults import FaultyFileSystem
from runtime.store.settings import FlushMode
from tests.actors.ha_support import wait_until
from tests.actors.test_store_actors import settings_for

pytestmark = pytest.mark.timeout(30)

T = 5.0


class GatedFileSystem(FaultyFileSystem):
    """Every fsync waits for ``gate`` while ``gated``."""

    def __init__(self) -> None:
        super().__init__()
        self.gated = False
        self.gate = threading.Event()
        self.waiting = threading.Event()  # an fsync waits at the gate

    def _before_fsync(self, path: str) -> None:
        if self.gated:
            self.waiting.set()
            self.gate.wait(T)
        super()._before_fsync(path)


@pytest.mark.parametrize("sync", [False, True], ids=["ASYNC_MASTER", "SYNC_MASTER"])
def test_a_reply_waiting_for_its_fsync_past_the_lease_is_not_put_ok(
    tmp_path: Path, sync: bool
) -> None:
    # Given a controller-mode master under SYNC_FLUSH holding a lease (a hand-driven clock)
    now = [100.0]
    state = HAState(
        node_id=0, role=Role.MASTER, sync=sync, controller_mode=True, clock=lambda: now[0]
    )
    state.lease_until = 103.0
    fs = GatedFileSystem()
    store = BrokerStore.build(
        settings_for(tmp_path, flush_mode=FlushMode.SYNC_FLUSH, sync_flush_timeout_ms=10_000),
        Directory(),
        fs=fs,
    )
    condition = HACondition(HAContext(store.ctx, state, EpochFile(str(tmp_path)), prefix="t"))
    store.ctx.replication = condition
    store.start()
    try:
        if sync:  # SYNC_MASTER: a slave acknowledged everything while the lease held
            condition.wait = lambda offset: _replicated()  # type: ignore[method-assign]
        # When a send is appended while the lease holds, but its fsync ends after it ran out
        fs.gated = True
        reply = store.put([R.PutRecord("T", 0, b"late", "")])
        wait_until(fs.waiting.is_set, T, "the append's fsync")
        assert not reply.done()
        now[0] = 104.0
        fs.gate.set()
        # Then it is stored, but not acknowledged as PUT_OK
        assert reply.get(timeout=T).status is PutStatus.FLUSH_SLAVE_TIMEOUT
    finally:
        fs.gate.set()
        store.stop()


def test_a_reply_waiting_for_its_fsync_within_the_lease_is_put_ok(tmp_path: Path) -> None:
    # Given the same master, When the fsync ends while the lease still holds
    now = [100.0]
    state = HAState(
        node_id=0, role=Role.MASTER, sync=False, controller_mode=True, clock=lambda: now[0]
    )
    state.lease_until = 103.0
    fs = GatedFileSystem()
    store = BrokerStore.build(
        settings_for(tmp_path, flush_mode=FlushMode.SYNC_FLUSH, sync_flush_timeout_ms=10_000),
        Directory(),
        fs=fs,
    )
    store.ctx.replication = HACondition(
        HAContext(store.ctx, state, EpochFile(str(tmp_path)), prefix="t")
    )
    store.start()
    try:
        fs.gated = True
        reply = store.put([R.PutRecord("T", 0, b"in time", "")])
        wait_until(fs.waiting.is_set, T, "the append's fsync")
        now[0] = 102.0
        fs.gate.set()
        # Then PUT_OK
        assert reply.get(timeout=T).status is PutStatus.PUT_OK
    finally:
        fs.gate.set()
        store.stop()


def test_nothing_is_appended_once_the_lease_ran_out(tmp_path: Path) -> None:
    # Given a controller-mode master whose lease runs until 103 (a hand-driven clock)
    now = [100.0]
    state = HAState(
        node_id=0, role=Role.MASTER, sync=False, controller_mode=True, clock=lambda: now[0]
    )
    state.lease_until = 103.0
    store = BrokerStore.build(settings_for(tmp_path), Directory())
    store.ctx.replication = HACondition(
        HAContext(store.ctx, state, EpochFile(str(tmp_path)), prefix="t")
    )
    store.start()
    try:
        first = store.put([R.PutRecord("T", 0, b"leased", "")]).get(timeout=T)
        assert first.status is PutStatus.PUT_OK
        end = store.ctx.opened.log.write_offset if store.ctx.opened else -1
        # When the lease has run out and anyone appends (a timer's re-put goes the same way)
        now[0] = 103.5
        late = store.put([R.PutRecord("T", 0, b"late", "")]).get(timeout=T)
        # Then it is refused, nothing written: the log's end reported to the controller as
        # final stays final
        assert late.status is PutStatus.SERVICE_NOT_AVAILABLE and "lease" in late.reason
        assert store.ctx.opened is not None and store.ctx.opened.log.write_offset == end
    finally:
        store.stop()


def _replicated() -> Any:
    fut = new_future()
    fut.set(ReplicationStatus.REPLICATED)
    return fut
