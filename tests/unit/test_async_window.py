"""actors.client.async_window.AsyncWindow: send_async's back-pressure."""

from __future__ import annotations

import threading

import pytest

from actors.client.async_window import AsyncWindow

pytestmark = pytest.mark.timeout(10)


def test_a_full_window_holds_the_next_send_until_one_leaves() -> None:
    window = AsyncWindow(max_sends=2, max_bytes=1_000)
    assert window.enter(10, 0) and window.enter(10, 0)
    # Given a full window, When a third send asks for room, Then it waits
    entered = threading.Event()
    waiter = threading.Thread(target=lambda: window.enter(10, 5) and entered.set())
    waiter.start()
    assert not entered.wait(0.05)
    # When one in flight is answered, Then the third goes
    window.leave(10)
    assert entered.wait(5)
    waiter.join(5)
    assert (window.sends, window.bytes, window.peak_sends) == (2, 20, 2)


def test_no_room_within_the_timeout_counts_nothing() -> None:
    window = AsyncWindow(max_sends=10, max_bytes=100)
    assert window.enter(60, 0)
    assert not window.enter(60, 0.01)
    assert (window.sends, window.bytes) == (1, 60)


def test_a_body_over_the_byte_bound_goes_alone() -> None:
    window = AsyncWindow(max_sends=10, max_bytes=100)
    assert window.enter(1_000, 0)
    assert not window.enter(1, 0)
    window.leave(1_000)
    assert window.enter(1, 0) and (window.sends, window.bytes) == (1, 1)
