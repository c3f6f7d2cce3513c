"""The request-reply half of ``Producer`` (a mixin; ``Producer`` supplies the sends):
``request`` sends a message and waits for the reply a consumer sends with ``reply``
(RocketMQ 4.6+'s ``DefaultMQProducer.request``; the parts both sides share, and the wire
details, are in ``actors.client.reply``).
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import gevent
import msgspec

from actors.client.errors import ClientStateError, RequestTimeoutError
from actors.client.hooks import CommunicationMode
from actors.client.message import Message, MessageExt, MessageQueue, SendResult
from actors.client.namespace import wire_name
from actors.client.outgoing import Outgoing
from actors.client.producer_port import ProducerPort
from actors.client.reply import (
    new_correlation_id,
    reply_message,
    reply_outgoing,
    request_properties,
)
from actors.client.request_async import PendingReply, ReplyCallback
from actors.client.selectors import ROUND_ROBIN, QueueSelector
from actors.client.send_hooks import HookedSend


class ProducerReply(ProducerPort):
    """Mixin of ``Producer`` (what it needs of ``Producer``: ``ProducerPort``)."""

    def request(
        self,
        msg: Message,
        timeout: float = 3.0,
        *,
        queue: MessageQueue | None = None,
        sharding_key: str | None = None,
        selector: QueueSelector | None = None,
    ) -> MessageExt:
        """Send ``msg`` as a request and wait for the reply a consumer sends with ``reply``
        (RocketMQ's ``DefaultMQProducer.request``). Raises the send's ClientError, or
        RequestTimeoutError when no reply came within ``timeout`` seconds (the request itself
        may still have been stored and consumed)."""
        hub = self._running_hub("request")
        selection = self._selection(msg, queue, sharding_key, selector)
        correlation = new_correlation_id()
        marks = request_properties(correlation, self.client_id, max(1, int(timeout * 1000)))

        def make_out() -> Outgoing:
            out = self._prepare(msg, sharding_key)
            return msgspec.structs.replace(out, properties=out.properties + marks)

        deadline = time.monotonic() + timeout
        waiter = hub.new_waiter()
        topic = wire_name(self.namespace, msg.topic)
        hub.call(self._expect_reply, topic, correlation, waiter, timeout=timeout + 5.0)
        try:
            left = max(deadline - time.monotonic(), 0.001)
            if self._send_hooks:  # the hooks see the request's send, not the wait for its reply
                self._send_sync_hooked(msg, make_out, selection, left, mq=queue)
            else:
                self._send_outgoing(make_out(), selection, left)
            return waiter.wait(max(deadline - time.monotonic(), 0.0), "request's reply")
        finally:
            hub.run(self._replies.forget, correlation)

    def request_async(
        self,
        msg: Message,
        callback: ReplyCallback | None = None,
        timeout: float = 3.0,
        *,
        queue: MessageQueue | None = None,
        sharding_key: str | None = None,
        selector: QueueSelector | None = None,
    ) -> concurrent.futures.Future[MessageExt]:
        """``request`` without waiting (RocketMQ's ``request(msg, RequestCallback, timeout)``):
        the returned future, and ``callback(reply, error)`` on the producer's callback thread,
        get the reply, the send's ClientError, or RequestTimeoutError when no reply came within
        ``timeout`` seconds. Send hooks see the request's send (its ``after`` when the send is
        answered, before the reply)."""
        hub = self._running_hub("request_async")
        selection = self._selection(msg, queue, sharding_key, selector)
        correlation = new_correlation_id()
        marks = request_properties(correlation, self.client_id, max(1, int(timeout * 1000)))
        hooked: HookedSend | None = None
        if self._send_hooks:
            out, hooked = self._prepare_hooked(msg, sharding_key, CommunicationMode.ASYNC, queue)
        else:
            out = self._prepare(msg, sharding_key)
        out = msgspec.structs.replace(out, properties=out.properties + marks)
        callbacks = self._callbacks
        assert callbacks is not None
        pending = PendingReply(callbacks, callback, self)
        topic = wire_name(self.namespace, msg.topic)

        def after(error: BaseException | None = None) -> None:  # the hooks, off the hub
            assert hooked is not None
            try:
                callbacks.submit(hooked.after, error)
            except RuntimeError:  # the callback thread is gone (shut down): here, then
                hooked.after(error)

        def sent(_result: Any, error: BaseException | None) -> None:  # the send's answer
            if hooked is not None:
                after()
            if error is not None:
                self._replies.forget(correlation)
                pending.set_error(error)

        def expired() -> None:
            self._replies.forget(correlation)
            pending.set_error(RequestTimeoutError("request's reply", timeout))

        def start() -> None:  # a greenlet on the hub: the route may have to be fetched first
            try:
                self._expect_reply(topic, correlation, pending)
                if self._state != "running":  # shut down while the route was fetched
                    self._replies.forget(correlation)
                    raise ClientStateError(f"request ({self.group})", self._state)
            except Exception as exc:  # a ClientError, mostly: no route, shut down
                if hooked is not None:
                    after(exc)
                pending.set_error(exc)
                return
            pending.timer = gevent.get_hub().loop.timer(timeout)
            pending.timer.start(expired)
            # sent as RocketMQ's request sends: asynchronously (its async retries)
            if hooked is None:
                self._begin(out, selection, timeout, sent, False, asynchronous=True)
            else:
                hooked.handed_over()
                observed = hooked.observe(sent)
                self._begin(out, selection, timeout, observed, False, hooked, asynchronous=True)

        hub.spawn(start)
        return pending.future

    def _expect_reply(self, topic: str, correlation: str, waiter: Any) -> None:
        instance = self._instance
        if instance is None or self._state != "running":
            raise ClientStateError(f"request ({self.group})", self._state)
        # Expected before the route is fetched: a shutdown meanwhile fails it (``fail_all``),
        # where a request_async waiting here stayed pending for good once the hub stopped.
        self._replies.expect(correlation, waiter)
        if topic not in instance.routes:
            # The broker that takes the reply pushes it over this client's connection, found
            # by its heartbeat: beat to the route's brokers first (as RocketMQ's client does).
            try:
                instance.fetch_route(topic, allow_default=True)
                instance.heartbeat()
            except BaseException:
                self._replies.forget(correlation)
                raise

    def reply(
        self,
        request: MessageExt,
        body: bytes | str,
        *,
        properties: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> SendResult:
        """Answer ``request`` (a message a consumer received, sent with ``request``): the
        broker pushes the reply to the waiting requester and stores it in
        ``<cluster>_REPLY_TOPIC``. Raises MessageInvalidError for a message that is not a
        request, and the send's ClientError when the requester is gone (the broker answers
        SYSTEM_ERROR "channel of <client> not found")."""
        self._running_hub("reply")
        msg = reply_message(request, body, properties)

        def make_out() -> Outgoing:
            return reply_outgoing(
                request,
                body,
                properties,
                max_size=self.max_message_size,
                compress_over=self.compress_over,
                message=msg,
                compressor=self.compressor,
            )

        if self._send_hooks:
            return self._send_sync_hooked(msg, make_out, ROUND_ROBIN, timeout)
        return self._send_outgoing(make_out(), ROUND_ROBIN, timeout)
