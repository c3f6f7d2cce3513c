"""``Holds``: the queues a consumer's user paused (a lite consumer's ``pause``, a push
consumer's ``suspend``), kept by the ``Rebalancer`` so that a queue paused while held stops
pulling at once and one assigned later starts paused (``actors.client.puller``'s ``Hold``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import pykka

from actors.client.message import MessageQueue
from actors.client.puller_messages import Hold
from actors.client.rebalance_messages import HoldQueues


class Holds:
    """Which queues are paused: every one (``all``) or those named (``queues``)."""

    __slots__ = ("all", "queues")

    def __init__(self) -> None:
        self.all = False
        self.queues: set[MessageQueue] = set()

    def __contains__(self, mq: MessageQueue) -> bool:
        return self.all or mq in self.queues

    def apply(
        self, message: HoldQueues, pullers: Mapping[MessageQueue, pykka.ActorRef[Any]]
    ) -> int:
        """Pause or resume what ``message`` names; tell the pullers whose queue changed
        ``Hold``. Returns how many were told."""
        before = {mq: mq in self for mq in pullers}
        if message.queues is None:
            self.all = message.on
        elif message.on:
            self.queues.update(message.queues)
        else:
            self.queues.difference_update(message.queues)
        told = 0
        for mq, ref in pullers.items():
            now = mq in self
            if now != before[mq]:
                told += 1
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.tell(Hold(now))
        return told
