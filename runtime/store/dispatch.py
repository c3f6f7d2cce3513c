"""``DispatchBatch``: what a run of stored records contributes to consume queues and the index.

Built by the writer while it encodes (no re-parsing), or from records read back from the log
(reput after a restart, recovery). Consume-queue entries are already packed: per queue, the
first queue offset and the raw 20-byte entries, so a Queue actor appends them with one write.
Index items are ``(topic, physical_offset, store_timestamp, keys)`` for records with keys.
``deleted`` lists the topics whose deletion marker the run holds, with their new fences
(``runtime.store.fences``): their queues go before the batch's entries are appended (entries
of those topics in the batch come after the marker; the ones before it were left out).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from runtime.store import record as R
from runtime.store.consumequeue import ENTRY
from runtime.store.record_dispatch import index_keys, scan_properties, tags_code_of
from runtime.store.record_properties import DEFAULT_DELAY_LEVELS
from runtime.store.topic_names import TOPIC_DELETED_MARKER

# queueId, queueOffset, physicalOffset, sysFlag, storeTimestamp, bodyLen; per sysFlag host bits
# (IPv6 born / store hosts are 12 bytes longer each)
_HEADS = tuple(
    struct.Struct(f">12xi4xqqi8x{lay.born_host_len + 4}xq{lay.store_host_len + 16}xi")
    for lay in (R.layout(bits << 4) for bits in range(4))
)
assert [h.size for h in _HEADS] == [R.header_size(bits << 4) for bits in range(4)]

QueueKey = tuple[str, int]
"""(topic, queue id): a consume queue's key across the store and the broker."""
IndexItem = tuple[str, int, int, tuple[str, ...]]


class DispatchBatch(NamedTuple):
    queues: dict[QueueKey, list]  # key -> [first queue offset, bytearray of 20-byte entries]
    index: list[IndexItem]
    end: int  # offset just past the last record covered
    deleted: tuple[tuple[str, int], ...] = ()  # (topic, fence) of deletion markers, in order

    @staticmethod
    def empty(end: int = 0) -> DispatchBatch:
        return DispatchBatch({}, [], end)


def add_record(
    batch: DispatchBatch,
    topic: str,
    queue_id: int,
    queue_offset: int,
    physical_offset: int,
    size: int,
    tags_code: int,
    store_timestamp: int,
    keys: tuple[str, ...],
    takes_offset: bool,
) -> None:
    if takes_offset:
        key = (topic, queue_id)
        block = batch.queues.get(key)
        if block is None:
            batch.queues[key] = [
                queue_offset,
                bytearray(ENTRY.pack(physical_offset, size, tags_code)),
            ]
        else:
            block[1] += ENTRY.pack(physical_offset, size, tags_code)
    if keys:
        batch.index.append((topic, physical_offset, store_timestamp, keys))


def without_topic(queues: dict[QueueKey, list], topic: str) -> None:
    """Drop ``topic``'s blocks from ``queues`` (entries before its deletion marker)."""
    for key in [k for k in queues if k[0] == topic]:
        del queues[key]


class LogDispatchReader:
    """Builds DispatchBatches from records read back from the commit log (``on_record`` is a
    ``CommitLog.scan`` callback).

    ``fences`` (``runtime.store.fences``): records of a topic below its fence are skipped (a
    deleted incarnation). A deletion marker at or past the topic's fence goes to the batch's
    ``deleted``, after the topic's entries read so far are dropped from the batch."""

    def __init__(
        self,
        delay_levels: tuple[int, ...] = DEFAULT_DELAY_LEVELS,
        fences: dict[str, int] | None = None,
    ) -> None:
        self.levels = delay_levels
        self.fences = fences if fences is not None else {}
        self.batch = DispatchBatch.empty()
        self.count = 0
        self._topics: dict[bytes, str] = {}

    def on_record(self, buf: memoryview, pos: int, size: int, phys: int) -> None:
        """Parse the valid record at ``buf[pos:pos+size]`` into the batch (fused, allocation-
        light: this runs for every record recovery or reput reads back)."""
        head = _HEADS[(buf[pos + 39] & 0x30) >> 4]  # the low byte of sysFlag
        queue_id, queue_offset, _phys, sys_flag, store_ts, blen = head.unpack_from(buf, pos)
        body_at = pos + head.size
        p = body_at + blen
        tlen = buf[p]
        raw_topic = bytes(buf[p + 1 : p + 1 + tlen])
        topic = self._topics.get(raw_topic)
        if topic is None:
            # (a byte that is no UTF-8 is replaced, as RocketMQ's decoder does: neither the
            # topic nor the properties are under the body CRC, and a damaged one must not
            # stop recovery or reput)
            topic = self._topics[raw_topic] = raw_topic.decode("utf-8", "replace")
        p += 1 + tlen
        self.count += 1
        if topic == TOPIC_DELETED_MARKER:
            self._marker(bytes(buf[body_at : body_at + blen]), phys + size)
            return
        if self.fences and phys < self.fences.get(topic, -1):
            return  # a deleted incarnation of the topic
        plen = (buf[p] << 8) | buf[p + 1]
        props = str(buf[p + 2 : p + 2 + plen], "utf-8", "replace") if plen else ""
        tags, keys, uniq, delay, _wait = scan_properties(props)
        if delay is None:
            code = R.java_hash(tags) if tags else 0
        else:
            code = tags_code_of(topic, tags, delay, store_ts, self.levels)
        tran = sys_flag & R.TRANSACTION_MASK
        batch = self.batch
        if tran != R.TRANSACTION_PREPARED_TYPE and tran != R.TRANSACTION_ROLLBACK_TYPE:
            key = (topic, queue_id)
            block = batch.queues.get(key)
            if block is None:
                batch.queues[key] = [queue_offset, bytearray(ENTRY.pack(phys, size, code))]
            else:
                block[1] += ENTRY.pack(phys, size, code)
        if uniq or keys:
            ikeys = index_keys(sys_flag, keys, uniq)
            if ikeys:
                batch.index.append((topic, phys, store_ts, ikeys))

    def _marker(self, body: bytes, fence: int) -> None:
        topic = body.decode("utf-8", "replace")
        if fence < self.fences.get(topic, -1):
            return  # an older deletion: the newer fence already hides what it removed
        without_topic(self.batch.queues, topic)
        self.batch = self.batch._replace(deleted=(*self.batch.deleted, (topic, fence)))

    def take(self, end: int) -> DispatchBatch:
        """The batch so far (covering up to ``end``); starts a new one."""
        out = self.batch._replace(end=end)
        self.batch = DispatchBatch.empty()
        return out


def merge(batches: list[DispatchBatch]) -> DispatchBatch:
    """One batch for consecutive batches (in log order)."""
    if len(batches) == 1:
        return batches[0]
    queues: dict[QueueKey, list] = {}
    index: list[IndexItem] = []
    deleted: tuple[tuple[str, int], ...] = ()
    for b in batches:
        for topic, _fence in b.deleted:
            without_topic(queues, topic)
        deleted += b.deleted
        for key, (first, raw) in b.queues.items():
            block = queues.get(key)
            if block is None:
                queues[key] = [first, bytearray(raw)]
            else:
                block[1] += raw
        index.extend(b.index)
    return DispatchBatch(queues, index, batches[-1].end, deleted)
