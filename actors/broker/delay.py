"""Message rewrites for delayed delivery (RocketMQ's delay levels and timer messages).

A message with ``DELAY`` (level 1..N) is stored in ``SCHEDULE_TOPIC_XXXX`` queue ``level - 1``
with its real topic and queue in REAL_TOPIC / REAL_QID; the store dispatches it with the delivery
time as its tag code, and the Scheduler puts it back into the real topic when due.

A timer message (TIMER_DELIVER_MS absolute, or TIMER_DELAY_MS / TIMER_DELAY_SEC relative) is
stored in ``rmq_sys_wheel_timer`` with its due time in TIMER_OUT_MS; the TimerScheduler puts it
back when due. Millisecond precision, up to 3 days ahead (RocketMQ's default maximum).

A parked record that names no REAL_TOPIC, or one only the broker writes (the schedule or timer
topic itself, RocketMQ's not-allowed-send set), or an illegal one, or a REAL_QID that is not a
queue id, cannot be put back: ``from_schedule`` / ``from_timer`` raise ``Undeliverable`` and
the schedulers drop it with a WARNING (``DropWarnings``, at most one every 10 s). Put back into
its own topic it would be parked again and again, forever (a hostile-input probe's 1,000 such
messages in SCHEDULE_TOPIC_XXXX: 2,248 re-puts in 10 s, a master at 71 % CPU, and the log kept
growing). The send path refuses clients' messages to those topics; this is the second wall.
"""

from __future__ import annotations

import re
import time

import msgspec
from loguru import logger

from runtime.remoting.properties import (
    DELAY,
    REAL_QID,
    REAL_TOPIC,
    TIMER_DEL_UNIQKEY,
    TIMER_DELAY_MS,
    TIMER_DELAY_SEC,
    TIMER_DELIVER_MS,
    decode_properties,
    encode_properties,
)
from runtime.store.record import (
    TRANSACTION_MASK,
    TRANSACTION_PREPARED_TYPE,
    TRANSACTION_ROLLBACK_TYPE,
    PutRecord,
    StoredRecord,
)
from runtime.store.topic_names import (
    SCHEDULE_TOPIC,
    SEND_FORBIDDEN_TOPICS,
    TIMER_TOPIC,
    topic_problem,
)

WARN_EVERY_S = 10.0
"""Drops of undeliverable records are logged at most this often (with their count)."""
MAX_QUEUE_ID = 0x7FFFFFFF


class Undeliverable(ValueError):
    """A parked record that cannot be put back into a topic (see the module docstring)."""


def put_back_problem(props: dict[str, str]) -> str | None:
    """Why a parked record of properties ``props`` cannot be put back, or None."""
    topic = props.get(REAL_TOPIC)
    if not topic:
        return "it names no REAL_TOPIC"
    if topic in SEND_FORBIDDEN_TOPICS:
        return f"its REAL_TOPIC {topic} is one only the broker writes"
    problem = topic_problem(topic)
    if problem is not None:
        return f"its REAL_TOPIC: {problem}"
    try:
        queue_id = int(props.get(REAL_QID, "0"))
    except ValueError:
        queue_id = -1
    if not 0 <= queue_id <= MAX_QUEUE_ID:
        return f"its REAL_QID {props.get(REAL_QID, '')[:40]!r} is not a queue id"
    return None


