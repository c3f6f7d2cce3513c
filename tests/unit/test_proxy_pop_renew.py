"""actors/proxy/pop.py: auto-renewed deliveries (a push consumer's receive with auto_renew)."""

from __future__ import annotations

from actors.proxy.lite_subscriptions import LiteSubscriptions
from actors.proxy.pop import MAX_RENEW_S, PopGroup
from actors.proxy.proto import Code, M
from actors.proxy.service import RELEASED_S, ProxyService
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer, _msg


def _group(alive: set[str], max_attempts: int = 17) -> tuple[PopGroup, FakeConsumer, FakeClock]:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    pop = PopGroup(
        "G",
        consumer,  # type: ignore[arg-type]
        max_attempts=max_attempts,
        alive=lambda who: who in alive,
        clock=clock,
    )
    return pop, consumer, clock


def test_a_live_holders_delivery_stays_invisible_under_its_handle() -> None:
    alive = {"push-1"}
    pop, consumer, clock = _group(alive)
    consumer.queued.append(_msg(0))
    (held,) = pop.receive("T", 1, 2_000, wait_s=0, holder="push-1")
    # When its invisible duration passes while its holder is alive
    clock.advance(5)
    # Then no receive gets it again, and the holder's ack still works under its handle
    assert pop.receive("T", 1, 2_000, wait_s=0) == []
    assert held.deadline > clock.now
    assert pop.ack(held.handle)


def test_a_gone_holders_delivery_comes_again() -> None:
    alive = {"push-1"}
    pop, consumer, clock = _group(alive)
    consumer.queued.append(_msg(0))
    pop.receive("T", 1, 2_000, wait_s=0, holder="push-1")
    alive.clear()  # the push consumer stopped calling
    clock.advance(3)
    (again,) = pop.receive("T", 1, 2_000, wait_s=0)
    assert again.attempt == 2 and again.holder is None


def test_renewal_ends_after_max_renew_s() -> None:
    pop, consumer, clock = _group({"push-1"})
    consumer.queued.append(_msg(0))
    pop.receive("T", 1, 60_000, wait_s=0, holder="push-1")
    start = clock.now
    while clock.now + 61 - start < MAX_RENEW_S:  # the sweep renews it every minute for 3 h
        clock.advance(61)
        assert pop.sweep() == 0
        assert pop.receive("T", 1, 60_000, wait_s=0) == []
        consumer.timeouts.clear()  # the fake counts polls to catch a spin; these are 177
    clock.advance(61 + 61)
    (again,) = pop.receive("T", 1, 60_000, wait_s=0)
    assert again.attempt == 2


def test_a_nack_of_a_renewed_delivery_is_not_renewed() -> None:
    pop, consumer, clock = _group({"push-1"})
    consumer.queued.append(_msg(0))
    (held,) = pop.receive("T", 1, 2_000, wait_s=0, holder="push-1")
    # When the push consumer nacks it (ChangeInvisibleDuration with its retry delay)
    handle = pop.change_invisible(held.handle, 1_000)
    assert handle is not None
    clock.advance(2)
    # Then it comes back after the delay, though its holder is alive
    (again,) = pop.receive("T", 1, 2_000, wait_s=0, holder="push-1")
    assert again.attempt == 2


def test_a_terminated_push_consumers_messages_come_again_within_a_second() -> None:
    alive = {"push-1"}
    pop, consumer, clock = _group(alive)
    consumer.queued.extend([_msg(0), _msg(1)])
    proxy = object.__new__(ProxyService)
    proxy.groups, proxy.seen, proxy.lite = {"G": pop}, {"push-1": clock.now}, LiteSubscriptions()
    # Given a push consumer holding two messages it had not consumed yet (60 s, auto-renewed)
    held = pop.receive("T", 2, 60_000, wait_s=0, holder="push-1")
    assert len(held) == 2
    # When it terminates (NotifyClientTermination)
    request = M.NotifyClientTerminationRequest()
    request.group.name = "G"
    answer = proxy.notify_client_termination(request, _Client("push-1"))
    assert answer.status.code == Code.OK
    # Then both come again to the group's next receive within RELEASED_S (not after 60 s),
    # however its client id is seen again (a restart under the same id)
    clock.advance(RELEASED_S)
    again = pop.receive("T", 2, 60_000, wait_s=0, holder="push-2")
    assert sorted(d.msg.queue_offset for d in again) == [0, 1]
    assert all(d.attempt == 2 for d in again)


class _Client:
    def __init__(self, client: str) -> None:
        self.client = client

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-mq-client-id", self.client)]
