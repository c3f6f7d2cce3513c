"""What a user changes on a running consumer (subscribe, unsubscribe, suspend, resume, a lite
consumer's pause, assign and seek, rebalance(), assignment()) and what start and shutdown ask
of the rebalancer while it fails and its supervisor restarts it: the call is applied once, by
the new rebalancer, and returns normally; when no rebalancer can apply it (the client
instance's supervisor is gone), a ``RebalancerUnavailableError`` says so and nothing is
changed. A rebalancer restarted during a shutdown starts no puller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import pytest

from actors.client import ConsumeFrom, PullConsumer, PushConsumer, RebalancerUnavailableError
from actors.client.consumer_requests import REBALANCER
from actors.client.message import MessageQueue
from actors.client.rebalance import Assign, DoRebalance, HoldQueues, Rebalancer
from actors.client.testing import FakeCluster
from runtime.actor import actor_of
from runtime.remoting.codes import RETRY_PREFIX
from tests.actors.test_client_pull_limits import pullers_read
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(60)

CALL_WITHIN = 15.0
"""A call made across a restart returns well within this (before: its 10-70 s timeout)."""


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), queues=2, topics=("Orders", "Invoices", "Payments")) as fc:
        yield fc


class Bomb:
    """A reply future whose ``set`` waits for ``fire`` and then raises: the rebalancer,
    handling the message that carries it, blocks, then fails."""

    def __init__(self) -> None:
        self.fire = gevent.event.Event()  # set on the hub

    def set(self, _value: Any) -> None:
        self.fire.wait(timeout=20)
        raise RuntimeError("injected rebalancer failure")


def rebalancer(consumer: PushConsumer | PullConsumer) -> Any:
    instance = consumer._instance
    assert instance is not None
    return instance.directory.get(instance.name(REBALANCER))


def fail_rebalancer_during(
    consumer: PushConsumer | PullConsumer, call: Callable[[], Any], restarted: bool = True
) -> Any:
    """Run ``call`` in a thread while the rebalancer is busy with a ``Bomb``; once the call's
    message waits in the rebalancer's inbox, fail the rebalancer (the message is lost with it;
    the supervisor restarts it; ``restarted``: check it runs after the call, which a shutdown
    stops). The call's result, or what it raised."""
    hub = consumer._hub
    assert hub is not None
    ref = rebalancer(consumer)
    bomb = Bomb()
    hub.call(lambda: ref.tell(DoRebalance("bomb", bomb)))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    actor = actor_of(ref)
    assert actor is not None
    wait_until(lambda: actor.actor_inbox.qsize() > 0, what="the call's message queued")
    hub.call(bomb.fire.set)
    thread.join(CALL_WITHIN)
    assert not thread.is_alive(), "the call did not return across the rebalancer's restart"
    if restarted:
        now = rebalancer(consumer)
        assert now is not None and now.actor_urn != ref.actor_urn
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def push_consumer(cluster: FakeCluster, group: str) -> PushConsumer:
    consumer = PushConsumer(
        group, namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST, rebalance_interval=60
    )
    consumer.subscribe("Orders", "*", lambda _m: None)
    return consumer.start()


def test_subscribe_during_a_rebalancer_restart_is_applied_and_returns(
    cluster: FakeCluster,
) -> None:
    # Given a running push consumer of Orders
    consumer = push_consumer(cluster, "sub-restart")
    try:
        # When it subscribes Payments while its rebalancer fails and is restarted
        fail_rebalancer_during(consumer, lambda: consumer.subscribe("Payments", "*", print))
        # Then the call returned and the new rebalancer pulls Payments too
        wait_until(
            lambda: (
                {mq.topic for mq in consumer.assignment()}
                == {"Orders", "Payments", f"{RETRY_PREFIX}sub-restart"}
            ),
            what="Payments pulled",
        )
    finally:
        consumer.shutdown()


def test_unsubscribe_during_a_rebalancer_restart_is_applied_and_returns(
    cluster: FakeCluster,
) -> None:
    # Given a running push consumer of Orders and Invoices
    consumer = push_consumer(cluster, "unsub-restart")
    consumer.subscribe("Invoices", "*", print)
    try:
        # When it unsubscribes Invoices while its rebalancer fails and is restarted
        fail_rebalancer_during(consumer, lambda: consumer.unsubscribe("Invoices"))
        # Then the new rebalancer no longer pulls Invoices
        wait_until(
            lambda: (
                {mq.topic for mq in consumer.assignment()}
                == {"Orders", f"{RETRY_PREFIX}unsub-restart"}
            ),
            what="Invoices let go",
        )
    finally:
        consumer.shutdown()


