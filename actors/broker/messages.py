"""Store-level actor messages, grouped by the actor that accepts them.

Messages are frozen, tagged msgspec structs. Those that carry a ``reply`` future are answered
later by whoever completes them (the writer replies after the flush/replication condition);
the rest are asked (``ref.ask(msg, block=False)`` gives a future) or told. The statuses and
replies are in ``store_results``, topic configurations in ``topic_config_data``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.broker.topic_config_data import TopicConfigData
from runtime.store.dispatch import DispatchBatch
from runtime.store.record import PutRecord

# -- CommitLogWriter ---------------------------------------------------------------------------


class AppendBatch(msgspec.Struct, frozen=True, tag=True):
    """Append ``records`` (one write); ``reply`` gets a PutResult once the mode's conditions
    hold. ``enqueued_at`` (time.monotonic) lets the writer refuse work that waited too long."""

    records: tuple[PutRecord, ...] | list[PutRecord]
    reply: Any
    enqueued_at: float = 0.0


class AppendRaw(msgspec.Struct, frozen=True, tag=True):
    """A slave appends ``data`` (whole records replicated from its master) at commit-log
    ``offset``, which must be its write offset; ``reply`` gets a ``RawAppended`` once the
    slave's flush mode holds (SYNC_FLUSH: fsynced). ``reconcile``: a classic master appends
    what a slave holds of its log past its end, after a power loss (``HAState.reconciling``,
    checked by the HAConnection that sends it)."""

    offset: int
    data: bytes
    reply: Any
    reconcile: bool = False


class RawAppended(msgspec.Struct, frozen=True):
    """``ok``: appended (and flushed per the mode); ``write_offset``: the log's end now."""

    ok: bool
    write_offset: int
    reason: str | None = None


class DiskSpace(msgspec.Struct, frozen=True, tag=True):
    """From Retention: ``full`` means above the warning ratio (writes refused)."""

    full: bool
    used_ratio: float


class StoreFailed(msgspec.Struct, frozen=True, tag=True):
    """From the Flusher: the store can no longer make data durable; refuse every append."""

    reason: str


class DeleteSegments(msgspec.Struct, frozen=True, tag=True):
    """From Retention: detach commit-log segments last modified before ``older_than`` (epoch
    seconds; ``force``: oldest ones regardless of age), at most ``max_files``, never beyond
    ``limit_offset`` (what is dispatched and flushed). Replies the detached paths and the new
    minimum offset (``SegmentsDeleted``)."""

    older_than: float
    force: bool
    max_files: int
    limit_offset: int


class SegmentsDeleted(msgspec.Struct, frozen=True):
    paths: list[str]
    min_offset: int


class DeleteTopicData(msgspec.Struct, frozen=True, tag=True):
    """Ask the writer: append ``topic``'s deletion marker (``runtime.store.fences``); its
    queue offsets start again at 0. Replies ``TopicDataDeleted``."""

    topic: str


class TopicDataDeleted(msgspec.Struct, frozen=True):
    """``fence``: the offset just past the marker (the deletion is applied once the Dispatcher
    passed it: ``WhenDispatched``); ``error`` when nothing was appended."""

    fence: int
    error: str | None = None


# -- Flusher -----------------------------------------------------------------------------------


class AwaitFlush(msgspec.Struct, frozen=True, tag=True):
    """Call ``c.flush_done(FlushStatus)`` for each of ``completions`` once the log is fsynced
    to ``offset``; ``polls_first``: the records wake a parked long poll, so confirm the offset
    to the Dispatcher before completing."""

    offset: int
    completions: list[Any]
    polls_first: bool = False


class FlushTick(msgspec.Struct, frozen=True, tag=True):
    pass


class FlushDone(msgspec.Struct, frozen=True, tag=True):
    """Internal: a flush to ``offset`` finished (``error`` set when fsync failed; ``retry``
    when it never ran because no descriptor could be opened: nothing was lost)."""

    offset: int
    error: str | None = None
    retry: bool = False


# -- Dispatcher --------------------------------------------------------------------------------


class Dispatch(msgspec.Struct, frozen=True, tag=True):
    """From the writer: records appended in ``[begin, end)`` (``begin`` is the write offset
    before the batch, so it may precede the first record by an end-of-segment marker), with
    their consume-queue entries and index items already built."""

    begin: int
    end: int
    batch: DispatchBatch


class Confirm(msgspec.Struct, frozen=True, tag=True):
    """The log is confirmed up to ``offset`` by ``source`` ("flush" under SYNC_FLUSH; the HA
    work adds "replica"). ``flushed``: the offset is also fsynced (checkpoint input)."""

    offset: int
    source: str
    flushed: bool = True


class CheckpointTick(msgspec.Struct, frozen=True, tag=True):
    pass


class WhenDispatched(msgspec.Struct, frozen=True, tag=True):
    """Set ``reply`` (to the reput offset) once records below ``offset`` were dispatched,
    deletions included."""

    offset: int
    reply: Any


class DeletionDone(msgspec.Struct, frozen=True, tag=True):
    """Internal to the Dispatcher: the held batch's deleted topics are gone (or ``error``)."""

    error: str | None = None


class RemoveTopicOffsets(msgspec.Struct, frozen=True, tag=True):
    """Ask ConsumerOffsets: forget every group's offsets of ``topic`` (a deleted topic)."""

    topic: str


