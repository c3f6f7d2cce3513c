"""What a broker's Prometheus endpoint reports (``MetricsExporter``), gathered at each scrape.

Names follow RocketMQ 5's broker metrics where the figure means the same; the ones RocketMQ has
no name for start with ``actormq_``. Every sample carries ``cluster``, ``node_type``
(``broker``), ``node_id`` (the broker name) and ``broker_id``.

- ``rocketmq_messages_in_total{topic}`` (counter): messages stored in the topic's queues on
  this broker, the sum of their max offsets (so it starts where the log starts, not at zero,
  and falls back to zero when a topic is deleted and created again).
- ``rocketmq_messages_out_total{topic, consumer_group}`` (counter): messages handed to the
  group in pull responses since the broker started (redeliveries count again).
- ``rocketmq_throughput_in_total{topic}``, ``rocketmq_throughput_out_total{topic,
  consumer_group}`` (counters, bytes as stored): appended since the broker started (a batch
  counts for its first record's topic), handed to the group in pull responses.
- ``rocketmq_consumer_lag_messages{topic, consumer_group}`` (gauge): per group with committed
  offsets of the topic here, the sum over its read queues of max offset - committed offset
  (0 for a queue without one), as ``mqadmin consumerProgress``'s diff.
- ``rocketmq_consumer_lag_latency{topic, consumer_group}`` (gauge, ms): how long the oldest
  message the group has not consumed (the one at its committed offset, over the queues with a
  lag) has waited since it was stored; 0 without a lag. One read per lagging queue.
- ``rocketmq_topic_number``, ``rocketmq_consumer_group_number`` (gauges): topics and
  subscription groups configured here.
- ``rocketmq_consumer_connections{consumer_group}``, ``rocketmq_producer_connections
  {producer_group}`` (gauges): live members by their heartbeats.
- ``rocketmq_broker_permission`` (gauge): ``brokerPermission`` (6 read/write, 4 read only).
- ``rocketmq_storage_size`` (gauge, bytes): the commit log's span, max - min offset.
- ``rocketmq_storage_message_reserve_time`` (gauge, ms): age of the oldest stored message.
- ``rocketmq_storage_dispatch_behind_bytes``, ``rocketmq_storage_flush_behind_bytes`` (gauges):
  bytes written to the commit log and not yet dispatched to consume queues / not yet fsynced
  (ASYNC_FLUSH: up to ``flushIntervalCommitLog``'s worth).
- ``actormq_disk_used_ratio`` (gauge): use of the commit log's disk, 0 - 1.
- ``rocketmq_rpc_latency{protocol_type, request_code, response_code}`` (histogram, ms): each
  answered request from its read to its answer written (``runtime.latency``; RocketMQ's
  buckets with 0.1, 0.25 and 0.5 first); oneway requests and pulls held for long polling are
  not in it.
- ``rocketmq_message_size{topic, message_type}`` (histogram, bytes): one observation per stored
  producer's send, its records' average size as stored (RocketMQ's wroteBytes / msgNum; not
  sends to retry or dead-letter topics; a lite topic's queue as its parent), by RocketMQ's
  buckets 1 KiB, 4 KiB, 512 KiB, 1, 2, 4 MiB; ``message_type`` as RocketMQ 5 reads the send's
  properties: normal, fifo, delay, transaction (``message_kind``).
- ``actormq_ha_in_sync_slaves``, ``actormq_ha_slave_behind_bytes{slave_id}`` (gauges, a
  master): slaves in sync now; bytes each linked slave (by brokerId) does not hold yet.
  ``actormq_ha_master_link_up`` (gauge, a slave): 1 while linked to its master.
- ``actormq_broker_messages_in_total``, ``actormq_broker_messages_out_total`` (counters):
  messages appended (retries, delayed, transactional included) and handed to consumers since
  the broker started, as ``mqadmin brokerStatus`` counts them.
"""

from __future__ import annotations

import time

from actors.broker.context import BrokerContext
from actors.broker.stats_handler import store_time
from runtime.ha.state import Role
from runtime.prometheus import Family