def test_suspend_and_resume_during_a_rebalancer_restart_are_applied(
    cluster: FakeCluster,
) -> None:
    # Given a running push consumer pulling Orders' queues and its retry queue
    consumer = push_consumer(cluster, "suspend-restart")
    try:
        # When it is suspended while its rebalancer fails and is restarted
        fail_rebalancer_during(consumer, consumer.suspend)
        # Then every queue the new rebalancer pulls is held
        wait_until(lambda: len(pullers_read(consumer, "on_hold")) == 3, what="queues back")
        assert consumer.suspended
        assert all(pullers_read(consumer, "on_hold").values())
        # And when it resumes while the new one fails too, every queue pulls again
        fail_rebalancer_during(consumer, consumer.resume)
        wait_until(lambda: len(pullers_read(consumer, "on_hold")) == 3, what="queues back")
        assert not consumer.suspended
        assert not any(pullers_read(consumer, "on_hold").values())
    finally:
        consumer.shutdown()


def test_lite_pause_and_assign_during_a_rebalancer_restart_are_applied(
    cluster: FakeCluster,
) -> None:
    # Given a lite consumer assigned Orders' queue 0
    q0, q1 = (MessageQueue(topic="Orders", broker_name="broker-a", queue_id=i) for i in (0, 1))
    consumer = PullConsumer("lite-restart", namesrv=cluster.namesrv)
    consumer.assign([q0])
    consumer.start()
    try:
        # When it pauses queue 0 while its rebalancer fails and is restarted
        fail_rebalancer_during(consumer, lambda: consumer.pause([q0]))
        # Then the new rebalancer's puller of queue 0 is held
        wait_until(lambda: pullers_read(consumer, "on_hold") == {q0: True}, what="q0 held")
        # And when it is assigned queue 1 while the new one fails too
        fail_rebalancer_during(consumer, lambda: consumer.assign([q1]))
        # Then the next rebalancer pulls queue 1 alone, as assigned (not the start's queue 0)
        wait_until(lambda: consumer.assignment() == [q1], what="q1 assigned")
        assert pullers_read(consumer, "on_hold") == {q1: False}
    finally:
        consumer.shutdown()


def test_a_rebalancer_dead_and_not_restarted_yet_is_waited_for(cluster: FakeCluster) -> None:
    # Given a running push consumer whose rebalancer failed a second time: its supervisor
    # restarts it after a backoff (the first restart is at once, the second 0.1 s later), the
    # directory naming the dead one or none meanwhile
    consumer = push_consumer(cluster, "dead-ref")
    hub = consumer._hub
    assert hub is not None
    try:

        def fail_once() -> Any:
            ref = rebalancer(consumer)
            ref.tell(DoRebalance("injected", Exploding()))
            while ref.is_alive():
                gevent.sleep(0.001)
            return ref

        def on_hub() -> int:
            first = fail_once()
            while rebalancer(consumer) in (None, first):
                gevent.sleep(0.001)
            second = fail_once()
            assert rebalancer(consumer) in (None, second)  # not restarted yet
            # When it is asked to hold every queue
            return consumer._ask_rebalancer(
                lambda reply: HoldQueues(None, True, reply), 10.0, "suspend"
            )

        hub.call(on_hub, timeout=CALL_WITHIN)
        # Then the restarted rebalancer applied it
        wait_until(lambda: len(pullers_read(consumer, "on_hold")) == 3, what="queues back")
        assert all(pullers_read(consumer, "on_hold").values())
    finally:
        consumer.shutdown()


class Exploding:
    def set(self, _value: Any) -> None:
        raise RuntimeError("injected rebalancer failure")


def test_no_rebalancer_at_all_raises_a_typed_error_and_changes_nothing(
    cluster: FakeCluster,
) -> None:
    # Given a running push consumer whose client instance's supervisor is gone (it gave up
    # restarting its children): no rebalancer will ever run again
    consumer = push_consumer(cluster, "no-rebalancer")
    hub = consumer._hub
    instance = consumer._instance
    assert hub is not None and instance is not None
    try:
        supervisor = instance._supervisor
        assert supervisor is not None
        hub.call(lambda: supervisor.stop(block=True, timeout=10))
        # When it subscribes Payments, and is suspended
        # Then both raise RebalancerUnavailableError, and neither is recorded as done
        with pytest.raises(RebalancerUnavailableError):
            consumer.subscribe("Payments", "*", print)
        assert "Payments" not in consumer.subscriptions
        with pytest.raises(RebalancerUnavailableError):
            consumer.suspend()
        assert not consumer.suspended
    finally:
        consumer.shutdown()


