"""CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume.

The original is looked up by commit-log offset. Below ``maxReconsumeTimes`` (16 by default) it
goes to ``%RETRY%<group>`` with delay level ``3 + reconsumeTimes`` (10 s, 30 s, 1 m, ... 2 h),
unless the consumer asked for a level; at the limit, or when the consumer asked for a negative
level, it goes to ``%DLQ%<group>``. The copy keeps the body, flags and properties, counts one
more reconsume, remembers the first topic in RETRY_TOPIC and the first id in ORIGIN_MESSAGE_ID.
A broker without write permission (brokerPermission 4), or a retry topic without it, answers
NO_PERMISSION, nothing stored, as RocketMQ does. A group whose config has ``retryQueueNums`` 0
takes no retries: SUCCESS, nothing stored (neither retry nor dead letter), as RocketMQ answers.
Under the ACL the request needs SUB on the group, and, once the message is read, SUB on the
topic it is stored in (``acl_gate``): the client's ``originTopic`` is only its word.
"""

from __future__ import annotations

import random

import msgspec

from actors.broker import acl_gate, send_handler
from actors.broker.context import BrokerContext, reply, send_queue_busy
from actors.broker.delay import copy_record, to_schedule
from actors.broker.group_names import shown, unknown_group
from actors.broker.queue_limits import capped
from actors.broker.topic_config import PERM_WRITE
from runtime.remoting.bodies import SubscriptionGroupConfig, TopicConfig
from runtime.remoting.codes import DLQ_PREFIX, RETRY_PREFIX, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import ConsumerSendMsgBackRequestHeader
from runtime.remoting.properties import (
    MAX_RECONSUME_TIMES,
    ORIGIN_MESSAGE_ID,
    RETRY_TOPIC,
    UNIQ_KEY,
    decode_properties,
    property_value_ok,
)
from runtime.session import SessionHandle
from runtime.store.record import PutRecord, decode_record
from runtime.store.topic_names import topic_problem

DEFAULT_MAX_RECONSUME_TIMES = 16
RETRY_QUEUE_NUMS = 1


def dlq_topic(group: str) -> str:
    return DLQ_PREFIX + group


def ensure_retry_topic(
    ctx: BrokerContext, group: str, config: SubscriptionGroupConfig | None = None
) -> int:
    """Create ``%RETRY%<group>`` if missing, with the group's retryQueueNums (``config``, or the
    group's stored config; 1 without one; cut to 1..maxTopicQueueNums), and register it with
    the name servers at once, as RocketMQ does (admin tools list a group by its retry topic).
    Returns how many queues the topic has."""
    topic = RETRY_PREFIX + group
    existed = ctx.store.topic(topic) is not None
    if config is None:
        config = ctx.store.subscription_group(group)
    nums = config.retry_queue_nums if config is not None else RETRY_QUEUE_NUMS
    queues = ctx.store.ensure_retry_topic(topic, capped(nums, ctx.cfg.max_topic_queue_nums))
    if not existed:
        ctx.register_now(topic)
    return queues


