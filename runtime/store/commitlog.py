"""The commit log: records (``record``) laid out in segments (``segments``).

Plain synchronous code used by the CommitLogWriter actor (appends), readers (by physical
offset) and recovery (scans). A record never straddles segments: when a record plus the 8-byte
end-of-segment marker does not fit in what is left of a segment, the writer puts the marker
``[remaining][0xCBD43194]`` there and continues at the next segment's start.

``append_batch``'s per-record loops run in C (``runtime.store._fastlog``, built by ``pip install``
when a compiler exists) unless ``ACTORMQ_PURE_PYTHON=1``; the Python loops below are the fallback
and the reference. ``ENCODER`` says which one is active ("c" or "python"). Both validate and size
what is not the common case with ``runtime.store.prepare.prepare``.

Reading (by physical offset) and the recovery scan are ``CommitLogReads``
(``runtime.store.commitlog_reads``), a part of ``CommitLog``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from runtime.store import record as R
from runtime.store import record_dispatch as RD
from runtime.store.accel import fastlog
from runtime.store.commitlog_reads import DEFAULT_MAX_MESSAGE_SIZE, CommitLogReads, max_record_size
from runtime.store.consumequeue import ENTRY
from runtime.store.dispatch import DispatchBatch, QueueKey
from runtime.store.prepare import Invalid, Prepared, _topic_cache, prepare
from runtime.store.record_properties import (
    DEFAULT_DELAY_LEVELS,
    PROPERTY_DELAY,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
)
from runtime.store.segments import SegmentedFile
from runtime.store.storage import OS_FS, FileSystem

_fast_encode: Callable[..., tuple | Invalid] | None = getattr(fastlog(), "encode_batch", None)
"""The C encoder, or None: not built (or a stale build), or ACTORMQ_PURE_PYTHON=1."""
ENCODER = "c" if _fast_encode is not None else "python"
"""Which ``append_batch`` loop this process uses."""


class AppendedBatch(NamedTuple):
    begin: int  # write offset before the batch (an end-of-segment marker may follow it)
    end: int  # write offset after the batch
    physical_offsets: list[int]
    queue_offsets: list[int]  # -1 for records that take no queue offset
    dispatch: DispatchBatch
    wrote_bytes: int
    wait_store_ok: bool  # False when every record asked not to wait for the flush (WAIT=false)


class _Group:
    __slots__ = ("buf", "cuts", "vpos")

    def __init__(self, start: int) -> None:
        self.buf = bytearray()
        self.cuts: list[int] = []
        self.vpos = start


TAIL_CACHE = 1 << 20
"""The last MiB (to 2 MiB) of appended records stays in memory: consumers that keep up read it
without a ``pread`` (``SegmentedFile``'s ``tail_cache``)."""


class CommitLog(CommitLogReads):
    """See the module docstring. ``store_host`` is 4 IPv4 or 16 IPv6 bytes (records then carry
    sysFlag STOREHOST_V6)."""

    def __init__(
        self,
        directory: str,
        segment_size: int,
        fs: FileSystem = OS_FS,
        *,
        store_host: bytes = b"\x7f\x00\x00\x01",
        store_port: int = 10911,
        delay_levels: tuple[int, ...] = DEFAULT_DELAY_LEVELS,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.segments = SegmentedFile(directory, segment_size, fs, tail_cache=TAIL_CACHE)
        self.segment_size = segment_size
        self.max_record_size = max_record_size(max_message_size)
        self.store_host = store_host
        self.store_port = store_port
        self.store_v6 = R.host_flags(b"", store_host)
        self.delay_levels = delay_levels
        self._group: _Group | None = None
        self._fast = _fast_encode  # None: the Python loops (tests set it to compare both)

    @property
    def write_offset(self) -> int:
        return self.segments.write_offset

    @property
    def min_offset(self) -> int:
        return self.segments.min_offset

    # -- appending -----------------------------------------------------------------------------

    def append_batch(
        self,
        records: Sequence[R.PutRecord],
        next_offsets: dict[QueueKey, int],
        store_timestamp: int,
        max_message_size: int,
        overlay: dict[QueueKey, int] | None = None,
    ) -> AppendedBatch | Invalid:
        """Validate, assign offsets, encode and write ``records`` (one write per segment).

        Every record is validated before anything is written (an ``Invalid`` comes back and the
        log is untouched). ``next_offsets`` (the writer's queue-offset table) is updated only
        after the write succeeded; on OSError the caller truncates back to ``write_offset``.
        This is the hot path: one pass to size and validate, one pass that packs each record
        with a single ``Struct.pack_into`` and builds the dispatch batch alongside.

        Between ``begin_group()`` and ``commit_group()`` nothing is written: batches are encoded
        back to back into one buffer, queue offsets go to ``overlay`` (the caller applies it to
        ``next_offsets`` once ``commit_group`` succeeded), and ``commit_group`` writes them all.
        """
        if self._fast is not None:
            group = self._group
            begin = self.segments.write_offset if group is None else group.vpos
            out = self._fast(
                records,
                _topic_cache,
                prepare,
                Prepared,
                begin,
                self.segment_size,
                max_message_size,
                next_offsets,
                overlay,
                store_timestamp,
                self.store_host,
                self.store_port,
                self.delay_levels,
                RD.tags_code_of,
                RD.index_keys,
            )
            if isinstance(out, Invalid):
                return out
            buf, bpos, cuts, pos, local, phys_offsets, queue_offsets, cq_blocks, index, wait = out
            return self._finish(
                group,
                next_offsets,
                overlay,
                begin,
                buf,
                bpos,
                cuts,
                pos,
                local,
                phys_offsets,
                queue_offsets,
                DispatchBatch(cq_blocks, index, pos),
                wait,
            )
        seg_size = self.segment_size
        shapes: list[tuple[bytes, bytes, int, int]] = []
        total = 0
        topics = _topic_cache
        store_v6 = self.store_v6
        fixed = R.header_size(store_v6) + 3 + R.BLANK_SIZE
        born_v6 = R.BORNHOST_V6_FLAG
        for rec in records:
            topic_b = topics.get(rec.topic)
            props = rec.properties
            hosts = store_v6 | born_v6 if len(rec.born_host) == 16 else store_v6
            if type(topic_b) is bytes and props.isascii():  # the common case, checked inline
                props_b = props.encode()
                blen = len(rec.body)
                size = fixed + blen + len(topic_b) + len(props_b)
                if hosts & born_v6:
                    size += R.V6_EXTRA
                if (
                    blen <= max_message_size
                    and len(props_b) <= R.MAX_PROPERTIES_SIZE
                    and size <= seg_size
                    and 0 <= rec.queue_id <= 0x7FFFFFFF
                ):
                    size -= R.BLANK_SIZE
                    shapes.append((topic_b, props_b, size, hosts))
                    total += size
                    continue
            p = prepare(rec, max_message_size, seg_size, store_v6)
            if isinstance(p, Invalid):
                return p
            shapes.append((p.topic_b, p.props_b, p.size, hosts))
            total += p.size
        group = self._group
        begin = pos = self.segments.write_offset if group is None else group.vpos
        seg_end = pos - pos % seg_size + seg_size
        # at most one end-of-segment marker before each record
        buf = bytearray(total + R.BLANK_SIZE * len(shapes))
        bpos = 0
        cuts: list[int] = []  # buffer positions after which the writer skips to a new segment
        local: dict[QueueKey, int] = {}
        phys_offsets: list[int] = []
        queue_offsets: list[int] = []
        cq_blocks: dict[QueueKey, list] = {}
        index_items: list[tuple[str, int, int, tuple[str, ...]]] = []
        wait = False
        host = self.store_host
        port = self.store_port
        levels = self.delay_levels
        crc32 = zlib.crc32
        struct_for = R.record_struct
        entry_pack = ENTRY.pack
        last_topic: str | None = None
        last_qid = -1
        key: QueueKey = ("", -1)
        block: list | None = None
        magic = R.MAGIC
        blank_size = R.BLANK_SIZE
        tran_mask = R.TRANSACTION_MASK
        prepared_type = R.TRANSACTION_PREPARED_TYPE
        rollback_type = R.TRANSACTION_ROLLBACK_TYPE
        findall = RD._PROP_RE.findall
        p_tags, p_uniq = PROPERTY_TAGS, PROPERTY_UNIQ_KEY
        p_keys, p_delay = PROPERTY_KEYS, PROPERTY_DELAY
        java_hash = R.java_hash
        last_tags: str | None = None
        last_code = 0
        add_qoff = queue_offsets.append
        add_phys = phys_offsets.append
        add_index = index_items.append
        host_mask = ~R.HOST_V6_MASK
        for rec, (topic_b, props_b, size, hosts) in zip(records, shapes, strict=True):
            if pos + size + blank_size > seg_end:
                R.BLANK.pack_into(buf, bpos, seg_end - pos, R.BLANK_MAGIC)
                bpos += blank_size
                cuts.append(bpos)
                pos = seg_end
                seg_end += seg_size
            topic = rec.topic
            queue_id = rec.queue_id
            sys_flag = (rec.sys_flag & host_mask) | hosts
            tran = sys_flag & tran_mask
            takes_offset = tran != prepared_type and tran != rollback_type
            if topic is not last_topic or queue_id != last_qid:
                key = (topic, queue_id)
                last_topic, last_qid = topic, queue_id
                block = cq_blocks.get(key)
            if takes_offset:
                qoff = local.get(key)
                if qoff is None:
                    qoff = overlay.get(key) if overlay is not None else None
                    if qoff is None:
                        qoff = next_offsets.get(key, 0)
                local[key] = qoff + 1
                add_qoff(qoff)
            else:
                qoff = 0
                add_qoff(-1)
            body = rec.body
            blen = len(body)
            tlen = len(topic_b)
            plen = len(props_b)
            struct_for(blen, tlen, plen, hosts).pack_into(
                buf,
                bpos,
                size,
                magic,
                crc32(body) & 0x7FFFFFFF,
                queue_id,
                rec.flag,
                qoff,
                pos,
                sys_flag,
                rec.born_timestamp,
                rec.born_host,
                rec.born_port,
                store_timestamp,
                host,
                port,
                rec.reconsume_times,
                rec.prepared_transaction_offset,
                blen,
                body,
                tlen,
                topic_b,
                plen,
                props_b,
            )
            # the property scan (RD.scan_properties), inlined: it runs for every record
            tags = keys = uniq = delay = None
            w = True
            for name, value in findall(rec.properties):
                if name == p_tags:
                    tags = value
                elif name == p_uniq:
                    uniq = value
                elif name == p_keys:
                    keys = value
                elif name == p_delay:
                    delay = value
                else:  # WAIT: the regex captures nothing else
                    w = value != "false"
            if w:
                wait = True
            if delay is None:
                if tags is last_tags or tags == last_tags:
                    code = last_code
                else:
                    code = java_hash(tags) if tags else 0
                    last_tags, last_code = tags, code
            else:
                code = RD.tags_code_of(topic, tags, delay, store_timestamp, levels)
            if takes_offset:
                if block is None:
                    block = cq_blocks[key] = [qoff, bytearray(entry_pack(pos, size, code))]
                else:
                    block[1] += entry_pack(pos, size, code)
            if keys:
                ikeys = RD.index_keys(sys_flag, keys, uniq)
                if ikeys:
                    add_index((topic, pos, store_timestamp, ikeys))
            elif uniq and tran != rollback_type:
                add_index((topic, pos, store_timestamp, (uniq,)))
            add_phys(pos)
            pos += size
            bpos += size
        return self._finish(
            group,
            next_offsets,
            overlay,
            begin,
            buf,
            bpos,
            cuts,
            pos,
            local,
            phys_offsets,
            queue_offsets,
            DispatchBatch(cq_blocks, index_items, pos),
            wait,
        )

    def _finish(
        self,
        group: _Group | None,
        next_offsets: dict[QueueKey, int],
        overlay: dict[QueueKey, int] | None,
        begin: int,
        buf: bytearray,
        bpos: int,
        cuts: list[int],
        pos: int,
        local: dict[QueueKey, int],
        phys_offsets: list[int],
        queue_offsets: list[int],
        dispatch: DispatchBatch,
        wait: bool,
    ) -> AppendedBatch:
        """Write an encoded batch (or add it to the group) and publish its queue offsets."""
        if group is not None:
            base = len(group.buf)
            group.buf += memoryview(buf)[:bpos]
            group.cuts.extend(base + c for c in cuts)
            group.vpos = pos
            (overlay if overlay is not None else next_offsets).update(local)
        else:
            self._write(buf, bpos, cuts, pos)
            next_offsets.update(local)
        return AppendedBatch(begin, pos, phys_offsets, queue_offsets, dispatch, bpos, wait)

    def _write(self, buf: bytearray, length: int, cuts: list[int], end: int) -> None:
        view = memoryview(buf)
        prev = 0
        for cut in cuts:
            self.segments.append(view[prev:cut])
            self.segments.skip_to_next_segment()
            prev = cut
        self.segments.append(view[prev:length])
        if self.segments.write_offset != end:
            raise AssertionError(f"encoder ended at {end}, log at {self.segments.write_offset}")

    def begin_group(self) -> None:
        """Start collecting batches for one write (see ``append_batch``)."""
        self._group = _Group(self.segments.write_offset)

    def commit_group(self) -> int:
        """Write everything collected since ``begin_group``; returns the new write offset.

        On OSError the group is dropped; the caller truncates back to where it began."""
        group, self._group = self._group, None
        if group is None:
            raise AssertionError("commit_group without begin_group")
        if group.buf:
            self._write(group.buf, len(group.buf), group.cuts, group.vpos)
        elif group.vpos != self.segments.write_offset:
            raise AssertionError("an empty group moved the write offset")
        return self.segments.write_offset

    def abort_group(self) -> None:
        self._group = None
