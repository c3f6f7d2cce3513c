"""TransactionManager.resume (RESUME_CHECK_HALF_MESSAGE): a half message discarded after its
checks, or still open, starts its checks over; a settled or unknown one does not. Discarded
half messages are remembered across restarts."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from actors.broker.transaction_manager import HalfMessage, TransactionManager
from runtime.directory import Directory
from tests.actors.test_transaction_check_unread import run_round

pytestmark = pytest.mark.timeout(20)


def half(offset: int) -> HalfMessage:
    return HalfMessage(
        offset=offset,
        group="g",
        topic="T",
        msg_id=f"id{offset}",
        transaction_id=f"u{offset}",
        stored_ms=0,
    )


def start(config_dir: pathlib.Path) -> Any:
    """A manager whose checks run only when told; with ``check_max`` 0 a due half message is
    discarded at its first check round."""
    return TransactionManager.start(
        Directory(),
        "producers",
        str(config_dir),
        lambda _offset: b"record",
        timeout_s=0.0,
        check_max=0,
        check_interval_s=3600.0,
    )


@pytest.fixture
def manager(tmp_path: pathlib.Path) -> Iterator[Any]:
    ref = start(tmp_path)
    yield ref
    ref.stop()


def test_a_discarded_half_message_is_resumed_once(manager: Any) -> None:
    proxy = manager.proxy()
    # Given two half messages whose checks ran out: both are discarded
    proxy.prepared(half(100)).get(timeout=5)
    proxy.prepared(half(200)).get(timeout=5)
    run_round(manager, 5)
    assert proxy.pending().get(timeout=5) == []
    # When one is resumed, Then it is open again with its checks starting over
    assert proxy.resume(100).get(timeout=5) is True
    assert proxy.pending().get(timeout=5) == [half(100)]
    # And an open one may be resumed again (its count restarts), a settled one not
    assert proxy.resume(100).get(timeout=5) is True
    assert proxy.resolve(100).get(timeout=5) is True
    assert proxy.resume(100).get(timeout=5) is False
    # And an offset the manager never held is refused
    assert proxy.resume(300).get(timeout=5) is False


def test_discarded_half_messages_survive_a_restart(tmp_path: pathlib.Path) -> None:
    # Given a discarded half message
    first = start(tmp_path)
    first.proxy().prepared(half(100)).get(timeout=5)
    run_round(first, 5)
    first.stop()
    # When the broker restarts, Then it can still be resumed
    second = start(tmp_path)
    try:
        assert second.proxy().resume(100).get(timeout=5) is True
        assert second.proxy().pending().get(timeout=5) == [half(100)]
    finally:
        second.stop()
