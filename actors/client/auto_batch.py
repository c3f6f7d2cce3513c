"""A producer's auto batching (RocketMQ 5's ``autoBatch``, its ``ProduceAccumulator``): sync and
async sends of small messages to one topic held for up to ``batch_max_delay`` and sent together
as one SEND_BATCH_MESSAGE, each caller getting its own ``SendResult``.

``Accumulator.entry`` runs in the caller's thread: it decides whether a send may wait for
company and encodes it as a batch entry (validated as ``prepare`` would; its UNIQ_KEY is its
``msg_id``). ``Accumulator.add`` runs on the client hub, as every send does: entries of one
topic, explicit queue (or none: the default selector picks one for the batch),
``wait_store_ok`` and kind (sync ``send`` or ``send_async``) go into one batch, sent when it
reaches ``batch_max_bytes`` or ``batch_max_delay`` after its first entry, or, before it would
pass ``max_message_size``, at once. Sync and async sends never share a batch (RocketMQ's
syncSendBatchs and asyncSendBatchs): a batch of sync sends is sent as ``send_batch`` sends
(``retries``, retryAnotherBrokerWhenNotStoreOK), one of async sends as an async send
(``async_retries`` on a connection failure or a timeout only, its answer its outcome). The send
timeout starts when the batch is sent. Its answer is split per message: each gets its own
``msg_id``, ``offset_msg_id`` and ``queue_offset`` (the batch's first + its index), a failure is
every member's.

Not held, sent as before: messages with a delay or due time, to a retry topic, of
``batch_max_bytes`` or more (they would go alone anyway, and a single send compresses), sends
with a selector or a sharding key, oneway sends, and every send while send hooks (message
traces) are registered; nor any while ``total_batch_max_bytes`` of bodies are held.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import gevent
import gevent.event
import msgspec

from actors.client.errors import ClientError, MessageTooLargeError
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.msgid import new_message_id
from actors.client.outgoing import Outgoing, batch_entry, check_topic, joined_batch
from actors.client.selectors import Selection
from runtime.remoting.codes import RETRY_PREFIX

Done = Callable[[Any, "BaseException | None"], None]


class Begin(Protocol):
    """``Producer._begin``: start a send on the hub."""

    def __call__(
        self,
        out: Outgoing,
        selection: Selection,
        timeout: float,
        done: Done,
        oneway: bool,
        hooked: Any = None,
        *,
        asynchronous: bool = False,
    ) -> None: ...


BATCH_MAX_DELAY = 0.01
"""Seconds a batch waits for more after its first message (RocketMQ's batchMaxDelayMs, 10)."""
BATCH_MAX_BYTES = 32 * 1024
"""Bodies that fill a batch (RocketMQ's batchMaxBytes, 32 KiB)."""
TOTAL_BATCH_MAX_BYTES = 32 * 1024 * 1024
"""Bodies all batches may hold at once (RocketMQ's totalBatchMaxBytes, 32 MiB)."""


class BatchKey(NamedTuple):
    topic: str
    queue: MessageQueue | None
    wait_store_ok: bool
    asynchronous: bool
    """Entries of ``send_async`` calls: the batch goes as an async send."""


class Entry(NamedTuple):
    """One held send: its batch, its encoded entry, its UNIQ_KEY, its body's size."""

    key: BatchKey
    data: bytes
    msg_id: str
    size: int


class _Batch:
    __slots__ = ("bytes", "dones", "entries", "ids", "size", "timeout", "timer")

    def __init__(self, timeout: float) -> None:
        self.entries: list[bytes] = []
        self.ids: list[str] = []
        self.dones: list[Done] = []
        self.size = 0  # bodies
        self.bytes = 0  # encoded entries
        self.timeout = timeout
        self.timer: Any = None


class Accumulator:
    """One producer's held sends (see the module docstring). ``begin`` starts a send on the hub
    (``Producer._begin``)."""

    def __init__(
        self,
        begin: Begin,
        *,
        max_delay: float = BATCH_MAX_DELAY,
        max_bytes: int = BATCH_MAX_BYTES,
        total_max_bytes: int = TOTAL_BATCH_MAX_BYTES,
        max_message_size: int,
    ) -> None:
        self.begin = begin
        self.max_delay = max_delay
        self.max_bytes = max_bytes
        self.total_max_bytes = total_max_bytes
        self.max_message_size = max_message_size
        self.held = 0
        """Body bytes held in batches now (read from callers' threads: a hint, as RocketMQ's)."""
        self._batches: dict[BatchKey, _Batch] = {}
        self._sending = 0
        self._answered = gevent.event.Event()
        self._answered.set()

    # -- the caller's thread -----------------------------------------------------------------

    def entry(self, msg: Message, selection: Selection, asynchronous: bool) -> Entry | None:
        """``msg`` encoded to be held (``asynchronous``: a ``send_async``'s), or None when it is
        to be sent alone (see the module docstring). Raises MessageInvalidError /
        MessageTooLargeError as a send would."""
        if selection.selector is not None or not isinstance(msg, Message):
            return None
        if msg.delay_level or msg.deliver_at_ms or msg.delay_ms:
            return None
        body = msg.body if msg.body.__class__ is bytes else msg.body_bytes()
        size = len(body)
        if size >= self.max_bytes or self.held + size > self.total_max_bytes:
            return None
        if msg.topic.startswith(RETRY_PREFIX):
            return None
        check_topic(msg.topic)
        uniq = new_message_id()
        data = batch_entry(msg, uniq)
        if len(data) > self.max_message_size:
            raise MessageTooLargeError(len(data), self.max_message_size)
        key = BatchKey(msg.topic, selection.queue, msg.wait_store_ok, asynchronous)
        return Entry(key, data, uniq, size)

    # -- the hub ----------------------------------------------------------------------------

    def add(self, entry: Entry, timeout: float, done: Done) -> None:
        """Hold ``entry`` in its batch; ``done(SendResult | None, error)`` when it is answered."""
        batch = self._batches.get(entry.key)
        if batch is not None and batch.bytes + len(entry.data) > self.max_message_size:
            self._send(entry.key)
            batch = None
        if batch is None:
            batch = self._batches[entry.key] = _Batch(timeout)
            batch.timer = gevent.get_hub().loop.timer(self.max_delay)
            batch.timer.start(self._due, entry.key, batch)
        batch.entries.append(entry.data)
        batch.ids.append(entry.msg_id)
        batch.dones.append(done)
        batch.size += entry.size
        batch.bytes += len(entry.data)
        self.held += entry.size
        if batch.size >= self.max_bytes:
            self._send(entry.key)

    def send_all(self) -> None:
        """Send every held batch now (a flush)."""
        for key in list(self._batches):
            self._send(key)

    def drain(self, timeout: float) -> bool:
        """Send every batch now and wait up to ``timeout`` until every batch sent is answered
        (the producer shuts down: what was held is sent, not dropped). Blocks: a greenlet."""
        self.send_all()
        return self._answered.wait(timeout)

    def _due(self, key: BatchKey, batch: _Batch) -> None:
        if self._batches.get(key) is batch:
            self._send(key)

    def _send(self, key: BatchKey) -> None:
        batch = self._batches.pop(key)
        batch.timer.close()
        self.held -= batch.size
        dones = batch.dones
        try:
            out = joined_batch(key.topic, batch.entries, batch.ids, key.wait_store_ok, 1 << 62)
        except ClientError as exc:  # not expected: each entry was checked when held
            for done in dones:
                done(None, exc)
            return
        selection = Selection(queue=key.queue)
        self._sending += 1
        self._answered.clear()
        done = self._splitter(dones, batch.ids)
        self.begin(out, selection, batch.timeout, done, False, asynchronous=key.asynchronous)

    def _splitter(self, dones: list[Done], ids: list[str]) -> Done:
        """The batch's ``done``: each member's, with its own part of the batch's SendResult."""

        def done(result: Any, error: BaseException | None) -> None:
            self._sending -= 1
            if not self._sending:
                self._answered.set()
            _answer(dones, ids, result, error)

        return done


def _answer(dones: list[Done], ids: list[str], result: Any, error: BaseException | None) -> None:
    if error is not None or not isinstance(result, SendResult):
        for each in dones:
            each(result, error)
        return
    for each, one in zip(dones, split_result(result, ids), strict=True):
        each(one, None)


def split_result(result: SendResult, ids: list[str]) -> list[SendResult]:
    """One SendResult per message of a batch answered ``result`` (RocketMQ's
    ``splitSendResults``): its UNIQ_KEY, its offset message id (the answer's comma-joined
    ones, when there is one per message), and the batch's first queue offset + its index."""
    offsets = result.offset_msg_id.split(",")
    if len(offsets) != len(ids):
        offsets = [result.offset_msg_id] * len(ids)
    first = result.queue_offset
    return [
        msgspec.structs.replace(
            result,
            msg_id=ids[i],
            offset_msg_id=offsets[i],
            queue_offset=first + i if first >= 0 else first,
        )
        for i in range(len(ids))
    ]


def check_options(max_delay: float, max_bytes: int, total_max_bytes: int) -> None:
    """RocketMQ's bounds: a delay of 1 ms to 30 s, a batch of 1 byte to 2 MiB, a total above 0
    (ClientError naming the option otherwise)."""
    if not 0.001 <= max_delay <= 30.0:
        raise ClientError(f"batch_max_delay: {max_delay!r} s is not within 0.001 - 30")
    if not 0 < max_bytes <= 2 * 1024 * 1024:
        raise ClientError(f"batch_max_bytes: {max_bytes!r} is not within 1 - 2 MiB (2097152)")
    if total_max_bytes <= 0:
        raise ClientError(f"total_batch_max_bytes: {total_max_bytes!r} is not above 0")
