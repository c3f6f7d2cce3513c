"""The batch sends of ``Producer`` (a mixin; ``Producer`` supplies the selection, the hub and
the sync path): ``send_batch``, the user's own batch, and auto batching's two steps, ``_held``
(the caller's thread: a message encoded to wait for company) and ``_dispatch`` (a send started
on the hub, alone or held: ``actors.client.auto_batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors.client.auto_batch import Entry
from actors.client.hub import ClientHub
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.outgoing import Outgoing, prepare_batch
from actors.client.producer_port import ProducerPort
from actors.client.selectors import QueueSelector, Selection


class ProducerBatch(ProducerPort):
    """Mixin of ``Producer`` (what it needs of ``Producer``: ``ProducerPort``)."""

    def send_batch(
        self,
        msgs: Sequence[Message],
        *,
        queue: MessageQueue | None = None,
        sharding_key: str | None = None,
        selector: QueueSelector | None = None,
        timeout: float | None = None,
    ) -> SendResult:
        """Send messages of one topic as one SEND_BATCH_MESSAGE; each is stored with its own
        queue offset (the result names the first; ``msg_id`` joins the ids with commas)."""
        self._running_hub("send_batch")
        first = msgs[0] if msgs else None
        selection = self._selection(first, queue, sharding_key, selector)
        if self._send_hooks:
            return self._send_sync_hooked(
                list(msgs),
                lambda: prepare_batch(msgs, max_size=self.max_message_size),
                selection,
                timeout,
                mq=queue,
                what="send_batch",
            )
        out = prepare_batch(msgs, max_size=self.max_message_size)
        return self._send_outgoing(out, selection, timeout, None, "send_batch")

    def _held(
        self, msg: Message, selection: Selection, *, asynchronous: bool = False
    ) -> Entry | None:
        """With ``auto_batch``, ``msg`` encoded to wait for company (``actors.client.auto_batch``;
        ``asynchronous``: a ``send_async``'s, held with those only), or None: it is sent alone."""
        accumulator = self._accumulator
        return None if accumulator is None else accumulator.entry(msg, selection, asynchronous)

    def _dispatch(
        self,
        hub: ClientHub,
        out: Outgoing | Entry,
        selection: Selection,
        timeout: float,
        done: Any,
        *,
        asynchronous: bool = False,
    ) -> None:
        """Start a send on the hub: alone (``asynchronous``: a ``send_async``'s), or held for
        a batch (an ``Entry``)."""
        if isinstance(out, Entry):
            assert self._accumulator is not None
            hub.run(self._accumulator.add, out, timeout, done)
        elif asynchronous:
            hub.run(self._begin_async, out, selection, timeout, done)
        else:
            hub.run(self._begin, out, selection, timeout, done, False)

    def _begin_async(self, out: Outgoing, selection: Selection, timeout: float, done: Any) -> None:
        self._begin(out, selection, timeout, done, False, asynchronous=True)