class CheckpointDone(msgspec.Struct, frozen=True, tag=True):
    safe_offset: int
    error: str | None = None


class QueryByKey(msgspec.Struct, frozen=True, tag=True):
    topic: str
    key: str
    max_num: int
    begin: int
    end: int


class TrimBelow(msgspec.Struct, frozen=True, tag=True):
    """From Retention: the commit log now starts at ``log_min``."""

    log_min: int


# -- Queue -------------------------------------------------------------------------------------


class AppendEntries(msgspec.Struct, frozen=True, tag=True):
    """From the Dispatcher: packed 20-byte entries for queue offsets ``first ..``."""

    first: int
    raw: bytes | bytearray


class GetMessages(msgspec.Struct, frozen=True, tag=True):
    offset: int
    max_nums: int
    max_bytes: int
    tag_codes: frozenset[int] | None = None


class WaitArrival(msgspec.Struct, frozen=True, tag=True):
    """Resolve ``reply`` with the max offset once it exceeds ``offset`` (or at ``deadline``,
    time.monotonic, with the max offset then)."""

    offset: int
    reply: Any
    deadline: float


class SweepWaiters(msgspec.Struct, frozen=True, tag=True):
    pass


class RetireIfIdle(msgspec.Struct, frozen=True, tag=True):
    """Ask a Queue whether it may stop now (``QueueTable.retire_idle``): True when nobody waits
    on it and its files are synced; it then frees its tail cache and stops quietly."""


class SyncQueue(msgspec.Struct, frozen=True, tag=True):
    """fsync the consume queue, then set ``reply`` to its max offset (or an exception). Sent
    after AppendEntries, so the reply also proves those were applied."""

    reply: Any


class QueueRange(msgspec.Struct, frozen=True, tag=True):
    """Ask: (min_offset, max_offset)."""


class OffsetForTime(msgspec.Struct, frozen=True, tag=True):
    """Ask: first queue offset whose record was stored at or after ``timestamp`` (ms)."""

    timestamp: int


class EarliestStoreTime(msgspec.Struct, frozen=True, tag=True):
    """Ask: store timestamp of the record at the queue's min offset (-1 if empty)."""


class ReadEntries(msgspec.Struct, frozen=True, tag=True):
    """Ask: (min_offset, max_offset, raw entries from ``start``, at most ``count``); no entries
    when ``start`` is outside [min, max) (an admin's look at the consume queue itself)."""

    start: int
    count: int


# -- ConsumerOffsets ---------------------------------------------------------------------------


class CommitOffset(msgspec.Struct, frozen=True, tag=True):
    group: str
    topic: str
    queue_id: int
    offset: int


class QueryOffset(msgspec.Struct, frozen=True, tag=True):
    """Ask: the committed offset, -1 when the group never committed one for the queue."""

    group: str
    topic: str
    queue_id: int


class GroupOffsets(msgspec.Struct, frozen=True, tag=True):
    """Ask: {topic: {queue_id: offset}} for ``group``."""

    group: str


class AllOffsets(msgspec.Struct, frozen=True, tag=True):
    """Ask: the whole table, {"topic@group": {queue_id: offset}} (a slave copies it)."""


class OffsetsSince(msgspec.Struct, frozen=True, tag=True):
    """Ask: ``OffsetsDelta``: the entries changed since ``since`` (a version this table
    answered before), or the whole table when ``since`` is not one of its versions."""

    since: str


class OffsetsDelta(msgspec.Struct, frozen=True):
    version: str
    """``<incarnation>:<counter>``: ask with it next time."""
    table: dict[str, dict[int, int]]
    whole: bool
    """The whole table (``since`` was not a version of this incarnation), not a delta."""


class RemoveGroup(msgspec.Struct, frozen=True, tag=True):
    group: str


class ClampOffsets(msgspec.Struct, frozen=True, tag=True):
    """Lower committed offsets past their queue's end to it (a classic master that reconciled
    its log after a power loss: ``actors.broker.consumer_offsets.clamp_to_ends``)."""


class RemoveOffsets(msgspec.Struct, frozen=True, tag=True):
    """Forget these ``topic@group`` entries (a slave: its master no longer has them)."""

    keys: tuple[str, ...]


class PersistTick(msgspec.Struct, frozen=True, tag=True):
    pass


# -- TopicConfig -------------------------------------------------------------------------------


class GetTopic(msgspec.Struct, frozen=True, tag=True):
    topic: str


class UpdateTopic(msgspec.Struct, frozen=True, tag=True):
    config: TopicConfigData


class DeleteTopic(msgspec.Struct, frozen=True, tag=True):
    topic: str


class EnsureTopic(msgspec.Struct, frozen=True, tag=True):
    """Ask: the topic's config, creating it exactly as given when missing (system topics such
    as %RETRY% and %DLQ% topics, and a send's auto-creation, whose rules the send handler
    applies)."""

    config: TopicConfigData


class AllTopics(msgspec.Struct, frozen=True, tag=True):
    """Ask: a TopicTable (only the topics of ``names`` that exist, when given: a registration
    of a few changed topics does not copy a table of thousands)."""

    names: tuple[str, ...] | None = None


# -- Retention ---------------------------------------------------------------------------------


class CleanTick(msgspec.Struct, frozen=True, tag=True):
    pass
