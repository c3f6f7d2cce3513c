"""Flusher: makes the commit log durable (fsync) and says so.

Messages accepted:
- ``AwaitFlush(offset, completions)`` (from the writer: SYNC_FLUSH appends; in either mode a
  reconciling master's raw append and a topic's deletion marker): call
  ``flush_done(FLUSH_OK)`` on each completion once an fsync covers ``offset``;
  ``FLUSH_TIMEOUT`` when ``sync_flush_timeout_ms`` passes first (the reply becomes
  FLUSH_DISK_TIMEOUT: stored, durability unknown; a raw append answers not ok, "not fsynced:
  FLUSH_TIMEOUT"), in either flush mode, with a WARNING (at most one per ``RETRY_LOG_S``).
  Group commit: one fsync answers every waiter it covers, and every waiter that arrives
  while an fsync runs is covered by the next one.
- ``FlushTick``: expire waiters; ASYNC_FLUSH: flush every ``flush_interval_ms`` (so a waiter
  expires up to one interval past its deadline); SYNC_FLUSH: ticks every 50 ms at most.
- ``FlushDone(offset, error)``: internal, from the greenlet that ran the fsync.

Replies: through the completions; tells the Dispatcher ``Confirm(offset, "flush")`` after each
fsync (the confirmed offset under SYNC_FLUSH, the checkpoint's flushed offset in both modes):
after the acks, or before them (inline) when an ``AwaitFlush`` it releases says
``polls_first`` (its records wake a parked long poll), so the poll's response leaves first.

Owned state: the waiters (in offset order), the flushed offset, whether an fsync is running.
The fsync itself runs off the hub, waited for by a helper greenlet, so this actor keeps
expiring waiters while a slow disk stalls (R7): on the native fsync thread of
``runtime.store.fsyncer`` when the C accelerator is built and the files are plain OS files,
else in the hub's thread pool (``offload``).

Durability point: this is it. A failed fsync is never retried (the kernel may have dropped the
dirty pages — "fsyncgate"): every pending waiter gets FLUSH_FAILED (never PUT_OK), the writer is
told ``StoreFailed`` and this actor fails, which fail-stops the broker (R6). An fsync that never
ran because the process was out of descriptors (EMFILE/ENFILE opening the directory) is not a
failure: the next tick tries again, and SYNC_FLUSH waiters time out meanwhile as usual.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections import deque
from typing import Any

import gevent.event
import pykka
from gevent.hub import Waiter
from loguru import logger

from actors.broker.messages import AwaitFlush, Confirm, FlushDone, FlushTick, StoreFailed
from actors.broker.store_results import FlushStatus
from runtime import workers
from runtime.actor import GeventActor, offload, tell_now
from runtime.errors import StoreError
from runtime.store.context import StoreContext
from runtime.store.fsyncer import Fsyncer
from runtime.store.segments import FlushPlan

SWEEP_INTERVAL_S = 0.05
NO_DESCRIPTOR = frozenset({errno.EMFILE, errno.ENFILE})
"""Errors that mean an fsync never ran (no descriptor for the directory, or for the native
thread's duplicates): retried at the next tick, never a fail-stop."""
RETRY_LOG_S = 10.0


def _await_native(
    outcome: Waiter, target: int, me: pykka.ActorRef[Any], ended: gevent.event.Event
) -> None:
    err = outcome.get()
    ended.set()
    error = None if err == 0 else f"fsync failed: [Errno {err}] {os.strerror(err)}"
    _report(me, FlushDone(target, error))


def _report(me: pykka.ActorRef[Any], done: FlushDone) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        tell_now(me, done)  # inline when idle: a hop less per fsync


class Flusher(GeventActor):
    """See the module docstring."""

    fail_on_error = True

    def __init__(self, ctx: StoreContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.settings = ctx.settings
        # (offset, deadline, completions, polls_first)
        self._waiters: deque[tuple[int, float, list[Any], bool]] = deque()
        self._in_flight: gevent.event.Event | None = None  # set when the running fsync ends
        self._quiet_until = 0.0  # the next out-of-descriptors warning, not before
        self._timeouts_quiet_until = 0.0  # the next waiters-timed-out warning, not before
        self._plan: FlushPlan | None = None  # the running (or last) fsync's
        self._failed = False
        self._fsyncer: Fsyncer | None = None

    def on_start(self) -> None:
        self.log = self.ctx.require_open().log
        self.flushed = self.log.segments.flushed_offset
        self._fsyncer = Fsyncer.open()
        self._timeout = self.settings.sync_flush_timeout_ms / 1000.0
        if self.settings.sync_flush:
            self.send_every(min(SWEEP_INTERVAL_S, self._timeout / 4), FlushTick())
        else:
            self.send_every(self.settings.flush_interval_ms / 1000.0, FlushTick())

    def on_stop(self) -> None:
        self._join_in_flight()
        self._expire(all_=True)
        self._close_fsyncer()

    def on_failure(self, *_exc_info: Any) -> None:
        self._expire(all_=True, status=FlushStatus.FLUSH_FAILED)
        self._join_in_flight()
        self._close_fsyncer()

    def _close_fsyncer(self) -> None:
        fsyncer, self._fsyncer = self._fsyncer, None
        if fsyncer is not None:
            fsyncer.close()

    # -- messages ------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AwaitFlush):
            if self._failed or message.offset <= self.flushed:
                status = FlushStatus.FLUSH_FAILED if self._failed else FlushStatus.FLUSH_OK
                for c in message.completions:
                    c.flush_done(status)
            else:
                deadline = time.monotonic() + self._timeout
                self._waiters.append(
                    (message.offset, deadline, message.completions, message.polls_first)
                )
                self._start_flush()
            return None
        if isinstance(message, FlushTick):
            self._expire()  # (ASYNC_FLUSH too: a reconciling raw append waits for its fsync)
            self._start_flush()
            return None
        if isinstance(message, FlushDone):
            self._flush_done(message)
            return None
        return super().on_receive(message)

    # -- flushing ------------------------------------------------------------------------------

    def _start_flush(self) -> None:
        if self._in_flight is not None or self._failed:
            return
        plan = self.log.segments.prepare_flush()
        if plan is None:
            return
        self._in_flight = ended = gevent.event.Event()
        self._plan = plan
        fds = None if self._fsyncer is None else plan.fds()
        if self._fsyncer is None or fds is None:
            workers.submit(self._run, plan, self.actor_ref, ended)
            return
        # The native thread starts at once, while this greenlet finishes the writer's work; a
        # helper greenlet waits for the outcome, which the hub switches straight into.
        outcome = Waiter()
        try:
            self._fsyncer.start(fds, outcome.switch)
        except OSError as exc:
            if exc.errno in NO_DESCRIPTOR:  # the duplicates could not be made: not run
                ended.set()
                self._flush_done(FlushDone(plan.target, str(exc), retry=True))
                return
            outcome.switch(exc.errno or errno.EIO)
        workers.submit(_await_native, outcome, plan.target, self.actor_ref, ended)

    @staticmethod
    def _run(plan: FlushPlan, me: pykka.ActorRef[Any], ended: gevent.event.Event) -> None:
        error = None
        retry = False
        try:
            offload(plan.run)
        except OSError as exc:
            retry = exc.errno in NO_DESCRIPTOR  # the directory could not be opened: not run
            error = str(exc) if retry else f"fsync failed: {exc}"
        except Exception as exc:  # any failure of the fsync means not durable
            error = f"fsync failed: {exc!r}"
        finally:
            ended.set()
        _report(me, FlushDone(plan.target, error, retry))

    def _flush_done(self, msg: FlushDone) -> None:
        self._in_flight = None
        if msg.retry:
            if self._plan is not None:
                self.log.segments.flush_not_done(self._plan)  # its directory sync is due again
            now = time.monotonic()
            if now >= self._quiet_until:
                self._quiet_until = now + RETRY_LOG_S
                logger.warning(
                    "store {}: cannot flush yet, out of descriptors ({}): trying again at the "
                    "next tick (raise the open-files limit)",
                    self.settings.root,
                    msg.error,
                )
            return
        if msg.error is not None:
            self._fail_stop(msg.error)
            return
        self.log.segments.flushed_to(msg.offset)
        self.flushed = max(self.flushed, msg.offset)
        waiters = self._waiters
        released = []
        while waiters and waiters[0][0] <= self.flushed:
            released.append(waiters.popleft())
        polls_first = any(w[3] for w in released)
        if polls_first:  # as the writer orders it: a waiting long poll is answered first
            self._confirm(self.flushed, inline=True)
        for _offset, _deadline, completions, _polls_first in released:
            for c in completions:
                c.flush_done(FlushStatus.FLUSH_OK)
        if not polls_first:
            self._confirm(self.flushed)
        if waiters or (self.settings.sync_flush and self.log.write_offset > self.flushed):
            self._start_flush()

    def _fail_stop(self, reason: str) -> None:
        self._failed = True
        self.ctx.failed = reason
        logger.error("store {}: {}: fail-stop", self.settings.root, reason)
        self._expire(all_=True, status=FlushStatus.FLUSH_FAILED)
        writer = self.ctx.directory.get(self.ctx.names.writer)
        if writer is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                writer.tell(StoreFailed(reason))
        raise StoreError(self.settings.commitlog_dir, reason)

    def _expire(
        self, *, all_: bool = False, status: FlushStatus = FlushStatus.FLUSH_TIMEOUT
    ) -> None:
        now = time.monotonic()
        waiters = self._waiters
        expired = 0
        while waiters and (all_ or waiters[0][1] <= now):
            for c in waiters.popleft()[2]:
                c.flush_done(status)
            expired += 1
        if expired and not all_ and now >= self._timeouts_quiet_until:
            self._timeouts_quiet_until = now + RETRY_LOG_S
            logger.warning(
                "store {}: {} fsync wait(s) timed out after syncFlushTimeout ({} ms; answered "
                "{}): the disk is slow, the fsync goes on",
                self.settings.root,
                expired,
                self.settings.sync_flush_timeout_ms,
                status.value,
            )

    def _confirm(self, offset: int, *, inline: bool = False) -> None:
        ref = self.ctx.directory.get(self.ctx.names.dispatcher)
        if ref is not None:
            msg = Confirm(offset, "flush", flushed=True)
            with contextlib.suppress(pykka.ActorDeadError):
                if inline:
                    tell_now(ref, msg)
                else:
                    ref.tell(msg)

    def _join_in_flight(self) -> None:
        ended = self._in_flight
        if ended is not None:
            ended.wait(timeout=max(self._timeout, 1.0))
