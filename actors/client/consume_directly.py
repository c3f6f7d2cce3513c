"""CONSUME_MESSAGE_DIRECTLY (309): a broker hands a push consumer one stored message on behalf of
an admin tool (``mqadmin queryMsgById -g GROUP -d CLIENT_ID``, the dashboard's "resend"); the
consumer's listener consumes it once more, outside the queue's flow (no offset moves, nothing is
sent back), and the outcome goes back as a ``ConsumeMessageDirectlyResult``.

As RocketMQ's consume services: ``order`` says whether the consumer is orderly, ``autoCommit``
is true, ``consumeResult`` is CR_SUCCESS (CONSUME_SUCCESS, SUCCESS, or None, which our
listeners may return for success), CR_LATER (RECONSUME_LATER, SUSPEND_CURRENT_QUEUE_A_MOMENT),
CR_RETURN_NULL (anything else) or CR_THROW_EXCEPTION (the listener raised; ``remark`` says
what), ``spentTimeMills`` the listener's time. A lite pull consumer has no listener: it answers
REQUEST_CODE_NOT_SUPPORTED, as for any request it does not serve.

The listener runs in the consumer's task pool (a thread in a plain program, a greenlet in a
patched one), never on the hub; the hub's greenlet that serves the request waits for it.
"""

from __future__ import annotations

import time
from typing import Any

import gevent.event
import msgspec
from loguru import logger

from actors.client.consume import (
    RAISED,
    SUCCEEDED,
    BatchListener,
    ConsumeContext,
    ConsumeService,
    reset_retry_topic,
)
from actors.client.message import ConsumeOrderlyStatus, ConsumeResult, MessageExt
from actors.client.pull import decode_messages
from runtime.errors import ProtocolError
from runtime.remoting.bodies import ConsumeMessageDirectlyResult
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand

WAIT_S = 30.0
"""How long the request waits for the listener (the broker itself gives up after 5 s)."""

_LATER = (ConsumeResult.RECONSUME_LATER, ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT)


def consume_directly(
    service: ConsumeService, msg: MessageExt, orderly: bool
) -> ConsumeMessageDirectlyResult:
    """Run the listener of ``msg``'s topic on it once; its outcome in RocketMQ's terms."""
    reset_retry_topic(msg, service.namespace)
    listener = service.listeners.get(msg.topic) or service.listeners.get("*")
    started = time.monotonic()
    remark = None
    try:
        if listener is None:
            raise LookupError(f"no listener for topic {msg.topic!r}")
        if isinstance(listener, BatchListener):
            outcome: Any = listener.call([msg], ConsumeContext(msg.queue))
        else:
            outcome = listener(msg)
        if outcome in SUCCEEDED:
            result = "CR_SUCCESS"
        elif outcome in _LATER:
            result = "CR_LATER"
        else:
            result = "CR_RETURN_NULL"
    except RAISED as exc:  # a gevent.Timeout too, as in the consume service
        logger.exception("client: listener failed on {} consumed directly", msg)
        result, remark = "CR_THROW_EXCEPTION", f"{type(exc).__name__}: {exc}"
    return ConsumeMessageDirectlyResult(
        order=orderly,
        consume_result=result,
        remark=remark,
        spent_time_mills=int((time.monotonic() - started) * 1000),
    )


def serve(
    consumer: Any, service: ConsumeService, request: RemotingCommand
) -> RemotingCommand | None:
    """The inbound handler's work, on a greenlet of the client's hub (see the module
    docstring). ``consumer``: the PushConsumer (its group, orderly flag and hub)."""
    ext = request.ext_fields
    group = str(ext.get("consumerGroup") or "")
    if group != consumer.group:
        code, remark, body = (
            ResponseCode.SYSTEM_ERROR,
            f"The Consumer Group <{group}> not exist in this consumer",
            b"",
        )
    else:
        try:
            [msg] = decode_messages(request.body, str(ext.get("brokerName") or ""))
        except (ProtocolError, ValueError) as exc:
            code, remark, body = ResponseCode.SYSTEM_ERROR, f"the message: {exc}", b""
        else:
            code, remark, body = _run(consumer, service, msg)
    if request.is_oneway:
        return None
    return RemotingCommand.response_to(request, code, remark, body=body)


def _run(consumer: Any, service: ConsumeService, msg: MessageExt) -> tuple[int, str | None, bytes]:
    hub = consumer._hub
    slot: gevent.event.AsyncResult = gevent.event.AsyncResult()

    def task() -> None:
        outcome = consume_directly(service, msg, consumer.orderly)
        hub.run(slot.set, outcome)  # back on the hub, from whichever thread ran the task

    service.pool.submit(task)
    outcome = slot.wait(WAIT_S)
    if outcome is None:
        return ResponseCode.SYSTEM_ERROR, f"the listener did not finish in {WAIT_S:g} s", b""
    return ResponseCode.SUCCESS, None, msgspec.json.encode(outcome)
