"""LiteGroups: each lite group's pulled lite topics kept equal to what its clients subscribed.

The registry (``LiteSubscriptions``) is the truth; ``apply(group)`` makes the group's
``PopGroup`` pull exactly the queue topics its clients' sets name (subscribe the missing,
unsubscribe the rest), one change at a time per group (``PopGroup.lite_lock``), and wakes the
group's waiting receives (a receive reads its client's set again each time it looks). It runs
after each SyncLiteSubscription and termination, and on its own thread every second for every
lite group (so a subscribe that failed, a group made anew, or sets expired are put right
within a second), which also runs the lite topics' expiry (``LiteExpiry``) every
``CHECK_S``. Nothing here runs on the proxy's sweep thread: a slow broker call delays only
lite groups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loguru import logger

from actors.proxy.lite_expiry import CHECK_S, LiteExpiry
from actors.proxy.lite_subscriptions import LiteSubscriptions
from actors.proxy.pop import PopGroup

APPLY_S = 1.0
"""How often every lite group is matched to its clients' sets again."""


class LiteGroups:
    def __init__(
        self,
        registry: LiteSubscriptions,
        groups: Callable[[], dict[str, PopGroup]],
        expiry: LiteExpiry,
    ) -> None:
        self.registry = registry
        self.groups = groups
        """The service's groups by name (read only here)."""
        self.expiry = expiry
        self.changed = threading.Condition()
        """Notified when a group's lite topics change (a lite receive waiting for its
        client's first lite topic)."""

    def apply(self, name: str, wake: bool = False) -> None:
        """The group pulls what its clients subscribed; ClientError when a broker call fails
        (the thread tries again within a second). Its waiting receives look again when that
        changed anything, or ``wake`` (a client's set changed: its receive reads it anew)."""
        pop = self.groups().get(name)
        if pop is None or not pop.lite:
            return
        with pop.lite_lock:
            wanted = self.registry.consumed(name)
            have = set(pop.expressions)
            if wanted == have and not wake:
                return
            try:
                pop.change_topics(sorted(wanted - have), sorted(have - wanted))
            finally:
                pop.wake()
                with self.changed:
                    self.changed.notify_all()

    def receive_topics(
        self, group: str, who: str, wait_s: float, ended: Callable[[], bool] = lambda: False
    ) -> list[str]:
        """The queue topics a lite client's receive reads: its lite topics; while it has none,
        waits up to ``wait_s`` for its first (an empty list when none came), or until
        ``ended`` (its call was cancelled: ``wake`` then)."""
        until = time.monotonic() + wait_s
        with self.changed:
            while True:
                topics = self.registry.topics_of(group, who)
                left = until - time.monotonic()
                if topics or left <= 0 or ended():
                    return topics
                self.changed.wait(left)

    def wake(self) -> None:
        """Lite receives waiting for their client's first lite topic look again now."""
        with self.changed:
            self.changed.notify_all()

    def run(self, stopping: threading.Event) -> None:
        """The thread: every ``APPLY_S`` sets not sent again dropped and every lite group
        matched; every ``CHECK_S`` idle lite topics expired."""
        next_expiry = time.monotonic() + CHECK_S
        while not stopping.wait(APPLY_S):
            self.registry.expire()
            for name, pop in list(self.groups().items()):
                if not pop.lite:
                    continue
                try:
                    self.apply(name)
                except Exception as exc:  # a broker unreachable: again in a second
                    logger.warning("proxy: lite topics of {} not matched yet: {}", name, exc)
            if time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + CHECK_S
                try:
                    self.expiry.run()
                except Exception as exc:  # the next check tries again
                    logger.opt(exception=exc).error("proxy: lite topic expiry check failed")