def send_back(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand | None:
    h = decode_header(ConsumerSendMsgBackRequestHeader, request.ext_fields, opaque=request.opaque)
    group_config = ctx.store.subscription_group(h.group)
    refused = unknown_group(ctx, request, h.group, group_config) or _bad_input(request, h)
    if refused is not None:
        return refused
    if not ctx.cfg.broker_permission & PERM_WRITE:  # drained: RocketMQ's answer
        return reply(
            request,
            ResponseCode.NO_PERMISSION,
            remark=f"the broker[{ctx.cfg.broker_name}/{ctx.cfg.broker_id}] sending message is "
            "forbidden",
        )
    if group_config is not None and group_config.retry_queue_nums <= 0:
        return reply(request)  # a group without retry queues: dropped, as RocketMQ does
    raw = ctx.store.message_at(h.offset)
    if raw is None:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"look message by offset failed, {h.offset}"
        )
    original = decode_record(raw)
    # the group's SUB was checked; the copy also needs SUB on the topic the message is in (a
    # client's originTopic is its word: any message by offset into its own retry topic)
    denied = acl_gate.stored_refusal(ctx, session, request, original.topic)
    if denied is not None:
        return denied.answer
    props = decode_properties(original.properties)
    props.setdefault(RETRY_TOPIC, original.topic)
    origin_id = h.origin_msg_id or props.get(UNIQ_KEY) or original.msg_id
    props.setdefault(ORIGIN_MESSAGE_ID, origin_id)
    # the client's word, else the group's retryMaxTimes (updateSubGroup), else the message's
    max_times = h.max_reconsume_times
    if max_times is None:
        if group_config is not None:
            max_times = group_config.retry_max_times
        else:
            max_times = message_max_times(props)
    record = copy_record(
        original,
        props,
        topic=RETRY_PREFIX + h.group,
        queue_id=0,
        reconsume_times=original.reconsume_times + 1,
        prepared_transaction_offset=0,
    )
    if original.reconsume_times >= max_times or h.delay_level < 0:
        record = dead_letter(ctx, record, h.group)
    else:
        queues = ensure_retry_topic(ctx, h.group, group_config)
        retry = ctx.store.topic(RETRY_PREFIX + h.group)
        if retry is not None and not retry.perm & PERM_WRITE:
            return reply(
                request,
                ResponseCode.NO_PERMISSION,
                remark=f"the topic[{RETRY_PREFIX + h.group}] sending message is forbidden",
            )
        record = msgspec.structs.replace(record, queue_id=random.randrange(queues))
        level = h.delay_level or 3 + original.reconsume_times
        record = to_schedule(record, level, len(ctx.cfg.delay_levels_ms()))
    busy = send_queue_busy(ctx, request)
    if busy is not None:
        return busy
    outcome = ctx.store.put([record])
    code = send_handler.STATUS_CODES.get(outcome.status, ResponseCode.SYSTEM_ERROR)
    if code in send_handler.STORED_CODES:
        return reply(request)
    return reply(request, code, remark=outcome.remark or outcome.status)


def message_max_times(props: dict[str, str]) -> int:
    """The message's MAX_RECONSUME_TIMES, or 16 when it has none or one that is no integer
    (a producer may set any value: it made every send-back of the message a SYSTEM_ERROR)."""
    try:
        return int(props.get(MAX_RECONSUME_TIMES, DEFAULT_MAX_RECONSUME_TIMES))
    except ValueError:
        return DEFAULT_MAX_RECONSUME_TIMES


def _bad_input(
    request: RemotingCommand, h: ConsumerSendMsgBackRequestHeader
) -> RemotingCommand | None:
    """INVALID_PARAMETER for a send-back the store could not take: a group whose retry topic
    cannot be (``%RETRY%<group>`` past 127 characters: RocketMQ would create it, our topic
    table refuses it), an originMsgId holding a property separator (it would corrupt the copy's
    properties); None when it may go on."""
    problem = topic_problem(RETRY_PREFIX + h.group)
    if problem is not None:
        return reply(
            request,
            ResponseCode.INVALID_PARAMETER,
            remark=f"consumer group {shown(h.group)!r}: retry topic: {problem}",
        )
    if h.origin_msg_id and not property_value_ok(h.origin_msg_id):
        return reply(
            request,
            ResponseCode.INVALID_PARAMETER,
            remark=f"originMsgId {shown(h.origin_msg_id)!r} holds a \\x01 or \\x02 separator",
        )
    return None


def dead_letter(ctx: BrokerContext, record: PutRecord, group: str) -> PutRecord:
    """``record`` redirected to ``%DLQ%<group>`` (created on first use, one queue)."""
    topic = dlq_topic(group)
    if ctx.store.topic(topic) is None:
        ctx.store.create_topic(
            TopicConfig(
                topic_name=topic,
                read_queue_nums=1,
                write_queue_nums=1,
                perm=6,
            )
        )
        ctx.register_now(topic)
    return msgspec.structs.replace(record, topic=topic, queue_id=0)
