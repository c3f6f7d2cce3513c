"""LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42): broker-side queue locks for ordered consumers.

A lock request naming more than ``MAX_LOCK_BATCH`` queues is INVALID_PARAMETER, nothing locked
(RocketMQ takes any number: one request of a hostile client could fill the lock table).
"""

from __future__ import annotations

from actors.broker.context import BrokerContext, reply
from runtime.remoting.bodies import (
    LockBatchRequestBody,
    LockBatchResponseBody,
    UnlockBatchRequestBody,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle

MAX_LOCK_BATCH = 65536
"""Most queues one LOCK_BATCH_MQ may name: an ordered consumer locks every queue it was given on
this broker at once (with 4,096, one consumer of five topics of the widest, maxTopicQueueNums
1024, could lock nothing at all: a review finding); 64 such topics fit."""


def lock_batch(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    body = decode_body(LockBatchRequestBody, request.body, opaque=request.opaque)
    if len(body.mq_set) > MAX_LOCK_BATCH:
        return reply(
            request,
            ResponseCode.INVALID_PARAMETER,
            remark=f"a lock request may name at most {MAX_LOCK_BATCH} queues, this one names "
            f"{len(body.mq_set)}: nothing locked",
        )
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
