"""The send-queue fast failure (RocketMQ's waitTimeMillsInSendQueue): a send that waited too
long between being read off its socket and being stored is answered SYSTEM_BUSY, unstored."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gevent

from actors.broker.context import send_queue_busy
from config import BrokerConfig
from runtime import request_context
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand


def _ctx(wait_ms: int) -> SimpleNamespace:
    return SimpleNamespace(cfg=BrokerConfig(wait_time_mills_in_send_queue=wait_ms))


def _in_request(arrived: float | None, fn: object) -> object:
    """Run ``fn`` in a greenlet as a session serves a request read at ``arrived``."""

    def serve() -> object:
        if arrived is not None:
            request_context.begin(arrived, None)
        try:
            return fn()  # type: ignore[operator]
        finally:
            request_context.finish()

    return gevent.spawn(serve).get(timeout=5)


def test_a_send_that_waited_past_the_limit_is_busy_and_a_fresh_one_goes_on() -> None:
    request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, {"b": "T"})
    ctx = _ctx(200)
    # Given a send read 0.5 s ago, When it is about to be stored, Then SYSTEM_BUSY
    late = _in_request(time.monotonic() - 0.5, lambda: send_queue_busy(ctx, request))
    assert isinstance(late, RemotingCommand)
    assert late.code == ResponseCode.SYSTEM_BUSY and late.opaque == request.opaque
    assert late.remark is not None and late.remark.startswith("[TIMEOUT_CLEAN_QUEUE]")
    # Given one read just now, Then it goes on
    assert _in_request(time.monotonic(), lambda: send_queue_busy(ctx, request)) is None
    # and outside a served request nothing has waited
    assert _in_request(None, request_context.request_waited_s) == 0.0
