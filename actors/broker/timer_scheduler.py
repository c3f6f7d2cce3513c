"""TimerScheduler: delivers timer messages (arbitrary delay) when due.

Messages:
- ``Delivered(queue_offset)`` (tell, from its delivery greenlet)
- ``Persist`` (its own timer, every second): write progress if it moved, in the background
  (``BackgroundWriter``: the fsync runs in the thread pool, never on the hub); at stop, at once
- ``pending_count()`` (proxy) -> timer messages loaded but not yet delivered
- ``peak_loaded()`` (proxy) -> the most loaded at once

State owned: a heap of the timer messages loaded (due ms, queue offset, commit-log offset), at
most ``max_loaded`` (``timerMaxLoaded``): every undelivered record read whose (time, queue
offset) is below the horizon. Too many loaded, the latest quarter is unloaded and the horizon
lowered to the first of them; the records at or past it stay in the timer topic only (the lowest
queue offset among them kept), and when the loaded ones fall to half, a ``Rescan`` re-reads the
topic from that offset to where the loader is, loading those at or past the old horizon (its
floor) up to the new one, a batch at a time between batches of new records. While it runs,
nothing at or past its floor is delivered (one further on may be due first), so timers go out
in due order. A producer parking millions of timers (up to 3 days ahead) grew the heap without
bound (~130 bytes each), the broker's memory until it died. The recall markers read are noted
(loaded or not: a marker left unloaded still cancels its loaded message), so that set is bounded
by the markers pending, not by ``max_loaded``. Nothing unloaded is delivered, so the progress
needs nothing more and a restart re-reads what is pending. The progress: the lowest
undelivered queue offset of the timer topic (watermark) and the offsets delivered above it, as
[start, end) ranges (``DeliveredOffsets``: its size follows the messages still pending below
delivered ones, not the count delivered) — persisted atomically to
``<store>/config/timerProgress.json``.
A record still pending ``ROLL_WINDOW_MS`` (2 days) after it was stored is stored again in the
timer topic (rolled, TIMER_ROLL_TIMES one more, as RocketMQ's timer wheel rolls it) and counts
as delivered: read back from its first copy when due, a 3-day timer could find it deleted with
its commit-log segment (fileReservedTime, 72 h by default), the message lost.
At start it re-reads the timer topic from the watermark and skips what was delivered, so a
restart loses nothing; it delivers nothing before that re-read has reached the topic's end (a
recall marker read later than its message, both due, would come too late). Only a master runs one.

Durability point and guarantees: a message is put back into its real topic only when
``now >= due`` (never early) and is marked delivered only after that put was stored
(at-least-once: a crash between the two re-delivers). A record that names no topic it may be
put back into (no REAL_TOPIC, the timer topic itself, ...: ``delay.put_back_problem``) or no
integer TIMER_OUT_MS is dropped as it is read, with a WARNING (at most one every 10 s), and
marked delivered: put back into the timer topic it was due at once again, a loop without pause.
A put the store refused is retried a second later, after the other timers due meanwhile (it
held them all behind it), unless refused for good (MESSAGE_ILLEGAL, PROPERTIES_SIZE_EXCEEDED:
the record breaks a limit lowered since), which drops it the same way, as RocketMQ 5's timer
(PUT_NO_RETRY).

Recall (RocketMQ 5's ``recallMessage``): a timer message carrying ``TIMER_DEL_UNIQKEY`` (a
marker, due when its message is; its value the UNIQ_KEY, or RocketMQ's ``<topic>+<UNIQ_KEY>``)
cancels the pending message of that UNIQ_KEY in its topic: neither is put back. Both are
records of the timer topic, so a restart re-reads the marker with the message and the recall
holds. A marker arriving once its due time passed is refused
(``actors.broker.delay.schedule``): it would recall nothing, and must not reach consumers.
"""

from __future__ import annotations

import bisect
import heapq
import os
import time
from typing import Any

import gevent
import gevent.event
import msgspec
import pykka
from loguru import logger

from actors.broker.delay import (
    TIMER_OUT_MS,
    TIMER_TOPIC,
    DropWarnings,
    RefusalWarnings,
    Undeliverable,
    copy_record,
    from_timer,
    put_back_problem,
)
from actors.broker.scheduler import NEVER_STORED, STORED
from actors.broker.store_results import GetStatus
from runtime.actor import GeventActor
from runtime.remoting.properties import (
    REAL_TOPIC,
    TIMER_DEL_UNIQKEY,
    UNIQ_KEY,
    decode_properties,
)
from runtime.store.background import BackgroundWriter
from runtime.store.configfile import read_json
from runtime.store.record import PutRecord, decode_record

