"""actors/proxy/attempts.py: the handles of receives by attempt id, bounded in time and count."""

from __future__ import annotations

from actors.proxy.attempts import Attempts
from tests.unit.test_proxy_pop import FakeClock


def test_an_attempt_is_remembered_for_its_time_only() -> None:
    clock = FakeClock()
    attempts = Attempts(clock, ttl_s=10.0, limit=100)
    attempts.remember(("c", "T", "a1"), ["h1", "h2"])
    clock.advance(10)
    assert attempts.handles(("c", "T", "a1")) == ("h1", "h2")
    assert attempts.handles(("c", "T", "other")) == ()
    clock.advance(0.5)
    assert attempts.handles(("c", "T", "a1")) == ()
    assert len(attempts) == 0


def test_at_most_the_limit_is_kept_the_oldest_going_first() -> None:
    clock = FakeClock()
    attempts = Attempts(clock, ttl_s=10.0, limit=3)
    for n in range(5):
        attempts.remember(n, [f"h{n}"])
        clock.advance(1)
    assert len(attempts) == 3
    assert attempts.handles(0) == () and attempts.handles(1) == ()
    assert attempts.handles(4) == ("h4",)
