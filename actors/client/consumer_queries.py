"""The queries both consumers answer (a part of ``ConsumerBase``, which provides the attributes and
methods declared here): the queues held, a rebalance now, offsets, a topic's queues. With a
namespace they take and give plain queues (``actors.client.namespace``)."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.client.consumer_requests import OFFSETS
from actors.client.hub import ClientHub
from actors.client.instance import ClientInstance
from actors.client.message import MessageExt, MessageQueue
from actors.client.namespace import Namespace, plain_queue, wire_name, wire_queue
from actors.client.offsets import Persist, ReadOffset, queue_offset
from actors.client.rebalance import DoRebalance, ReadAssignment
from actors.client.send_back import send_back


class ConsumerQueries:
    """Mixin of ``ConsumerBase``; see the module docstring."""

    group: str
    namespace: Namespace | None
    _instance: ClientInstance | None

    def _running_hub(self, what: str) -> ClientHub:
        raise NotImplementedError

    def _ask(self, child: str, factory: Any, timeout: float) -> Any:
        raise NotImplementedError

    def _ask_rebalancer(self, factory: Any, timeout: float, what: str) -> Any:
        raise NotImplementedError

    def assignment(self) -> list[MessageQueue]:
        """The queues this consumer pulls right now. Asked again of the next rebalancer when
        this one fails first (``_ask_rebalancer``): the queues the restarted one pulls."""
        hub = self._running_hub("assignment")

        def read() -> list[MessageQueue]:
            queues = self._ask_rebalancer(ReadAssignment, 5.0, "assignment")
            return [plain_queue(self.namespace, mq) for mq in queues]

        return hub.call(read, timeout=10, what="assignment")

    def rebalance(self, timeout: float = 30.0) -> bool:
        """Rebalance now (normally every 20 s and when the group changes); True if it changed.
        Asked again of the next rebalancer when this one fails first (``_ask_rebalancer``)."""
        hub = self._running_hub("rebalance")
        return hub.call(
            lambda: self._ask_rebalancer(
                lambda reply: DoRebalance("asked", reply), timeout, "rebalance"
            ),
            timeout=timeout + 5,
            what="rebalance",
        )

    def committed(self, mq: MessageQueue, timeout: float = 10.0) -> int:
        """The offset this client holds for ``mq`` (else the stored one; -1 if none)."""
        hub = self._running_hub("committed")
        mq = wire_queue(self.namespace, mq)
        return hub.call(
            lambda: self._ask(OFFSETS, lambda reply: ReadOffset(mq, reply), timeout),
            timeout=timeout + 5,
            what="committed",
        )

    def persist_offsets(self, timeout: float = 10.0) -> int:
        """Write every changed offset to the brokers (or the local file) now."""
        hub = self._running_hub("commit")
        return hub.call(
            lambda: self._ask(OFFSETS, lambda reply: Persist(None, reply), timeout),
            timeout=timeout + 5,
            what="commit",
        )

    def fetch_queues(self, topic: str, timeout: float = 10.0) -> list[MessageQueue]:
        """The topic's readable queues."""
        hub = self._running_hub("fetch_queues")
        instance = self._instance
        assert instance is not None
        wire = wire_name(self.namespace, topic)
        return hub.call(
            lambda: [
                plain_queue(self.namespace, mq)
                for mq in instance.fetch_route(wire, timeout=timeout).subscribe
            ],
            timeout=timeout + 5,
            what="fetch_queues",
        )

    def send_to_dead_letter_queue(self, msg: MessageExt, timeout: float = 3.0) -> None:
        """Move a received message to the group's dead-letter queue (``%DLQ%<group>``) at once:
        CONSUMER_SEND_MSG_BACK with delay level -1 to the broker that stored it. Raises a
        ClientError when the broker did not take it."""
        hub = self._running_hub("send_to_dead_letter_queue")
        instance = self._instance
        assert instance is not None
        if self.namespace is not None:  # polled messages carry the plain topic
            msg = msgspec.structs.replace(msg, topic=wire_name(self.namespace, msg.topic))
        return hub.call(
            lambda: send_back(instance, self.group, msg, delay_level=-1, timeout=timeout),
            timeout=timeout + 5,
            what="send back",
        )

    def _queue_offset(self, code: int, mq: MessageQueue, timeout: float) -> int:
        hub = self._running_hub("offset lookup")
        mq = wire_queue(self.namespace, mq)
        instance = self._instance
        assert instance is not None
        return hub.call(
            lambda: queue_offset(instance, code, mq, timeout), timeout=timeout + 5, what="offset"
        )
