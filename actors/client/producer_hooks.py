"""The send-hook half of ``Producer`` (a mixin; ``Producer`` supplies the sends): registering
send hooks (RocketMQ's ``registerSendMessageHook``, ``actors.client.hooks``) and the plumbing
a send with hooks takes in the caller's thread (``actors.client.send_hooks`` for which thread
runs what). A producer without hooks never comes here: each send checks ``_send_hooks`` once.
With ``enable_msg_trace`` the producer's start registers the trace hook here
(``actors.client.trace``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from actors.client.hooks import CommunicationMode, MessageType, SendHook, added, checked, removed
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.outgoing import Outgoing
from actors.client.producer_port import ProducerPort
from actors.client.selectors import Selection
from actors.client.send_hooks import HookedSend
from actors.client.trace import PRODUCE, start_dispatcher
from actors.client.trace_hooks import SendTraceHook


class ProducerHooks(ProducerPort):
    """Mixin of ``Producer`` (what it needs of ``Producer``: ``ProducerPort``)."""

    def register_send_hook(self, hook: SendHook) -> None:
        """Call ``hook.before(ctx)`` and ``hook.after(ctx)`` around every send from now on
        (RocketMQ's ``registerSendMessageHook``; ``actors.client.hooks``, and
        ``actors.client.send_hooks`` for the threads they run on). Any time, any thread."""
        checked(hook, "send")
        with self._lock:
            self._send_hooks = added(self._send_hooks, hook)

    def unregister_send_hook(self, hook: SendHook) -> None:
        """Stop calling ``hook`` (sends already started still call its ``after``)."""
        with self._lock:
            self._send_hooks = removed(self._send_hooks, hook)

    def _start_msg_trace(self) -> None:
        """``enable_msg_trace``: start the trace dispatcher and register its send hook (in
        ``start``, which holds ``_lock``; ``actors.client.trace``)."""
        hub = None if self._own_hub else self._hub
        dispatcher = start_dispatcher(self.group, PRODUCE, self.trace_topic, self.config, hub)
        if dispatcher is not None:
            self.trace_dispatcher = dispatcher
            self._send_hooks = added(self._send_hooks, SendTraceHook(dispatcher))

    def _hooked(
        self,
        message: Message | Sequence[Message],
        mode: CommunicationMode,
        mq: MessageQueue | None = None,
        msg_type: MessageType | None = None,
    ) -> HookedSend:
        """A send with hooks, their ``before`` run (in the caller's thread)."""
        hooked = HookedSend(
            self._send_hooks,
            self.group,
            message,
            mode,
            self.config.client_ip,
            mq=mq,
            msg_type=msg_type,
            namespace=self.namespace,
        )
        hooked.before()
        return hooked

    def _prepare_hooked(
        self,
        msg: Message,
        sharding_key: str | None,
        mode: CommunicationMode,
        queue: MessageQueue | None,
    ) -> tuple[Outgoing, HookedSend]:
        """``before``, then the message prepared (what ``before`` added to it is sent); a
        message refused then runs ``after`` with that error, which is raised."""
        hooked = self._hooked(msg, mode, queue)
        try:
            return self._prepare(msg, sharding_key), hooked
        except BaseException as exc:
            hooked.after(exc)
            raise

    def _run_hooked(
        self,
        hub: Any,
        out: Outgoing,
        selection: Selection,
        timeout: float,
        done: Any,
        oneway: bool,
        hooked: HookedSend,
        *,
        asynchronous: bool = False,
    ) -> None:
        """Hand a send with hooks to the hub (its outcome recorded there for ``after``;
        ``asynchronous``: a ``send_async``'s)."""
        hooked.handed_over()
        observed = hooked.observe(done)
        if asynchronous:
            hub.run(self._begin_hooked_async, out, selection, timeout, observed, hooked)
        else:
            hub.run(self._begin, out, selection, timeout, observed, oneway, hooked)

    def _begin_hooked_async(
        self, out: Outgoing, selection: Selection, timeout: float, done: Any, hooked: HookedSend
    ) -> None:
        self._begin(out, selection, timeout, done, False, hooked, asynchronous=True)

    def _send_sync_hooked(
        self,
        message: Message | Sequence[Message],
        make_out: Callable[[], Outgoing],
        selection: Selection,
        timeout: float | None,
        *,
        mq: MessageQueue | None = None,
        msg_type: MessageType | None = None,
        what: str = "send",
    ) -> SendResult:
        """A sync send with hooks: ``before``, then ``make_out()`` (so what ``before`` added to
        the message is sent), the send, ``after``; all but the send in the caller's thread."""
        hooked = self._hooked(message, CommunicationMode.SYNC, mq, msg_type)
        try:
            result = self._send_outgoing(make_out(), selection, timeout, hooked, what)
        except BaseException as exc:
            hooked.after(exc)
            raise
        hooked.after()
        return result