def collect(ctx: BrokerContext) -> list[Family]:
    """Every family, read from the store and the broker's actors now (blocking asks: call it
    from a greenlet of its own, not an actor's handler)."""
    store = ctx.store
    topics = store.all_topics()
    ends: dict[tuple[str, int], int] = {}

    def end(topic: str, queue_id: int) -> int:
        key = (topic, queue_id)
        if key not in ends:
            ends[key] = max(store.max_offset(topic, queue_id), 0)
        return ends[key]

    messages_in = Family(
        "rocketmq_messages_in_total", "counter", "Messages stored in the topic's queues here."
    )
    for name, config in sorted(topics.items()):
        queues = max(config.read_queue_nums, config.write_queue_nums)
        messages_in.add(sum(end(name, q) for q in range(queues)), topic=name)

    messages_out = _by_group(
        "rocketmq_messages_out_total",
        "Messages of the topic handed to the group in pull responses since the broker started.",
        ctx.got_by,
    )
    bytes_out = _by_group(
        "rocketmq_throughput_out_total",
        "Bytes of the topic's messages handed to the group since the broker started.",
        ctx.got_bytes_by,
    )
    bytes_in = Family(
        "rocketmq_throughput_in_total",
        "counter",
        "Bytes of the topic's messages appended (as stored) since the broker started.",
    )
    for topic, size in sorted(store.put_bytes.items()):
        bytes_in.add(size, topic=topic)

    lag = Family(
        "rocketmq_consumer_lag_messages",
        "gauge",
        "Messages of the topic not yet consumed by the group (max offset - committed offset).",
    )
    lag_latency = Family(
        "rocketmq_consumer_lag_latency",
        "gauge",
        "Milliseconds the group's oldest unconsumed message of the topic has waited (0: none).",
    )
    now_ms = int(time.time() * 1000)
    for key, offsets in sorted(store.all_offsets().items()):
        topic, _, group = key.partition("@")
        config = topics.get(topic)
        if config is None:
            continue
        behind = {q: end(topic, q) - offsets.get(q, 0) for q in range(config.read_queue_nums)}
        lag.add(sum(max(n, 0) for n in behind.values()), topic=topic, consumer_group=group)
        oldest = min(
            (store_time(ctx, topic, q, offsets.get(q, 0)) for q, n in behind.items() if n > 0),
            default=0,
        )
        waited = max(now_ms - oldest, 0) if oldest > 0 else 0
        lag_latency.add(waited, topic=topic, consumer_group=group)

    groups = store.all_subscription_groups().subscription_group_table
    consumers = ctx.ask(ctx.proxy(ctx.consumers).member_counts())
    producers = ctx.ask(ctx.proxy(ctx.producers).groups())
    info = ctx.ask(ctx.proxy(ctx.stats).runtime_info())
    return [
        messages_in,
        messages_out,
        bytes_in,
        bytes_out,
        lag,
        lag_latency,
        ctx.rpc_latency.family(),
        ctx.message_size.family(),
        _one("rocketmq_topic_number", "gauge", "Topics configured here.", len(topics)),
        _one("rocketmq_consumer_group_number", "gauge", "Subscription groups here.", len(groups)),
        _per(
            "rocketmq_consumer_connections",
            "Live members of the consumer group.",
            "consumer_group",
            consumers,
        ),
        _per(
            "rocketmq_producer_connections",
            "Live members of the producer group.",
            "producer_group",
            {group: len(ids) for group, ids in producers.items() if ids},
        ),
        _one(
            "rocketmq_broker_permission",
            "gauge",
            "brokerPermission: 6 read and write, 4 read only, 2 write only.",
            ctx.cfg.broker_permission,
        ),
        *_storage(info),
        *_replication(ctx, int(info.get("commitLogMaxOffset", "0") or 0)),
        *(_one(name, kind, text, float(info.get(key) or 0)) for name, kind, text, key in FROM_INFO),
    ]


FROM_INFO = (
    (
        "rocketmq_storage_dispatch_behind_bytes",
        "gauge",
        "Bytes written to the commit log and not yet dispatched to consume queues.",
        "dispatchBehindBytes",
    ),
    (
        "rocketmq_storage_flush_behind_bytes",
        "gauge",
        "Bytes written to the commit log and not yet fsynced.",
        "commitLogUnflushedBytes",
    ),
    (
        "actormq_disk_used_ratio",
        "gauge",
        "Use of the commit log's disk, 0 - 1.",
        "commitLogDiskRatio",
    ),
    (
        "actormq_broker_messages_in_total",
        "counter",
        "Messages appended since the broker started.",
        "msgPutTotalTodayNow",
    ),
    (
        "actormq_broker_messages_out_total",
        "counter",
        "Messages handed to consumers since the broker started.",
        "msgGetTotalTodayNow",
    ),
)
"""(name, type, help, key of the StatsSampler's runtime info): figures read as they are."""


def common_labels(ctx: BrokerContext) -> dict[str, str]:
    cfg = ctx.cfg
    return {
        "cluster": cfg.broker_cluster_name,
        "node_type": "broker",
        "node_id": cfg.broker_name,
        "broker_id": str(cfg.broker_id),
    }


def _storage(info: dict[str, str]) -> list[Family]:
    low = int(info.get("commitLogMinOffset", "0"))
    high = int(info.get("commitLogMaxOffset", "0"))
    families = [
        _one("rocketmq_storage_size", "gauge", "Bytes the commit log spans.", max(high - low, 0))
    ]
    earliest = int(info.get("earliestMessageTimeStamp", "0") or 0)
    if earliest > 0:
        age = max(int(time.time() * 1000) - earliest, 0)
        families.append(
            _one(
                "rocketmq_storage_message_reserve_time",
                "gauge",
                "Milliseconds since the oldest stored message was stored.",
                age,
            )
        )
    return families


def _replication(ctx: BrokerContext, end: int) -> list[Family]:
    """A master's slaves (in sync, bytes behind each), a slave's link to its master."""
    ha = ctx.ha
    if ha is None:
        return []
    if ha.role is Role.SLAVE:
        up = 1 if ha.master_link_up else 0
        return [_one("actormq_ha_master_link_up", "gauge", "Linked to its master: 1.", up)]
    behind = Family(
        "actormq_ha_slave_behind_bytes",
        "gauge",
        "Bytes of the commit log a linked slave does not hold yet.",
    )
    for node, link in sorted(ha.slaves.items()):
        if link.connected:
            behind.add(max(end - link.acked, 0), slave_id=str(node))
    return [
        _one("actormq_ha_in_sync_slaves", "gauge", "Slaves in sync now.", len(ha.in_sync)),
        behind,
    ]


def _one(name: str, kind: str, help_text: str, value: float) -> Family:
    family = Family(name, kind, help_text)
    family.add(value)
    return family


def _per(name: str, help_text: str, label: str, counts: dict[str, int]) -> Family:
    family = Family(name, "gauge", help_text)
    for key, count in sorted(counts.items()):
        family.add(count, **{label: key})
    return family


def _by_group(name: str, help_text: str, table: dict[tuple[str, str], int]) -> Family:
    """A counter per (topic, consumer group)."""
    family = Family(name, "counter", help_text)
    for (topic, group), value in sorted(table.items()):
        family.add(value, topic=topic, consumer_group=group)
    return family
