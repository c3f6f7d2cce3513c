"""The trace dispatcher: traced events in, trace messages out (RocketMQ's AsyncTraceDispatcher).

The trace hooks (``actors.client.trace_hooks``) hand each event (a ``TraceContext``) to
``append``, which only puts it in a bounded queue (1,024 events, RocketMQ's
traceContextQueue): when the queue is full the event is dropped and counted (``discarded``;
logged at most once a minute), so tracing never makes a send or a listener wait. A worker
thread of its own (a greenlet when gevent monkey-patched; never the client's hub) takes the
events, encodes them (``actors.client.trace_data``) and gathers them into one trace message,
sent when its records reach 118,000 characters (the 128,000-byte limit of the trace producer
less 10,000, as RocketMQ) or when its first record has waited 500 ms. The message goes with
``send_async`` of an internal producer (group ``_INNER_TRACE_PRODUCER-<group>-<kind>-<n>``,
send timeout 5 s, the host's name servers and ACL keys) to the trace topic, its KEYS the msgIds
(and keys) of the traced messages. A failed send is logged (at most once a minute) and
dropped: trace messages are never retried beyond the producer's own retries.

``shutdown`` sends what is queued and waits for the sends in flight, all within
``flush_timeout`` (2 s); what is left then is dropped (logged), and the internal producer
shuts down.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import queue
import threading
import time
from typing import Any

from loguru import logger

from actors.client.message import Message
from actors.client.trace_data import (
    GROUP_NAME_PREFIX,
    RMQ_SYS_TRACE_TOPIC,
    TraceContext,
    TraceTransfer,
    encode,
)

QUEUE_SIZE = 1024
"""Events waiting to be encoded (RocketMQ's traceContextQueue capacity)."""
MAX_MSG_SIZE = 128_000
"""The internal producer's message size limit (RocketMQ's trace producer maxMessageSize)."""
BATCH_CHARS = MAX_MSG_SIZE - 10_000
"""A trace message is sent once its records reach this many characters."""
POLL_INTERVAL = 0.1
"""How long the worker waits for an event before it looks at the clock (pollingTimeMil)."""
WAIT_THRESHOLD = 0.5
"""A trace message is sent once its first record waited this long (waitTimeThresholdMil)."""
SEND_TIMEOUT = 5.0
FLUSH_TIMEOUT = 2.0
LOG_INTERVAL = 60.0

_counter = itertools.count(1)


class _Quiet:
    """A warning at most once per ``LOG_INTERVAL`` (with how many were not logged)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = -LOG_INTERVAL
        self._quiet = 0

    def warn(self, text: str, *args: Any, exc: BaseException | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < LOG_INTERVAL:
                self._quiet += 1
                return
            self._last, quiet, self._quiet = now, self._quiet, 0
        more = f" ({quiet} more not logged)" if quiet else ""
        logger.opt(exception=exc).warning(text + more, *args)


class TraceDispatcher:
    """Batches trace events into trace messages and sends them; see the module docstring.
    ``append`` may be called from any thread; ``start`` and ``shutdown`` once each."""

    def __init__(
        self,
        group: str,
        kind: str,
        *,
        producer_factory: Any,
        trace_topic: str | None = None,
        flush_timeout: float = FLUSH_TIMEOUT,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.group = group
        self.trace_topic = trace_topic or RMQ_SYS_TRACE_TOPIC
        self.producer_group = f"{GROUP_NAME_PREFIX}-{group}-{kind}-{next(_counter)}"
        self.flush_timeout = flush_timeout
        self.discarded = 0
        """Events dropped because the queue was full (or left at shutdown)."""
        self.sent = 0
        """Trace messages the broker stored."""
        self.failed = 0
        """Trace messages that could not be sent."""
        self._factory = producer_factory
        self._producer: Any = None
        self._queue: queue.Queue[TraceContext] = queue.Queue(queue_size)
        self._stopping = threading.Event()
        self._deadline = 0.0
        self._worker: threading.Thread | None = None
        self._in_flight: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._full_log = _Quiet()
        self._send_log = _Quiet()

    # -- the hooks' side ------------------------------------------------------------------------

    def append(self, ctx: TraceContext) -> bool:
        """Queue ``ctx`` for sending; False (and counted in ``discarded``) when the queue is
        full or the dispatcher stopped. Never blocks, never raises."""
        if self._stopping.is_set():
            return False
        try:
            self._queue.put_nowait(ctx)
        except queue.Full:
            with self._lock:
                self.discarded += 1
                dropped = self.discarded
            self._full_log.warn(
                "client: trace buffer of {} full: {} trace events dropped", self.group, dropped
            )
            return False
        return True

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> TraceDispatcher:
        """Start the internal producer and the worker (the caller's thread)."""
        self._producer = self._factory(self.producer_group).start()
        self._worker = threading.Thread(
            target=self._run, name=f"actormq-trace-{self.group}", daemon=True
        )
        self._worker.start()
        return self

    def shutdown(self) -> None:
        """Send what is queued, wait for the sends in flight (within ``flush_timeout``), stop
        the internal producer. Never raises."""
        if self._stopping.is_set():
            return
        self._deadline = time.monotonic() + self.flush_timeout
        self._stopping.set()
        worker = self._worker
        if worker is not None:
            worker.join(self.flush_timeout + 1.0)
        producer = self._producer
        if producer is not None:
            try:
                producer.shutdown()
            except Exception as exc:
                logger.opt(exception=exc).warning("client: trace producer shutdown failed")

    # -- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        batch: list[TraceTransfer] = []
        chars = 0
        first = 0.0
        while True:
            stopping = self._stopping.is_set()
            try:
                ctx = self._queue.get_nowait() if stopping else self._queue.get(True, POLL_INTERVAL)
            except queue.Empty:
                ctx = None
            if ctx is not None and (transfer := self._encode(ctx)) is not None:
                batch.append(transfer)
                chars += len(transfer.data)
                first = first or time.monotonic()
            now = time.monotonic()
            drained = stopping and ctx is None
            if batch and (chars >= BATCH_CHARS or now - first >= WAIT_THRESHOLD or drained):
                self._send(batch)
                batch, chars, first = [], 0, 0.0
            if drained:
                break
            if stopping and now > self._deadline:
                self._give_up(len(batch))
                return
        self._wait_in_flight()

    def _encode(self, ctx: TraceContext) -> TraceTransfer | None:
        try:
            return encode(ctx)
        except Exception as exc:  # a context a hook filled wrongly: drop it
            self._send_log.warn("client: trace event {!r} does not encode", ctx, exc=exc)
            return None

    def _send(self, batch: list[TraceTransfer]) -> None:
        """One trace message of ``batch``'s records, sent asynchronously."""
        keys: dict[str, None] = {}
        for transfer in batch:
            keys.update(dict.fromkeys(transfer.keys))
        data = "".join(t.data for t in batch)
        msg = Message(self.trace_topic, data.encode(), keys=list(keys))
        try:
            future = self._producer.send_async(msg, timeout=SEND_TIMEOUT)
        except Exception as exc:
            self._failed(exc)
            return
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._in_flight.discard(future)
        exc = future.exception()
        if exc is None:
            with self._lock:
                self.sent += 1
        else:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
        self._send_log.warn(
            "client: trace message of {} to {} not sent: {}", self.group, self.trace_topic, exc
        )

    def _wait_in_flight(self) -> None:
        with self._lock:
            pending = set(self._in_flight)
        left = self._deadline - time.monotonic()
        if pending and left > 0:
            concurrent.futures.wait(pending, timeout=left)
        with self._lock:
            unfinished = len(self._in_flight)
        if unfinished:
            logger.warning(
                "client: {} trace messages of {} still unanswered at shutdown",
                unfinished,
                self.group,
            )

    def _give_up(self, batched: int) -> None:
        left = self._queue.qsize() + batched
        with self._lock:
            self.discarded += left
        logger.warning(
            "client: {} trace events of {} not sent: shutdown took longer than {}s",
            left,
            self.group,
            self.flush_timeout,
        )
