"""TopicConfig: the broker's topic table (RocketMQ's TopicConfigManager).

Messages accepted (all asked):
- ``GetTopic(topic)`` -> ``TopicConfigData | None``
- ``UpdateTopic(config)`` -> ``TopicConfigData`` (create or replace; bumps the data version)
- ``DeleteTopic(topic)`` -> an AsyncResult set to True once ``topics.json`` without the topic
  is on disk (False: the write failed), so a deletion reported done stays done after a crash
- ``EnsureTopic(config)`` -> the existing config, or ``config`` created as given: system topics
  such as ``%RETRY%group``, and a send's auto-creation (the send handler decides whether it may
  and with which queues: ``autoCreateTopicEnable``, the default topic's inherit permission and
  queue count; one step here, so a topic made meanwhile is kept). An illegal or reserved name:
  ValueError
- ``AllTopics()`` -> ``TopicTable(topics, data_version)`` (for broker registration)

Owned state: the topic table and its data version (timestamp + counter, as RocketMQ's
DataVersion). System topics (TBW102 when auto-creation is on, SCHEDULE_TOPIC_XXXX, the
transaction half topics, OFFSET_MOVED_EVENT, SELF_TEST_TOPIC, the cluster and broker-name
topics) are present from the start.

Durability point: ``config/topics.json``, rewritten atomically (tmp + fsync + rename + dir
fsync) by a background greenlet after each change (changes coalesce; past 8 writes in a
second they start 0.2 s apart; reads never wait for a slow disk), and on stop. A crash right
after a change may lose it: the client's next send auto-creates the topic again, or the admin
re-applies it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gevent.event
import msgspec

from actors.broker.messages import (
    AllTopics,
    DeleteTopic,
    EnsureTopic,
    GetTopic,
    UpdateTopic,
)
from actors.broker.topic_config_data import DataVersion, TopicConfigData, TopicTable
from runtime.actor import GeventActor
from runtime.store.background import BackgroundWriter
from runtime.store.configfile import read_json, write_json
from runtime.store.context import StoreContext
from runtime.store.topic_names import SCHEDULE_TOPIC, reserved_problem, topic_problem

AUTO_CREATE_TOPIC_KEY_TOPIC = "TBW102"
REPLY_TOPIC_SUFFIX = "_REPLY_TOPIC"
"""``<cluster>_REPLY_TOPIC`` holds request-reply replies (RocketMQ's MixAll.REPLY_TOPIC_POSTFIX)."""
PERM_READ, PERM_WRITE, PERM_INHERIT = 4, 2, 1
WRITE_INTERVAL_S = 0.2
"""``topics.json`` is rewritten at most this often in a burst (thousands of topics made one by
one); an occasional change is written at once."""


class _TopicsFile(msgspec.Struct, rename="camel"):
    """RocketMQ's topics.json shape: topicConfigTable, dataVersion."""

    topic_config_table: dict[str, TopicConfigData]
    data_version: DataVersion


def system_topics(ctx: StoreContext) -> list[TopicConfigData]:
    s = ctx.settings
    rw = PERM_READ | PERM_WRITE
    topics = [
        TopicConfigData(topic_name="SELF_TEST_TOPIC", read_queue_nums=1, write_queue_nums=1),
        TopicConfigData(topic_name="OFFSET_MOVED_EVENT", read_queue_nums=1, write_queue_nums=1),
        TopicConfigData(topic_name=SCHEDULE_TOPIC, read_queue_nums=18, write_queue_nums=18),
        TopicConfigData(
            topic_name="RMQ_SYS_TRANS_HALF_TOPIC", read_queue_nums=1, write_queue_nums=1
        ),
        TopicConfigData(
            topic_name="RMQ_SYS_TRANS_OP_HALF_TOPIC", read_queue_nums=1, write_queue_nums=1
        ),
        TopicConfigData(
            topic_name=s.broker_name, read_queue_nums=1, write_queue_nums=1, perm=rw | PERM_INHERIT
        ),
    ]
    if s.cluster_name:
        topics.append(
            TopicConfigData(
                topic_name=s.cluster_name,
                read_queue_nums=16,
                write_queue_nums=16,
                perm=rw | PERM_INHERIT,
            )
        )
        topics.append(  # request-reply (actors.broker.reply_handler)
            TopicConfigData(
                topic_name=f"{s.cluster_name}{REPLY_TOPIC_SUFFIX}",
                read_queue_nums=1,
                write_queue_nums=1,
            )
        )
    if s.trace_topic:  # traceTopicEnable: where clients with message trace on send it
        topics.append(
            TopicConfigData(topic_name=s.trace_topic, read_queue_nums=1, write_queue_nums=1)
        )
    if s.auto_create_topic_enable:
        topics.append(
            TopicConfigData(
                topic_name=AUTO_CREATE_TOPIC_KEY_TOPIC,
                read_queue_nums=s.default_topic_queue_nums,
                write_queue_nums=s.default_topic_queue_nums,
                perm=rw | PERM_INHERIT,
            )
        )
    return topics


SYSTEM_TOPIC_PREFIX = "rmq_sys_"


def system_topic_names(ctx: StoreContext) -> set[str]:
    """The broker's own topics (RocketMQ's TopicValidator system topic set)."""
    return {cfg.topic_name for cfg in system_topics(ctx)} | {
        AUTO_CREATE_TOPIC_KEY_TOPIC,
        SCHEDULE_TOPIC,
    }


def is_system_topic(topic: str, ctx: StoreContext) -> bool:
    """A topic of the broker itself (RocketMQ's TopicValidator.isSystemTopic): not deletable."""
    return topic in system_topic_names(ctx) or topic.startswith(SYSTEM_TOPIC_PREFIX)


class TopicConfig(GeventActor):
    """See the module docstring."""

    def __init__(self, ctx: StoreContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.settings = ctx.settings
        self.path = os.path.join(ctx.settings.config_dir, "topics.json")
        self.topics: dict[str, TopicConfigData] = {}
        self.version = DataVersion(int(time.time() * 1000), 0)
        self._writer = BackgroundWriter(self.path, min_interval=WRITE_INTERVAL_S)

    def on_start(self) -> None:
        loaded = read_json(self.path, _TopicsFile)
        if loaded is not None:
            self.topics = dict(loaded.topic_config_table)
            self.version = loaded.data_version
        changed = False
        for cfg in system_topics(self.ctx):
            if cfg.topic_name not in self.topics:
                self.topics[cfg.topic_name] = cfg
                changed = True
        if changed or loaded is None:
            self._bump()
            self._persist(sync=True)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, GetTopic):
            return self.topics.get(message.topic)
        if isinstance(message, UpdateTopic):
            return self._put(message.config)
        if isinstance(message, DeleteTopic):
            if self.topics.pop(message.topic, None) is not None:
                self._bump()
            done = gevent.event.AsyncResult()
            self._writer.request(self._snapshot, done)
            return done
        if isinstance(message, EnsureTopic):
            current = self.topics.get(message.config.topic_name)
            return current if current is not None else self._put(message.config)
        if isinstance(message, AllTopics):
            if message.names is None:
                return TopicTable(dict(self.topics), self.version)
            topics = self.topics
            return TopicTable({n: topics[n] for n in message.names if n in topics}, self.version)
        return super().on_receive(message)

    def _put(self, cfg: TopicConfigData) -> TopicConfigData:
        problem = topic_problem(cfg.topic_name) or reserved_problem(cfg.topic_name)
        if problem:
            raise ValueError(problem)
        self.topics[cfg.topic_name] = cfg
        self._bump()
        self._persist()
        return cfg

    def _bump(self) -> None:
        self.version = DataVersion(int(time.time() * 1000), self.version.counter + 1)

    def _snapshot(self) -> _TopicsFile:
        return _TopicsFile(dict(self.topics), self.version)

    def _persist(self, *, sync: bool = False) -> None:
        if sync:
            write_json(self.path, self._snapshot())
        else:
            self._writer.request(self._snapshot)  # (taken when the write starts)

    def on_stop(self) -> None:
        self._writer.close()

    def on_failure(self, *_exc_info: Any) -> None:
        self._writer.close()
