"""ConsumeService: runs the push consumer's listeners on a pool, off the hub.

The pool (``actors.client.pool``) is real threads in a plain program (so a listener may block
on anything) and greenlets in a monkey-patched one. A pulled batch is cut into tasks of at
most ``max(1, n / threads)`` messages (capped by ``batch_cap``; whole listener calls of
``consume_batch_size`` when that is above 1), so a slow listener holds back few messages while
a fast one does not pay one pool hand-off per message. Each task tells its puller which offsets
are done and which returned RECONSUME_LATER (or raised): from a pool greenlet at once, from a
pool thread through a hub callback; an idle puller handles it right there (its handler never
yields), sparing a turn of the puller's own loop. A task calls no more listeners once its puller
stopped (the queue was taken away by a rebalance, or its puller failed and restarts from the
committed offset), as RocketMQ's ConsumeRequest skips a dropped ProcessQueue: those messages
are the new owner's to consume, and would otherwise be consumed twice. Nor once its puller
moved to a newer generation (``drop``: a reset offset, an offset the broker moved): those
messages are from before the move, which RocketMQ drops with their ProcessQueue.

A listener returns ``ConsumeResult.CONSUME_SUCCESS`` or ``RECONSUME_LATER`` (orderly listeners
may spell them ``ConsumeOrderlyStatus.SUCCESS`` / ``SUSPEND_CURRENT_QUEUE_A_MOMENT``); ``None``
counts as success; an exception counts as RECONSUME_LATER (and is logged).

A ``BatchListener`` (``subscribe(..., batch=True)``, RocketMQ's listeners with
``consumeMessageBatchMaxSize``) is called with a list of up to ``consume_batch_size``
consecutive messages of one queue (and one listener) and a ``ConsumeContext``. Its outcome
covers the whole list, except that with CONSUME_SUCCESS a concurrent listener may set
``context.ack_index = i``: only ``msgs[:i + 1]`` succeeded, the rest count as RECONSUME_LATER.

``deliver_ordered`` (orderly consumers) runs a batch as one task, in order, and stops at the
first failed listener call: the messages after it were not offered, so the puller offers them
again after the failed ones succeed (or go to the dead-letter queue).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pykka
from loguru import logger

from actors.client.consume_hooks import ConsumeHooks
from actors.client.hooks import ConsumeHookContext
from actors.client.hub import ClientHub
from actors.client.message import ConsumeOrderlyStatus, ConsumeResult, MessageExt, MessageQueue
from actors.client.namespace import Namespace
from actors.client.outgoing import MAX_DELAY_LEVEL
from actors.client.pool import task_pool
from actors.client.puller_messages import Consumed
from runtime.actor import tell_now
from runtime.remoting import properties as P
from runtime.remoting.codes import RETRY_PREFIX

Outcome = ConsumeResult | ConsumeOrderlyStatus | None
Listener = Callable[[MessageExt], Outcome]
MAX_CONSUME_BATCH_SIZE = 1024
"""RocketMQ's bound for ``consumeMessageBatchMaxSize``."""
ACK_ALL = 2**31 - 1
"""``ConsumeContext.ack_index`` by default (RocketMQ's Integer.MAX_VALUE): every message."""
SUCCEEDED = (None, ConsumeResult.CONSUME_SUCCESS, ConsumeOrderlyStatus.SUCCESS)
"""What a listener returns for "consumed" (None counts as success)."""
RAISED = (Exception, gevent.Timeout)
"""What a listener may raise and have it count as RECONSUME_LATER: any Exception, and a
``gevent.Timeout`` (a BaseException; ``with gevent.Timeout(5):`` raises the Timeout itself).
Escaping the task, it left the messages unreported: held in their queue, its offset stuck."""


class ConsumeContext:
    """What a batch listener gets besides its messages (RocketMQ's ConsumeConcurrentlyContext
    and ConsumeOrderlyContext).

    ``mq``: the queue the messages came from (``%RETRY%<group>``'s for redelivered ones).
    ``ack_index`` (concurrent consumers; orderly ones ignore it): with CONSUME_SUCCESS, the
    index of the last message that succeeded; those after it are handled as RECONSUME_LATER
    (sent back, or retried locally). ``-1``: none succeeded. Default: all of them.
    ``delay_level`` (concurrent clustering consumers; RocketMQ's delayLevelWhenNextConsume): the
    delay level this call's failed messages are sent back with: 0 (default) lets the broker
    choose (3 + reconsume times), n > 0 that level, -1 straight to the dead-letter queue.
    ``suspend_delay`` (orderly consumers; RocketMQ's suspendCurrentQueueTimeMillis, in seconds
    here): how long the queue waits after this call asked to suspend it, 0.01 to 30 s; None
    (default): the consumer's ``suspend_delay``."""

    __slots__ = ("ack_index", "delay_level", "mq", "suspend_delay")

    def __init__(self, mq: MessageQueue | None) -> None:
        self.mq = mq
        self.ack_index = ACK_ALL
        self.delay_level = 0
        self.suspend_delay: float | None = None

    def __repr__(self) -> str:
        return (
            f"ConsumeContext(mq={self.mq!r}, ack_index={self.ack_index}, "
            f"delay_level={self.delay_level})"
        )


