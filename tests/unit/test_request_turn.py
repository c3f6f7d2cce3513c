"""runtime.request_context.Turn: the line of one connection's ordered requests."""

from __future__ import annotations

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
