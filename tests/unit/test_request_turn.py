"""runtime.request_context.Turn: the line of one connection's ordered requests."""

from __future__ import annotations

import gevent
import pytest

from runtime.request_context import Turn

pytestmark = pytest.mark.timeout(10)


def line(n: int) -> list[Turn]:
    turns: list[Turn] = []
    for _ in range(n):
        turns.append(Turn(turns[-1] if turns else None))
    return turns


def test_a_turn_passes_once_the_one_before_ends() -> None:
    first, second = line(2)
    assert first.wait(0) and not second.wait(0)
    first.end()
    assert second.wait(0)


def test_a_turn_that_gave_up_ends_only_with_the_one_before() -> None:
    # Given three turns, the second giving up and ending while the first is still on
    first, second, third = line(3)
    assert not second.wait(0.01)
    second.end()
    # Then the third still waits: nothing after the first may go before it
    assert not second.done and not third.wait(0.01)
    # When the first ends, the second ends with it and the third passes
    first.end()
    assert second.done and third.wait(0)


def test_thousands_of_given_up_turns_end_without_recursion() -> None:
    turns = line(20_000)
    for turn in reversed(turns[1:]):
        turn.end()
    assert not any(t.done for t in turns)
    turns[0].end()
    assert all(t.done for t in turns)


def test_ending_twice_is_harmless() -> None:
    first, second = line(2)
    first.end()
    first.end()
    second.end()
    assert first.done and second.done


def _waiting(turn: Turn, events: list[str], name: str, pause: float = 0.0) -> gevent.Greenlet:
    """A greenlet that waits for ``turn`` (records ``name`` when it passes), optionally yields
    for ``pause`` before ending it (a step that blocks), then ends it."""

    def run() -> None:
        assert turn.wait(5)
        events.append(name)
        if pause:
            gevent.sleep(pause)
        events.append(f"{name} ends")
        turn.end()

    return gevent.spawn(run)


def test_an_ending_turn_wakes_every_waiting_turn_behind_it_in_one_pass() -> None:
    # Given four turns, the last three waiting in greenlets of their own
    first, *rest = line(4)
    events: list[str] = []
    waiters = [_waiting(t, events, str(i)) for i, t in enumerate(rest, start=2)]
    gevent.sleep(0)
    assert events == [] and all(t.waiting for t in rest)
    # When the first ends and the hub runs what is ready once
    first.end()
    gevent.sleep(0)
    # Then all three passed, in order, in that one pass (woken one by one, only the second
    # would have: its successor's wake-up is queued behind this greenlet's)
    assert events == ["2", "2 ends", "3", "3 ends", "4", "4 ends"]
    gevent.joinall(waiters, timeout=5, raise_error=True)


def test_a_woken_turn_waits_again_while_the_one_before_has_not_ended() -> None:
    # Given three turns; the second's step yields for a while before it ends its turn
    first, second, third = line(3)
    events: list[str] = []
    waiters = [_waiting(second, events, "2", pause=0.05), _waiting(third, events, "3")]
    gevent.sleep(0)
    # When the first ends (both are woken)
    first.end()
    gevent.joinall(waiters, timeout=5, raise_error=True)
    # Then the third passed only after the second ended
    assert events == ["2", "2 ends", "3", "3 ends"]


def test_a_timed_out_waiter_is_not_woken_again_and_its_successor_is() -> None:
    # Given three turns: the second gives up waiting, the third waits on
    first, second, third = line(3)
    events: list[str] = []
    assert not second.wait(0.01)
    second.end()
    waiter = _waiting(third, events, "3")
    gevent.sleep(0)
    assert events == []
    # When the first ends, Then the second ends with it and the third passes
    first.end()
    waiter.join(timeout=5)
    assert second.done and events == ["3", "3 ends"]
