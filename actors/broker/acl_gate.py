"""The broker's ACL refusals: the processor's check of every request, and the second check of
the handlers whose request names a stored message by its commit-log offset.

CONSUMER_SEND_MSG_BACK, END_TRANSACTION and VIEW_MESSAGE_BY_ID carry an offset; the topic in
their header (if any) is the client's word. Once the handler has read the message it asks
``stored_refusal`` whether the request's account holds what the message's own topic needs
(``runtime.acl.resources.stored_topic_need``): SUB to read it or copy it to its group's retry
topic, PUB to commit or roll it back. A refusal is answered as the processor answers one
(SYSTEM_ERROR ``AclException: <reason>``; a oneway request gets nothing) and logged alike.
"""

from __future__ import annotations

from typing import NamedTuple

from actors.broker.context import BrokerContext, reply
from runtime.acl.resources import stored_topic_need
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle


class Refused(NamedTuple):
    """A refused request's answer (None: a oneway request, answered with nothing)."""

    answer: RemotingCommand | None


def refusal(
    ctx: BrokerContext,
    session: SessionHandle,
    request: RemotingCommand,
    wanted: dict[str, int] | None = None,
) -> Refused | None:
    """None when the broker has no ACL or ``request`` may be served (``wanted``: the resources
    to check instead of those its header names), else its refusal, logged."""
    acl = ctx.acl
    if acl is None:
        return None
    denied = acl.check(request, session.remote_address, wanted)
    if denied is None:
        return None
    # RocketMQ logs every refusal ("process request exception" with the AclException) and
    # answers it (the client sees the reason)
    acl.refusals.refused(request.code, session.remote_address, denied)
    if request.is_oneway:
        return Refused(None)
    return Refused(reply(request, ResponseCode.SYSTEM_ERROR, remark=f"AclException: {denied}"))


def stored_refusal(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand, topic: str
) -> Refused | None:
    """``refusal`` for the message ``request`` names, stored in ``topic``."""
    if ctx.acl is None:
        return None
    return refusal(ctx, session, request, stored_topic_need(request.code, topic))
