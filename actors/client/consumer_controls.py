"""What the user of a running consumer may change (a mixin of ``ConsumerBase``): its
subscriptions (``unsubscribe``, and ``subscribe`` after ``start`` through
``_set_subscription``) and which queues it pulls (``_hold``: a lite consumer's ``pause`` /
``resume``, a push consumer's ``suspend`` / ``resume``). Each runs on the client hub and tells
the consumer's ``Rebalancer`` (``_ask_rebalancer``), as does every other ask of it: a lite
consumer's ``seek`` and ``assign``, ``rebalance()``, the first rebalance of ``start`` and the
quiesce that begins a shutdown.

Across a restart of the rebalancer (it failed; its supervisor starts another): a change asked of
a rebalancer that dies before it answers (the message lost in its inbox, or the rebalancer found
dead) is asked again of the next one, which answers it; at most ``ASK_INCARNATIONS`` of them.
Asking twice applies it once: the messages carry the state wanted (every subscription; which
queues held, kept in the consumer's ``Holds``), and a restarted rebalancer starts from the
consumer's subscriptions, assignment and holds. When no rebalancer can apply it (the client
instance's supervisor is gone, or none runs within the call's timeout) the call raises
``RebalancerUnavailableError`` and the consumer's subscriptions are as before it."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import gevent
import gevent.event
import pykka

from actors.client.check_config import check_subscription
from actors.client.consumer_requests import REBALANCER
from actors.client.errors import (
    ClientError,
    ClientStateError,
    RebalancerUnavailableError,
    RequestTimeoutError,
)
from actors.client.hub import ClientHub
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.namespace import Namespace, wire_name
from actors.client.pull import TagFilter
from actors.client.rebalance_messages import HoldQueues, SetSubscriptions
from runtime.actor import GeventFuture, new_future
from runtime.remoting.bodies import ConsumerData

ASK_INCARNATIONS = 3
"""How many rebalancers a change is asked of, each dying before it answered, before it is
given up (a change that fails every rebalancer it reaches would else exhaust the supervisor's
restart intensity)."""
REBALANCER_POLL_S = 0.02
"""How often a call waiting for a restarted rebalancer (or for an answer) looks again."""


class ConsumerControls:
    """Mixin of ``ConsumerBase``, which supplies what is declared here."""

    group: str
    namespace: Namespace | None
    subscriptions: dict[str, TagFilter]
    _state: str
    _instance: ClientInstance | None

    def _running_hub(self, what: str) -> ClientHub:
        raise NotImplementedError

    def consumer_data(self) -> ConsumerData:
        raise NotImplementedError

    def _all_topics(self) -> dict[str, TagFilter]:
        raise NotImplementedError

    def unsubscribe(self, topic: str, timeout: float = 10.0) -> None:
        """Stop consuming ``topic`` (RocketMQ's ``unsubscribe``): before ``start``, forget the
        subscription; after, the brokers hear it with a heartbeat at once and this member lets
        its queues of the topic go (their offsets committed), so the group's other members
        subscribed to it take them at their next rebalance."""
        self._set_subscription(wire_name(self.namespace, topic), None, timeout)

    def _set_subscription(self, topic: str, sub: TagFilter | None, timeout: float) -> None:
        """Subscribe ``topic`` (``sub``) or unsubscribe it (None): ``_set_subscriptions``."""
        self._set_subscriptions({topic: sub}, timeout)

    def _set_subscriptions(self, changes: dict[str, TagFilter | None], timeout: float) -> None:
        """Subscribe each topic (to its ``TagFilter``) or unsubscribe it (None); while running,
        as RocketMQ's consumers do after ``start``: a new topic's route is fetched and a SQL92
        filter checked with a broker first (a refusal raises, nothing changed), then every
        broker gets one heartbeat with the new subscriptions and the rebalancer one round of
        the changed topics (``SetSubscriptions``)."""
        if self._state == "created":
            for topic, sub in changes.items():
                if sub is None:
                    self.subscriptions.pop(topic, None)
                else:
                    self.subscriptions[topic] = sub
            return
        adding = any(sub is not None for sub in changes.values())
        hub = self._running_hub("subscribe" if adding else "unsubscribe")

        what = "subscribe" if adding else "unsubscribe"

        def apply() -> None:
            instance = self._instance
            assert instance is not None
            if not instance.alive:
                raise RebalancerUnavailableError(what, "the client instance stopped")
            changed = False
            for topic, sub in changes.items():
                if sub is not None:
                    with contextlib.suppress(ClientError):  # no route yet: checked when there is
                        instance.fetch_route(topic, timeout=timeout)
                    check_subscription(instance, self.group, topic, sub, timeout)
            for topic, sub in changes.items():
                if sub is not None:
                    self.subscriptions[topic] = sub
                    changed = True
                elif self.subscriptions.pop(topic, None) is not None:
                    changed = True
            if not changed:
                return
            instance.members.consumers[self.group] = self.consumer_data()
            instance.heartbeat()
            subscriptions = self._all_topics()
            # a round of the changed topics: a consumer-list request each
            wait = 60.0 + timeout * len(changes)
            try:
                self._ask_rebalancer(
                    lambda reply: SetSubscriptions(subscriptions, reply), wait, what
                )
            except RebalancerUnavailableError:
                self.subscriptions.clear()
                self.subscriptions.update(before)
                instance.members.consumers[self.group] = self.consumer_data()
                raise

        before = dict(self.subscriptions)
        hub.call(apply, timeout=2 * timeout * max(1, len(changes)) + 65, what=what)

    def _hold(
        self, queues: tuple[MessageQueue, ...] | None, on: bool, hub: ClientHub, timeout: float
    ) -> int:
        """Pause or resume pulling ``queues`` (None: all of them, now and later): the
        rebalancer tells their pullers (``HoldQueues``); how many queues held now changed."""

        what = "pause" if on else "resume"

        def forward() -> int:
            return self._ask_rebalancer(lambda reply: HoldQueues(queues, on, reply), timeout, what)

        return hub.call(forward, timeout=timeout + 5, what=what)

    def _ask_rebalancer(
        self, factory: Any, timeout: float, what: str, states: tuple[str, ...] = ("running",)
    ) -> Any:
        """Tell the rebalancer ``factory(reply)`` and wait for the reply (on the hub), again of
        the next rebalancer when it dies first (see the module docstring). Raises
        ``RebalancerUnavailableError`` when none can answer, ``RequestTimeoutError`` when a
        live one did not answer within ``timeout`` (the change may still be applied), and
        ``ClientStateError`` once the consumer is in none of ``states`` (by default: once it
        is shutting down; ``start`` asks in ``created``, the shutdown's quiesce in
        ``stopping``)."""
        deadline = time.monotonic() + timeout
        dead: set[str] = set()
        while True:
            ref = self._live_rebalancer(dead, deadline, what, states)
            reply: GeventFuture[Any] = new_future()
            answered = gevent.event.Event()
            reply.add_done_callback(lambda _future, done=answered: done.set())
            try:
                ref.tell(factory(reply))
            except pykka.ActorDeadError:
                dead.add(ref.actor_urn)
                continue
            while not answered.wait(REBALANCER_POLL_S) and ref.is_alive():
                if time.monotonic() >= deadline:
                    raise RequestTimeoutError(what, timeout)
            if reply.done():  # answered, even if it died right after
                return reply.get(timeout=0)
            dead.add(ref.actor_urn)  # died with the message unanswered: ask the next one
            if len(dead) >= ASK_INCARNATIONS:
                raise RebalancerUnavailableError(
                    what, f"{len(dead)} rebalancers in a row died before they answered"
                )

    def _live_rebalancer(
        self, dead: set[str], deadline: float, what: str, states: tuple[str, ...]
    ) -> pykka.ActorRef[Any]:
        """The running rebalancer (not one of ``dead``), waiting for its supervisor to start
        it again when it just failed."""
        instance = self._instance
        while True:
            if self._state not in states:
                raise ClientStateError(f"{what} ({self.group})", self._state)
            if instance is None or not instance.alive:
                raise RebalancerUnavailableError(what, "the client instance stopped")
            ref = instance.directory.get(instance.name(REBALANCER))
            if ref is not None and ref.actor_urn not in dead and ref.is_alive():
                return ref
            if time.monotonic() >= deadline:
                raise RebalancerUnavailableError(what, "no rebalancer running")
            gevent.sleep(REBALANCER_POLL_S)