BATCH = 256
IDLE_WAIT_S = 1.0
RETRY_S = 1.0
CALL_TIMEOUT_S = 10.0


ROLL_WINDOW_MS = 2 * 24 * 3600 * 1000
"""A timer record still pending this long after it was stored is stored again (rolled), as
RocketMQ's timerRollWindowSlot (2 days) has it: its first copy may go with its commit-log segment
(fileReservedTime, 72 h by default) before a 3-day timer is due."""
TIMER_ROLL_TIMES = "TIMER_ROLL_TIMES"

DEFAULT_MAX_LOADED = 200_000
"""How many pending timers are held in memory at most (``timerMaxLoaded``): ~130 bytes each."""
NO_HORIZON = (2**63, 0)
"""The horizon while every pending timer read is loaded."""

Entry = tuple[int, int, int, int, int]
"""A loaded timer: (when: due, its record's roll time if sooner, or its retry time; queue
offset; commit-log offset; due; its record's time: ``when`` before any retry)."""


def _record_key(entry: Entry) -> tuple[int, int]:
    """The order of a loaded timer's record: its time, then its queue offset."""
    return entry[4], entry[1]


class Rescan:
    """A re-read of the timer topic from ``offset`` to ``end`` (where the loader had read),
    loading the records at or past ``floor``, the horizon it replaces."""

    __slots__ = ("end", "floor", "offset")

    def __init__(self, floor: tuple[int, int], offset: int, end: int) -> None:
        self.floor = floor
        self.offset = offset
        self.end = end


def rolled(stored: Any) -> PutRecord:
    """A timer record stored again in the timer topic, its roll count (TIMER_ROLL_TIMES, as
    RocketMQ counts it) one more."""
    props = decode_properties(stored.properties)
    times = props.get(TIMER_ROLL_TIMES, "0")
    props[TIMER_ROLL_TIMES] = str(int(times) + 1 if times.isdigit() else 1)
    return copy_record(stored, props)


class Delivered(msgspec.Struct, frozen=True, tag=True):
    queue_offset: int


class Persist(msgspec.Struct, frozen=True, tag=True):
    pass


class TimerProgress(msgspec.Struct, rename="camel"):
    watermark: int = 0
    delivered: list[int] = []
    """Offsets delivered above the watermark, one by one (as written before session 32: read)."""
    delivered_ranges: list[tuple[int, int]] = []
    """Offsets delivered above the watermark, as [start, end) ranges (written)."""


class DeliveredOffsets:
    """The timer topic's queue offsets delivered: all below ``watermark``, and sorted disjoint
    [start, end) ranges above it. Held as ranges, so its size follows the gaps (messages still
    pending below delivered ones), not the count delivered: one 3-day timer followed by a
    million 1-second ones held, and wrote every second, a million offsets."""

    def __init__(self, watermark: int = 0) -> None:
        self.watermark = watermark
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __contains__(self, offset: int) -> bool:
        if offset < self.watermark:
            return True
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset < self._ends[i]

    def __len__(self) -> int:
        """How many ranges are held above the watermark."""
        return len(self._starts)

    def add(self, offset: int) -> None:
        self.add_range(offset, offset + 1)

    def add_range(self, start: int, end: int) -> None:
        """Mark [start, end) delivered (merged with the ranges it touches)."""
        start = max(start, self.watermark)
        if start >= end:
            return
        starts, ends = self._starts, self._ends
        lo = bisect.bisect_left(ends, start)  # the first range reaching ``start``
        hi = bisect.bisect_right(starts, end)  # past the last range starting by ``end``
        if lo < hi:
            start, end = min(start, starts[lo]), max(end, ends[hi - 1])
        starts[lo:hi] = [start]
        ends[lo:hi] = [end]
        if starts[0] == self.watermark:
            self.watermark = ends[0]
            del starts[0], ends[0]

    def snapshot(self) -> TimerProgress:
        return TimerProgress(self.watermark, [], list(zip(self._starts, self._ends, strict=True)))

    @classmethod
    def restored(cls, saved: TimerProgress) -> DeliveredOffsets:
        table = cls(saved.watermark)
        for offset in saved.delivered:
            table.add(offset)
        for start, end in saved.delivered_ranges:
            table.add_range(start, end)
        return table


