"""``SendOp``: which answer decides a send (``actors.client.send``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from actors.client.send import SendOp
from runtime.future import new_future
from runtime.remoting.command import RemotingCommand

pytestmark = pytest.mark.timeout(10)


class Timer:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_an_earlier_attempts_answer_is_dropped() -> None:
    # Given a send whose first attempt timed out (its answer set in the same loop turn as the
    # timeout fired) and whose second attempt is in flight
    outcomes: list[Any] = []
    op = SendOp(
        SimpleNamespace(latency_fault=None),  # type: ignore[arg-type]
        SimpleNamespace(topic="Orders"),  # type: ignore[arg-type]
        SimpleNamespace(default=True),  # type: ignore[arg-type]
        3.0,
        2,
        lambda result, error: outcomes.append((result, error)),
        False,
    )
    first, second = new_future(), new_future()
    first.set(RemotingCommand(code=0, opaque=1, flag=1))
    op._future, op._timer = second, Timer()
    # When the first attempt's answer is delivered
    op._answered(first)
    # Then it decides nothing: the send still waits for the second attempt, its timer running
    assert outcomes == []
    assert op._timer is not None and not op._timer.closed
