"""What the user of a running consumer may change (a mixin of ``ConsumerBase``): its
subscriptions (``unsubscribe``, and ``subscribe`` after ``start`` through
``_set_subscription``) and which queues it pulls (``_hold``: a lite consumer's ``pause`` /
``resume``, a push consumer's ``suspend`` / ``resume``). Each runs on the client hub and tells
the consumer's ``Rebalancer``."""

from __future__ import annotations

import contextlib
from typing import Any

from actors.client.check_config import check_subscription
from actors.client.consumer_requests import REBALANCER
from actors.client.errors import ClientError
from actors.client.hub import ClientHub
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.namespace import Namespace, wire_name
from actors.client.pull import TagFilter
from actors.client.rebalance_messages import HoldQueues, SetSubscriptions
from runtime.remoting.bodies import ConsumerData


class ConsumerControls:
    """Mixin of ``ConsumerBase``, which supplies what is declared here."""

    group: str
    namespace: Namespace | None
    subscriptions: dict[str, TagFilter]
    _state: str
    _instance: ClientInstance | None

    def _running_hub(self, what: str) -> ClientHub:
        raise NotImplementedError

    def _ask(self, child: str, factory: Any, timeout: float) -> Any:
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

        def apply() -> None:
            instance = self._instance
            assert instance is not None
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
            self._ask(REBALANCER, lambda reply: SetSubscriptions(subscriptions, reply), wait)

        hub.call(
            apply,
            timeout=2 * timeout * max(1, len(changes)) + 65,
            what="subscribe" if adding else "unsubscribe",
        )

    def _hold(
        self, queues: tuple[MessageQueue, ...] | None, on: bool, hub: ClientHub, timeout: float
    ) -> int:
        """Pause or resume pulling ``queues`` (None: all of them, now and later): the
        rebalancer tells their pullers (``HoldQueues``); how many queues held now changed."""

        def forward() -> int:
            return self._ask(REBALANCER, lambda reply: HoldQueues(queues, on, reply), timeout)

        return hub.call(forward, timeout=timeout + 5, what="pause" if on else "resume")
