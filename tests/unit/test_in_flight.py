"""runtime.in_flight.InFlight: the bounds and their accounting."""

from __future__ import annotations

import pytest

from runtime import in_flight
from runtime.in_flight import InFlight

pytestmark = pytest.mark.timeout(10)


def test_admitted_and_released_requests_balance_per_connection_and_process() -> None:
    before = in_flight.process_bytes()
    a, b = InFlight(), InFlight()
    assert a.admit(100) is None and a.admit(200) is None and b.admit(50) is None
    assert (a.count, a.bytes, in_flight.process_bytes() - before) == (2, 300, 350)
    a.release(100)
    a.release(200)
    b.release(50)
    assert (a.count, a.bytes, in_flight.process_bytes()) == (0, 0, before)


def test_the_first_request_of_a_connection_is_within_its_bounds() -> None:
    conn = InFlight(max_count=1, max_bytes=10)
    assert conn.admit(1_000) is None
    assert conn.admit(1) == "too many requests in flight (> 1)"
    conn.release(1_000)


def test_the_process_bound_spares_small_requests_and_an_idle_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(in_flight, "_process_bytes", 0)
    monkeypatch.setattr(in_flight, "MAX_PROCESS_IN_FLIGHT_BYTES", 1 << 20)
    hog, other = InFlight(), InFlight()
    assert hog.admit(2 << 20) is None  # nothing else in flight: admitted whatever its size
    assert other.admit(in_flight.SMALL_REQUEST + 1) is not None
    assert other.admit(in_flight.SMALL_REQUEST) is None
    hog.release(2 << 20)
    assert other.admit(in_flight.SMALL_REQUEST + 1) is None