class _CountedWarnings:
    """One WARNING at once, then at most one every ``WARN_EVERY_S`` counting the events since
    (a flood of them is not a flood of lines)."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.count = 0
        self._warned_at = float("-inf")

    def _due(self) -> int | None:
        """Count one event; the count to log now, or None (not yet)."""
        self.count += 1
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY_S:
            return None
        count, self.count, self._warned_at = self.count, 0, now
        return count


class DropWarnings(_CountedWarnings):
    """Logs the parked records a scheduler drops."""

    def dropped(self, where: str, why: str) -> None:
        count = self._due()
        if count is not None:
            logger.warning(
                "{}: dropped {} parked record(s) that cannot be put back since the last "
                "warning; the latest, {}: {}",
                self.who,
                count,
                where,
                why,
            )


class RefusalWarnings(_CountedWarnings):
    """Logs the re-puts the store refused (a scheduler keeps the record and retries), so a
    store refusing for long (minInSyncReplicas while a slave is down, a full disk) is not a
    line per delay level and retry."""

    def refused(self, where: str, status: str, reason: str | None) -> None:
        count = self._due()
        if count is not None:
            logger.warning(
                "{}: {} re-put(s) refused since the last warning (each kept and retried); the "
                "latest, {}: {} {}",
                self.who,
                count,
                where,
                status,
                reason,
            )


def delay_level(record: PutRecord) -> int:
    """The record's delay level (0: none). Prepared/rolled-back transaction records: 0."""
    tran = record.sys_flag & TRANSACTION_MASK
    if tran in (TRANSACTION_PREPARED_TYPE, TRANSACTION_ROLLBACK_TYPE):
        return 0
    if DELAY not in record.properties:
        return 0
    try:
        return max(0, int(decode_properties(record.properties).get(DELAY, "0")))
    except ValueError:
        return 0


def to_schedule(record: PutRecord, level: int, max_level: int) -> PutRecord:
    """Park ``record`` in the schedule topic's queue for ``level`` (capped at ``max_level``)."""
    level = min(level, max_level)
    props = decode_properties(record.properties)
    props[REAL_TOPIC] = record.topic
    props[REAL_QID] = str(record.queue_id)
    props[DELAY] = str(level)
    return msgspec.structs.replace(
        record, topic=SCHEDULE_TOPIC, queue_id=level - 1, properties=encode_properties(props)
    )


def copy_record(stored: StoredRecord, props: dict[str, str], **changes: object) -> PutRecord:
    """A new record carrying ``stored``'s body, flags and born fields, with ``props`` as its
    properties and ``changes`` applied (topic, queue_id, sys_flag, reconsume_times, ...)."""
    fields: dict[str, object] = {
        "topic": stored.topic,
        "queue_id": stored.queue_id,
        "body": stored.body,
        "properties": encode_properties(props),
        "flag": stored.flag,
        "sys_flag": stored.sys_flag,
        "born_timestamp": stored.born_timestamp,
        "born_host": stored.born_host,
        "born_port": stored.born_port,
        "reconsume_times": stored.reconsume_times,
        "prepared_transaction_offset": stored.prepared_transaction_offset,
    }
    fields.update(changes)
    return PutRecord(**fields)  # type: ignore[arg-type]


def from_schedule(stored: StoredRecord) -> PutRecord:
    """The record to put back into its real topic once its delay has passed; Undeliverable
    when it names none it may go to (``put_back_problem``)."""
    props = decode_properties(stored.properties)
    problem = put_back_problem(props)
    if problem is not None:
        raise Undeliverable(problem)
    props.pop(DELAY, None)
    return copy_record(
        stored,
        props,
        topic=props[REAL_TOPIC],
        queue_id=int(props.get(REAL_QID, "0")),
    )


TIMER_OUT_MS = "TIMER_OUT_MS"
TIMER_MAX_DELAY_MS = 3 * 24 * 3600 * 1000
"""RocketMQ's default timerMaxDelaySec: 3 days."""


class TimerError(ValueError):
    """A timer property that cannot be honoured (the broker answers MESSAGE_ILLEGAL)."""


INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_JAVA_INT = re.compile(r"[+-]?[0-9]+")
"""What Java's Integer.parseInt / Long.parseLong take (ASCII digits only: Python's int() also
takes spaces, underscores and other scripts' digits)."""


