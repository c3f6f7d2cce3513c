"""LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42): broker-side queue locks for ordered consumers."""

from __future__ import annotations

from actors.broker.context import BrokerContext, reply
from runtime.remoting.bodies import (
    LockBatchRequestBody,
    LockBatchResponseBody,
    UnlockBatchRequestBody,
    decode_body,
    encode_body,
)
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle


def lock_batch(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    body = decode_body(LockBatchRequestBody, request.body, opaque=request.opaque)
    locked = ctx.ask(
        ctx.proxy(ctx.locks).lock_batch(body.consumer_group, body.client_id, body.mq_set)
    )
    return reply(request, body=encode_body(LockBatchResponseBody(lock_ok_mq_set=locked)))


def unlock_batch(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    body = decode_body(UnlockBatchRequestBody, request.body, opaque=request.opaque)
    ctx.ask(ctx.proxy(ctx.locks).unlock_batch(body.consumer_group, body.client_id, body.mq_set))
    return reply(request)