def test_lite_seek_during_a_rebalancer_restart_is_applied(cluster: FakeCluster) -> None:
    # Given a lite consumer assigned Orders' queue 0, which holds five messages (it starts at
    # their end: ConsumeFrom.LAST)
    q0 = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    for i in range(5):
        cluster.put("Orders", b"m%d" % i)
    consumer = PullConsumer("lite-seek", namesrv=cluster.namesrv)
    consumer.assign([q0])
    consumer.start()
    try:
        wait_until(lambda: consumer.assignment() == [q0], what="q0 pulled")
        # When it seeks queue 0 to offset 3 while its rebalancer fails and is restarted
        fail_rebalancer_during(consumer, lambda: consumer.seek(q0, 3))
        # Then the new rebalancer's puller continues at 3
        got: list[int] = []
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            got += [m.queue_offset for m in consumer.poll(timeout=0.5)]
        assert got == [3, 4]
    finally:
        consumer.shutdown()


def test_rebalance_during_a_rebalancer_restart_returns(cluster: FakeCluster) -> None:
    # Given a running push consumer of Orders
    consumer = push_consumer(cluster, "rebalance-restart")
    try:
        # When it is asked to rebalance while its rebalancer fails and is restarted
        changed = fail_rebalancer_during(consumer, consumer.rebalance)
        # Then the new rebalancer answered it (its own first round took the queues back)
        assert changed in (True, False)
        wait_until(lambda: len(consumer.assignment()) == 3, what="queues back")
    finally:
        consumer.shutdown()


def test_a_shutdown_during_a_rebalancer_restart_quiesces_the_new_one(
    cluster: FakeCluster,
) -> None:
    # Given a running push consumer of Orders
    consumer = push_consumer(cluster, "quiesce-restart")
    # When it shuts down while its rebalancer fails (the quiesce asked of it lost with it)
    begun = time.monotonic()
    fail_rebalancer_during(consumer, consumer.shutdown, restarted=False)
    # Then the quiesce was asked of the restarted one and answered: the shutdown did not wait
    # out the quiesce's 10 s
    assert time.monotonic() - begun < 8.0
    assert consumer._state == "shut down"


class FailsItsFirstStart(Rebalancer):
    """A rebalancer whose first incarnation fails on the start's rebalance."""

    failed = False

    def on_receive(self, message: Any) -> Any:
        first = not FailsItsFirstStart.failed
        if first and isinstance(message, DoRebalance) and message.reason == "start":
            FailsItsFirstStart.failed = True
            raise RuntimeError("injected rebalancer failure")
        return super().on_receive(message)


def test_start_across_a_rebalancer_restart_returns(cluster: FakeCluster) -> None:
    # Given a push consumer whose first rebalancer fails on the start's rebalance
    consumer = PushConsumer(
        "start-restart", namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST
    )
    consumer.subscribe("Orders", "*", lambda _m: None)
    consumer._rebalancer_class = lambda: FailsItsFirstStart  # type: ignore[method-assign]
    # When it starts
    thread = threading.Thread(target=consumer.start, daemon=True)
    thread.start()
    thread.join(CALL_WITHIN)
    # Then start asked the restarted rebalancer and returned (before: it waited out 60 s)
    assert not thread.is_alive(), "start did not return across the rebalancer's restart"
    try:
        assert FailsItsFirstStart.failed
        wait_until(lambda: len(consumer.assignment()) == 3, what="queues pulled")
    finally:
        consumer.shutdown()


def test_assignment_during_a_rebalancer_restart_answers(cluster: FakeCluster) -> None:
    # Given a running push consumer pulling Orders' two queues and its retry queue
    consumer = push_consumer(cluster, "assignment-restart")
    try:
        wait_until(lambda: len(consumer.assignment()) == 3, what="queues pulled")
        # When its assignment is read while its rebalancer fails and is restarted
        queues = fail_rebalancer_during(consumer, consumer.assignment)
        # Then the restarted rebalancer answered (before: ActorDeadError), after it took the
        # queues back
        assert len(queues) == 3
        assert all(isinstance(mq, MessageQueue) for mq in queues)
    finally:
        consumer.shutdown()


