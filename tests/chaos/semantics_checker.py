"""Checkers of the message-semantics scenarios (R18 ordered messages, R19 retry / delay /
dead-letter topics): pure functions over a history (``tests.chaos.history``), like
``tests.chaos.checker``'s.

- ``key_order``: OpenChaos's OrderChecker, per sharding key (definition in its docstring);
- ``orderly_queue_order``: an orderly push consumer's reads of each queue are contiguous and
  increasing, except that a queue (re)assigned to the consumer may restart lower once;
- ``fates``: where each sent value of R19 ended: consumed successfully, dead-lettered, both,
  neither, and whether that is the end its plan asked for;
- ``early_deliveries`` / ``early_retries``: deliveries of a delayed message before its due time,
  and broker redeliveries (``%RETRY%`` topic) before the retry delay had passed.

Reads carry what these need in their entry's ``data`` (``tests.chaos.semantics_workload``):
``outcome`` (``ok`` / ``fail``: what the listener answered), ``born`` (the message's born
timestamp, ms), ``store`` (its store timestamp, ms), ``reconsume`` (reconsume times) and
``retry`` (delivered from the group's retry topic).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Sequence

import msgspec

from tests.chaos.checker import observations, sends
from tests.chaos.history import READ_FS, Entry

# -- R18: order per sharding key ---------------------------------------------------------------


class KeyOrderViolation(msgspec.Struct, frozen=True):
    key: str
    earlier: str  # acked first ...
    later: str  # ... acked after it, yet first consumed before it
    earlier_first_read: int  # history index of each value's first consumption
    later_first_read: int


class KeyOrder(msgspec.Struct, frozen=True):
    violations: list[KeyOrderViolation]
    keys: dict[str, int]  # key -> acked values that were consumed (and so compared)
    unconsumed: dict[str, int]  # key -> acked values never consumed (loss: judged elsewhere)
    repeated: int  # consumptions of a value already consumed (redeliveries, allowed)


def key_order(
    history: Sequence[Entry], groups: Iterable[str], key: Callable[[str], str]
) -> KeyOrder:
    """OpenChaos's OrderChecker, per sharding key ``key(value)``.

    Definition. For a key k let A(k) be the values of k that were acked (``ok``), in ack order
    (the order of their completions in the history: for one producer doing sync sends, its
    send order), and C(k) the values of k the consumers of ``groups`` consumed, in consumption
    order (history order; duplicates and redeliveries included). Let F(k) be C(k) with every
    value kept only at its first occurrence (first-seen order), and A'(k) the values of A(k)
    that occur in C(k). The order holds for k iff A'(k) is a subsequence of F(k): any two acked
    values a, b of k with a acked before b were first consumed in that order. Duplicates and
    re-delivery (after a restart, a consumer may read values again) are allowed: they never
    change F(k); values in C(k) that were not acked (indeterminate sends that were stored) may
    appear anywhere. Acked values never consumed are counted in ``unconsumed`` and left to the
    loss checks. A violation names two consecutive values of A'(k) out of order in F(k)."""
    acked = sorted((s for s in sends(history).values() if s.type == "ok"), key=lambda s: s.index)
    first: dict[str, int] = {}
    repeated = 0
    for o in observations(history, groups):
        if o.read.value in first:
            repeated += 1
        else:
            first[o.read.value] = o.index
    per_key: dict[str, list[str]] = collections.defaultdict(list)
    unconsumed: collections.Counter[str] = collections.Counter()
    for s in acked:
        k = key(s.value)
        if s.value in first:
            per_key[k].append(s.value)
        else:
            unconsumed[k] += 1
    violations = []
    for k, values in sorted(per_key.items()):
        for prev, cur in itertools.pairwise(values):
            if first[cur] < first[prev]:
                violations.append(KeyOrderViolation(k, prev, cur, first[prev], first[cur]))
    return KeyOrder(
        violations=violations,
        keys={k: len(v) for k, v in sorted(per_key.items())},
        unconsumed=dict(sorted(unconsumed.items())),
        repeated=repeated,
    )


# -- R18: an orderly consumer's reads of each queue ----------------------------------------------


class OrderlyAnomaly(msgspec.Struct, frozen=True):
    process: str
    queue: str
    prev_offset: int
    offset: int
    index: int  # history entry of the later read


class OrderlyOrder(msgspec.Struct, frozen=True):
    skip: list[OrderlyAnomaly]  # forward past the next offset (never excused)
    back: list[OrderlyAnomaly]  # back to or before the previous offset, not after a reassignment
    restarts: list[OrderlyAnomaly]  # back, as the first read after the queue was (re)assigned
    reassignments: int  # ``assign`` events that added queues


