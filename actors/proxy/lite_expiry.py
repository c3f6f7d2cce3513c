"""LiteExpiry: lite topics idle longer than their parent's ``lite.topic.expiration`` attribute
(minutes; -1 or none: never) are deleted, as RocketMQ 5.5's broker deletes an expired lite
topic's queue, its offsets and its subscriptions' claim on it (no client is told).

Every ``CHECK_S`` (on a thread of the proxy's own): for each lite topic's queue topic of a
parent with an expiration, not subscribed by any client of this proxy, the time of its last
message (the broker's last store time), or when this proxy made it if none came yet (a lite
topic made by another proxy, or before a restart, with no message: kept); older than the
expiration, the topic is deleted from the brokers and the name servers (``Admin.delete_topic``:
its messages and every group's offsets of it go). A later send or subscription makes it anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from actors.client import Admin
from actors.client.errors import ClientError
from actors.proxy.lite import LMQ_PREFIX, LiteTopics, TopicTypes
from runtime.store.topic_attributes import LITE_EXPIRATION
from runtime.store.topic_names import split_lmq

CHECK_S = 120.0
"""How often lite topics are checked (RocketMQ's ``liteTtlCheckInterval``)."""


class LiteExpiry:
    def __init__(
        self,
        admin: Admin,
        types: TopicTypes,
        lites: LiteTopics,
        in_use: Callable[[str], bool],
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.admin = admin
        self.types = types
        self.lites = lites
        self.in_use = in_use
        self.now_ms = now_ms

    def run(self) -> list[str]:
        """One check; the queue topics deleted. A broker or name server that cannot be reached
        ends the check (the next one tries again)."""
        deleted: list[str] = []
        try:
            names = [t for t in self.admin.topic_list() if t.startswith(LMQ_PREFIX)]
            for name in names:
                if self._expired(name):
                    self.admin.delete_topic(name)
                    self.lites.forget(name)
                    deleted.append(name)
                    logger.info("proxy: lite topic {} idle past its expiration: deleted", name)
                    parent_lite = split_lmq(name)
                    if parent_lite is not None and self.in_use(name):
                        self.lites.ensure(*parent_lite)  # subscribed meanwhile: made again
        except ClientError as exc:
            logger.warning("proxy: lite topic expiry check stopped: {}", exc)
        return deleted

    def _expired(self, name: str) -> bool:
        parent_lite = split_lmq(name)
        if parent_lite is None:
            return False
        minutes = self._expiration(parent_lite[0])
        if minutes is None or self.in_use(name):
            return False
        last = max((row.last_update_ms for row in self.admin.topic_stats(name)), default=0)
        if last <= 0:
            made = self.lites.made_at.get(name)
            if made is None:
                return False
            last = made
        return self.now_ms() - last > minutes * 60_000

    def _expiration(self, parent: str) -> int | None:
        """The parent's expiration in minutes; None: never."""
        value = self.types.attributes(parent).get(LITE_EXPIRATION)
        try:
            minutes = int(value) if value is not None else -1
        except ValueError:
            return None
        return minutes if minutes > 0 else None