def test_a_rebalancer_restarted_during_a_shutdowns_drain_starts_no_puller(
    cluster: FakeCluster,
) -> None:
    # Given a running push consumer pulling Orders' two queues and its retry queue
    consumer = push_consumer(cluster, "drain-restart")
    hub = consumer._hub
    assert hub is not None
    wait_until(lambda: len(consumer.assignment()) == 3, what="queues pulled")
    seen: dict[str, Any] = {}

    def drain() -> None:
        # When, after the shutdown's quiesce, its rebalancer fails and is restarted
        first = rebalancer(consumer)
        hub.call(lambda: first.tell(DoRebalance("injected", Exploding())))
        wait_until(
            lambda: rebalancer(consumer) not in (None, first) and rebalancer(consumer).is_alive(),
            what="the rebalancer restarted",
        )
        # and the restarted one has had a rebalance round (after its own catch-up one)
        hub.call(
            lambda: consumer._ask_rebalancer(
                lambda reply: DoRebalance("asked", reply), 10.0, "rebalance", states=("stopping",)
            ),
            timeout=CALL_WITHIN,
        )
        now = rebalancer(consumer)
        seen["pullers"] = hub.call(lambda: now.proxy().pullers_by_queue().get(timeout=5))

    consumer._shutdown(drain)
    # Then the restarted rebalancer of the stopping consumer started no puller
    assert seen["pullers"] == {}
    assert consumer._state == "shut down"


def test_a_quiesced_rebalancer_starts_no_puller(cluster: FakeCluster) -> None:
    # Given a lite consumer assigned Orders' queue 0, shutting down: its quiesce told
    q0, q1 = (MessageQueue(topic="Orders", broker_name="broker-a", queue_id=i) for i in (0, 1))
    consumer = PullConsumer("lite-quiesced", namesrv=cluster.namesrv)
    consumer.assign([q0])
    consumer.start()
    hub = consumer._hub
    assert hub is not None
    seen: dict[str, Any] = {}

    def drain() -> None:
        # When its rebalancer is then told to pull queue 1 too
        hub.call(
            lambda: consumer._ask_rebalancer(
                lambda reply: Assign((q0, q1), reply), 10.0, "assign", states=("stopping",)
            ),
            timeout=CALL_WITHIN,
        )
        seen["queues"] = hub.call(lambda: rebalancer(consumer).proxy().assignment().get(timeout=5))

    consumer._shutdown(drain)
    # Then it started no puller for it
    assert seen["queues"] == [q0]


class HeldRestart(Rebalancer):
    """A rebalancer whose restarted incarnations start (``on_start``) only once ``go`` is
    set: what the consumer tells it meanwhile is in its inbox before its catch-up round."""

    go: gevent.event.Event | None = None

    def on_start(self) -> None:
        if self.restarted and HeldRestart.go is not None:
            HeldRestart.go.wait(timeout=20)
        super().on_start()


def test_a_seek_reaching_a_restarted_rebalancer_before_its_first_round_is_applied(
    cluster: FakeCluster,
) -> None:
    # Given a lite consumer assigned Orders' queue 0, which holds five messages, whose
    # rebalancer failed and was restarted, the new one not started yet
    q0 = MessageQueue(topic="Orders", broker_name="broker-a", queue_id=0)
    for i in range(5):
        cluster.put("Orders", b"m%d" % i)
    consumer = PullConsumer("lite-seek-first", namesrv=cluster.namesrv)
    consumer._rebalancer_class = lambda: HeldRestart  # type: ignore[method-assign]
    consumer.assign([q0])
    consumer.start()
    hub = consumer._hub
    assert hub is not None
    try:
        wait_until(lambda: consumer.assignment() == [q0], what="q0 pulled")
        hub.call(lambda: setattr(HeldRestart, "go", gevent.event.Event()))
        first = rebalancer(consumer)
        hub.call(lambda: first.tell(DoRebalance("injected", Exploding())))
        wait_until(
            lambda: rebalancer(consumer) not in (None, first) and rebalancer(consumer).is_alive(),
            what="the rebalancer restarted",
        )
        # When a seek of queue 0 to offset 3 reaches it before its catch-up round
        outcome: dict[str, Any] = {}

        def seek() -> None:
            try:
                consumer.seek(q0, 3)
                outcome["done"] = True
            except BaseException as exc:  # handed to the test thread
                outcome["error"] = exc

        thread = threading.Thread(target=seek, daemon=True)
        thread.start()
        actor = actor_of(rebalancer(consumer))
        assert actor is not None
        wait_until(lambda: actor.actor_inbox.qsize() > 0, what="the seek queued")
        go = HeldRestart.go
        assert go is not None
        hub.call(go.set)
        thread.join(CALL_WITHIN)
        # Then it was applied to the puller the round started (before: "not assigned")
        assert outcome == {"done": True}
        got: list[int] = []
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            got += [m.queue_offset for m in consumer.poll(timeout=0.5)]
        assert got == [3, 4]
    finally:
        HeldRestart.go = None
        consumer.shutdown()
