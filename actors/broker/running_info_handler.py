"""Requests an admin tool sends a consumer through the broker (RocketMQ's callConsumer):
GET_CONSUMER_RUNNING_INFO (307, ``mqadmin consumerStatus``, the dashboard) and
CONSUME_MESSAGE_DIRECTLY (309, see ``consume_message_directly``). The broker asks that consumer
and relays its answer, as RocketMQ's broker does.

Header ``consumerGroup``, ``clientId``, ``jstackEnable``. The broker finds the client's
connection among the group's members (``ConsumerManager.find_channel``) and sends it the same
request (same header and body) on that connection, waiting up to ``CALL_CLIENT_TIMEOUT``
seconds in this request's own greenlet (no actor waits). The client's response (code, remark,
body: a ``ConsumerRunningInfo``, ``runtime.remoting.running_info``) goes back to the admin
unchanged. Any member answers, whatever its language (C++ clients included).

Refusals, in RocketMQ's words: SYSTEM_ERROR "The Consumer <clientId> not online" when the
client is not a live member of the group; CONSUME_MSG_TIMEOUT "consumer <group> <clientId>
Timeout: ..." when it does not answer in time; SYSTEM_ERROR "invoke consumer <group>
<clientId> Exception: ..." when its connection closes meanwhile. Unlike RocketMQ, no client
version is refused as too old.
"""

from __future__ import annotations

from collections.abc import Mapping

import pykka

from actors.broker import acl_gate
from actors.broker.context import BrokerContext, reply
from actors.broker.pull_gates import unsettled
from runtime.errors import AddressError
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import Header
from runtime.session import SessionHandle
from runtime.store.msg_id import decode_offset_msg_id
from runtime.store.record import decode_record

CALL_CLIENT_TIMEOUT = 5.0
"""Seconds the broker waits for the consumer (RocketMQ waits 10 s; admin tools wait longer)."""


class GetConsumerRunningInfoRequestHeader(Header, kw_only=True):
    """GET_CONSUMER_RUNNING_INFO (307)."""

    consumer_group: str
    client_id: str
    jstack_enable: bool = False


class ConsumeMessageDirectlyResultRequestHeader(Header, kw_only=True):
    """CONSUME_MESSAGE_DIRECTLY (309)."""

    consumer_group: str
    client_id: str
    msg_id: str
    broker_name: str | None = None
    topic: str | None = None


def consumer_running_info(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(
        GetConsumerRunningInfoRequestHeader, request.ext_fields, opaque=request.opaque
    )
    return call_consumer(
        ctx, request, h.consumer_group, h.client_id, request.ext_fields, request.body
    )


def consume_message_directly(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """CONSUME_MESSAGE_DIRECTLY (309; ``mqadmin queryMsgById -g GROUP -d CLIENT_ID``, the
    dashboard's "resend"): the message the offset message id ``msgId`` names goes, as the whole
    stored record, to that consumer, whose listener consumes it once more; its
    ConsumeMessageDirectlyResult comes back. SYSTEM_ERROR when the id names no record here.
    Under the ACL the request needs SUB on its group and header topic (``runtime.acl``), and
    then on the topic the record is stored in (``acl_gate``): an account cannot hand another's
    message to a consumer of its own group."""
    h = decode_header(
        ConsumeMessageDirectlyResultRequestHeader, request.ext_fields, opaque=request.opaque
    )
    try:
        offset = decode_offset_msg_id(h.msg_id).physical_offset
    except AddressError as exc:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=f"msgId {h.msg_id}: {exc}")
    refused = unsettled(ctx, request, ResponseCode.SYSTEM_ERROR)
    if refused is not None:
        return refused
    record = ctx.store.message_at(offset)
    if record is None:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"no message with msgId {h.msg_id} here"
        )
    if ctx.acl is not None:  # the header's topic is the client's word: the message's needs SUB
        denied = acl_gate.stored_refusal(ctx, session, request, decode_record(record).topic)
        if denied is not None:
            return denied.answer
    ext = {**request.ext_fields, "brokerName": ctx.cfg.broker_name}
    return call_consumer(ctx, request, h.consumer_group, h.client_id, ext, record)


def call_consumer(
    ctx: BrokerContext,
    request: RemotingCommand,
    group: str,
    client_id: str,
    ext: Mapping[str, object],
    body: bytes,
) -> RemotingCommand:
    """Send ``request``'s code with ``ext`` and ``body`` to ``group``'s member ``client_id``
    and relay its answer (RocketMQ's callConsumer)."""
    client = ctx.ask(ctx.proxy(ctx.consumers).find_channel(group, client_id))
    if client is None:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"The Consumer <{client_id}> not online"
        )
    forward = RemotingCommand.request(request.code, ext, body)
    who = f"consumer <{group}> <{client_id}>"
    try:
        answer = client.call(forward, timeout=CALL_CLIENT_TIMEOUT)
    except pykka.Timeout:
        return reply(
            request,
            ResponseCode.CONSUME_MSG_TIMEOUT,
            remark=f"{who} Timeout: no answer in {CALL_CLIENT_TIMEOUT:g} s",
        )
    except ConnectionError as exc:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=f"invoke {who} Exception: {exc}")
    return reply(
        request, answer.code, remark=answer.remark, ext_fields=answer.ext_fields, body=answer.body
    )
