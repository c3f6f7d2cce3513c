"""SubscriptionGroups: the broker's consumer-group configs (RocketMQ's SubscriptionGroupManager).

Messages accepted (all asked):
- ``GetGroup(name)`` -> ``SubscriptionGroupConfig | None``
- ``UpdateGroup(config)`` -> the config (create or replace; bumps the data version)
- ``DeleteGroup(name)`` -> bool (whether it existed)
- ``AllGroups()`` -> ``SubscriptionGroupWrapper`` (the table and its data version)

A group needs no config to consume (as in RocketMQ, where auto-creation is on by default); a
config set with UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (``mqadmin updateSubGroup``) is what the
broker then applies (the request handlers read it): ``consumeEnable`` / ``consumeBroadcastEnable``
(pulls refused with NO_PERMISSION), ``retryMaxTimes`` (when a sent-back message goes to the
dead-letter queue), ``retryQueueNums``, ``brokerId`` / ``whichBrokerWhenConsumeSlowly`` and
``notifyConsumerIdsChangedEnable``; docs/broker.md, "Consumer groups".

Owned state: the table and its data version. Durability point: ``config/subscriptionGroup.json``
(RocketMQ's name and shape), rewritten atomically by a background greenlet after each change
and at stop; a crash right after a change may lose it (the admin re-applies it).
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec

from runtime.actor import GeventActor
from runtime.remoting.bodies import DataVersion, SubscriptionGroupConfig, SubscriptionGroupWrapper
from runtime.store.background import BackgroundWriter
from runtime.store.configfile import read_json
from runtime.store.context import StoreContext

FILE_NAME = "subscriptionGroup.json"


class GetGroup(msgspec.Struct, frozen=True, tag=True):
    name: str


class UpdateGroup(msgspec.Struct, frozen=True, tag=True):
    config: SubscriptionGroupConfig


class DeleteGroup(msgspec.Struct, frozen=True, tag=True):
    name: str


class AllGroups(msgspec.Struct, frozen=True, tag=True):
    pass


class SubscriptionGroups(GeventActor):
    """See the module docstring."""

    def __init__(self, ctx: StoreContext) -> None:
        super().__init__()
        self.path = os.path.join(ctx.settings.config_dir, FILE_NAME)
        self.groups: dict[str, SubscriptionGroupConfig] = {}
        self.version = DataVersion(timestamp=int(time.time() * 1000), counter=0)
        self._writer = BackgroundWriter(self.path)

    def on_start(self) -> None:
        loaded = read_json(self.path, SubscriptionGroupWrapper)
        if loaded is not None:
            self.groups = dict(loaded.subscription_group_table)
            self.version = loaded.data_version

    def on_stop(self) -> None:
        self._writer.close()

    def on_failure(self, *_exc: Any) -> None:
        self._writer.close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, GetGroup):
            return self.groups.get(message.name)
        if isinstance(message, UpdateGroup):
            name = message.config.group_name
            if not name:
                raise ValueError("a subscription group needs a groupName")
            self.groups[name] = message.config
            self._changed()
            return message.config
        if isinstance(message, DeleteGroup):
            existed = self.groups.pop(message.name, None) is not None
            if existed:
                self._changed()
            return existed
        if isinstance(message, AllGroups):
            return self._table()
        return super().on_receive(message)

    def _table(self) -> SubscriptionGroupWrapper:
        return SubscriptionGroupWrapper(
            subscription_group_table=dict(self.groups), data_version=self.version
        )

    def _changed(self) -> None:
        self.version = DataVersion(
            timestamp=int(time.time() * 1000), counter=self.version.counter + 1
        )
        self._writer.request(self._table)  # (taken when the write starts)