def _java_int(text: str, bounds: tuple[int, int]) -> int:
    """``text`` read as RocketMQ reads a timer property; TimerError where it fails."""
    if len(text) > 20 or not _JAVA_INT.fullmatch(text) or not bounds[0] <= int(text) <= bounds[1]:
        raise TimerError("timer property is not an integer")
    return int(text)


def timer_due_ms(record: PutRecord, now_ms: int) -> int | None:
    """When a timer message is due, or None for an ordinary message. RocketMQ's precedence and
    parsing: TIMER_DELAY_SEC (an int, seconds from now), else TIMER_DELAY_MS (an int, ms from
    now), else TIMER_DELIVER_MS (a long, ms since the epoch). Raises TimerError for a value
    that is not such an integer, or one past the maximum delay."""
    if "TIMER_" not in record.properties:
        return None
    props = decode_properties(record.properties)
    if TIMER_DELAY_SEC in props:
        due = now_ms + _java_int(props[TIMER_DELAY_SEC], INT32) * 1000
    elif TIMER_DELAY_MS in props:
        due = now_ms + _java_int(props[TIMER_DELAY_MS], INT32)
    elif TIMER_DELIVER_MS in props:
        due = _java_int(props[TIMER_DELIVER_MS], INT64)
    else:
        return None
    if due - now_ms > TIMER_MAX_DELAY_MS:
        raise TimerError(
            f"timer message exceeds the maximum delay of {TIMER_MAX_DELAY_MS // 1000} s"
        )
    return due


def to_timer(record: PutRecord, due_ms: int) -> PutRecord:
    """Park ``record`` in the timer topic until ``due_ms``."""
    props = decode_properties(record.properties)
    props[REAL_TOPIC] = record.topic
    props[REAL_QID] = str(record.queue_id)
    props[TIMER_OUT_MS] = str(due_ms)
    return msgspec.structs.replace(
        record, topic=TIMER_TOPIC, queue_id=0, properties=encode_properties(props)
    )


def from_timer(stored: StoredRecord) -> PutRecord:
    """The record to put back into its real topic once due (timer request properties removed,
    so it is never parked again); Undeliverable as ``from_schedule``."""
    return without_timer(from_schedule(stored))


TIMER_REQUEST_KEYS = (TIMER_DELIVER_MS, TIMER_DELAY_MS, TIMER_DELAY_SEC)


def without_timer(record: PutRecord) -> PutRecord:
    """``record`` without the timer request properties (TIMER_DELIVER_MS / _DELAY_MS / _SEC)."""
    if "TIMER_" not in record.properties:
        return record
    props = decode_properties(record.properties)
    for key in TIMER_REQUEST_KEYS:
        props.pop(key, None)
    return msgspec.structs.replace(record, properties=encode_properties(props))


def schedule(record: PutRecord, max_level: int, now_ms: int, *, timers: bool = True) -> PutRecord:
    """``record`` as it must be stored: parked for its delay level or timer, or unchanged. A
    delay level wins over timer properties, which are dropped (RocketMQ's checkIfTimerMessage).

    Half (prepared) and rolled-back transaction records are never parked: their delay applies
    to the COMMIT record. Raises TimerError for a timer that cannot be honoured, or for any
    timer when ``timers`` is off (RocketMQ's ``timerWheelEnable=false``)."""
    level = delay_level(record)
    if level:  # a delay level wins over a timer: RocketMQ drops the timer properties
        return to_schedule(without_timer(record), level, max_level)
    tran = record.sys_flag & TRANSACTION_MASK
    if tran in (TRANSACTION_PREPARED_TYPE, TRANSACTION_ROLLBACK_TYPE):
        return record
    due = timer_due_ms(record, now_ms)
    if due is not None and not timers:
        raise TimerError("accurate timer message is not enabled, timerWheelEnable is false")
    if due is not None and due > now_ms:
        return to_timer(record, due)
    if TIMER_DEL_UNIQKEY in record.properties:
        raise TimerError("recall marker past its due time: the message was delivered")
    return record
