"""The client's concurrent requests: a bound on how many are in flight at once."""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
import pytest

from actors.client.offsets import COMMITS_IN_FLIGHT
from actors.client.remoting import Remoting, make_request
from runtime.directory import Directory
from runtime.remoting.codes import RequestCode

pytestmark = pytest.mark.timeout(20)


class CountingRemoting(Remoting):
    """``invoke`` answers when the test releases it, counting the requests in flight."""

    def __init__(self) -> None:
        super().__init__({}, Directory(), "connections")
        self.current = 0
        self.peak = 0
        self.release = gevent.event.Event()

    def invoke(self, address: str, cmd: Any, timeout: float | None = None, what: str = "") -> Any:
        self.current += 1
        self.peak = max(self.peak, self.current)
        self.release.wait(10)
        self.current -= 1
        return cmd.opaque


def test_invoke_all_keeps_at_most_in_flight_requests_going() -> None:
    # Given 1,000 offset commits to one broker, at most COMMITS_IN_FLIGHT at once
    remoting = CountingRemoting()
    calls = [("b:1", make_request(RequestCode.UPDATE_CONSUMER_OFFSET, {})) for _ in range(1000)]
    # When they are invoked and the broker answers
    job = gevent.spawn(
        remoting.invoke_all, calls, 5.0, "offset commit", in_flight=COMMITS_IN_FLIGHT
    )
    gevent.idle()
    assert remoting.current == COMMITS_IN_FLIGHT
    remoting.release.set()
    results = job.get(timeout=10)
    # Then every call got its answer, never more than the bound in flight
    assert results == [cmd.opaque for _, cmd in calls]
    assert remoting.peak == COMMITS_IN_FLIGHT
    # and without a bound they all go at once
    unbounded = CountingRemoting()
    job = gevent.spawn(unbounded.invoke_all, calls[:300], 5.0, "x")
    gevent.idle()
    assert unbounded.current == 300
    unbounded.release.set()
    job.get(timeout=10)
