"""Admin looks at (and cleanups of) consume queues: QUERY_CONSUME_QUEUE (321),
QUERY_CONSUME_TIME_SPAN (303), CLEAN_EXPIRED_CONSUMEQUEUE (306) and CLEAN_UNUSED_TOPIC (316).

- 321 (``mqadmin queryCq -t T -q Q -i INDEX -c COUNT [-g GROUP]``): the consume queue's min and
  max offset and up to ``count`` entries from ``index`` (commit-log offset, size, tags code).
  With a group: its online subscription to the topic (``filterData`` "<group>@<topic> is not
  online!" when it has none) and, per entry, ``eval``: whether the subscription's tags match
  the entry's tags code (RocketMQ evaluates only its consume-queue extension, which this store
  does not have; SQL92 subscriptions are never evaluated here: false). SYSTEM_ERROR
  "<queueId>@<topic> is not exist!" when the queue has no consume queue here; an index outside
  the queue answers SUCCESS without entries and the remark "Index <i> of <q>@<t> is not
  exist!", as RocketMQ does. Unlike RocketMQ 4.x, whose broker encodes the body before filling
  it (mqadmin then prints nothing), the body carries what was found.
- 303, header ``topic`` and ``group``: per write queue, the store time of its first and last
  message, of the message before the group's committed offset (the first message's when it
  committed none) and ``delayTime``, how long the next unconsumed message has waited (0 when
  the group is caught up). TOPIC_NOT_EXIST for an unknown topic.
- 306: every consume queue drops the files that only point below the commit log's minimum
  (what retention does after deleting segments), at once.
- 316: topics that have consume queues here but no config (and are not the broker's own)
  are deleted as DELETE_TOPIC_IN_BROKER deletes them; only on a writable master.
"""

from __future__ import annotations

import json
import time

from loguru import logger

from actors.broker.context import BrokerContext, reply
from actors.broker.stats_handler import store_time
from runtime.remoting.admin_bodies import (
    ConsumeQueueData,
    QueryConsumeQueueResponseBody,
    QueryConsumeTimeSpanBody,
    QueueTimeSpan,
)
from runtime.remoting.bodies import MessageQueue, SubscriptionData, encode_body
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import Header, Int32, Int64
from runtime.session import SessionHandle
from runtime.store.consumequeue import BLANK_SIZE_FIELD

MAX_ENTRIES = 10_000
"""The most entries one QUERY_CONSUME_QUEUE answers (mqadmin asks 10 by default)."""


class QueryConsumeQueueRequestHeader(Header, kw_only=True):
    """QUERY_CONSUME_QUEUE (321)."""

    topic: str
    queue_id: Int32
    index: Int64
    count: Int32
    consumer_group: str | None = None


class QueryConsumeTimeSpanRequestHeader(Header, kw_only=True):
    """QUERY_CONSUME_TIME_SPAN (303)."""

    topic: str
    group: str


def query_consume_queue(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(QueryConsumeQueueRequestHeader, request.ext_fields, opaque=request.opaque)
    found = ctx.store.consume_queue(h.topic, h.queue_id, h.index, min(max(h.count, 0), MAX_ENTRIES))
    if found is None:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"{h.queue_id}@{h.topic} is not exist!"
        )
    subscription = filter_data = None
    if h.consumer_group is not None:
        subscription = ctx.ask(ctx.proxy(ctx.consumers).subscription(h.consumer_group, h.topic))
        filter_data = _filter_data(h.consumer_group, h.topic, subscription)
    queue_data = None
    remark = None
    if found.min_offset <= h.index < found.max_offset:
        queue_data = [_entry(phys, size, tags, subscription) for phys, size, tags in found.entries]
    else:
        remark = f"Index {h.index} of {h.queue_id}@{h.topic} is not exist!"
    body = QueryConsumeQueueResponseBody(
        subscription_data=subscription,
        filter_data=filter_data,
        queue_data=queue_data,
        max_queue_index=found.max_offset,
        min_queue_index=found.min_offset,
    )
    return reply(request, remark=remark, body=encode_body(body))


