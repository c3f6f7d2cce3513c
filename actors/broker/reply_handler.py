"""SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325): request-reply (RocketMQ 4.6+).

A requester's message carries CORRELATION_ID, REPLY_TO_CLIENT (its client id) and TTL; the
send handler adds CLUSTER when it stores one. The responder sends its reply to
``<cluster>_REPLY_TOPIC`` with the same CORRELATION_ID / REPLY_TO_CLIENT and MSG_TYPE=reply,
under one of these codes (same headers as SEND_MESSAGE / SEND_MESSAGE_V2). This handler, as
RocketMQ's ReplyMessageProcessor:

1. pushes the reply to the requester: PUSH_REPLY_MESSAGE_TO_CLIENT (326, a
   ``ReplyMessageRequestHeader`` with the send header's fields, the born and store hosts and
   the store time; properties plus PUSH_REPLY_TIME; the body as sent) on the connection of the
   producer whose heartbeat named REPLY_TO_CLIENT, waiting up to ``PUSH_TIMEOUT`` seconds in this
   request's greenlet (no actor waits);
2. stores the reply in the reply topic (``storeReplyMessageEnable``, on in RocketMQ by default;
   always here), so it can be looked up later;
3. answers SUCCESS (msgId, queueId, queueOffset of the stored copy) when the push succeeded,
   else SYSTEM_ERROR with why ("push reply message fail, channel of <id> not found", "push reply
   message to <id>fail." when the requester answered an error, did not answer in time, its
   connection closed, or the push could not be framed (over 16 MiB): RocketMQ's remarks to the
   letter) — the reply is stored either way. The stored copy has the properties as sent (with
   the broker's MSG_REGION and TRACE_ON), not PUSH_REPLY_TIME: RocketMQ's store encodes the
   properties string it set before the push added that property to the pushed copy.

Refusals before anything happens: NO_PERMISSION on a broker that may not write or for a topic
only the broker writes (``send_handler.forbidden_topic``, RocketMQ's ``msgCheck``), TOPIC_NOT_EXIST
when the reply topic is unknown here, MESSAGE_ILLEGAL for a batch, SYSTEM_ERROR "request
queueId[N] is illegal" for a queue id beyond max(writeQueueNums, readQueueNums) (msgCheck; a
negative one: a random write queue, as RocketMQ's).
"""

from __future__ import annotations

import time

import pykka
from loguru import logger

from actors.broker.context import BrokerContext, reply, topic_not_exist
from actors.broker.msg_region import stamp, with_response_fields
from actors.broker.send_handler import (
    PERM_WRITE,
    STATUS_CODES,
    STORED_CODES,
    forbidden_topic,
    illegal_queue,
    records_of,
    send_queue,
)
from runtime.errors import ProtocolError
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_send_header
from runtime.remoting.headers import SendMessageRequestHeader
from runtime.remoting.properties import PUSH_REPLY_TIME, REPLY_TO_CLIENT, decode_properties
from runtime.session import SessionHandle

PUSH_TIMEOUT = 3.0
"""Seconds the broker waits for the requester to take the reply (RocketMQ: 3 s)."""


def reply_message(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_send_header(request.code, request.ext_fields, opaque=request.opaque)
    return with_response_fields(_reply_message(ctx, session, request, h), ctx.cfg)


def _reply_message(
    ctx: BrokerContext,
    session: SessionHandle,
    request: RemotingCommand,
    h: SendMessageRequestHeader,
) -> RemotingCommand:
    if not ctx.cfg.broker_permission & PERM_WRITE or not ctx.cfg.is_master:
        return reply(
            request,
            ResponseCode.NO_PERMISSION,
            remark=f"the broker[{ctx.cfg.broker_name}] sending message is forbidden",
        )
    refused = forbidden_topic(request, h.topic)
    if refused is not None:
        return refused
    if h.batch:
        return reply(request, ResponseCode.MESSAGE_ILLEGAL, remark="a reply cannot be a batch")
    config = ctx.store.topic(h.topic)
    if config is None:
        return topic_not_exist(request, h.topic)
    queue_id = send_queue(h, config)
    if queue_id is None:
        return illegal_queue(request, h, config)
    pushed, why = _push(ctx, session, request, h, queue_id)
    outcome = ctx.store.put(records_of(session, request, h, queue_id, False, ctx.cfg))
    code = STATUS_CODES.get(outcome.status, ResponseCode.SYSTEM_ERROR)
    if not pushed:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=why)
    ext: dict[str, object] = {"msgId": "0", "queueId": queue_id, "queueOffset": 0}
    if code in STORED_CODES:
        ext["msgId"] = ",".join(outcome.msg_ids)
        ext["queueOffset"] = outcome.queue_offset
    return reply(request, ext_fields=ext)


def _push(
    ctx: BrokerContext,
    session: SessionHandle,
    request: RemotingCommand,
    h: SendMessageRequestHeader,
    queue_id: int,
) -> tuple[bool, str]:
    """PUSH_REPLY_MESSAGE_TO_CLIENT to the requester: (pushed, why not)."""
    sender = decode_properties(h.properties).get(REPLY_TO_CLIENT)
    if not sender:
        return False, f"reply message properties[{REPLY_TO_CLIENT}] is null"
    channel = ctx.ask(ctx.proxy(ctx.producers).find_channel(sender))
    if channel is None:
        return False, f"push reply message fail, channel of <{sender}> not found."
    now = int(time.time() * 1000)
    header = {
        "producerGroup": h.producer_group,
        "topic": h.topic,
        "defaultTopic": h.default_topic,
        "defaultTopicQueueNums": h.default_topic_queue_nums,
        "queueId": queue_id,
        "sysFlag": h.sys_flag,
        "bornTimestamp": h.born_timestamp,
        "flag": h.flag,
        "properties": f"{stamp(h.properties, ctx.cfg)}{PUSH_REPLY_TIME}\x01{now}\x02",
        "reconsumeTimes": h.reconsume_times,
        "unitMode": h.unit_mode,
        "bornHost": f"/{session.remote_address}",
        "storeHost": f"/{ctx.cfg.broker_addr()}",
        "storeTimestamp": now,
    }
    push = RemotingCommand.request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, header, request.body)
    failed = f"push reply message to {sender}fail."  # (RocketMQ's remark, no space)
    try:
        answer = channel.call(push, timeout=PUSH_TIMEOUT)
    except (pykka.Timeout, ConnectionError, ProtocolError) as exc:
        # (ProtocolError: the push is too large to frame; RocketMQ's requester refuses such a
        # frame and closes the connection, which fails the push the same way)
        logger.warning("push reply message to <{}> {} fail: {!r}", sender, channel, exc)
        return False, failed
    if answer.code != ResponseCode.SUCCESS:
        logger.warning(
            "push reply message to <{}> return fail, response remark: {}", sender, answer.remark
        )
        return False, failed
    return True, ""
