"""send_async: the wait for room in the async window is part of the send's timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from actors.client import Message, Producer
from actors.client.testing import FakeCluster

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a", "broker-b"), topics=("Orders",)) as fc:
        yield fc


def test_the_wait_for_room_is_charged_to_the_send_timeout(cluster: FakeCluster) -> None:
    # Given a producer that allows one async send in flight, and brokers that do not answer
    with Producer("p", namesrv=cluster.namesrv, max_async_sends=1, retries=0) as producer:
        producer.send(Message("Orders", b"warm-up"))
        for b in cluster.brokers.values():
            cluster.run(lambda b=b: setattr(b, "silent_sends", 10))
        first = producer.send_async(Message("Orders", b"unanswered"), timeout=1.0)
        # When a second send (timeout 1.5 s) waits ~1 s for room, then is not answered either
        begun = time.monotonic()
        second = producer.send_async(Message("Orders", b"waits"), timeout=1.5)
        error = second.exception(timeout=5)
        elapsed = time.monotonic() - begun
        # Then it fails within its 1.5 s from the call (RocketMQ: the semaphore's wait counts),
        # not 1.5 s after it found room (~2.5 s)
        assert error is not None and first.exception(timeout=5) is not None
        assert elapsed < 2.0, elapsed


def test_room_found_after_the_timeout_is_spent_refuses_the_send(cluster: FakeCluster) -> None:
    # Given a producer with one async send in flight that stays unanswered for 0.5 s
    with Producer("p", namesrv=cluster.namesrv, max_async_sends=1, retries=0) as producer:
        producer.send(Message("Orders", b"warm-up"))
        for b in cluster.brokers.values():
            cluster.run(lambda b=b: setattr(b, "silent_sends", 1))
        first = producer.send_async(Message("Orders", b"unanswered"), timeout=0.5)
        # When a second one may wait only 0.2 s for room
        second = producer.send_async(Message("Orders", b"no room"), timeout=0.2)
        # Then it is refused, nothing sent, and the window is empty once the first ended
        assert "no room" in str(second.exception(timeout=5))
        assert first.exception(timeout=5) is not None
        assert producer.flush(5)
        assert producer.async_window is not None and producer.async_window.sends == 0