def orderly_queue_order(history: Sequence[Entry], groups: Iterable[str]) -> OrderlyOrder:
    """Per consumer process and queue, in history order (an orderly consumer's listener calls
    for one queue are serial, each recorded before it returns): every read is at the offset
    after the previous read of that queue. Exception: the first read of a queue after an
    ``assign`` event of that process with the queue in ``data["added"]`` (recorded before the
    queue's puller starts) may go back — the new puller starts from the committed offset,
    which may be behind what was consumed (uncommitted progress, read again: duplicates);
    those are ``restarts``. A forward jump is never excused: with one consumer nothing else
    consumed the offsets skipped. Reads of other modes count too (``f`` read or poll)."""
    wanted = set(groups)
    last: dict[tuple[str, str], int] = {}
    reset: set[tuple[str, str]] = set()
    skip: list[OrderlyAnomaly] = []
    back: list[OrderlyAnomaly] = []
    restarts: list[OrderlyAnomaly] = []
    reassignments = 0
    for e in history:
        if e.type == "event" and e.f == "assign":
            added = (e.data or {}).get("added") or []
            if added:
                reassignments += 1
            for q in added:
                reset.add((e.process, str(q)))
            continue
        if e.type != "ok" or e.f not in READ_FS or not e.reads or (e.group or "") not in wanted:
            continue
        for r in e.reads:
            k = (e.process, r.queue)
            prev = last.get(k)
            if prev is not None and r.offset != prev + 1:
                anomaly = OrderlyAnomaly(e.process, r.queue, prev, r.offset, e.index)
                if r.offset > prev + 1:
                    skip.append(anomaly)
                elif k in reset:
                    restarts.append(anomaly)
                else:
                    back.append(anomaly)
            reset.discard(k)
            last[k] = r.offset
    return OrderlyOrder(skip, back, restarts, reassignments)


# -- R19: where each message ended ---------------------------------------------------------------


class Fates(msgspec.Struct, frozen=True):
    consumed: dict[str, int]  # value -> successful consumptions (listener said ok)
    failed: dict[str, int]  # value -> failed deliveries (listener said fail)
    dead: dict[str, int]  # value -> dead-letter queue offsets holding it
    both: list[str]  # consumed successfully and dead-lettered
    lost: list[str]  # acked, neither consumed successfully nor dead-lettered
    wrong_end: dict[str, str]  # acked value whose end is not its plan's: value -> what happened
    dead_too_soon: dict[str, int]  # dead-lettered after fewer failed deliveries than planned


def fates(
    history: Sequence[Entry],
    group: str,
    dlq_group: str,
    plan: Callable[[str], str],
    *,
    deliveries_before_dlq: int,
) -> Fates:
    """Each value's end: consumed successfully (a read of ``group`` whose listener said ok)
    and / or dead-lettered (a distinct ``queue@offset`` of the dead-letter queue read by
    ``dlq_group``). Every acked value must have exactly one end (``both`` and ``lost`` empty),
    and it must be its plan's (``plan(value)``: ``"dlq"`` for a value the listener always
    fails, anything else for one that ends consumed). Duplicates (consumed twice, or two
    dead-letter records) are allowed and counted. A dead-lettered value must have failed
    ``deliveries_before_dlq`` times (the first delivery and max reconsume times retries)."""
    consumed: collections.Counter[str] = collections.Counter()
    failed: collections.Counter[str] = collections.Counter()
    dead_at: dict[str, set[tuple[str, int]]] = collections.defaultdict(set)
    for e in history:
        if e.type != "ok" or e.f not in READ_FS or not e.reads:
            continue
        if e.group == group:
            outcome = (e.data or {}).get("outcome", "ok")
            for r in e.reads:
                (consumed if outcome == "ok" else failed)[r.value] += 1
        elif e.group == dlq_group:
            for r in e.reads:
                dead_at[r.value].add((r.queue, r.offset))
    dead = {v: len(locs) for v, locs in dead_at.items()}
    acked = [v for v, s in sends(history).items() if s.type == "ok"]
    both = sorted(v for v in set(consumed) | set(dead) if v in consumed and v in dead)
    lost = sorted(v for v in acked if v not in consumed and v not in dead)
    wrong: dict[str, str] = {}
    for v in acked:
        planned_dead = plan(v) == "dlq"
        if planned_dead and v in consumed:
            wrong[v] = f"planned dlq, consumed {consumed[v]}x"
        elif not planned_dead and v in dead and v not in consumed:
            wrong[v] = f"planned {plan(v)}, dead-lettered (failed {failed[v]}x)"
    too_soon = {
        v: failed[v] for v in sorted(dead) if plan(v) == "dlq" and failed[v] < deliveries_before_dlq
    }
    return Fates(
        consumed=dict(sorted(consumed.items())),
        failed=dict(sorted(failed.items())),
        dead=dict(sorted(dead.items())),
        both=both,
        lost=lost,
        wrong_end=dict(sorted(wrong.items())),
        dead_too_soon=too_soon,
    )


