"""ConsumeService: runs the push consumer's listeners on a pool, off the hub.

The pool (``actors.client.pool``) is real threads in a plain program (so a listener may block
on anything) and greenlets in a monkey-patched one. A pulled batch is cut into tasks of at
most ``max(1, n / threads)`` messages (capped by ``batch_cap``), so a slow listener holds back
few messages while a fast one does not pay one pool hand-off per message. Each task tells its
puller which offsets are done and which returned RECONSUME_LATER (or raised): from a pool
greenlet at once, from a pool thread through a hub callback; an idle puller handles it right
there (its handler never yields), sparing a turn of the puller's own loop.

A listener returns ``ConsumeResult.CONSUME_SUCCESS`` or ``RECONSUME_LATER`` (orderly listeners
may spell them ``ConsumeOrderlyStatus.SUCCESS`` / ``SUSPEND_CURRENT_QUEUE_A_MOMENT``); ``None``
counts as success; an exception counts as RECONSUME_LATER (and is logged).

``deliver_ordered`` (orderly consumers) runs a batch as one task, in order, and stops at the
first failure: the messages after it were not offered, so the puller offers them again after
the failed one succeeds (or goes to the dead-letter queue).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from actors.client.hub import ClientHub
from actors.client.message import ConsumeOrderlyStatus, ConsumeResult, MessageExt, MessageQueue
from actors.client.pool import task_pool
from actors.client.puller import Consumed
from runtime.actor import tell_now
from runtime.remoting import properties as P

Listener = Callable[[MessageExt], "ConsumeResult | ConsumeOrderlyStatus | None"]
RETRY_PREFIX = "%RETRY%"
_SUCCESS = (None, ConsumeResult.CONSUME_SUCCESS, ConsumeOrderlyStatus.SUCCESS)


def reset_retry_topic(msg: MessageExt) -> None:
    """A message consumed from ``%RETRY%<group>`` carries its original topic in RETRY_TOPIC:
    give it back (RocketMQ's resetRetryAndNamespace)."""
    if msg.topic.startswith(RETRY_PREFIX):
        original = msg.all_properties.get(P.RETRY_TOPIC)
        if original:
            msg.topic = original


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
        listeners: dict[str, Listener],
        *,
        threads: int = 20,
        batch_cap: int = 64,
        name: str = "actormq-consume",
    ) -> None:
        self.hub = hub
        self.listeners = listeners
        self.threads = max(1, threads)
        self.batch_cap = max(1, batch_cap)
        self.pool = task_pool(hub.patched, self.threads, name)

    def deliver(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None:
        n = len(msgs)
        size = min(self.batch_cap, max(1, -(-n // self.threads)))
        for i in range(0, n, size):
            self.pool.submit(self._run, puller, generation, msgs[i : i + size])

    def deliver_ordered(
        self, puller: pykka.ActorRef[Any], generation: int, mq: MessageQueue, msgs: list[MessageExt]
    ) -> None:
        """Consume ``msgs`` in order in one task, stopping at the first failure."""
        self.pool.submit(self._run, puller, generation, msgs, True)

    def _run(
        self,
        puller: pykka.ActorRef[Any],
        generation: int,
        msgs: list[MessageExt],
        ordered: bool = False,
    ) -> None:
        done: list[int] = []
        retry: list[int] = []
        for msg in msgs:
            if ordered and retry:
                break
            reset_retry_topic(msg)
            listener = self.listeners.get(msg.topic) or self.listeners.get("*")
            try:
                if listener is None:
                    raise LookupError(f"no listener for topic {msg.topic!r}")
                outcome = listener(msg)
            except Exception:
                logger.exception("client: listener failed on {}; will redeliver", msg)
                outcome = ConsumeResult.RECONSUME_LATER
            if outcome in _SUCCESS:
                done.append(msg.queue_offset)
            else:
                retry.append(msg.queue_offset)
        try:
            # at once from a greenlet of a patched program's hub, else as a hub callback
            self.hub.run(_report, puller, Consumed(generation, done, retry))
        except Exception as exc:  # the hub stopped under us (shutdown)
            logger.debug("client: consume result dropped: {}", exc)

    def drain(self, timeout: float) -> bool:
        """Wait until the tasks submitted so far finished; False on timeout."""
        return self.pool.drain(timeout)

    def shutdown(self) -> None:
        self.pool.shutdown()
