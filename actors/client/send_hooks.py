"""How a producer runs its send hooks (``actors.client.hooks``) around one send.

Only sends of a producer with hooks come here: ``Producer`` checks its hook tuple once per
send and otherwise takes its usual path, so a producer without hooks pays one attribute check
and nothing else (``actors.client.send``, the hub's side, is the same either way).

Where each call runs, and why:

- ``before`` runs in the caller's thread (``send``, ``send_async``, ...), before the message is
  validated and encoded and before anything reaches the client's hub: a hook may add user
  properties to ``ctx.message`` (a trace id) and they are sent, and it sees the caller's
  thread-local or context-variable state (the current span). Once per call of the producer's
  send methods: retries inside one send are not separate sends here (RocketMQ calls its hooks
  once per attempt).
- The outcome (queue, broker address, result or error, time spent) is recorded on the hub when
  it is known, which costs a few attribute stores; no hook code ever runs on the hub, so a slow
  hook cannot stall other sends or pulls.
- ``after`` runs once for every ``before``: for ``send``, ``send_batch``, ``send_oneway``,
  ``request``, ``reply`` and the half message of ``send_message_in_transaction`` in the
  caller's thread, before the call returns or raises (so ``before`` and ``after`` of a sync
  send share a thread, as in RocketMQ); for ``send_async`` on the producer's callback thread
  (a worker greenlet when gevent monkey-patched), before the future is completed and before
  the callback runs. A send refused before ``before`` (not started, an invalid selection) calls
  no hook; one refused after it (an invalid message, no room in the async window) calls
  ``after`` with that error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from actors.client.hooks import (
    CommunicationMode,
    MessageType,
    SendContext,
    run_after,
    run_before,
)
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.namespace import Namespace, plain_queue
from actors.client.send import Done, SendOp


def message_type(msg: Message | Sequence[Message]) -> MessageType:
    if isinstance(msg, Message) and (msg.delay_level or msg.deliver_at_ms or msg.delay_ms):
        return MessageType.DELAY
    return MessageType.NORMAL


class HookedSend:
    """One send of a producer with hooks: its context, the hooks it started with (the same
    ones run ``after``, whatever is registered meanwhile) and the outcome seen on the hub."""

    __slots__ = ("closed", "ctx", "hooks", "namespace", "op", "started")

    def __init__(
        self,
        hooks: tuple[Any, ...],
        group: str,
        message: Message | Sequence[Message],
        mode: CommunicationMode,
        born_host: str,
        *,
        mq: MessageQueue | None = None,
        msg_type: MessageType | None = None,
        namespace: Namespace | None = None,
    ) -> None:
        self.hooks = hooks
        self.namespace = namespace
        """The producer's namespace: ``ctx.mq`` names the plain topic, as ``send_result``."""
        self.ctx = SendContext(
            group,
            message,
            mode,
            born_host,
            mq=mq,
            msg_type=message_type(message) if msg_type is None else msg_type,
        )
        self.op: SendOp | None = None
        self.started = 0.0
        self.closed = False
        """``after`` ran (the caller stopped waiting first): an outcome arriving later on the
        hub is not recorded."""

    def before(self) -> None:
        """Run every hook's ``before`` (the caller's thread)."""
        run_before(self.hooks, self.ctx)

    def handed_over(self) -> None:
        """The send goes to the hub now: ``time_spent`` counts from here."""
        self.started = time.monotonic()

    def observe(self, done: Done) -> Done:
        """``done`` preceded by recording the outcome (on the hub, where ``done`` is called)."""

        def observed(result: Any, error: BaseException | None) -> None:
            self.record(result, error)
            done(result, error)

        return observed

    def record(self, result: SendResult | None, error: BaseException | None) -> None:
        if self.closed:
            return
        ctx = self.ctx
        ctx.time_spent = time.monotonic() - self.started
        op = self.op
        wire = op.mq if op is not None else None  # the last attempt's queue, as the wire names it
        if wire is not None:
            ctx.mq = plain_queue(self.namespace, wire)
        if result is not None:
            ctx.send_result = result
            ctx.mq = result.queue
        ctx.exception = error
        ctx.broker_addr = _address(error)
        if ctx.broker_addr is None and op is not None and wire is not None:
            route = op.sender.instance.routes.get(wire.topic)  # routes are by wire topic
            ctx.broker_addr = route.master(wire.broker_name) if route is not None else None

    def after(self, error: BaseException | None = None) -> None:
        """Run every hook's ``after``. ``error``: one raised outside the hub (an invalid
        message, the caller's wait timing out), which the caller gets instead."""
        self.closed = True
        ctx = self.ctx
        if error is not None and ctx.exception is None:
            ctx.exception = error
            if self.started:
                ctx.time_spent = time.monotonic() - self.started
        run_after(self.hooks, ctx)


def _address(error: BaseException | None) -> str | None:
    """The broker an error names (the last attempt's, for a send that failed several)."""
    if error is None:
        return None
    errors = getattr(error, "errors", None)
    if errors:
        error = errors[-1]
    address = getattr(error, "address", None)
    return address if isinstance(address, str) else None