def _filter_data(group: str, topic: str, subscription: SubscriptionData | None) -> str:
    """What RocketMQ puts in ``filterData``: a note when the group is not online, else its
    filter (JSON; fastjson writes "null" when a TAG subscription has none)."""
    if subscription is None:
        return f"{group}@{topic} is not online!"
    if subscription.expression_type.upper() == "TAG":
        return "null"
    return json.dumps(
        {
            "consumerGroup": group,
            "expression": subscription.sub_string,
            "expressionType": subscription.expression_type,
            "topic": topic,
        }
    )


def _entry(
    phys: int, size: int, tags: int, subscription: SubscriptionData | None
) -> ConsumeQueueData:
    if size == BLANK_SIZE_FIELD:
        return ConsumeQueueData(
            physic_offset=phys, physic_size=size, tags_code=tags, msg="blank (padding) entry"
        )
    return ConsumeQueueData(
        physic_offset=phys, physic_size=size, tags_code=tags, eval=_matches(subscription, tags)
    )


def _matches(subscription: SubscriptionData | None, tags_code: int) -> bool:
    if subscription is None or subscription.expression_type.upper() != "TAG":
        return False
    codes = subscription.code_set or []
    return not codes or tags_code in codes


def query_consume_time_span(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(QueryConsumeTimeSpanRequestHeader, request.ext_fields, opaque=request.opaque)
    config = ctx.store.topic(h.topic)
    if config is None:
        return reply(request, ResponseCode.TOPIC_NOT_EXIST, remark=f"topic[{h.topic}] not exist")
    now_ms = int(time.time() * 1000)
    spans = []
    for queue_id in range(config.write_queue_nums):
        min_ms = max(ctx.store.earliest_store_time(h.topic, queue_id), 0)
        high = max(ctx.store.max_offset(h.topic, queue_id), 0)
        committed = ctx.store.query_offset(h.group, h.topic, queue_id) or 0
        consume_ms = store_time(ctx, h.topic, queue_id, committed - 1) if committed else min_ms
        delay_ms = 0
        if committed < high:
            next_ms = store_time(ctx, h.topic, queue_id, committed)
            delay_ms = max(now_ms - next_ms, 0) if next_ms else 0
        spans.append(
            QueueTimeSpan.of(
                MessageQueue(topic=h.topic, broker_name=ctx.cfg.broker_name, queue_id=queue_id),
                min_ms=min_ms,
                max_ms=store_time(ctx, h.topic, queue_id, high - 1),
                consume_ms=consume_ms,
                delay_ms=delay_ms,
            )
        )
    return reply(request, body=encode_body(QueryConsumeTimeSpanBody(consume_time_span_set=spans)))


def clean_expired_consume_queue(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    looked_at = ctx.store.trim_consume_queues()
    logger.info("broker: cleanExpiredCQ: {} consume queues trimmed to the commit log", looked_at)
    return reply(request)


def clean_unused_topic(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    if ctx.store.read_only or (ctx.ha is not None and not ctx.ha.accepting_writes()):
        return reply(
            request,
            ResponseCode.SERVICE_NOT_AVAILABLE,
            remark=f"the broker[{ctx.cfg.broker_name}/{ctx.cfg.broker_id}] is not a writable "
            "master: clean unused topics on the master",
        )
    configured = ctx.store.all_topics()
    unused = [
        topic
        for topic in ctx.store.queue_topics()
        if topic not in configured and not ctx.store.is_system_topic(topic)
    ]
    for topic in unused:
        if ctx.store.topic(topic) is not None:  # created meanwhile
            continue
        error = ctx.store.delete_topic(topic)
        if error is not None:
            return reply(
                request, ResponseCode.SYSTEM_ERROR, remark=f"clean unused topic {topic}: {error}"
            )
        logger.info("broker: cleanUnusedTopic: the queues of topic {} (no config) deleted", topic)
    return reply(request)
