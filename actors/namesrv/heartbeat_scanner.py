"""HeartbeatScanner: drops brokers that stopped registering (RocketMQ's scanNotActiveBroker).

Messages: ``Scan`` (its own timer, every ``interval`` seconds). Sends ``scan_not_active`` to the
RouteTable found in the directory. State owned: the timer only. Durability point: none.
A broker whose connection closes is dropped at once by the name-server processor; this scanner
catches the silent ones (a paused process, a dead link without FIN), whose connections the
route table closes (RocketMQ's scanNotActiveBroker closes the channel).
"""

from __future__ import annotations

from typing import Any

import msgspec
from loguru import logger

from runtime.actor import GeventActor
from runtime.directory import Directory


class Scan(msgspec.Struct, frozen=True, tag=True):
    pass


class HeartbeatScanner(GeventActor):
    """Every ``interval_s`` asks the route table to drop brokers silent for longer than their
    own timeout (the ``heartbeatTimeoutMillis`` they registered with; ``expire_ms`` for those
    that sent none), as RocketMQ 5's scanNotActiveBroker."""

    def __init__(
        self, directory: Directory, route_table: str, *, interval_s: float, expire_ms: int
    ) -> None:
        super().__init__()
        self.directory = directory
        self.route_table = route_table
        self.interval_s = interval_s
        self.expire_ms = expire_ms

    def on_start(self) -> None:
        self.send_every(self.interval_s, Scan())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Scan):
            ref = self.directory.get(self.route_table)
            if ref is None:
                logger.warning("heartbeat scanner: {} is not running", self.route_table)
                return None
            # Fire and forget: the route table logs what it drops.
            ref.proxy().scan_not_active(self.expire_ms)
            return None
        return super().on_receive(message)
