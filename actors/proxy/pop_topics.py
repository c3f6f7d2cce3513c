"""The topics side of ``PopGroup`` (a mixin): what its consumer pulls (``subscribe``;
``change_topics``: a lite group's topics, as its clients subscribe them), which topics are
priority topics (``set_priority``), and ``wake`` (receives waiting in the consumer's poll look
again)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger

from actors.client.errors import ClientError
from actors.client.message import MessageExt
from actors.proxy.delivery import Delivery
from actors.proxy.priority import Urgent


class PopTopics:
    """Mixin of ``PopGroup``, which supplies what is declared here."""

    group: str
    consumer: Any
    clock: Callable[[], float]
    started: bool
    broken: bool
    expressions: dict[str, tuple[str, str | None]]
    priority_topics: set[str]
    in_flight: dict[str, Delivery]
    _subscribing: threading.Lock
    _lock: threading.Lock
    _dropped: dict[str, float]
    _generation: dict[str, int]
    _ready: dict[str, deque[MessageExt]]
    _urgent: Urgent
    _deadlines: dict[str, list[tuple[float, int, str]]]
    _held: dict[tuple[str, str], deque[MessageExt]]
    _busy: dict[tuple[str, str], int]

    def subscribe(self, topic: str, expression: str = "*", sql: str | None = None) -> None:
        """Make sure the group pulls ``topic`` with this filter (a changed filter re-subscribes,
        as a RocketMQ consumer's new subscription does)."""
        wanted = (expression, sql)
        if self.expressions.get(topic) == wanted:
            return
        with self._subscribing:  # one at a time: the first one starts the consumer
            if self.expressions.get(topic) == wanted:
                return
            self.consumer.subscribe(topic, expression, sql=sql)
            self._start()
            self.expressions[topic] = wanted
            self._dropped.pop(topic, None)

    def change_topics(self, add: list[str], remove: list[str]) -> None:
        """Pull ``add`` (every tag) and no longer ``remove`` (lite topics): one change of the
        consumer's subscriptions for all of them (``PullConsumer.change_topics``). A removed
        topic's queues go (offsets committed up to the oldest unacked message), so do its
        messages waiting here and its deliveries out (an ack of one answers
        INVALID_RECEIPT_HANDLE; it comes again from the committed offset when the topic is
        subscribed again)."""
        with self._subscribing:
            add = [t for t in add if self.expressions.get(t) != ("*", None)]
            remove = [t for t in remove if t in self.expressions]
            if not add and not remove:
                return
            self.consumer.change_topics(add, remove)
            for topic in add:
                self.expressions[topic] = ("*", None)
                self._dropped.pop(topic, None)
            for topic in remove:
                del self.expressions[topic]
                self._dropped[topic] = self.clock()
            if add:
                self._start()
        for topic in remove:
            self._forget(topic)

    def _start(self) -> None:
        """The consumer runs from the first subscription on. Under ``_subscribing``."""
        if self.started:
            return
        try:
            self.consumer.start()
        except ClientError:
            self.broken = True  # a consumer that failed to start stays failed
            raise
        self.started = True
        logger.info("proxy: consuming for group {}", self.group)

    def _forget(self, topic: str) -> None:
        """An unsubscribed topic's messages waiting and deliveries out go."""
        with self._lock:
            self._generation[topic] = self._generation.get(topic, 0) + 1
            self._ready.pop(topic, None)
            self._urgent.drop(topic)
            self._deadlines.pop(topic, None)
            for handle in [h for h, d in self.in_flight.items() if d.topic == topic]:
                del self.in_flight[handle]
            for key in [k for k in self._held if k[0] == topic]:
                del self._held[key]
            self._busy = {k: n for k, n in self._busy.items() if k[0] != topic}

    def set_priority(self, topic: str, on: bool) -> None:
        """Whether ``topic`` is a priority topic (its ``message.type``, which may change)."""
        with self._lock:
            if on:
                self.priority_topics.add(topic)
            else:
                self.priority_topics.discard(topic)
                while (msg := self._urgent.pop(topic)) is not None:
                    self._ready.setdefault(topic, deque()).append(msg)

    def wake(self) -> None:
        """Receives waiting in the consumer's poll look again now (their topics changed)."""
        if self.started:
            self.consumer.wakeup()