def _recall_key(props: dict[str, str], id_key: str) -> tuple[str, str]:
    """(the real topic, the id under ``id_key``) of a timer record's properties. A marker's id
    may be RocketMQ's delete key ``<topic>+<UNIQ_KEY>`` (TimerMessageStore.buildDeleteKey, as
    RocketMQ's brokers write it) or the bare UNIQ_KEY (as ``actors.client.recall`` writes it)."""
    topic, key = props.get(REAL_TOPIC, ""), props.get(id_key, "")
    if id_key == TIMER_DEL_UNIQKEY and key.startswith(topic + "+"):
        key = key[len(topic) + 1 :]
    return topic, key


class TimerScheduler(GeventActor):
    """Puts timer messages back into their topics when due. See the module docstring."""

    def __init__(self, store: Any, config_dir: str, max_loaded: int = DEFAULT_MAX_LOADED) -> None:
        super().__init__()
        self.store = store
        self.max_loaded = max(1, max_loaded)
        self.path = os.path.join(config_dir, "timerProgress.json")
        self._writer = BackgroundWriter(self.path)
        self._delivered = DeliveredOffsets()
        self._heap: list[Entry] = []
        """The loaded timers: every undelivered record read whose (time, queue offset) is
        below ``_horizon``, but those being put back (at most ``max_loaded``)."""
        self._horizon = NO_HORIZON
        """The records read at or past it are not loaded (the loaded ones were too many)."""
        self._rescan_from: int | None = None
        """The lowest queue offset of a record not loaded (None: all are)."""
        self._rescan: Rescan | None = None
        self._peak = 0
        self._cancelled: set[tuple[str, str]] = set()
        """(topic, UNIQ_KEY) of pending messages a recall marker cancelled (until the marker
        is due): a marker recalls a message of its own topic only."""
        self._wake = gevent.event.Event()
        self._loaded = gevent.event.Event()
        """Set once the loader has read the timer topic to its end: until then nothing is
        delivered, so a recall marker further on is known before its message is due (a
        restart after both were due put the message back from the loader's first batch)."""
        self._dirty = False
        self._running = True
        self._drops = DropWarnings("timer")
        self._refusals = RefusalWarnings("timer")

    def on_start(self) -> None:
        if os.path.exists(self.path):
            self._delivered = DeliveredOffsets.restored(read_json(self.path, TimerProgress))
        gevent.spawn(self._load, self._delivered.watermark)
        gevent.spawn(self._deliver)
        self.send_every(1.0, Persist())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Delivered):
            self._delivered.add(message.queue_offset)
            self._dirty = True
        elif isinstance(message, Persist):
            self._persist()
        else:
            return super().on_receive(message)
        return None

    def pending_count(self) -> int:
        """Timers loaded (in memory) and not delivered; those past the horizon not counted."""
        return len(self._heap)

    def peak_loaded(self) -> int:
        """The most timers loaded at once since the start."""
        return self._peak

    def on_stop(self) -> None:
        self._running = False
        self._wake.set()
        self._persist(sync=True)

    def on_failure(self, *_exc: Any) -> None:
        self._running = False
        self._wake.set()

    def _persist(self, *, sync: bool = False) -> None:
        """Save the progress: in the background (the hub thread never waits for the fsync),
        or at once when stopping."""
        if self._dirty:
            self._dirty = False
            self._writer.request(self._delivered.snapshot)
        if sync:
            self._writer.close()

    def _recalled(self, stored: Any) -> bool:
        """A due record that is a recall marker (done with: its message is due too, and came
        first, having the lower offset), or a message one cancelled: neither is put back."""
        if not self._cancelled and TIMER_DEL_UNIQKEY not in stored.properties:
            return False  # no recall pending: no properties to decode
        props = decode_properties(stored.properties)
        if TIMER_DEL_UNIQKEY in props:
            self._cancelled.discard(_recall_key(props, TIMER_DEL_UNIQKEY))
            return True
        key = _recall_key(props, UNIQ_KEY)
        if key in self._cancelled:
            self._cancelled.discard(key)
            logger.info("timer: {} of {} recalled before it was due", key[1], key[0])
            return True
        return False

    # -- worker greenlets (edge code: they may wait on the store) -----------------------------

    def _load(self, offset: int) -> None:
        """Follow the timer topic: load every undelivered message due before the horizon,
        and re-read the ones past it (``Rescan``) when the loaded ones run low, a batch at a
        time between the batches of new ones (a timer sent meanwhile is not held up)."""
        while self._running:
            try:
                if self._rescan is None and self._rescan_due():
                    self._rescan = Rescan(self._horizon, self._rescan_from or 0, offset)
                    self._horizon, self._rescan_from = NO_HORIZON, None
                if self._rescan is not None:
                    self._rescan_step(self._rescan)
                    following = self._follow(offset)
                    offset = offset if following is None else following
                    continue
                following = self._follow(offset)
                if following is None:
                    self.store.wait_arrival(TIMER_TOPIC, 0, offset, IDLE_WAIT_S).get(
                        timeout=IDLE_WAIT_S + CALL_TIMEOUT_S
                    )
                    continue
                offset = following
            except (pykka.Timeout, pykka.ActorDeadError) as exc:
                logger.debug("timer loader: {}", exc)
                gevent.sleep(RETRY_S)
            except Exception:
                logger.exception("timer loader failed; retrying")
                gevent.sleep(RETRY_S)

    def _follow(self, offset: int) -> int | None:
        """Take the next batch of new records from ``offset``: the offset after it, or None
        at the topic's end (reached once: deliveries may begin)."""
        got = self._read(offset)
        if got is None:
            if not self._loaded.is_set():
                self._loaded.set()
                self._wake.set()
            return None
        records, offset = got
        for raw, queue_offset in records:
            if queue_offset not in self._delivered:
                self._take(decode_record(raw), queue_offset, None)
        return offset

    def _read(self, offset: int) -> tuple[list[tuple[bytes, int]], int] | None:
        """The timer topic's records from ``offset`` (raw, queue offset) and the offset after
        them, or None at its end."""
        result = self.store.get_messages("", TIMER_TOPIC, 0, offset, BATCH, None, None).get(
            timeout=CALL_TIMEOUT_S
        )
        if result.status is GetStatus.FOUND and result.messages:
            offsets = result.queue_offsets
            return list(zip(result.messages, offsets, strict=True)), offsets[-1] + 1
        if result.status in (GetStatus.OFFSET_TOO_SMALL, GetStatus.OFFSET_OVERFLOW_BADLY):
            return [], result.next_begin_offset
        if result.status is GetStatus.MESSAGE_WAS_REMOVING and result.next_begin_offset > offset:
            # damaged records the queue skips (or ones retention removed): past them, counted
            # delivered (the watermark passes them); the same offset again answered at once,
            # a loop without pause
            for skipped in range(offset, result.next_begin_offset):
                if skipped not in self._delivered:
                    self.actor_ref.tell(Delivered(skipped))
            return [], result.next_begin_offset
        return None

    def _rescan_due(self) -> bool:
        """Timers were left unloaded (past the horizon) and the loaded ones ran low."""
        return self._rescan_from is not None and len(self._heap) <= self.max_loaded // 2

    def _rescan_step(self, scan: Rescan) -> None:
        """Re-read one batch of the records a rescan covers, loading those past its floor
        (not loaded before) up to the new horizon; at the end, deliveries past the floor
        may go on."""
        got = self._read(scan.offset) if scan.offset < scan.end else None
        if got is not None:
            records, scan.offset = got
            for raw, queue_offset in records:
                if queue_offset < scan.end and queue_offset not in self._delivered:
                    self._take(decode_record(raw), queue_offset, scan.floor)
            if scan.offset < scan.end:
                return
        self._rescan = None
        self._wake.set()

    def _take(self, stored: Any, queue_offset: int, floor: tuple[int, int] | None) -> None:
        """A timer record read: loaded (onto the heap) when due before the horizon, else left
        for a rescan; dropped (and marked delivered) when it cannot be put back. A rescan
        passes the records below its ``floor``: loaded before."""
        props = decode_properties(stored.properties)
        problem = put_back_problem(props)
        try:
            due = int(props[TIMER_OUT_MS])
        except (KeyError, ValueError):
            due = 0
            problem = problem or f"its TIMER_OUT_MS {props.get(TIMER_OUT_MS)!r} is no time"
        when = min(due, stored.store_timestamp + ROLL_WINDOW_MS)
        if floor is not None and (when, queue_offset) < floor:
            return
        if problem is not None:
            self._drops.dropped(f"offset {queue_offset}", problem)
            self.actor_ref.tell(Delivered(queue_offset))
            return
        if TIMER_DEL_UNIQKEY in props:  # a recall: cancels that message (loaded or not)
            self._cancelled.add(_recall_key(props, TIMER_DEL_UNIQKEY))
        if (when, queue_offset) >= self._horizon:
            self._left(queue_offset)
            return
        heapq.heappush(self._heap, (when, queue_offset, stored.physical_offset, due, when))
        if len(self._heap) > self.max_loaded:
            self._unload()
        self._peak = max(self._peak, len(self._heap))
        self._wake.set()

    def _left(self, queue_offset: int) -> None:
        """A record not loaded: a rescan starts at it or before."""
        if self._rescan_from is None or queue_offset < self._rescan_from:
            self._rescan_from = queue_offset

    def _unload(self) -> None:
        """Too many loaded: keep the earliest three quarters (by their record's time), the
        horizon lowered to the first of the others, which a rescan loads again."""
        keep = self.max_loaded - self.max_loaded // 4
        entries = sorted(self._heap, key=_record_key)
        for entry in entries[keep:]:
            self._left(entry[1])
        self._horizon = min(self._horizon, _record_key(entries[keep]))
        del entries[keep:]
        heapq.heapify(entries)
        self._heap = entries

    def _held_back(self) -> bool:
        """A rescan is loading records due after its floor: the first loaded one may not be
        the first due."""
        scan = self._rescan
        return scan is not None and _record_key(self._heap[0]) >= scan.floor

    def _deliver(self) -> None:
        me = self.actor_ref
        while self._running:
            if not self._heap or not self._loaded.is_set() or self._held_back():
                self._wake.clear()
                self._wake.wait(IDLE_WAIT_S)
                continue
            when = self._heap[0][0]
            wait_s = (when - time.time() * 1000) / 1000
            if wait_s > 0:
                self._wake.clear()
                self._wake.wait(min(wait_s, IDLE_WAIT_S))
                continue
            _when, queue_offset, physical, due, key_when = heapq.heappop(self._heap)
            try:
                done = self._put_back(queue_offset, physical, due)
            except (pykka.Timeout, pykka.ActorDeadError) as exc:
                logger.debug("timer delivery: {}", exc)
                done = False
            except Exception:  # (an I/O error): kept and retried, as the delay Scheduler does
                logger.exception("timer: delivery of offset {} failed; retrying", queue_offset)
                done = False
            if not done:
                # retried after the others due meanwhile: a refusal that holds for one
                # message only (its size) kept every later timer waiting behind it
                retry_at = int(time.time() * 1000 + RETRY_S * 1000)
                retry = (max(_when, retry_at), queue_offset, physical, due, key_when)
                heapq.heappush(self._heap, retry)
                gevent.sleep(RETRY_S)
                continue
            try:
                me.tell(Delivered(queue_offset))
            except pykka.ActorDeadError:
                return

    def _put_back(self, queue_offset: int, physical: int, due: int) -> bool:
        """Put the record of a heap entry whose time came back into its topic — or, not due
        yet, into the timer topic again (rolled) — or drop it; False when the store refused
        the put (the entry is kept and retried)."""
        raw = self.store.read_message_bytes(physical)
        stored = decode_record(raw) if raw is not None else None
        if stored is None:
            logger.error("timer: record of offset {} is gone; skipped", queue_offset)
            return True
        if due > time.time() * 1000:
            record = rolled(stored)
        elif self._recalled(stored):
            return True  # a recall marker, or the message it recalled: nothing to put back
        else:
            try:
                record = from_timer(stored)
            except Undeliverable as exc:  # (``_take`` dropped these as read: a second wall)
                self._drops.dropped(f"offset {queue_offset}", str(exc))
                return True
        put = self.store.put([record]).get(timeout=CALL_TIMEOUT_S + 10)
        if put.status in NEVER_STORED:
            why = f"refused {put.status.value}: {put.reason}"
            self._drops.dropped(f"offset {queue_offset}", why)
            return True
        if put.status not in STORED:
            self._refusals.refused(f"offset {queue_offset}", put.status.value, put.reason)
            return False
        return True
