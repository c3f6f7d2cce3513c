"""Send and consume hooks: what they are, what they see, and how a failing one is handled.

RocketMQ's ``SendMessageHook`` (``sendMessageBefore`` / ``sendMessageAfter`` with a
``SendMessageContext``) and ``ConsumeMessageHook`` (``consumeMessageBefore`` /
``consumeMessageAfter`` with a ``ConsumeMessageContext``), for metrics and tracing. A hook is
an object with two methods, ``before(ctx)`` and ``after(ctx)``; subclass ``SendHook`` or
``ConsumeHook`` (their methods do nothing) to write only one of them::

    class Timing(SendHook):
        def after(self, ctx: SendContext) -> None:
            metrics.observe(ctx.message.topic, ctx.time_spent, ctx.exception is None)

    producer.register_send_hook(Timing())

Hooks run in the order they were registered, ``before`` and ``after`` alike, and get the same
context object in both calls (``ctx.props`` carries what a hook wants to hand itself, a span
for example). A hook that raises is logged as a WARNING with its traceback, at most once a
minute per hook and method (with how many failures were not logged meanwhile); the other hooks,
the send and the listener go on as if it had returned. Where each call runs (which thread) is
in ``actors.client.send_hooks`` and ``actors.client.consume_hooks``.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from loguru import logger

from actors.client.message import (
    ConsumeOrderlyStatus,
    ConsumeResult,
    Message,
    MessageExt,
    MessageQueue,
    SendResult,
)

__all__ = [
    "CommunicationMode",
    "ConsumeHook",
    "ConsumeHookContext",
    "MessageType",
    "SendContext",
    "SendHook",
]

LOG_INTERVAL = 60.0
"""Seconds between two logged failures of one hook's method."""


class CommunicationMode(enum.Enum):
    """How a send waits for its answer (RocketMQ's CommunicationMode)."""

    SYNC = "SYNC"
    ASYNC = "ASYNC"
    ONEWAY = "ONEWAY"


class MessageType(enum.Enum):
    """What kind of message a send carries (RocketMQ's MessageType, the kinds this client
    sends): a delay is any of ``delay_level``, ``deliver_at_ms``, ``delay_ms``."""

    NORMAL = "Normal_Msg"
    TRANSACTION_HALF = "Trans_Msg_Half"
    DELAY = "Delay_Msg"


class SendContext:
    """What a send hook sees (RocketMQ's SendMessageContext).

    Known at ``before``: ``group`` (the producer group), ``message`` (the caller's ``Message``;
    for ``send_batch`` the list of them), ``mode``, ``msg_type``, ``born_host`` (this client's
    IP), ``props`` (an empty dict for the hooks' own use) and, when the caller named it,
    ``mq``. Set by ``after``: ``mq`` and ``broker_addr`` (the queue and the master address of
    the last attempt; None when no queue was chosen, e.g. no route), ``send_result`` (the
    ``SendResult``; None on failure and for oneway sends), ``exception`` (the error the caller
    gets, None on success) and ``time_spent`` (seconds from handing the send to the client's
    hub to its outcome: every attempt, retries included)."""

    __slots__ = (
        "born_host",
        "broker_addr",
        "exception",
        "group",
        "message",
        "mode",
        "mq",
        "msg_type",
        "props",
        "send_result",
        "time_spent",
    )

    def __init__(
        self,
        group: str,
        message: Message | Sequence[Message],
        mode: CommunicationMode,
        born_host: str,
        *,
        mq: MessageQueue | None = None,
        msg_type: MessageType = MessageType.NORMAL,
    ) -> None:
        self.group = group
        self.message = message
        self.mode = mode
        self.born_host = born_host
        self.mq = mq
        self.msg_type = msg_type
        self.broker_addr: str | None = None
        self.send_result: SendResult | None = None
        self.exception: BaseException | None = None
        self.time_spent = 0.0
        self.props: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (
            f"SendContext(group={self.group!r}, mode={self.mode.name}, mq={self.mq!r}, "
            f"broker_addr={self.broker_addr!r}, send_result={self.send_result!r}, "
            f"exception={self.exception!r}, time_spent={self.time_spent:.6f})"
        )