BatchListenerFn = Callable[[list[MessageExt], ConsumeContext], Outcome]


class BatchListener:
    """A listener called with a list of messages and a ``ConsumeContext`` (``fn``); see the
    module docstring. ``PushConsumer.subscribe(..., batch=True)`` wraps it."""

    __slots__ = ("fn",)
    max_messages: int | None = None
    """Messages per call at most; None: the consumer's ``consume_batch_size``."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def call(self, msgs: list[MessageExt], context: ConsumeContext) -> Outcome:
        return self.fn(msgs, context)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fn!r})"


ContextListenerFn = Callable[[MessageExt, ConsumeContext], Outcome]


class ContextListener(BatchListener):
    """A listener called with one message and a ``ConsumeContext`` (``fn(msg, context)``), so a
    plain listener can choose its message's send-back delay level or its queue's suspend time
    (RocketMQ's listeners always get a context). ``PushConsumer.subscribe(..., context=True)``
    wraps it. ``ack_index`` does not apply (one message a call)."""

    __slots__ = ()
    max_messages = 1

    def call(self, msgs: list[MessageExt], context: ConsumeContext) -> Outcome:
        return self.fn(msgs[0], context)  # type: ignore[no-any-return]


AnyListener = Listener | BatchListener


def _level(context: ConsumeContext) -> int:
    """The context's delay level, when it is one (-1, 0, or a level up to 18)."""
    level = context.delay_level
    return level if isinstance(level, int) and -1 <= level <= MAX_DELAY_LEVEL else 0


def _suspend(context: ConsumeContext) -> float | None:
    """The context's suspend time, clamped to RocketMQ's 10 ms to 30 s; None when unset."""
    delay = context.suspend_delay
    if not isinstance(delay, int | float) or isinstance(delay, bool):
        return None
    return min(max(float(delay), 0.01), 30.0)


def reset_retry_topic(msg: MessageExt, namespace: Namespace | None = None) -> None:
    """A message consumed from ``%RETRY%<group>`` carries its original topic in RETRY_TOPIC:
    give it back; with a ``namespace``, the plain topic (RocketMQ's resetRetryAndNamespace)."""
    if msg.topic.startswith(RETRY_PREFIX):
        original = msg.all_properties.get(P.RETRY_TOPIC)
        if original:
            msg.topic = original
    if namespace is not None:
        msg.topic = namespace.unwrap(msg.topic)


def _report(puller: pykka.ActorRef[Any], message: Consumed) -> None:
    # On the hub. ActorDeadError: the queue was taken away meanwhile; its new owner will
    # redeliver. The puller's Consumed handler never yields, so an idle one takes it here.
    with contextlib.suppress(pykka.ActorDeadError):
        tell_now(puller, message)


class ConsumeService:
    """The push consumer's sink. See the module docstring."""

    def __init__(
        self,
        hub: ClientHub,
        listeners: dict[str, AnyListener],
        *,
        threads: int = 20,
        batch_cap: int = 64,
        consume_batch_size: int = 1,
        name: str = "actormq-consume",
        namespace: Namespace | None = None,
    ) -> None:
        self.hub = hub
        self.listeners = listeners
        self.threads = max(1, threads)
        self.batch_cap = max(1, batch_cap)
        self.consume_batch_size = max(1, consume_batch_size)
        self.pool = task_pool(hub.patched, self.threads, name)
        self.hooks: ConsumeHooks | None = None
        """The consumer's consume hooks (``actors.client.consume_hooks``), once it has some."""
        self.namespace = namespace
        """The consumer's namespace: listeners see plain topics and queues."""
        self.floor: dict[MessageQueue, int] = {}
        """The oldest generation still consumed, by queue (``drop``): written on the hub, read
        by the pool's tasks (one dict lookup: atomic)."""

    def drop(self, mq: MessageQueue, floor: int) -> None:
        """``mq``'s puller moved to generation ``floor``: the tasks of older generations call
        no more listeners (``Sink.drop``)."""
        self.floor[mq] = floor

    def _dropped(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue | None
    ) -> bool:
        """Whether a task's messages are no longer to be consumed: its puller stopped (its
        queue was taken away), or moved on to a newer generation."""
        return generation < self.floor.get(mq, 0) or not puller.is_alive()

    def deliver(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None:
        n = len(msgs)
        per_call = self.consume_batch_size
        calls = -(-n // per_call)
        calls_per_task = min(max(1, self.batch_cap // per_call), max(1, -(-calls // self.threads)))
        size = calls_per_task * per_call
        for i in range(0, n, size):
            self.pool.submit(self._run, puller, generation, msgs[i : i + size], False, mq)

    def deliver_ordered(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None:
        """Consume ``msgs`` in order in one task, stopping at the first failure."""
        self.pool.submit(self._run, puller, generation, msgs, True, mq)

    def _run(
        self,
        puller: pykka.ActorRef[Any],
        generation: int,
        msgs: list[MessageExt],
        ordered: bool = False,
        mq: MessageQueue | None = None,
    ) -> None:
        # A task whose queue was taken away or moved on (``_dropped``) calls no more listeners,
        # and still reports what it did: an orderly puller waits for its one task's report
        # (any generation's) before offering the next; a concurrent one ignores an old one.
        done: list[int] = []
        retry: list[int] = []
        levels: dict[int, int] = {}
        suspend: float | None = None
        hooks = self.hooks
        if hooks is not None and not hooks.hooks:
            hooks = None
        ns = self.namespace
        held = mq  # (the queue as the puller names it)
        if ns is not None and mq is not None:
            mq = ns.unwrap_queue(mq)
        if hooks is not None or any(
            isinstance(fn, BatchListener) for fn in self.listeners.values()
        ):
            for listener, call in self._calls(msgs):
                if ordered and retry:
                    break
                if self._dropped(puller, generation, held):
                    break  # (RocketMQ: ProcessQueue dropped) reported all the same: see _run
                started = int(time.time() * 1000)
                for m in call:
                    m.consume_start_ms = started
                if hooks is None:
                    ok, context = self._consume(listener, call, mq, ordered)
                else:
                    ok, context = hooks.consume(self._consume, listener, call, mq, ordered)
                level = _level(context) if context is not None and not ordered else 0
                if ordered and ok < len(call) and context is not None:
                    suspend = _suspend(context)
                for i, m in enumerate(call):
                    if i < ok:
                        done.append(m.queue_offset)
                    else:
                        retry.append(m.queue_offset)
                        if level:
                            levels[m.queue_offset] = level
        else:  # only plain listeners: the same, one message per call, without the batching
            for msg in msgs:
                if ordered and retry:
                    break
                if self._dropped(puller, generation, held):
                    break  # (RocketMQ: ProcessQueue dropped) reported all the same: see _run
                reset_retry_topic(msg, ns)
                listener = self.listeners.get(msg.topic) or self.listeners.get("*")
                msg.consume_start_ms = int(time.time() * 1000)
                try:
                    if listener is None:
                        raise LookupError(f"no listener for topic {msg.topic!r}")
                    outcome = listener(msg)  # type: ignore[operator]
                except RAISED:
                    logger.exception("client: listener failed on {}; will redeliver", msg)
                    outcome = ConsumeResult.RECONSUME_LATER
                (done if outcome in SUCCEEDED else retry).append(msg.queue_offset)
        try:
            # at once from a greenlet of a patched program's hub, else as a hub callback
            self.hub.run(_report, puller, Consumed(generation, done, retry, levels, suspend))
        except Exception as exc:  # the hub stopped under us (shutdown)
            logger.debug("client: consume result dropped: {}", exc)

    def _calls(
        self, msgs: list[MessageExt]
    ) -> Iterator[tuple[AnyListener | None, list[MessageExt]]]:
        """The listener calls for ``msgs``, in order: one per message for plain listeners; runs
        of consecutive messages of one batch listener, at most ``consume_batch_size`` each."""
        run: list[MessageExt] = []
        run_listener: AnyListener | None = None
        limit = run_limit = self.consume_batch_size
        listeners = self.listeners
        ns = self.namespace
        for msg in msgs:
            reset_retry_topic(msg, ns)
            listener = listeners.get(msg.topic) or listeners.get("*")
            if run and (listener is not run_listener or len(run) >= run_limit):
                yield run_listener, run
                run = []
            if isinstance(listener, BatchListener):
                run_listener = listener
                run_limit = listener.max_messages or limit
                run.append(msg)
            else:
                yield listener, [msg]
        if run:
            yield run_listener, run

    @staticmethod
    def _consume(
        listener: AnyListener | None,
        msgs: list[MessageExt],
        mq: MessageQueue | None,
        ordered: bool,
        report: ConsumeHookContext | None = None,
    ) -> tuple[int, ConsumeContext | None]:
        """Call ``listener``: how many of ``msgs``, from the first, succeeded, and the context
        a batch listener got (what it asks for the others), else None. ``report`` (consume
        hooks): gets whether the listener accepted the call, or what it raised."""
        n = len(msgs)
        context = None
        try:
            if listener is None:
                raise LookupError(f"no listener for topic {msgs[0].topic!r}")
            if not isinstance(listener, BatchListener):
                ok = listener(msgs[0]) in SUCCEEDED
                if report is not None:
                    report.success = ok
                return (1 if ok else 0), None
            context = ConsumeContext(mq)
            # a copy: whatever the listener does to its list, the report covers every message
            ok = listener.call(list(msgs), context) in SUCCEEDED
            if report is not None:
                report.success = ok
            if not ok:
                return 0, context
            if ordered:
                return n, context
            return max(0, min(int(context.ack_index) + 1, n)), context
        except RAISED as exc:
            what = msgs[0] if n == 1 else f"{n} messages from offset {msgs[0].queue_offset}"
            logger.exception("client: listener failed on {}; will redeliver", what)
            if report is not None:
                report.exception = exc
            return 0, context

    def drain(self, timeout: float) -> bool:
        """Wait until the tasks submitted so far finished; False on timeout."""
        return self.pool.drain(timeout)

    def shutdown(self) -> None:
        self.pool.shutdown()
