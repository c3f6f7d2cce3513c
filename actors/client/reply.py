"""Request-reply (RocketMQ 4.6+), the parts ``Producer.request`` and ``Producer.reply`` share.

A *request* is an ordinary message with three more properties: CORRELATION_ID (new for each
request), REPLY_TO_CLIENT (the requester's client id) and TTL (its timeout, ms). The broker
that stores it adds CLUSTER. Whoever consumes it answers with a *reply*: a message to
``<CLUSTER>_REPLY_TOPIC`` with MSG_TYPE=reply and the request's CORRELATION_ID, REPLY_TO_CLIENT
and TTL, sent as SEND_REPLY_MESSAGE_V2. That broker pushes it to the requester's connection
(PUSH_REPLY_MESSAGE_TO_CLIENT, 326) and stores it; the requester matches it to the waiting
request by CORRELATION_ID (``ReplyWaiters``). The same properties and codes as RocketMQ's Java
client (``DefaultMQProducer.request``, ``MessageUtil.createReplyMessage``), so either side may
be a Java client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import msgspec
from loguru import logger

from actors.client.compression import DEFAULT_COMPRESSOR, Compressor, inflate
from actors.client.errors import MessageInvalidError
from actors.client.hub import Waiter
from actors.client.message import Message, MessageExt
from actors.client.outgoing import Outgoing, prepare
from runtime.errors import AddressError, ProtocolError
from runtime.hostport import ip_bytes, parse_address
from runtime.remoting import properties as P
from runtime.remoting.codes import MessageSysFlag, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import Int64, SendMessageRequestHeader

REPLY_TOPIC_SUFFIX = "_REPLY_TOPIC"
REPLY_FLAG = "reply"
"""MSG_TYPE of a reply (RocketMQ's MixAll.REPLY_MESSAGE_FLAG)."""


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def request_properties(correlation_id: str, client_id: str, timeout_ms: int) -> str:
    """What makes a message a request (appended to its properties string)."""
    return (
        f"{P.CORRELATION_ID}\x01{correlation_id}\x02"
        f"{P.REPLY_TO_CLIENT}\x01{client_id}\x02"
        f"{P.TTL}\x01{timeout_ms}\x02"
    )


def reply_message(
    request: MessageExt, body: bytes | str, properties: Mapping[str, str] | None
) -> Message:
    """The reply to ``request`` as a ``Message`` to ``<cluster>_REPLY_TOPIC`` (its reply
    properties are added by ``reply_outgoing``). MessageInvalidError for a non-request."""
    props = request.all_properties
    cluster = props.get(P.CLUSTER)
    if not cluster or not props.get(P.REPLY_TO_CLIENT) or not props.get(P.CORRELATION_ID):
        raise MessageInvalidError(
            "request",
            "not a request message: it lacks CLUSTER, REPLY_TO_CLIENT or CORRELATION_ID "
            "(send requests with Producer.request)",
        )
    return Message(f"{cluster}{REPLY_TOPIC_SUFFIX}", body, properties=dict(properties or {}))


def reply_outgoing(
    request: MessageExt,
    body: bytes | str,
    properties: Mapping[str, str] | None,
    *,
    max_size: int,
    compress_over: int,
    message: Message | None = None,
    compressor: Compressor = DEFAULT_COMPRESSOR,
) -> Outgoing:
    """The reply to ``request`` (``MessageUtil.createReplyMessage``), ready to send;
    ``message``: the one ``reply_message`` made (else made here)."""
    msg = reply_message(request, body, properties) if message is None else message
    props = request.all_properties
    reply_to = props.get(P.REPLY_TO_CLIENT)
    correlation = props.get(P.CORRELATION_ID)
    out = prepare(msg, max_size=max_size, compress_over=compress_over, compressor=compressor)
    extra = (
        f"{P.MSG_TYPE}\x01{REPLY_FLAG}\x02{P.CORRELATION_ID}\x01{correlation}\x02"
        f"{P.REPLY_TO_CLIENT}\x01{reply_to}\x02"
    )
    ttl = props.get(P.TTL)
    if ttl:
        extra += f"{P.TTL}\x01{ttl}\x02"
    return msgspec.structs.replace(out, properties=out.properties + extra, reply=True)


class ReplyMessageRequestHeader(SendMessageRequestHeader, kw_only=True):
    """PUSH_REPLY_MESSAGE_TO_CLIENT (326): the reply's send header plus where it was stored."""

    born_host: str = ""
    store_host: str = ""
    store_timestamp: Int64 = 0


def _host(text: str) -> tuple[bytes, int]:
    """``/1.2.3.4:5`` or ``/::1:5`` / ``/[::1]:5`` (Java's InetSocketAddress.toString) ->
    (4 or 16 address bytes, port); zeros when unreadable."""
    try:
        host, port = parse_address(text.rpartition("/")[2])
        return ip_bytes(host), port
    except AddressError:
        return b"\0\0\0\0", 0


def decode_pushed_reply(request: RemotingCommand) -> MessageExt:
    """The reply a broker pushed. Raises ProtocolError only."""
    h = decode_header(ReplyMessageRequestHeader, request.ext_fields, opaque=request.opaque)
    body = request.body
    if h.sys_flag & MessageSysFlag.COMPRESSED:
        inflated = inflate(body, h.sys_flag)  # None: delivered as stored (warned)
        if inflated is not None:
            body = inflated
    born_ip, born_port = _host(h.born_host)
    store_ip, store_port = _host(h.store_host)
    return MessageExt(
        h.topic,
        body,
        h.properties,
        queue_id=h.queue_id,
        sys_flag=h.sys_flag,
        flag=h.flag,
        born_timestamp=h.born_timestamp,
        born_ip=born_ip,
        born_port=born_port,
        store_timestamp=h.store_timestamp,
        store_ip=store_ip,
        store_port=store_port,
        reconsume_times=h.reconsume_times,
    )


class ReplyWaiters:
    """The requests waiting for their reply, by CORRELATION_ID. Hub-side only."""

    def __init__(self) -> None:
        self._waiting: dict[str, Waiter] = {}

    def expect(self, correlation_id: str, waiter: Waiter) -> None:
        self._waiting[correlation_id] = waiter

    def forget(self, correlation_id: str) -> None:
        self._waiting.pop(correlation_id, None)

    def fail_all(self, error: BaseException) -> None:
        """Every request still waiting gets ``error`` (the producer shuts down)."""
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.set_error(error)

    def on_push(self, _session: object, request: RemotingCommand) -> RemotingCommand | None:
        """PUSH_REPLY_MESSAGE_TO_CLIENT: hand the reply to its request (SUCCESS either way, as
        RocketMQ's client answers; a reply nobody waits for any more is logged)."""
        try:
            reply = decode_pushed_reply(request)
        except ProtocolError as exc:
            code, remark = ResponseCode.SYSTEM_ERROR, str(exc)
        else:
            code, remark = ResponseCode.SUCCESS, None
            correlation = reply.all_properties.get(P.CORRELATION_ID, "")
            waiter = self._waiting.pop(correlation, None)
            if waiter is None:
                logger.warning("client: a reply for no waiting request ({})", correlation)
            else:
                waiter.set(reply)
        if request.is_oneway:
            return None
        return RemotingCommand.response_to(request, code, remark)
