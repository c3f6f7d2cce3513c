"""Statistics for admin tools: GET_TOPIC_STATS_INFO (202), GET_CONSUME_STATS (208),
GET_BROKER_CONSUME_STATS (317), GET_BROKER_RUNTIME_INFO (28) and VIEW_BROKER_STATS_DATA (315).

What ``mqadmin topicStatus`` and ``mqadmin consumerProgress`` (and the RocketMQ dashboard) ask
a broker, answered as RocketMQ 4.x does:

- 202, header ``topic``: for each write queue its min and max offset and the store time of its
  last message (0 when empty); TOPIC_NOT_EXIST for an unknown topic.
- 208, header ``consumerGroup`` and optional ``topic`` (else every topic the group committed an
  offset for): for each read queue the broker's max offset, the group's committed offset (0
  when none) and the store time of the last message it consumed (0 when none). Topics this
  broker does not have are left out; ``consumeTps`` is 0 (no per-group rate is kept).

Bodies are written with queue objects as map keys (``runtime.remoting.queue_maps``).

- 28: the ``StatsSampler``'s table (message rates over 10 s / 60 s / 600 s as ``putTps`` and
  ``getTransferedTps``, totals since start and at the last midnights, version, boot time,
  commit-log offsets, disk use), as ``mqadmin brokerStatus`` prints it.
- 315, header ``statsName`` and ``statsKey`` (the RocketMQ dashboard's TPS charts,
  ``mqadmin statsAll``): BROKER_PUT_NUMS and BROKER_GET_NUMS (any key; RocketMQ's is the
  cluster name), TOPIC_PUT_NUMS and TOPIC_PUT_SIZE (key a topic), GROUP_GET_NUMS and
  GROUP_GET_SIZE (key ``topic@group``) as a BrokerStatsData of the last minute, hour and day
  (``sum``, ``tps`` = sum / seconds covered; ``avgpt`` 0: calls are not counted). Any other
  name, or an item with no traffic since the broker started: SYSTEM_ERROR "The stats <name>
  <key> not exist", as RocketMQ answers for an unknown item.
"""

from __future__ import annotations

import json

from actors.broker.context import BrokerContext, reply
from runtime.remoting.bodies import (
    BrokerStatsData,
    BrokerStatsItem,
    KVTable,
    MessageQueue,
    encode_body,
)
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import GetConsumeStatsRequestHeader, GetTopicStatsInfoRequestHeader
from runtime.remoting.queue_maps import OffsetWrapper, TopicOffset, encode_queue_map
from runtime.session import SessionHandle
from runtime.store.record import store_timestamp_of

ONE_MESSAGE_BYTES = 8 * 1024 * 1024


