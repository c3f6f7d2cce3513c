"""LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42): broker-side queue locks for ordered consumers.

A lock request naming more than ``MAX_LOCK_BATCH`` queues is INVALID_PARAMETER, nothing locked
(RocketMQ takes any number: one request of a hostile client could fill the lock table). The
table holds at most ``lock_manager.MAX_LOCKS`` locks in all: a queue refused for want of room is
left out of the locked set (SUCCESS, as for a queue another client holds), and the remark says
how many were refused and why.
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
    remark = None
    if locked.refused:
        remark = (
            f"the broker's lock table is full: {locked.refused} queue(s) not locked; "
            "try again after locks expire or are unlocked"
        )
    response_body = LockBatchResponseBody(lock_ok_mq_set=locked.queues)
    return reply(request, remark=remark, body=encode_body(response_body))


def unlock_batch(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    body = decode_body(UnlockBatchRequestBody, request.body, opaque=request.opaque)
    ctx.ask(ctx.proxy(ctx.locks).unlock_batch(body.consumer_group, body.client_id, body.mq_set))
    return reply(request)
