"""Scheduler: delivers delayed messages when due (RocketMQ's ScheduleMessageService).

Messages:
- ``Progress(level, offset)`` (tell, from its level workers): the schedule queue of ``level`` is
  delivered up to ``offset`` (exclusive).
- ``Persist`` (its own timer, every second): write progress if it moved, in the background
  (``BackgroundWriter``: the fsync runs in the thread pool, never on the hub); at stop, at once.
- ``progress()`` (proxy) -> {level: next offset}.

State owned: one worker greenlet per delay level and the progress table, persisted atomically to
``<store>/config/delayOffset.json`` (RocketMQ's file name and shape). Only a master runs one.

Durability point and guarantees: a message is put back into its real topic only once
``now >= storeTimestamp + delay`` (never early; a store timestamp further ahead than the delay,
the clock having been set back since, is due at once, as in RocketMQ), and progress moves past
it only after that put was stored, so a crash re-delivers (at-least-once) and never loses one.
A put that fails is retried every second (WARNINGs: one at once, then at most one every 10 s);
the queue does not move past it, unless the store refused it for good (MESSAGE_ILLEGAL,
PROPERTIES_SIZE_EXCEEDED: ``NEVER_STORED``), which drops it as below. A record that names
no topic it may be put back into (no REAL_TOPIC, the schedule topic itself, ...:
``delay.put_back_problem``) is dropped with a WARNING (at most one every 10 s) and the queue
moves past it: put back into
SCHEDULE_TOPIC_XXXX it would come round again every second, forever.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.broker.delay import DropWarnings, RefusalWarnings, Undeliverable, from_schedule
from actors.broker.store_results import GetStatus, PutStatus
from runtime.actor import GeventActor
from runtime.store.background import BackgroundWriter
from runtime.store.configfile import read_json
from runtime.store.record import decode_record
from runtime.store.topic_names import SCHEDULE_TOPIC

STORED = (
    PutStatus.PUT_OK,
    PutStatus.FLUSH_DISK_TIMEOUT,
    PutStatus.FLUSH_SLAVE_TIMEOUT,
    PutStatus.SLAVE_NOT_AVAILABLE,
)
NEVER_STORED = (PutStatus.MESSAGE_ILLEGAL, PutStatus.PROPERTIES_SIZE_EXCEEDED)
"""Refusals a retry cannot change (the record breaks a limit, e.g. ``maxMessageSize`` lowered
since it was parked): the record is dropped, as RocketMQ 5's timer answers them PUT_NO_RETRY;
retried, it held its delay level (the timer: every timer due after it) for ever."""
BATCH = 32
IDLE_WAIT_S = 1.0
RETRY_S = 1.0
CALL_TIMEOUT_S = 10.0


def corrected_due_ms(due_ms: int, delay_ms: int) -> int:
    """When a parked record is due: ``storeTimestamp + delay``, or now when that is further
    ahead than the delay itself (a store timestamp in the future: the clock was set back since;
    RocketMQ's correctDeliverTimestamp). It waited for the clock to catch up: a message stored
    before a one-hour step back was held an hour longer, and the level's later ones behind it."""
    now_ms = int(time.time() * 1000)
    return now_ms if due_ms > now_ms + delay_ms else due_ms


class Progress(msgspec.Struct, frozen=True, tag=True):
    level: int
    offset: int


class Persist(msgspec.Struct, frozen=True, tag=True):
    pass


class DelayOffsets(msgspec.Struct, rename="camel"):
    offset_table: dict[str, int] = {}


class Scheduler(GeventActor):
    """Puts delayed messages back into their topics when due. See the module docstring."""

    def __init__(self, store: Any, config_dir: str, levels_ms: tuple[int, ...]) -> None:
        super().__init__()
        self.store = store
        self.path = os.path.join(config_dir, "delayOffset.json")
        self._writer = BackgroundWriter(self.path)
        self.levels_ms = levels_ms
        self._progress: dict[int, int] = {}
        self._dirty = False
        self._workers: list[gevent.Greenlet] = []
        self._running = True
        self._drops = DropWarnings("scheduler")
        self._refusals = RefusalWarnings("scheduler")

    def on_start(self) -> None:
        saved = read_json(self.path, DelayOffsets) if os.path.exists(self.path) else None
        table = saved.offset_table if saved is not None else {}
        for level in range(1, len(self.levels_ms) + 1):
            self._progress[level] = int(table.get(str(level), 0))
        for level in self._progress:
            self._workers.append(gevent.spawn(self._work, level, self._progress[level]))
        self.send_every(1.0, Persist())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Progress):
            if message.offset > self._progress.get(message.level, 0):
                self._progress[message.level] = message.offset
                self._dirty = True
        elif isinstance(message, Persist):
            self._persist()
        else:
            return super().on_receive(message)
        return None

    def progress(self) -> dict[int, int]:
        return dict(self._progress)

    def on_stop(self) -> None:
        self._running = False
        self._persist(sync=True)

    def on_failure(self, *_exc: Any) -> None:
        self._running = False

    def _persist(self, *, sync: bool = False) -> None:
        """Save the progress: in the background (the hub thread never waits for the fsync),
        or at once when stopping."""
        if self._dirty:
            self._dirty = False
            self._writer.request(DelayOffsets({str(k): v for k, v in self._progress.items()}))
        if sync:
            self._writer.close()

    # -- one worker greenlet per level: edge code, it may wait on the store -------------------

    def _work(self, level: int, offset: int) -> None:
        delay_ms = self.levels_ms[level - 1]
        queue_id = level - 1
        me = self.actor_ref
        while self._running:
            try:
                offset = self._deliver_some(level, queue_id, delay_ms, offset, me)
            except (pykka.Timeout, pykka.ActorDeadError) as exc:
                logger.debug("scheduler level {}: {}", level, exc)
                gevent.sleep(RETRY_S)
            except Exception:
                logger.exception("scheduler level {} failed; retrying", level)
                gevent.sleep(RETRY_S)

    def _deliver_some(
        self, level: int, queue_id: int, delay_ms: int, offset: int, me: pykka.ActorRef[Any]
    ) -> int:
        result = self.store.get_messages(
            "", SCHEDULE_TOPIC, queue_id, offset, BATCH, None, None
        ).get(timeout=CALL_TIMEOUT_S)
        if result.status is not GetStatus.FOUND or not result.messages:
            if result.status in (GetStatus.OFFSET_TOO_SMALL, GetStatus.OFFSET_OVERFLOW_BADLY):
                return result.next_begin_offset
            skipped = result.status is GetStatus.MESSAGE_WAS_REMOVING
            if skipped and result.next_begin_offset > offset:
                # damaged records the queue skips (or ones retention removed): past them; the
                # same offset again answered at once, a loop without pause
                me.tell(Progress(level, result.next_begin_offset))
                return result.next_begin_offset
            self.store.wait_arrival(SCHEDULE_TOPIC, queue_id, offset, IDLE_WAIT_S).get(
                timeout=IDLE_WAIT_S + CALL_TIMEOUT_S
            )
            return offset
        for raw, queue_offset in zip(result.messages, result.queue_offsets, strict=True):
            stored = decode_record(raw)
            try:
                record = from_schedule(stored)
            except Undeliverable as exc:
                self._drops.dropped(f"level {level} offset {queue_offset}", str(exc))
                offset = queue_offset + 1
                me.tell(Progress(level, offset))
                continue
            due_ms = corrected_due_ms(stored.store_timestamp + delay_ms, delay_ms)
            while self._running:
                wait_s = (due_ms - time.time() * 1000) / 1000
                if wait_s <= 0:
                    break
                gevent.sleep(min(wait_s, IDLE_WAIT_S))
            if not self._running:
                return offset
            while self._running:
                put = self.store.put([record]).get(timeout=CALL_TIMEOUT_S + 10)
                if put.status in STORED:
                    break
                if put.status in NEVER_STORED:
                    where = f"level {level} offset {queue_offset}"
                    self._drops.dropped(where, f"refused {put.status.value}: {put.reason}")
                    break
                self._refusals.refused(
                    f"level {level} offset {queue_offset}", put.status.value, put.reason
                )
                gevent.sleep(RETRY_S)
            offset = queue_offset + 1
            me.tell(Progress(level, offset))
        return offset
