"""What the ``Producer`` mixins (``producer_hooks``, ``producer_async``, ``producer_reply``)
need of ``Producer`` itself: declared once here, implemented in ``actors.client.producer``
(``_hooked`` and ``_send_sync_hooked`` in ``actors.client.producer_hooks``)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from typing import Any

from actors.client.async_window import AsyncWindow
from actors.client.auto_batch import Accumulator, Entry
from actors.client.compression import Compressor
from actors.client.config import ClientConfig
from actors.client.hooks import CommunicationMode, MessageType, SendHook
from actors.client.hub import ClientHub
from actors.client.instance import ClientInstance
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.namespace import Namespace
from actors.client.outgoing import Outgoing
from actors.client.reply import ReplyWaiters
from actors.client.selectors import QueueSelector, Selection
from actors.client.send_hooks import HookedSend
from actors.client.sender import Sender


class ProducerPort:
    """The base of every ``Producer`` mixin; ``Producer`` (or a mixin before this in its MRO)
    overrides each of these."""

    group: str
    namespace: Namespace | None
    config: ClientConfig
    send_timeout: float
    compress_over: int
    compressor: Compressor
    max_message_size: int
    async_window: AsyncWindow | None
    _hub: ClientHub | None
    _instance: ClientInstance | None
    _sender: Sender | None
    _callbacks: concurrent.futures.Executor | None
    _replies: ReplyWaiters
    _state: str
    _lock: threading.Lock
    _send_hooks: tuple[SendHook, ...]
    _own_hub: bool
    trace_topic: str | None
    trace_dispatcher: Any
    _accumulator: Accumulator | None
    _batch_bounds: tuple[float, int, int]

    @property
    def client_id(self) -> str:
        raise NotImplementedError

    def _flush_before_shutdown(self, timeout: float) -> None:
        """Send what is held and wait for the async sends in flight (``producer_async``)."""
        raise NotImplementedError

    def _in_own_callback(self) -> bool:
        """Whether the caller completes one of this producer's async sends or requests
        (``producer_async``)."""
        raise NotImplementedError

    def _settle_after_stop(self, stop: Callable[[], None], limit: float = 1.0) -> None:
        """Stop, then let the sends the closed connections failed complete
        (``producer_async``)."""
        raise NotImplementedError

    def _running_hub(self, what: str) -> ClientHub:
        """The hub, or ``ClientStateError`` when the producer is not running."""
        raise NotImplementedError

    def _selection(
        self,
        msg: Message | None,
        queue: MessageQueue | None,
        sharding_key: str | None,
        selector: QueueSelector | None,
    ) -> Selection:
        """How to pick the queue: at most one of ``queue``, ``sharding_key``, ``selector``."""
        raise NotImplementedError

    def _prepare(self, msg: Message, sharding_key: str | None) -> Outgoing:
        """``msg`` validated and encoded (in the caller's thread)."""
        raise NotImplementedError

    def _held(
        self, msg: Message, selection: Selection, *, asynchronous: bool = False
    ) -> Entry | None:
        """With ``auto_batch``, ``msg`` encoded to be held for a batch (``asynchronous``: a
        ``send_async``'s); None: sent alone."""
        raise NotImplementedError

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
        """Start a send on the hub, alone or held for a batch (``asynchronous``: a
        ``send_async``'s)."""
        raise NotImplementedError

    def _send_outgoing(
        self,
        out: Outgoing | Entry,
        selection: Selection,
        timeout: float | None,
        hooked: HookedSend | None = None,
        what: str = "send",
    ) -> SendResult:
        """A sync send of a prepared message (with retries, within ``timeout``)."""
        raise NotImplementedError

    def _begin(
        self,
        out: Outgoing,
        selection: Selection,
        timeout: float,
        done: Any,
        oneway: bool,
        hooked: HookedSend | None = None,
        *,
        asynchronous: bool = False,
    ) -> None:
        """On the hub: start a send (``hooked``: one with hooks; ``asynchronous``: a
        ``send_async``'s)."""
        raise NotImplementedError

    def _hooked(
        self,
        message: Message | Sequence[Message],
        mode: CommunicationMode,
        mq: MessageQueue | None = None,
        msg_type: MessageType | None = None,
    ) -> HookedSend:
        """A send with hooks, their ``before`` run (in the caller's thread)."""
        raise NotImplementedError

    def _prepare_hooked(
        self,
        msg: Message,
        sharding_key: str | None,
        mode: CommunicationMode,
        queue: MessageQueue | None,
    ) -> tuple[Outgoing, HookedSend]:
        """``before``, then the prepared message (``ProducerHooks``)."""
        raise NotImplementedError

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
        """Hand a send with hooks to the hub (``ProducerHooks``)."""
        raise NotImplementedError

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
        """A sync send with hooks: ``before``, ``make_out()``, the send, ``after``."""
        raise NotImplementedError
