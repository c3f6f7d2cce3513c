"""What a consumer group's members hold, asked through the broker:
INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223, ``mqadmin getConsumerStatus -g G -t T [-i CLIENT]``)
and QUERY_SUBSCRIPTION_BY_CONSUMER (345).

223, header ``topic``, ``group`` and optional ``clientAddr`` (a client id, despite its name):
the broker sends GET_CONSUMER_STATUS_FROM_CLIENT (221, header ``topic`` and ``group``) to every
live member of the group (only ``clientAddr`` when given), all at once, and waits for each up to
``CALL_CLIENT_TIMEOUT`` seconds in this request's greenlet. Each member answers a
GetConsumerStatusBody whose ``messageQueueTable`` holds its consume offset per queue of the
topic; the broker answers a GetConsumerStatusBody whose ``consumerTable`` maps each member that
answered SUCCESS to that table. A member that fails, refuses or does not answer in time is left
out (logged), as RocketMQ does. SYSTEM_ERROR "No Any Consumer online in the consumer group:
[<group>]" when the group has no live member. Unlike RocketMQ, no client version is refused.

345, header ``group`` and ``topic``: the group's online subscription to the topic as a
QuerySubscriptionResponseBody (``subscriptionData`` null when it has none; SUCCESS either way).
"""

from __future__ import annotations

import time
from typing import Any

import pykka
from loguru import logger

from actors.broker.context import BrokerContext, reply
from runtime.errors import ProtocolError
from runtime.remoting.admin_bodies import QuerySubscriptionResponseBody, encode_consumer_status
from runtime.remoting.bodies import MessageQueue, encode_body
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import Header
from runtime.remoting.queue_maps import decode_queue_map
from runtime.session import SessionHandle

CALL_CLIENT_TIMEOUT = 5.0
"""Seconds the broker waits for the members' answers (RocketMQ waits 5 s for each in turn)."""


class GetConsumerStatusRequestHeader(Header, kw_only=True):
    """INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223)."""

    topic: str
    group: str
    client_addr: str | None = None


class QuerySubscriptionByConsumerRequestHeader(Header, kw_only=True):
    """QUERY_SUBSCRIPTION_BY_CONSUMER (345)."""

    group: str
    topic: str


def consumer_status(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(GetConsumerStatusRequestHeader, request.ext_fields, opaque=request.opaque)
    info = ctx.ask(ctx.proxy(ctx.consumers).group(h.group))
    members = {
        client_id: client.session
        for client_id, client in (info.clients.items() if info is not None else ())
        if client.session.alive and (not h.client_addr or client_id == h.client_addr)
    }
    if not members or info is None:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"No Any Consumer online in the consumer group: [{h.group}]",
        )
    asked: dict[str, tuple[RemotingCommand, Any]] = {}
    for client_id, member in sorted(members.items()):
        forward = RemotingCommand.request(
            RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT, {"topic": h.topic, "group": h.group}
        )
        asked[client_id] = (forward, member.request(forward))
    deadline = time.monotonic() + CALL_CLIENT_TIMEOUT
    table: dict[str, list[tuple[MessageQueue, int]]] = {}
    for client_id, (forward, future) in asked.items():
        offsets = _answer(h.group, client_id, future, deadline)
        members[client_id].forget(forward.opaque)
        if offsets is not None:
            table[client_id] = offsets
    return reply(request, body=encode_consumer_status(table))


def _answer(
    group: str, client_id: str, future: Any, deadline: float
) -> list[tuple[MessageQueue, int]] | None:
    """The member's offsets, or None (logged) when it did not give them."""
    try:
        answer = future.get(timeout=max(deadline - time.monotonic(), 0.0))
    except pykka.Timeout:
        logger.warning("broker: getConsumerStatus: {} of {} did not answer", client_id, group)
        return None
    except (ConnectionError, ProtocolError, pykka.ActorDeadError) as exc:
        # (the request refused by its session, e.g. too large, or the session stopped): the
        # member is left out; uncaught, the admin got SYSTEM_ERROR and the other members'
        # pending requests were never forgotten
        logger.warning("broker: getConsumerStatus: {} of {}: {!r}", client_id, group, exc)
        return None
    if answer.code != ResponseCode.SUCCESS:
        logger.warning(
            "broker: getConsumerStatus: {} of {} answered {} {}",
            client_id,
            group,
            answer.code,
            answer.remark,
        )
        return None
    if not answer.body:
        return None
    try:
        offsets, _ = decode_queue_map(answer.body, "messageQueueTable", int)
    except ProtocolError as exc:
        logger.warning("broker: getConsumerStatus: {} of {}: {}", client_id, group, exc)
        return None
    return offsets


def subscription_by_consumer(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(
        QuerySubscriptionByConsumerRequestHeader, request.ext_fields, opaque=request.opaque
    )
    subscription = ctx.ask(ctx.proxy(ctx.consumers).subscription(h.group, h.topic))
    body = QuerySubscriptionResponseBody(
        group=h.group, subscription_data=subscription, topic=h.topic
    )
    return reply(request, body=encode_body(body))
