"""The sends of ``Producer`` that do not wait for the broker's answer (a mixin; ``Producer``
supplies the selection, the encoding and the hub): ``send_async``, whose future and
``callback`` complete on the producer's callback thread, bounded by its ``AsyncWindow``
(``actors.client.async_window``), and ``send_oneway``, which returns once the request is
written.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from typing import Any

import gevent
from loguru import logger

from actors.client import completing
from actors.client.async_window import AsyncWindow
from actors.client.auto_batch import Entry
from actors.client.errors import ClientError, ClientStateError
from actors.client.hooks import CommunicationMode
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.outgoing import Outgoing
from actors.client.producer_port import ProducerPort
from actors.client.selectors import QueueSelector
from actors.client.send_hooks import HookedSend
from runtime import workers

SendCallback = Callable[["SendResult | None", "BaseException | None"], None]

MIN_STOP_S = 1.0
"""What a ``shutdown`` leaves for unregistering from the brokers, however long its flush took."""


class ProducerAsync(ProducerPort):
    """Mixin of ``Producer`` (what it needs of ``Producer``: ``ProducerPort``)."""

    def send_async(
        self,
        msg: Message,
        callback: SendCallback | None = None,
        *,
        queue: MessageQueue | None = None,
        sharding_key: str | None = None,
        selector: QueueSelector | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[SendResult]:
        """Send without waiting. The returned future gets the SendResult or the error; the
        optional ``callback(result, error)`` runs on the producer's callback thread (a greenlet
        of its own in a monkey-patched program), never on the hub.

        Back-pressure: while ``max_async_sends`` sends (128) or ``max_async_bytes`` of bodies
        (32 MiB) wait for their answers, this waits for room, up to ``timeout`` (the send
        timeout); then the future fails with ``ClientError`` (nothing sent). The wait is part
        of the send's timeout, as in RocketMQ (its semaphore is acquired within the timeout,
        and the send gets what is left): the send has ``timeout`` less the wait, so it fails
        within ``timeout`` of this call."""
        begun = time.monotonic()
        hub = self._running_hub("send_async")
        selection = self._selection(msg, queue, sharding_key, selector)
        hooked: HookedSend | None = None
        if self._send_hooks:
            out, hooked = self._prepare_hooked(msg, sharding_key, CommunicationMode.ASYNC, queue)
        else:
            held = self._held(msg, selection, asynchronous=True)
            out = held or self._prepare(msg, sharding_key)
        timeout = self.send_timeout if timeout is None else timeout
        future: concurrent.futures.Future[SendResult] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        callbacks = self._callbacks
        window = self.async_window
        assert callbacks is not None and window is not None
        size = out.size if isinstance(out, Entry) else len(out.body)
        on_full = None if self._accumulator is None else self._send_held_now
        entered = window.enter(size, max(0.0, timeout - (time.monotonic() - begun)), on_full)
        left = timeout - (time.monotonic() - begun)
        if entered and left <= 0:  # room came too late: nothing of the timeout is left
            window.leave(size)
            window.finished()
            entered = False
        if not entered:
            error = ClientError(
                f"send_async ({self.group}): no room for {timeout:g}s: {window.sends} sends, "
                f"{window.bytes} bytes in flight (max_async_sends {window.max_sends}, "
                f"max_async_bytes {window.max_bytes})"
            )
            if hooked is not None:  # after, then the future and the callback: as any outcome
                callbacks.submit(_refused, hooked, future, callback, error)
                return future
            future.set_exception(error)
            if callback is not None:
                callbacks.submit(callback, None, error)
            return future

        send = _AsyncSend(self, hooked, future, callback, size, window, callbacks, hub.patched)
        done = send.done
        if hooked is None:
            self._dispatch(hub, out, selection, left, done, asynchronous=True)
        else:
            assert isinstance(out, Outgoing)
            self._run_hooked(hub, out, selection, left, done, False, hooked, asynchronous=True)
        return future

    def flush(self, timeout: float | None = None) -> bool:
        """Kafka's ``flush``: send what ``auto_batch`` holds now, then wait until every
        ``send_async`` in flight has its answer and its future and callback have completed
        (sends started meanwhile, by other threads or by callbacks, are waited for too). True
        when all had within ``timeout`` seconds (None: no limit; each send still ends within
        its send timeout). Not from a send or request callback: it would wait for itself
        (``ClientError``)."""
        hub = self._running_hub("flush")
        if self._in_own_callback():
            raise ClientError(f"flush ({self.group}): called from its own send or request callback")
        accumulator = self._accumulator
        if accumulator is not None:
            hub.call(accumulator.send_all, timeout=self.config.request_timeout, what="flush")
        window = self.async_window
        return window is None or window.wait_finished(timeout)

    def _flush_before_shutdown(self, timeout: float) -> None:
        """``shutdown``'s first step: what auto batching holds is sent, and the async sends
        in flight are waited for up to ``timeout``; those still unanswered then fail when the
        connections close. From a send callback nothing is waited for: the callbacks of the
        others run on the same thread, after this one."""
        hub = self._hub
        if hub is None:
            return
        accumulator = self._accumulator
        if self._in_own_callback():  # what it would wait for needs this thread: send, go on
            if accumulator is not None:
                hub.call(accumulator.send_all, timeout=timeout, what="flush")
            return
        if accumulator is not None:
            hub.call(accumulator.drain, timeout, timeout=timeout + 1, what="flush")
        window = self.async_window
        if window is not None and not window.wait_finished(timeout):
            logger.warning(
                "client: producer {}: {} async sends still unanswered after {:g}s of shutdown; "
                "they fail (the broker may have stored them)",
                self.group,
                window.unfinished,
                timeout,
            )

    def _send_held_now(self) -> None:
        """The async window is full: what auto batching holds goes now (any thread)."""
        accumulator, hub = self._accumulator, self._hub
        if accumulator is not None and hub is not None:
            with contextlib.suppress(ClientError):
                hub.post(accumulator.send_all)

    def _in_own_callback(self) -> bool:
        """Whether the caller is completing one of this producer's async sends or requests
        (their callbacks, their futures')."""
        return completing.running_for(self)

    def _stop_on_hub(self, limit: float) -> None:
        """``shutdown``'s second step, on the hub: requests waiting for replies fail, then
        UNREGISTER_CLIENT to every broker (waited for up to ``limit``), then the stop."""
        instance = self._instance
        if instance is None:
            return
        self._replies.fail_all(ClientStateError(f"request ({self.group})", "shut down"))
        instance.unregister(timeout=limit)
        self._settle_after_stop(instance.stop, min(limit, 1.0))

    def _settle_after_stop(self, stop: Callable[[], None], limit: float = 1.0) -> None:
        """On the hub: ``stop`` the client (its connections close), then let the sends that
        failed complete (the failures reach them through hub callbacks, which a hub released
        next would never run: an async send's future would stay pending for good, a sync
        sender would wait out its timeout), for up to ``limit`` seconds. A send failing now
        ends at once ("client is stopping"), without retrying."""
        sender = self._sender
        if sender is not None:
            sender.stopped = True
        stop()
        if sender is not None:  # nothing answers their waits now
            sender.fail_waiting(ClientStateError(f"send ({self.group})", "stopping"))
        deadline = time.monotonic() + limit
        while sender is not None and sender.in_flight and time.monotonic() < deadline:
            gevent.sleep(0.001)

    def send_oneway(
        self,
        msg: Message,
        *,
        queue: MessageQueue | None = None,
        sharding_key: str | None = None,
        selector: QueueSelector | None = None,
    ) -> None:
        """Send without any acknowledgement; returns once the request is written."""
        hub = self._running_hub("send_oneway")
        selection = self._selection(msg, queue, sharding_key, selector)
        hooked: HookedSend | None = None
        if self._send_hooks:
            out, hooked = self._prepare_hooked(msg, sharding_key, CommunicationMode.ONEWAY, queue)
        else:
            out = self._prepare(msg, sharding_key)
        waiter = hub.new_waiter()

        def done(_result: Any, error: BaseException | None) -> None:
            if error is not None:
                waiter.set_error(error)
            else:
                waiter.set(None)

        if hooked is None:
            hub.run(self._begin, out, selection, self.send_timeout, done, True)
            waiter.wait(self.send_timeout + 1.0, "send_oneway")
            return
        self._run_hooked(hub, out, selection, self.send_timeout, done, True, hooked)
        try:
            waiter.wait(self.send_timeout + 1.0, "send_oneway")
        except BaseException as exc:
            hooked.after(exc)
            raise
        hooked.after()


def _refused(
    hooked: HookedSend,
    future: concurrent.futures.Future[SendResult],
    callback: SendCallback | None,
    error: BaseException,
) -> None:
    """An async send with hooks refused for want of room (the callback thread): ``after``,
    then the future and the callback, in the order of any other outcome."""
    hooked.after(error)
    future.set_exception(error)
    if callback is not None:
        callback(None, error)


class _AsyncSend:
    """One ``send_async``'s way to its future and callback: one object, where three closures
    over its variables were ~16 objects for the collector to walk per send in flight."""

    __slots__ = (
        "callback",
        "callbacks",
        "future",
        "hooked",
        "patched",
        "producer",
        "size",
        "window",
    )

    def __init__(
        self,
        producer: ProducerAsync,
        hooked: HookedSend | None,
        future: concurrent.futures.Future[SendResult],
        callback: SendCallback | None,
        size: int,
        window: AsyncWindow,
        callbacks: Any,
        patched: bool,
    ) -> None:
        self.producer = producer
        self.hooked = hooked
        self.future = future
        self.callback = callback
        self.size = size
        self.patched = patched
        self.window = window
        self.callbacks = callbacks  # the producer's callback executor

    def done(self, result: Any, error: BaseException | None) -> None:
        """The send's outcome, on the hub (a hub callback, which must not block)."""
        if self.patched:
            # A patched program: the pool's locks (and the window's) are gevent locks, so
            # hand over through a greenlet.
            workers.submit(self._leave_and_complete, result, error)
            return
        # The hub's own thread: the window's lock is only ever held for a moment. Left here,
        # not on the callback thread, which a callback sending again may be holding in
        # ``enter`` while the window is full.
        self.window.leave(self.size)
        try:
            self.callbacks.submit(self._complete, result, error)
        except RuntimeError:  # the executor shut down: complete here
            self._complete(result, error)

    def _leave_and_complete(self, result: Any, error: BaseException | None) -> None:
        self.window.leave(self.size)
        self._complete(result, error)

    def _complete(self, result: Any, error: BaseException | None) -> None:
        previous = completing.enter(self.producer)
        try:
            if self.hooked is not None:
                self.hooked.after()
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)
            if self.callback is not None:
                self.callback(result, error)
        finally:
            completing.leave(previous)
            self.window.finished()
