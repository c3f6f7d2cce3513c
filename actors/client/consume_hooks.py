"""How a consumer runs its consume hooks (``actors.client.hooks``) around its listener calls.

Push consumers (concurrent and orderly, plain and batch listeners): ``before`` and ``after``
run on the thread that runs the listener (a pool thread; a pool greenlet when gevent
monkey-patched), right before the listener is called and right after it returned or raised,
once per listener call: one message for a plain listener, one list for a batch listener, as
RocketMQ's ConsumeMessageConcurrentlyService and ConsumeMessageOrderlyService do. ``after``
sees the outcome before the consumer acts on it (acknowledges, sends back, suspends the
queue). A listener call that ``Admin.consume_message_directly`` asks for runs no hooks (as in
RocketMQ).

The lite pull consumer (RocketMQ's DefaultLitePullConsumer, whose ``poll`` runs its hooks):
``poll`` runs ``before`` and then at once ``after`` (status CONSUME_SUCCESS, ``success`` True,
no time spent) for each queue's messages it is about to return, in the thread that called
``poll``: polled messages count as consumed, and what the program then does with them is not
the consumer's to see.

A consumer without hooks pays two attribute reads per pool task (per ``poll``).
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Mapping
from typing import Any

from actors.client.hooks import ConsumeHook, ConsumeHookContext, run_after, run_before
from actors.client.message import ConsumeOrderlyStatus, ConsumeResult, MessageExt, MessageQueue

CONTEXT_TYPE = "ConsumeContextType"
"""RocketMQ's MixAll.CONSUME_CONTEXT_TYPE: the props key of the listener call's return type."""

Consume = Callable[..., tuple[int, Any]]
"""``ConsumeService._consume``: (listener, messages, mq, ordered, report) -> (acked, context)."""


class ConsumeHooks:
    """One consumer's consume hooks (a tuple, replaced as a whole when one is registered, so
    a call in progress runs the ones it started with) and what their contexts carry."""

    __slots__ = ("_properties", "_settings", "group", "hooks", "orderly")

    def __init__(
        self, group: str, settings: Callable[[], Mapping[str, str]], *, orderly: bool = False
    ) -> None:
        self.group = group
        self.orderly = orderly
        self.hooks: tuple[ConsumeHook, ...] = ()
        self._settings = settings
        self._properties: Mapping[str, str] | None = None

    def properties(self) -> Mapping[str, str]:
        """The consumer's settings, read once (after its start) and shared, read-only."""
        props = self._properties
        if props is None:
            props = self._properties = types.MappingProxyType(dict(self._settings()))
        return props

    def context(self, mq: MessageQueue | None, messages: list[MessageExt]) -> ConsumeHookContext:
        return ConsumeHookContext(self.group, mq, messages, self.properties(), orderly=self.orderly)

    def consume(
        self,
        consume: Consume,
        listener: Any,
        messages: list[MessageExt],
        mq: MessageQueue | None,
        ordered: bool,
    ) -> tuple[int, Any]:
        """``consume(...)`` (one listener call) between the hooks' ``before`` and ``after``."""
        hooks = self.hooks
        ctx = self.context(mq, messages)
        run_before(hooks, ctx)
        started = time.monotonic()
        acked, context = consume(listener, messages, mq, ordered, ctx)
        ctx.time_spent = time.monotonic() - started
        ctx.acked = acked
        if ctx.exception is not None:
            ctx.success = False
            ctx.props[CONTEXT_TYPE] = "EXCEPTION"
        else:
            ctx.props[CONTEXT_TYPE] = "SUCCESS" if ctx.success else "FAILED"
        if self.orderly:
            ctx.status = (
                ConsumeOrderlyStatus.SUCCESS
                if ctx.success
                else ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
            )
        else:
            ctx.status = (
                ConsumeResult.CONSUME_SUCCESS if ctx.success else ConsumeResult.RECONSUME_LATER
            )
        run_after(hooks, ctx)
        return acked, context

    def polled(self, mq: MessageQueue, messages: list[MessageExt]) -> None:
        """A lite consumer's ``poll`` returns ``messages`` of ``mq``: both hooks, at once."""
        hooks = self.hooks
        ctx = self.context(mq, messages)
        run_before(hooks, ctx)
        ctx.status = ConsumeResult.CONSUME_SUCCESS
        ctx.success = True
        ctx.acked = len(messages)
        ctx.props[CONTEXT_TYPE] = "SUCCESS"
        run_after(hooks, ctx)
