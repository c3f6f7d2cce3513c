"""The dead-letter side of ``PopGroup`` (a mixin): a delivery a consumer gave up on, or out of
attempts (the sweep's ``BURY_BATCH`` a second, ``bury``: on a worker of the service's, one
batch of a group at a time, in order), goes to ``%DLQ%<group>`` through the group's
consumer, then counts as acked; a failed send keeps it in flight, due again in a second (its
queue's committed offset stays before it meanwhile): nothing is lost while the broker is
down."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from loguru import logger

from actors.proxy.delivery import Delivery, of_topic

BURY_BATCH = 32
"""Dead-letter sends one sweep makes for a group at most."""


class DeadLetters:
    """Mixin of ``PopGroup``, which supplies what is declared here."""

    group: str
    consumer: Any
    clock: Callable[[], float]
    in_flight: dict[str, Delivery]
    burying: bool
    _lock: threading.Lock

    def _schedule(self, delivery: Delivery) -> None:
        raise NotImplementedError

    def _release(self, delivery: Delivery) -> None:
        raise NotImplementedError

    def dead_letter(self, handle: str, topic: str | None = None) -> bool | None:
        """Move the delivery's message to ``%DLQ%<group>`` now (a consumer gave up on it):
        True when done, False when the send failed (it stays out), None when ``handle`` is
        unknown, or ``topic`` (the call's) is not its message's."""
        with self._lock:
            delivery = self.in_flight.get(handle)
            if delivery is None or (topic is not None and not of_topic(delivery.msg, topic)):
                return None
            del self.in_flight[handle]
        return self._to_dead_letters(delivery)

    def bury(self, deliveries: list[Delivery]) -> int:
        """Send a batch of ``due_dead_letters`` to the DLQ, in order (how many went); after a
        failure, the rest go back to wait for the next sweep (so do they if anything
        unexpected is raised). The group's next batch may be taken once it returns."""
        try:
            return self._dead_letter_all(deliveries)
        finally:
            with self._lock:
                self.burying = False

    def _dead_letter_all(self, deliveries: list[Delivery]) -> int:
        done = 0
        for index, delivery in enumerate(deliveries):
            ok = False
            try:
                ok = self._to_dead_letters(delivery)
            finally:
                if not ok:
                    with self._lock:
                        for later in deliveries[index + 1 :]:
                            self._keep(later)
            if not ok:
                break
            done += 1
        return done

    def _keep(self, delivery: Delivery) -> None:
        """Back in flight, due in a second (its queue's committed offset stays before it
        meanwhile). Under the lock."""
        delivery.deadline = self.clock() + 1.0
        self.in_flight[delivery.handle] = delivery
        self._schedule(delivery)

    def _to_dead_letters(self, delivery: Delivery) -> bool:
        """Out of the lock (a network call)."""
        try:
            self.consumer.send_to_dead_letter_queue(delivery.msg)
        except Exception as exc:  # a ClientError, or anything: the delivery must not be lost
            logger.warning("proxy: {} to the dead-letter queue failed: {}", delivery.msg, exc)
            with self._lock:
                self._keep(delivery)
            return False
        except BaseException:  # the thread is stopping: kept all the same
            with self._lock:
                self._keep(delivery)
            raise
        logger.info(
            "proxy: {} dead-lettered for {} after {} deliveries",
            delivery.msg,
            self.group,
            delivery.attempt,
        )
        with self._lock:
            self._release(delivery)
        self.consumer.ack([delivery.msg])
        return True
