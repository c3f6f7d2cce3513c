"""actors/proxy/service.py: the proxy's sweep (every second: renewals, dead letters, idle
groups) over PopGroups with (fake) consumers, one of whose broker does not answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from actors.client.message import MessageExt
from actors.proxy import service as service_module
from actors.proxy.pop import PopGroup
from actors.proxy.service import ProxyService
from tests.client_support import wait_until
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer, _msg

pytestmark = pytest.mark.timeout(60)


class HungBroker(FakeConsumer):
    """A consumer whose dead-letter sends hang until ``release`` (a broker that takes the
    connection and never answers); it counts the sends under way at once."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.release = threading.Event()
        self.sending = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def send_to_dead_letter_queue(self, msg: MessageExt) -> None:
        with self._count:
            self.sending += 1
            self.most_at_once = max(self.most_at_once, self.sending)
        try:
            assert self.release.wait(20), "never released"
            super().send_to_dead_letter_queue(msg)
        finally:
            with self._count:
                self.sending -= 1


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyService]:
    """A service (its clients never started: no network) whose sweep runs every 20 ms."""
    monkeypatch.setattr(service_module, "SWEEP_INTERVAL_S", 0.02)
    proxy = ProxyService("127.0.0.1:1", ("127.0.0.1", 1))
    yield proxy
    proxy._stopping.set()
    for pop in proxy.groups.values():
        if isinstance(pop.consumer, HungBroker):
            pop.consumer.release.set()
    proxy.stop()


def _received(pop: PopGroup, offset: int, holder: str | None = None) -> object:
    pop.consumer.queued.append(_msg(offset))  # type: ignore[attr-defined]
    (delivery,) = pop.receive("T", 1, 30_000, wait_s=0, holder=holder)
    return delivery


def test_a_hung_broker_holds_neither_other_groups_dead_letters_nor_renewals(
    service: ProxyService,
) -> None:
    clock = FakeClock()
    hung = HungBroker(clock)
    stuck = PopGroup("A", hung, max_attempts=1, alive=lambda who: True, clock=clock)  # type: ignore[arg-type]
    healthy = FakeConsumer(clock)
    other = PopGroup("B", healthy, max_attempts=1, clock=clock)  # type: ignore[arg-type]
    for pop in (stuck, other):
        pop.subscribe("T")
    # Given group A, whose broker does not answer, with a delivery out of attempts and one a
    # push consumer holds (auto-renewed), and group B with a delivery out of attempts
    _received(stuck, 0)
    held = _received(stuck, 1, holder="push-1")
    _received(other, 10)
    for pop in (stuck, other):
        pop.last_used = float("inf")  # (never idle here)
    service.groups.update({"A": stuck, "B": other})  # (A swept first)
    clock.advance(31)
    # When the sweep runs while A's dead-letter send hangs
    sweeper = threading.Thread(target=service._sweep_loop, daemon=True)
    sweeper.start()
    wait_until(lambda: hung.sending == 1, timeout=5, what="A's send under way")
    # Then B's message goes to its DLQ all the same (before: after A's send timed out)
    wait_until(lambda: [m.queue_offset for m in healthy.dead] == [10], timeout=5, what="B's DLQ")
    # And A's held delivery is renewed again and again meanwhile
    for _ in range(2):
        clock.advance(31)
        wait_until(lambda: held.deadline > clock.now, timeout=5, what="A's renewal")  # type: ignore[attr-defined]
    # And A's next delivery out of attempts waits for the batch being sent (in order)
    _received(stuck, 2)
    clock.advance(31)
    wait_until(lambda: len(stuck._bury) == 1, timeout=5, what="A's next one due")
    assert hung.sending == 1 and hung.dead == []
    hung.release.set()
    wait_until(lambda: len(hung.dead) == 2, timeout=5, what="A's DLQ")
    assert [m.queue_offset for m in hung.dead] == [0, 2]
    assert hung.most_at_once == 1
    assert set(service.groups) == {"A", "B"}
    service._stopping.set()
    sweeper.join(5)
