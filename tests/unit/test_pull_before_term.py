"""A controller-mode master that has held no lease since it started reads out nothing of its
log (recovery made all of it visible, also a tail the group never confirmed): a pull waits for
its first lease (long polling), else PULL_NOT_FOUND keeping the consumer's offset."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gevent
import pytest

from config import BrokerConfig
from runtime.ha.state import HAState, Role
from runtime.remoting.codes import ResponseCode
from runtime.store.tail_guard import TailLossGuard
from tests.unit.pull_support import FakeStore, pull_at

pytestmark = pytest.mark.timeout(30)


def context(state: HAState) -> Any:
    return SimpleNamespace(
        cfg=BrokerConfig(),
        store=FakeStore(TailLossGuard()),
        ha=state,
        got_messages=0,
        got_by={},
        got_bytes_by={},
    )


def test_a_master_without_a_term_yet_reads_out_nothing() -> None:
    # Given a controller-mode master just started (its log holds offsets 0 .. 11)
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    # When a consumer pulls without suspending
    answer = pull_at(context(state), 4)
    # Then nothing is read and its offset is kept
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert int(answer.ext_fields["nextBeginOffset"]) == 4


def test_a_held_pull_is_answered_from_the_log_once_the_master_holds_its_first_lease() -> None:
    # Given the same master and a consumer's long poll (suspended) parked on it
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    pulling = gevent.spawn(pull_at, context(state), 4, suspend_ms=5000)
    gevent.sleep(0)  # (the pull runs until it parks)
    assert not pulling.ready()
    # When the controller grants it a lease
    state.leased = True
    state.notify()
    # Then the pull reads the log
    answer = pulling.get(timeout=5)
    assert answer.code == ResponseCode.SUCCESS, answer.remark
    # And a slave, or a classic master, is not held
    for role, controller in ((Role.SLAVE, True), (Role.MASTER, False)):
        other = HAState(node_id=1, role=role, sync=True, controller_mode=controller)
        assert other.serves_reads()
