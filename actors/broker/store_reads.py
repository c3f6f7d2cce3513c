"""The facade's reads: by queue offset (Queue actors), by commit-log offset and by key.

``StoreReads`` is a part of ``actors.broker.store_service.BrokerStore``. Reads of one queue go to
its Queue actor (found or started by the ``QueueTable``), answered in the caller's greenlet when
the actor is idle; a queue that does not exist here answers at once with the read's "nothing"
value. Reads by physical offset are a synchronous ``pread`` of an immutable region; reads by key
ask the Dispatcher, which owns the index. Also here: ``tag_codes``, the subscription tags as the
reads filter them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

import pykka

from actors.broker.messages import (
    EarliestStoreTime,
    GetMessages,
    OffsetForTime,
    QueryByKey,
    QueueRange,
    ReadEntries,
    TrimBelow,
    WaitArrival,
)
from actors.broker.queue_table import QueueTable
from actors.broker.store_base import Future, StoreFacadeBase, failed_future, resolved_future
from actors.broker.store_results import GetResult, GetStatus
from runtime.actor import ask_now, new_future, tell_now
from runtime.store.record import StoredRecord, decode_record, java_hash


def tag_codes(tags: Iterable[str] | str | None) -> frozenset[int] | None:
    """Subscription tags ("TagA || TagB", or a list) -> tag hash codes; None means all ("*")."""
    if tags is None:
        return None
    items = [t.strip() for t in tags.split("||")] if isinstance(tags, str) else list(tags)
    items = [t for t in items if t]
    if not items or "*" in items:
        return None
    return frozenset(java_hash(t) for t in items)


class StoreReads(StoreFacadeBase):
    """Reads by queue, by physical offset and by key. See the module docstring."""

    # -- reads by queue ------------------------------------------------------------------------

    def _queue_ask(self, topic: str, queue_id: int, message: Any, missing: Any) -> Future:
        table: QueueTable = self.ctx.queues
        ref = table.get(topic, queue_id)
        if ref is None:
            if not self.running:
                return failed_future(self.names.writer, "store not running")
            return resolved_future(missing)
        try:
            return ask_now(ref, message)  # reads never yield: answered inline when idle
        except pykka.ActorDeadError:
            return failed_future(f"queue {topic}/{queue_id}", "stopped")

    def get_messages(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        max_bytes: int | None = None,
        tag_filter: Iterable[int] | None = None,
    ) -> Future:
        """Read by queue offset -> future of GetResult (raw records, RocketMQ's statuses).

        ``tag_filter``: tag hash codes to keep (see ``tag_codes``); None keeps all. ``group`` is
        accepted for RocketMQ parity (filtering/statistics hooks); the store does not use it.
        """
        del group
        msg = GetMessages(
            offset,
            max_nums,
            self.settings.max_get_bytes if max_bytes is None else max_bytes,
            None if tag_filter is None else frozenset(tag_filter),
        )
        missing = GetResult(
            status=GetStatus.NO_MATCHED_LOGIC_QUEUE,
            next_begin_offset=0,
            min_offset=0,
            max_offset=0,
        )
        return self._queue_ask(topic, queue_id, msg, missing)

    def wait_arrival(self, topic: str, queue_id: int, offset: int, timeout: float) -> Future:
        """Future resolved with the queue's max offset once it exceeds ``offset`` (a message at
        ``offset`` arrived), or with the max offset then after ``timeout`` seconds. Park a long
        poll on it; it never raises for an unknown queue (it waits for the queue to appear)."""
        reply = new_future()
        table: QueueTable = self.ctx.queues
        ref = table.get(topic, queue_id, create=self.running)
        if ref is None:
            reply.set(0)
            return reply
        try:  # parked inline when the queue is idle (the handler never yields)
            tell_now(ref, WaitArrival(offset, reply, time.monotonic() + timeout))
        except pykka.ActorDeadError:
            reply.set(0)
        return reply

    def min_offset(self, topic: str, queue_id: int) -> Future:
        return self.queue_range(topic, queue_id).map(lambda r: r[0])

    def max_offset(self, topic: str, queue_id: int) -> Future:
        return self.queue_range(topic, queue_id).map(lambda r: r[1])

    def queue_range(self, topic: str, queue_id: int) -> Future:
        """Future of (min_offset, max_offset); an idle queue's without starting its actor."""
        idle = self.ctx.queues.idle_range(topic, queue_id) if self.running else None
        if idle is not None:
            return resolved_future(idle)
        return self._queue_ask(topic, queue_id, QueueRange(), (0, 0))

    def offset_by_time(self, topic: str, queue_id: int, timestamp_ms: int) -> Future:
        """First queue offset stored at or after ``timestamp_ms`` (the max offset if none)."""
        return self._queue_ask(topic, queue_id, OffsetForTime(timestamp_ms), 0)

    def earliest_store_time(self, topic: str, queue_id: int) -> Future:
        """Store timestamp (ms) of the queue's first message, -1 when empty."""
        return self._queue_ask(topic, queue_id, EarliestStoreTime(), -1)

    def read_entries(self, topic: str, queue_id: int, start: int, count: int) -> Future:
        """Future of (min_offset, max_offset, raw entries from ``start``), or of None when the
        queue has no consume queue here."""
        return self._queue_ask(topic, queue_id, ReadEntries(start, count), None)

    def queue_topics(self) -> list[str]:
        """The topics that have a consume queue here, sorted."""
        table: QueueTable = self.ctx.queues
        return sorted({topic for topic, _ in table.known_keys()})

    def trim_queues(self) -> list[Future]:
        """Every consume queue (and the index) drops the files that only point below the
        commit log's minimum, as after retention: futures, one per queue, set once done."""
        log_min = self.commit_log_min_offset
        ref = self.ctx.directory.get(self.names.dispatcher)
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(TrimBelow(log_min))
        table: QueueTable = self.ctx.queues
        return table.trim_below(log_min)  # (an idle queue's at once, without starting its actor)

    # -- reads by physical offset and key ------------------------------------------------------

    def look_message_by_offset(self, physical_offset: int) -> StoredRecord | None:
        """The record at a commit-log offset (e.g. from an offset message id), or None.

        Synchronous: a ``pread`` of an immutable region, checked (CRC) before it is decoded.
        """
        raw = self.read_message_bytes(physical_offset)
        return None if raw is None else decode_record(raw)

    def read_message_bytes(self, physical_offset: int) -> bytes | None:
        opened = self.ctx.opened
        if opened is None or physical_offset >= self.ctx.dispatched:
            return None
        return opened.log.read_record_bytes(physical_offset, verify_crc=True)

    def query_by_key(
        self, topic: str, key: str, max_num: int, begin: int = 0, end: int = 2**63 - 1
    ) -> Future:
        """Records with ``key`` (a KEYS entry or the UNIQ_KEY) stored in [begin, end] ms ->
        future of QueryResult (raw records, newest first)."""
        return self._ask(self.names.dispatcher, QueryByKey(topic, key, max_num, begin, end))

    @property
    def commit_log_min_offset(self) -> int:
        opened = self.ctx.opened
        return opened.log.min_offset if opened is not None else 0

    @property
    def commit_log_max_offset(self) -> int:
        """Offset just past the last dispatched (consumable) record."""
        return self.ctx.dispatched
