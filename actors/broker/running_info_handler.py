"""GET_CONSUMER_RUNNING_INFO (307): an admin tool asks the broker about one consumer
(``mqadmin consumerStatus``, the dashboard); the broker asks that consumer and relays its answer,
as RocketMQ's broker does.

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

import pykka

from actors.broker.context import BrokerContext, reply
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.headers import Header, decode_header
from runtime.session import SessionHandle

CALL_CLIENT_TIMEOUT = 5.0
"""Seconds the broker waits for the consumer (RocketMQ waits 10 s; admin tools wait longer)."""


class GetConsumerRunningInfoRequestHeader(Header, kw_only=True):
    """GET_CONSUMER_RUNNING_INFO (307)."""

    consumer_group: str
    client_id: str
    jstack_enable: bool = False


def consumer_running_info(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(
        GetConsumerRunningInfoRequestHeader, request.ext_fields, opaque=request.opaque
    )
    client = ctx.ask(ctx.proxy(ctx.consumers).find_channel(h.consumer_group, h.client_id))
    if client is None:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"The Consumer <{h.client_id}> not online"
        )
    forward = RemotingCommand.request(
        RequestCode.GET_CONSUMER_RUNNING_INFO, request.ext_fields, request.body
    )
    who = f"consumer <{h.consumer_group}> <{h.client_id}>"
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