class ConsumeHookContext:
    """What a consume hook sees (RocketMQ's ConsumeMessageContext).

    Known at ``before``: ``group`` (the consumer group), ``mq`` (the queue the messages came
    from; ``%RETRY%<group>``'s for redelivered ones), ``messages`` (the list of what the
    listener gets: one message for a plain listener, up to ``consume_batch_size`` for a batch
    listener; for the lite consumer, what ``poll`` returns of one queue), ``orderly``,
    ``properties`` (the consumer's settings under RocketMQ's names, as in its running info;
    read-only, shared by every call) and ``props`` (an empty dict for the hooks' own use). Set
    by ``after``: ``status`` (RECONSUME_LATER / SUSPEND_CURRENT_QUEUE_A_MOMENT when the listener
    failed or raised, else CONSUME_SUCCESS / SUCCESS: ``ConsumeResult`` for concurrent
    consumers, ``ConsumeOrderlyStatus`` for orderly ones), ``success`` (the listener accepted
    the call), ``acked`` (how many of ``messages``, from the first, count as consumed: fewer
    than all when a batch listener set ``ack_index``), ``exception`` (what the listener raised,
    else None), ``time_spent`` (seconds in the listener). ``props["ConsumeContextType"]`` is
    RocketMQ's return type: SUCCESS, FAILED or EXCEPTION."""

    __slots__ = (
        "acked",
        "exception",
        "group",
        "messages",
        "mq",
        "orderly",
        "properties",
        "props",
        "status",
        "success",
        "time_spent",
    )

    def __init__(
        self,
        group: str,
        mq: MessageQueue | None,
        messages: list[MessageExt],
        properties: Mapping[str, str],
        *,
        orderly: bool = False,
    ) -> None:
        self.group = group
        self.mq = mq
        self.messages = messages
        self.properties = properties
        self.orderly = orderly
        self.status: ConsumeResult | ConsumeOrderlyStatus | None = None
        self.success = False
        self.acked = 0
        self.exception: BaseException | None = None
        self.time_spent = 0.0
        self.props: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (
            f"ConsumeHookContext(group={self.group!r}, mq={self.mq!r}, "
            f"messages={len(self.messages)}, status={self.status}, success={self.success}, "
            f"exception={self.exception!r}, time_spent={self.time_spent:.6f})"
        )


class SendHook(Protocol):
    """A send hook (RocketMQ's SendMessageHook): any object with these two methods. Subclass
    it to write only one; the other does nothing."""

    def before(self, ctx: SendContext) -> None:
        return None

    def after(self, ctx: SendContext) -> None:
        return None


class ConsumeHook(Protocol):
    """A consume hook (RocketMQ's ConsumeMessageHook): any object with these two methods.
    Subclass it to write only one; the other does nothing."""

    def before(self, ctx: ConsumeHookContext) -> None:
        return None

    def after(self, ctx: ConsumeHookContext) -> None:
        return None


def checked(hook: Any, what: str) -> Any:
    """``hook`` if it has callable ``before`` and ``after``, else TypeError."""
    for method in ("before", "after"):
        if not callable(getattr(hook, method, None)):
            raise TypeError(f"a {what} hook needs before(ctx) and after(ctx) methods: {hook!r}")
    return hook


def added(hooks: tuple[Any, ...], hook: Any) -> tuple[Any, ...]:
    """``hooks`` with ``hook`` appended (a new tuple: a call in progress keeps its own)."""
    return (*hooks, hook)


def removed(hooks: tuple[Any, ...], hook: Any) -> tuple[Any, ...]:
    return tuple(h for h in hooks if h is not hook)


class FailureLog:
    """Logs a hook's failures, at most once per ``interval`` per hook and method."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[tuple[int, str], float] = {}
        self._quiet: dict[tuple[int, str], int] = {}

    def failed(self, hook: Any, method: str, exc: BaseException) -> None:
        key = (id(hook), method)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._quiet[key] = self._quiet.get(key, 0) + 1
                return
            self._last[key] = now
            quiet = self._quiet.pop(key, 0)
        more = f" ({quiet} more failures not logged)" if quiet else ""
        logger.opt(exception=exc).warning(
            "client: hook {!r}.{} failed; ignored{}", hook, method, more
        )


FAILURES = FailureLog()


def run_before(hooks: tuple[Any, ...], ctx: Any) -> None:
    for hook in hooks:
        try:
            hook.before(ctx)
        except Exception as exc:
            FAILURES.failed(hook, "before", exc)


def run_after(hooks: tuple[Any, ...], ctx: Any) -> None:
    for hook in hooks:
        try:
            hook.after(ctx)
        except Exception as exc:
            FAILURES.failed(hook, "after", exc)