# -- R19: delays -------------------------------------------------------------------------------


class EarlyDelivery(msgspec.Struct, frozen=True):
    value: str
    queue: str
    offset: int
    due: float  # wall seconds
    read: float  # wall seconds
    early_s: float
    index: int


class DelayMargins(msgspec.Struct, frozen=True):
    early: list[EarlyDelivery]
    checked: int  # deliveries compared
    min_margin_s: float | None  # smallest read - due (negative: early)
    max_margin_s: float | None  # largest read - due (lateness)
    unexplained: list[str] = []  # retry deliveries with no failed delivery before them


def _reads_with_data(history: Sequence[Entry], group: str) -> list[tuple[Entry, int]]:
    out = []
    for e in history:
        if e.type == "ok" and e.f in READ_FS and e.reads and e.group == group and e.data:
            out.extend((e, i) for i in range(len(e.reads)))
    return out


def _margins(
    early: list[EarlyDelivery], margins: list[float], unexplained: list[str] | None = None
) -> DelayMargins:
    return DelayMargins(
        early=early,
        checked=len(margins),
        min_margin_s=round(min(margins), 3) if margins else None,
        max_margin_s=round(max(margins), 3) if margins else None,
        unexplained=unexplained or [],
    )


def early_deliveries(
    history: Sequence[Entry], group: str, delay_s: Callable[[str], float], *, tolerance: float
) -> DelayMargins:
    """Every delivery (read of ``group``, failed or not) of a value sent with a delay
    (``delay_s(value) > 0``) happened at or after its producer's born timestamp + delay -
    ``tolerance`` (wall clock; one host, so no skew: the tolerance covers millisecond
    rounding). The producer's born timestamp is at most the store timestamp the broker counts
    the delay from, so a delivery before it is certainly early.

    The producer's born timestamp is the smallest a delivery of the value carries: the
    scheduled copy, a replayed one and the broker's send-back copies keep it, but a copy the
    consumer's client sent to the retry topic itself when CONSUMER_SEND_MSG_BACK failed (as
    RocketMQ's push consumer does) is a new message, born when the client sent it, with the
    retry delay (level 3 + reconsume times) instead of the value's: ``born`` + the value's
    delay says nothing about it (it is judged by ``early_retries``)."""
    early = []
    margins = []
    rows = _reads_with_data(history, group)
    first_born: dict[str, int] = {}
    for e, i in rows:
        born = (e.data or {}).get("born")
        if born:
            value = e.reads[i].value  # type: ignore[index]
            first_born[value] = min(born, first_born.get(value, born))
    for e, i in rows:
        r = e.reads[i]  # type: ignore[index]
        delay = delay_s(r.value)
        born = first_born.get(r.value)
        if delay <= 0 or not born:
            continue
        due = born / 1000 + delay
        margin = e.wall - due
        margins.append(margin)
        if margin < -tolerance:
            early.append(
                EarlyDelivery(r.value, r.queue, r.offset, due, e.wall, round(-margin, 3), e.index)
            )
    return _margins(early, margins)


def early_retries(
    history: Sequence[Entry], group: str, retry_delay_s: float, *, tolerance: float
) -> DelayMargins:
    """A delivery from the retry topic (``data["retry"]``) comes ``retry_delay_s`` or more
    after a failed delivery of the same value: the consumer sent the message back after a
    failure, and the broker parks it for the retry delay (every level used for retries is that
    long in these scenarios). Measured from the value's first failed delivery, so a lower
    bound whatever copy this is. A retry delivery with no failed delivery of its value before
    it is ``unexplained`` (with one consumer recording every delivery, none should be)."""
    first_fail: dict[str, float] = {}
    rows = _reads_with_data(history, group)
    for e, i in rows:
        if (e.data or {}).get("outcome") == "fail":
            first_fail.setdefault(e.reads[i].value, e.wall)  # type: ignore[index]
    early = []
    margins = []
    unexplained = []
    for e, i in rows:
        if not (e.data or {}).get("retry"):
            continue
        r = e.reads[i]  # type: ignore[index]
        failed_at = first_fail.get(r.value)
        if failed_at is None or failed_at > e.wall:
            unexplained.append(r.value)
            continue
        due = failed_at + retry_delay_s
        margin = e.wall - due
        margins.append(margin)
        if margin < -tolerance:
            early.append(
                EarlyDelivery(r.value, r.queue, r.offset, due, e.wall, round(-margin, 3), e.index)
            )
    return _margins(early, margins, unexplained)
