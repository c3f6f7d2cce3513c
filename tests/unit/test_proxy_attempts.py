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


def test_at_most_the_limit_of_handles_is_kept_the_oldest_going_first() -> None:
    clock = FakeClock()
    attempts = Attempts(clock, ttl_s=10.0, limit=6)
    for n in range(5):
        attempts.remember(n, [f"h{n}", f"i{n}"])
        clock.advance(1)
    assert len(attempts) == 3
    assert attempts.handles(0) == () and attempts.handles(1) == ()
    assert attempts.handles(4) == ("h4", "i4")
    attempts.forget(4)
    attempts.remember(5, ["h5", "i5", "j5", "k5"])
    assert len(attempts) == 2 and attempts.handles(3) == ("h3", "i3")