def topic_stats(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(GetTopicStatsInfoRequestHeader, request.ext_fields, opaque=request.opaque)
    config = ctx.store.topic(h.topic)
    if config is None:
        return reply(request, ResponseCode.TOPIC_NOT_EXIST, remark=f"topic[{h.topic}] not exist")
    broker = ctx.cfg.broker_name
    entries = []
    for queue_id in range(config.write_queue_nums):
        low = max(ctx.store.min_offset(h.topic, queue_id), 0)
        high = max(ctx.store.max_offset(h.topic, queue_id), 0)
        entries.append(
            (
                MessageQueue(topic=h.topic, broker_name=broker, queue_id=queue_id),
                TopicOffset(
                    min_offset=low,
                    max_offset=high,
                    last_update_timestamp=store_time(ctx, h.topic, queue_id, high - 1),
                ),
            )
        )
    return reply(request, body=encode_queue_map("offsetTable", entries))


def consume_stats(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(GetConsumeStatsRequestHeader, request.ext_fields, opaque=request.opaque)
    topics = [h.topic] if h.topic else ctx.store.consumed_topics(h.consumer_group)
    entries = [e for topic in topics for e in _group_offsets(ctx, h.consumer_group, topic)]
    return reply(request, body=encode_queue_map("offsetTable", entries, consumeTps=0.0))


def broker_consume_stats(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """GET_BROKER_CONSUME_STATS (317, ``mqadmin brokerConsumeStats``), header ``isOrder``: for
    every group that has a config or committed offsets, one ConsumeStats per topic it committed
    offsets for (only orderly topics with ``isOrder`` true), as a ConsumeStatsList with the
    broker's address and the total diff."""
    order_only = str(request.ext_fields.get("isOrder", "false")).lower() == "true"
    committed: dict[str, list[str]] = {}
    for key in ctx.store.all_offsets():
        topic, _, group = key.partition("@")
        committed.setdefault(group, []).append(topic)
    groups = set(committed) | set(ctx.store.all_subscription_groups().subscription_group_table)
    total_diff = 0
    per_group = []
    for group in sorted(groups):
        stats = []
        for topic in sorted(committed.get(group, [])):
            config = ctx.store.topic(topic)
            if config is None or (order_only and not config.order):
                continue
            entries = _group_offsets(ctx, group, topic)
            total_diff += sum(wrapper.diff for _mq, wrapper in entries)
            stats.append(encode_queue_map("offsetTable", entries, consumeTps=0.0))
        per_group.append(b"{" + json.dumps(group).encode() + b":[" + b",".join(stats) + b"]}")
    body = (
        b'{"brokerAddr":'
        + json.dumps(ctx.cfg.broker_addr()).encode()
        + b',"consumeStatsList":['
        + b",".join(per_group)
        + b'],"totalDiff":'
        + str(total_diff).encode()
        + b"}"
    )
    return reply(request, body=body)


def _group_offsets(
    ctx: BrokerContext, group: str, topic: str
) -> list[tuple[MessageQueue, OffsetWrapper]]:
    """Each read queue of ``topic``: the broker's end, ``group``'s committed offset (0 when
    none), the store time of the last message it consumed. Nothing for an unknown topic."""
    config = ctx.store.topic(topic)
    if config is None:
        return []
    broker = ctx.cfg.broker_name
    entries = []
    for queue_id in range(config.read_queue_nums):
        committed = ctx.store.query_offset(group, topic, queue_id) or 0
        entries.append(
            (
                MessageQueue(topic=topic, broker_name=broker, queue_id=queue_id),
                OffsetWrapper(
                    broker_offset=max(ctx.store.max_offset(topic, queue_id), 0),
                    consumer_offset=committed,
                    last_timestamp=store_time(ctx, topic, queue_id, committed - 1),
                ),
            )
        )
    return entries


def broker_runtime_info(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    table = ctx.ask(ctx.proxy(ctx.stats).runtime_info())
    return reply(request, body=encode_body(KVTable(table=table)))


BROKER_STATS = {"BROKER_PUT_NUMS": "put", "BROKER_GET_NUMS": "got"}


def keyed_totals(ctx: BrokerContext) -> dict[str, dict[str, int]]:
    """The running totals behind VIEW_BROKER_STATS_DATA's per-item stats (RocketMQ's names and
    keys: a topic; ``topic@group``), sampled by the ``StatsSampler``."""
    return {
        "TOPIC_PUT_NUMS": ctx.store.put_counts,
        "TOPIC_PUT_SIZE": ctx.store.put_bytes,
        "GROUP_GET_NUMS": {f"{t}@{g}": n for (t, g), n in ctx.got_by.items()},
        "GROUP_GET_SIZE": {f"{t}@{g}": n for (t, g), n in ctx.got_bytes_by.items()},
    }


def view_broker_stats_data(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    name = str(request.ext_fields.get("statsName") or "")
    key = str(request.ext_fields.get("statsKey") or "")
    which = BROKER_STATS.get(name)
    stats = ctx.proxy(ctx.stats)
    windows = ctx.ask(stats.windows(which) if which else stats.item_windows(name, key))
    if windows is None:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"The stats <{name}> <{key}> not exist"
        )
    minute, hour, day = (
        BrokerStatsItem(sum=count, tps=count / seconds if seconds > 0 else 0.0)
        for count, seconds in windows
    )
    data = BrokerStatsData(stats_minute=minute, stats_hour=hour, stats_day=day)
    return reply(request, body=encode_body(data))


def store_time(ctx: BrokerContext, topic: str, queue_id: int, offset: int) -> int:
    """Store timestamp (ms) of the message at ``offset`` in the queue; 0 when there is none."""
    if offset < 0:
        return 0
    got = ctx.store.get_messages("", topic, queue_id, offset, 1, ONE_MESSAGE_BYTES, None)
    if got.status != "FOUND" or not got.messages:
        return 0
    return store_timestamp_of(got.messages[0])
