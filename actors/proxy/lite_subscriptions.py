"""LiteSubscriptions: which lite topics each lite push consumer subscribed, per consumer group.

A RocketMQ 5 lite push consumer binds to one parent topic and subscribes lite topics one by
one (SyncLiteSubscription PARTIAL_ADD / PARTIAL_REMOVE); it sends its whole set every 30 s
(COMPLETE_ADD), and a set not sent again within ``EXPIRE_S`` (3 min, as RocketMQ's broker)
is dropped, as is a client that terminates. A client receives only messages of the lite
topics it subscribed (shared between the group's clients that subscribed the same one).

The group consumes a lite topic's queue topic while any of its clients subscribes it: each
change answers the queue topics the group starts and stops consuming, for the caller to
subscribe / unsubscribe (``PopGroup``; ``LiteGroups`` matches the group to ``consumed``).
Plain data, no I/O, guarded by a lock of its own (never held while calling out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from actors.proxy.lite import lmq_name
from actors.proxy.proto import LiteSubscriptionAction

EXPIRE_S = 180.0
"""A client's set not sent again (COMPLETE_ADD, every 30 s) within this is dropped."""
CLIENT_QUOTA = 2000
"""Lite topics one client may subscribe (RocketMQ's ``lite.sub.client.quota`` default)."""


class LiteChange:
    """What a change did to the group's consumption: queue topics to start and stop."""

    __slots__ = ("started", "stopped")

    def __init__(self, started: list[str], stopped: list[str]) -> None:
        self.started = started
        self.stopped = stopped


class _Client:
    __slots__ = ("bind", "refreshed", "topics")

    def __init__(self, bind: str, now: float) -> None:
        self.bind = bind
        self.topics: set[str] = set()
        """Queue topics (``lmq_name``) of its lite topics."""
        self.refreshed = now


class LiteSubscriptions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._groups: dict[str, dict[str, _Client]] = {}
        self._lock = threading.Lock()

    def sync(
        self, group: str, client: str, bind: str, action: int, lites: Iterable[str]
    ) -> LiteChange:
        """Apply one SyncLiteSubscription of ``client`` (bound to parent topic ``bind``).
        LiteError ILLEGAL_LITE_TOPIC for a bad name (nothing changed)."""
        names = {lmq_name(bind, lite) for lite in lites}
        with self._lock:
            clients = self._groups.setdefault(group, {})
            before = self._union(clients)
            entry = clients.get(client)
            if entry is None or entry.bind != bind:
                entry = clients[client] = _Client(bind, self.clock())
            if action == LiteSubscriptionAction.PARTIAL_ADD:
                entry.topics |= names
            elif action == LiteSubscriptionAction.PARTIAL_REMOVE:
                entry.topics -= names
            elif action == LiteSubscriptionAction.COMPLETE_ADD:
                entry.topics = names
                entry.refreshed = self.clock()
            else:  # COMPLETE_REMOVE: all of the client's go
                del clients[client]
            return self._changed(group, before)

    def count(self, group: str, client: str) -> int:
        with self._lock:
            entry = self._groups.get(group, {}).get(client)
            return len(entry.topics) if entry is not None else 0

    def topics_of(self, group: str, client: str) -> list[str]:
        """The queue topics ``client`` receives from (sorted)."""
        with self._lock:
            entry = self._groups.get(group, {}).get(client)
            return sorted(entry.topics) if entry is not None else []

    def consumed(self, group: str) -> set[str]:
        """The queue topics the group consumes (any client's)."""
        with self._lock:
            return self._union(self._groups.get(group, {}))

    def summary(self) -> dict[str, tuple[int, int]]:
        """Group -> (clients with a set, lite topics the group consumes)."""
        with self._lock:
            return {
                group: (len(clients), len(self._union(clients)))
                for group, clients in self._groups.items()
            }

    def in_use(self, name: str) -> bool:
        """Whether any client (of any group) subscribes queue topic ``name``."""
        with self._lock:
            return any(
                name in entry.topics
                for clients in self._groups.values()
                for entry in clients.values()
            )

    def drop_client(self, client: str) -> dict[str, LiteChange]:
        """A client that terminated: its sets go. Changes by group."""
        with self._lock:
            return self._drop(lambda who, _entry: who == client)

    def expire(self) -> dict[str, LiteChange]:
        """Sets not sent again within ``EXPIRE_S`` go. Changes by group."""
        now = self.clock()
        with self._lock:
            return self._drop(lambda _who, entry: now - entry.refreshed > EXPIRE_S)

    def _drop(self, doomed: Callable[[str, _Client], bool]) -> dict[str, LiteChange]:
        changes: dict[str, LiteChange] = {}
        for group, clients in list(self._groups.items()):
            gone = [who for who, entry in clients.items() if doomed(who, entry)]
            if not gone:
                continue
            before = self._union(clients)
            for who in gone:
                del clients[who]
            change = self._changed(group, before)
            if change.started or change.stopped:
                changes[group] = change
        return changes

    def _changed(self, group: str, before: set[str]) -> LiteChange:
        clients = self._groups.get(group, {})
        after = self._union(clients)
        if not clients:
            self._groups.pop(group, None)
        return LiteChange(sorted(after - before), sorted(before - after))

    @staticmethod
    def _union(clients: dict[str, _Client]) -> set[str]:
        out: set[str] = set()
        for entry in clients.values():
            out |= entry.topics
        return out
