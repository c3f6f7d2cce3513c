"""TransactionManager: half (prepared) messages waiting for their producer's decision.

Messages:
- ``preparing()`` (proxy) -> a token, before a half message's put; ``abandoned(token)`` when
  the put stored nothing.
- ``prepared(HalfMessage, token)`` (proxy) -> None, once the entry is persisted: the send
  handler answers the producer only after that, so no acknowledged half message escapes the
  checks.
- ``resolve(offset)`` (proxy) -> True the first time an END_TRANSACTION settles ``offset`` (open,
  or discarded after its checks), False when it was already settled or unknown (a duplicate
  END is ignored).
- ``claim(offset)`` (proxy) -> True when an END_TRANSACTION may settle ``offset`` now: open,
  or discarded after its checks (a producer may still answer late, as RocketMQ lets it), and
  no other END is settling it; the claimer then calls ``resolve`` (after storing a COMMIT) or
  ``release`` (when it could not). Claims are not persisted: after a crash the half message
  is open again and checked.
- ``pending()`` (proxy) -> the half messages still open.
- ``resume(offset)`` (proxy) -> True when ``offset`` is an open half message, or one discarded
  after its checks, whose checks now start over (RESUME_CHECK_HALF_MESSAGE); False otherwise.
- ``Check`` (its own timer, every ``check_interval_s``): for half messages older than
  ``timeout_s`` (or their CHECK_IMMUNITY_TIME_IN_SECONDS, ``HalfMessage.immunity_ms``), send
  CHECK_TRANSACTION_STATE to a live producer of their group. Every due half message's check
  counts, also one with no producer of its group online to ask (RocketMQ's
  TransactionalMessageServiceImpl counts TRANSACTION_CHECK_TIMES before its listener looks for
  a channel, and only logs "channel is null"); not one the ProducerManager did not say about
  (no answer within ``CHANNEL_TIMEOUT_S``: asked again next round). The ProducerManager is
  asked by a helper greenlet (``_ask_channels``), which reports back (``_Channels``): the
  round's checks are sent then, END_TRANSACTIONs not held behind the wait. After ``check_max``
  checks, or once older than ``file_reserved_s`` (fileReservedTime: retention may remove its
  record; RocketMQ's ``needSkip``), the message is discarded: a copy is stored in
  TRANS_CHECK_MAX_TIME_TOPIC (``keep_discarded``, as RocketMQ's
  DefaultTransactionalMessageCheckListener.resolveDiscardMsg does) and it is logged. The copy
  is stored by a helper greenlet (a put may wait for the store's timeout: END_TRANSACTIONs are
  not held behind it), which reports back (``_Kept``); only then is the message discarded. One
  whose copy could not be stored stays open (tried again next round); one settled or resumed
  meanwhile is not discarded. A stopping manager waits ``KEEP_STOP_S`` at most for the copies
  under way (``on_stop``) and discards the ones stored (else the next start stored a second
  copy). The last ``DISCARDED_KEPT`` discarded ones are remembered, so
  that ``resume`` can bring them back and a late END settle them.

State owned: commit-log offset -> HalfMessage, persisted atomically to
``<store>/config/transaction.json`` after every change, with ``scanFrom``: a commit-log offset
below which every half message and every COMMIT is in the table (the log's end when written,
lowered to where the puts and ENDs under way began: their records land past it; moved on with
the log at the check rounds). Durability point: ``prepared`` replies after the write (tmp +
fsync + rename, in the hub's thread pool).

Catch-up at start (``actors.broker.half_scan``): the table may lag the log (a slave made master
holds its last 10 s copy; a master that crashed lacks what was under way), so the manager
first reads the log from ``scanFrom`` to its end: a half message not in the table is opened
(checked back like any other), one a COMMIT copy or a ROLLBACK mark settled is forgotten. A
table written before ``scanFrom`` existed (session 30), or none at all (a slave made master
before its first copy), is caught up from the log's first record: nothing else bounds how far
it lags (an empty table names no offset; a half message whose put was under way when it was
written may lie below every entry it holds).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.broker.half_scan import HalfScan
from runtime.actor import GeventActor, offload
from runtime.directory import Directory
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import CHECK_IMMUNITY_TIME_IN_SECONDS, PGROUP, UNIQ_KEY
from runtime.store.configfile import read_json, write_json
from runtime.store.record import StoredRecord


class HalfMessage(msgspec.Struct, frozen=True):
    offset: int  # commit-log offset of the prepared record
    group: str
    topic: str
    msg_id: str  # offset message id
    transaction_id: str  # the producer's UNIQ_KEY
    stored_ms: int
    checks: int = 0
    immunity_ms: int = -1
    """Not checked back before ``stored_ms + immunity_ms`` (the message's
    CHECK_IMMUNITY_TIME_IN_SECONDS, as RocketMQ reads it); -1: after ``timeout_s``."""


DISCARDED_KEPT = 10_000


class _Table(msgspec.Struct, rename={"scan_from": "scanFrom"}):
    half: list[HalfMessage] = []
    discarded: list[HalfMessage] = []
    scan_from: int | None = None
    """Every half message and COMMIT below this commit-log offset is in the table (None: a
    table from before it was kept: caught up from the log's first record)."""


ADVANCE_BYTES = 1 << 20
"""A check round persists ``scanFrom`` again once the log has grown this much past it."""


class Check(msgspec.Struct, frozen=True, tag=True):
    """A check round. ``done`` (an Event, or None) is set once the round has checked what it
    could: the ProducerManager's answers come back to the actor later (``_Channels``)."""

    done: Any = None


class _Channels(msgspec.Struct, frozen=True):
    """The ProducerManager's answers for a round's groups (its helper greenlet's report):
    group -> a live producer's channel, None (none online) or ``_NO_ANSWER``."""

    channels: dict[str, Any]


class _Kept(msgspec.Struct, frozen=True):
    """A discard's copy is done (its helper greenlet's report): ``kept`` is the WARNING's
    note on the copy, or None when it could not be stored (the message stays open)."""

    offset: int
    why: str
    kept: str | None


CHANNEL_TIMEOUT_S = 5.0
"""How long a check round waits for the ProducerManager's answer (then no group of the round
is asked or counted: an internal delay is no proof that no producer is online)."""
_NO_ANSWER = object()  # _channel: the ProducerManager did not answer
KEEP_STOP_S = 3.0
"""How long a stopping manager waits for the discards' copies being stored (below the
supervisor's 5 s ``shutdown_timeout``): a copy stored after the stop leaves its half message open,
and the next start would store a second copy."""


class TransactionManager(GeventActor):
    """Open transactions of one broker. See the module docstring."""

    def __init__(
        self,
        directory: Directory,
        producers: str,
        config_dir: str,
        read_record: Any,
        *,
        timeout_s: float,
        check_max: int,
        check_interval_s: float,
        log_end: Callable[[], int] = lambda: 0,
        scan: Callable[[int, int], HalfScan] | None = None,
        keep_discarded: Callable[[bytes, int], bool] | None = None,
        file_reserved_s: float | None = None,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.producers = producers
        self.path = os.path.join(config_dir, "transaction.json")
        self.read_record = read_record
        self.timeout_s = timeout_s
        self.check_max = check_max
        self.check_interval_s = check_interval_s
        self.log_end = log_end
        """The commit log's end (what consumers may read: every record below it is written)."""
        self.scan = scan
        self.keep_discarded = keep_discarded
        """Stores a copy of a half message whose checks ran out (its record, its check count)
        in TRANS_CHECK_MAX_TIME_TOPIC: True once stored (None: nothing stored)."""
        self.file_reserved_s = file_reserved_s
        """fileReservedTime: a half message stored longer ago is discarded whatever its checks
        (None: no bound)."""
        # half messages whose discard's copy is being stored -> the helper greenlet storing it
        self._keeping: dict[int, gevent.Greenlet] = {}
        self._round: list[Any] | None = None  # a round waiting for the ProducerManager: its
        # Checks' ``done`` events (None: no round waiting)
        self._half: dict[int, HalfMessage] = {}
        self._discarded: dict[int, HalfMessage] = {}
        # claimed by an END_TRANSACTION under way -> the log's end when claimed
        self._settling: dict[int, int] = {}
        self._putting: dict[int, int] = {}  # a half message's put under way -> the log's end
        self._tokens = 0
        self._scan_from = 0  # as last persisted

    def on_start(self) -> None:
        scan_from = self._load()
        if self.scan is not None:
            self._catch_up(scan_from)
        self._persist()
        self.send_every(self.check_interval_s, Check())

    def on_stop(self) -> None:
        """Wait (``KEEP_STOP_S`` at most) for the discards' copies being stored, and discard the
        half messages whose copy they stored: left open, the next start stored a second copy."""
        if not self._keeping:
            return
        helpers = list(self._keeping.values())
        gevent.joinall(helpers, timeout=KEEP_STOP_S)
        for helper in helpers:
            if helper.ready() and isinstance(helper.value, _Kept):
                self._kept(helper.value)  # (its report to the stopped actor was not handled)
        if self._keeping:
            logger.warning(
                "broker: {} discarded half message(s) still having their copy stored in "
                "TRANS_CHECK_MAX_TIME_TOPIC after {:g} s: left open (the next start may store a "
                "second copy)",
                len(self._keeping),
                KEEP_STOP_S,
            )

    def _load(self) -> int:
        """Read the table; returns where the catch-up starts: its ``scanFrom``, or 0 (the
        log's first record) for a table without one, or none."""
        if not os.path.exists(self.path):
            return 0
        table = read_json(self.path, _Table)
        self._half = {h.offset: h for h in table.half}
        self._discarded = {h.offset: h for h in table.discarded}
        if self._half:
            logger.info("broker: {} open transactions restored", len(self._half))
        if table.scan_from is None:
            logger.warning(
                "broker: {} was written by an older version (no scanFrom): the half messages "
                "and commits it may lack are looked for from the commit log's first record",
                self.path,
            )
            return 0
        return table.scan_from

    def _catch_up(self, start: int) -> None:
        """Open the half messages of the log from ``start`` the table lacks, forget the ones a
        COMMIT copy or a ROLLBACK mark settled (see the module docstring)."""
        assert self.scan is not None
        end = self.log_end()
        if start >= end:
            return
        began = time.monotonic()
        found = offload(self.scan, start, end)
        opened = settled = 0
        for record in found.prepared:
            offset = record.physical_offset
            if offset in found.settled or offset in self._half or offset in self._discarded:
                continue
            self._half[offset] = adopted(record)
            opened += 1
        for offset in found.settled:
            if self._half.pop(offset, None) is not None:
                settled += 1
        if opened or settled:
            logger.warning(
                "broker: the transaction table lagged the commit log ({} .. {}, read in {:.2f} s): "
                "{} half messages opened (checked back), {} settled by a COMMIT or ROLLBACK "
                "forgotten",
                start,
                found.end,
                time.monotonic() - began,
                opened,
                settled,
            )

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Check):
            self._check(message)
            return None
        if isinstance(message, _Channels):
            self._checks(message.channels)
            return None
        if isinstance(message, _Kept):
            self._kept(message)
            return None
        return super().on_receive(message)

    def preparing(self) -> int:
        self._tokens += 1
        self._putting[self._tokens] = self.log_end()
        return self._tokens

    def abandoned(self, token: int) -> None:
        self._putting.pop(token, None)

    def prepared(self, half: HalfMessage, token: int = 0) -> None:
        self._putting.pop(token, None)
        self._half[half.offset] = half
        self._persist()

    def resolve(self, offset: int) -> bool:
        self._settling.pop(offset, None)
        if self._half.pop(offset, None) is None and self._discarded.pop(offset, None) is None:
            return False
        self._persist()
        return True

    def claim(self, offset: int) -> bool:
        if offset in self._settling or (offset not in self._half and offset not in self._discarded):
            return False
        self._settling[offset] = self.log_end()
        return True

    def release(self, offset: int) -> None:
        self._settling.pop(offset, None)

    def pending(self) -> list[HalfMessage]:
        return sorted(self._half.values(), key=lambda h: h.offset)

    def resume(self, offset: int) -> bool:
        half = self._half.get(offset) or self._discarded.pop(offset, None)
        if half is None:
            return False
        self._half[offset] = msgspec.structs.replace(half, checks=0)
        self._persist()
        return True

    def _safe_scan_from(self) -> int:
        """The log's end, or where a put or END under way began if earlier: its record (a half
        message, a COMMIT copy) lands past that, and is in the table only once it is done."""
        return min([self.log_end(), *self._putting.values(), *self._settling.values()])

    def _persist(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        discarded = sorted(self._discarded.values(), key=lambda h: h.offset)
        scan_from = self._safe_scan_from()
        table = _Table(half=self.pending(), discarded=discarded, scan_from=scan_from)
        offload(write_json, self.path, table)
        self._scan_from = scan_from

    def _check(self, check: Check) -> None:
        """A check round: discards at once (their copies stored by helper greenlets); the
        groups of the due half messages are asked of the ProducerManager by a helper greenlet
        (``_ask_channels``), and the checks sent when it reports back (``_checks``): an
        END_TRANSACTION is not held behind that wait. A round while one waits joins it."""
        if self._round is not None:
            self._round.append(check.done)
            return
        now_ms = time.time() * 1000
        groups: dict[str, None] = {}  # the due half messages' groups, in offset order
        for half in self.pending():
            why = self._discard_why(half, now_ms)
            if why is not None:
                self._discard(half, why)
            elif self._due(half, now_ms):
                groups[half.group] = None
        self._round = [check.done]
        if groups:
            gevent.spawn(self._ask_channels, list(groups))
        else:
            self._checks({})

    def _due(self, half: HalfMessage, now_ms: float) -> bool:
        immune_ms = self.timeout_s * 1000 if half.immunity_ms == -1 else half.immunity_ms
        return now_ms - half.stored_ms >= immune_ms

    def _ask_channels(self, groups: list[str]) -> None:
        """(A helper greenlet: touches no state of the actor.) Ask the ProducerManager for a
        live producer of each group, one after the other; once it does not answer, the rest are
        not asked (one wait a round at most). Reports back (``_Channels``) whatever happens:
        the next rounds join a round until it has."""
        channels: dict[str, Any] = {}
        for group in groups:
            answered = _NO_ANSWER not in channels.values()
            try:
                channels[group] = self._channel(group) if answered else _NO_ANSWER
            except Exception:
                logger.exception("broker: asking the producer table for group {}", group)
                channels[group] = _NO_ANSWER
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_Channels(channels))

    def _checks(self, channels: dict[str, Any]) -> None:
        """The round's checks, once the ProducerManager said where to send them: the half
        messages due now (one of a group not asked this round, opened meanwhile, waits for the
        next), each check counted as the module docstring says."""
        now_ms = time.time() * 1000
        changed = False
        unasked: dict[str, int] = {}  # group -> its due half messages no producer was asked of
        unanswered = 0  # due half messages not checked: the ProducerManager did not answer
        for half in self.pending():
            if half.offset in self._keeping or half.group not in channels:
                continue
            if self._discard_why(half, now_ms) is not None or not self._due(half, now_ms):
                continue
            channel = channels[half.group]
            if channel is _NO_ANSWER:
                unanswered += 1  # not counted: nothing says no producer is online
                continue
            if channel is None:
                # No producer of the group online: counted all the same, as RocketMQ counts
                # TRANSACTION_CHECK_TIMES before it looks for a channel ("channel is null");
                # not counting kept a group's half messages for ever once its producers left.
                unasked[half.group] = unasked.get(half.group, 0) + 1
                self._half[half.offset] = msgspec.structs.replace(half, checks=half.checks + 1)
                changed = True
                continue
            self._check_back(half, channel)
            changed = True
        self._log_round(unasked, unanswered)
        if changed or self._safe_scan_from() - self._scan_from >= ADVANCE_BYTES:
            self._persist()
        waiting, self._round = self._round or [], None
        for done in waiting:
            if done is not None:
                done.set()

    def _check_back(self, half: HalfMessage, channel: Any) -> None:
        """Send CHECK_TRANSACTION_STATE for ``half`` to ``channel``; the check is counted."""
        raw = self.read_record(half.offset)
        if raw is not None:
            channel.send_oneway(
                RemotingCommand.request(
                    RequestCode.CHECK_TRANSACTION_STATE,
                    {
                        "topic": half.topic,
                        "tranStateTableOffset": half.offset,
                        "commitLogOffset": half.offset,
                        "msgId": half.transaction_id,
                        "transactionId": half.transaction_id,
                        "offsetMsgId": half.msg_id,
                    },
                    raw,
                    oneway=True,
                )
            )
        # Not readable (yet: the store has not dispatched it, e.g. a controller-mode master
        # whose in-sync slave lags; or no more: its file removed): counted as a check all the
        # same, so one gone for good is discarded after ``check_max`` rounds, as RocketMQ counts
        # a check that found no channel. Forgetting it at once lost a commit the store refused
        # meanwhile ("find prepared transaction message").
        self._half[half.offset] = msgspec.structs.replace(half, checks=half.checks + 1)

    def _log_round(self, unasked: dict[str, int], unanswered: int) -> None:
        for group, count in unasked.items():
            logger.warning(
                "broker: no producer of group {} online to check {} half message(s) back: each "
                "counted as a check (discarded to TRANS_CHECK_MAX_TIME_TOPIC after {})",
                group,
                count,
                self.check_max,
            )
        if unanswered:
            logger.warning(
                "broker: the producer table did not answer within {:g} s: {} due half message(s) "
                "not checked back this round (not counted as checks)",
                CHANNEL_TIMEOUT_S,
                unanswered,
            )

    def _channel(self, group: str) -> Any:
        """A live producer of ``group`` to check back with, None when none is online, or
        ``_NO_ANSWER`` when the ProducerManager is not there or did not answer in time (the
        next round asks again)."""
        ref = self.directory.get(self.producers)
        if ref is None:
            return _NO_ANSWER
        try:
            return ref.proxy().any_channel(group).get(timeout=CHANNEL_TIMEOUT_S)
        except (pykka.Timeout, pykka.ActorDeadError):
            return _NO_ANSWER

    def _discard_why(self, half: HalfMessage, now_ms: float) -> str | None:
        """Why ``half`` is to be discarded now, or None: its checks ran out, or it was stored
        longer ago than fileReservedTime (RocketMQ's ``needSkip``: retention may remove its
        record; RocketMQ goes by its born time, this by its store time, which retention goes
        by)."""
        reserved = self.file_reserved_s
        if reserved is not None and now_ms - half.stored_ms > reserved * 1000:
            return f"older than fileReservedTime ({reserved / 3600:g} h), {half.checks} checks"
        if half.checks >= self.check_max:
            return f"unresolved after {half.checks} checks"
        return None

    def _discard(self, half: HalfMessage, why: str) -> None:
        """Discard ``half``: its copy is stored in TRANS_CHECK_MAX_TIME_TOPIC by a helper
        greenlet (``_keep_copy``), which reports back (``_kept``); one already being stored
        is left alone."""
        if half.offset in self._keeping:
            return
        self._keeping[half.offset] = gevent.spawn(self._keep_copy, half, why)

    def _keep_copy(self, half: HalfMessage, why: str) -> _Kept:
        """(A helper greenlet: touches no state of the actor.) Store ``half``'s copy and tell
        the actor how it went (also returned: a stopping actor reads it, ``on_stop``)."""
        kept: str | None
        try:
            raw = self.read_record(half.offset)
            if raw is None:
                kept = " (its record could not be read: no copy kept)"
            elif self.keep_discarded is None:
                kept = ""
            elif self.keep_discarded(raw, half.checks):
                kept = ", a copy kept in TRANS_CHECK_MAX_TIME_TOPIC"
            else:
                kept = None  # (keep_discarded logged why)
        except Exception:
            logger.exception("broker: storing the copy of discarded half message {}", half.offset)
            kept = None
        done = _Kept(half.offset, why, kept)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(done)
        return done

    def _kept(self, done: _Kept) -> None:
        """A discard's copy is stored (or not: the message stays open, tried again next
        round): discard the message, unless an END settled it or RESUME started its checks over
        meanwhile."""
        if self._keeping.pop(done.offset, None) is None:
            return  # (already read by on_stop)
        half = self._half.get(done.offset)
        if done.kept is None or half is None:
            return
        if self._discard_why(half, time.time() * 1000) is None:
            return  # resumed meanwhile
        logger.warning(
            "broker: transaction {} of group {} (topic {}, offset {}) {}: discarded{}",
            half.transaction_id,
            half.group,
            half.topic,
            half.offset,
            done.why,
            done.kept,
        )
        del self._half[half.offset]
        self._discarded[half.offset] = half
        while len(self._discarded) > DISCARDED_KEPT:
            del self._discarded[min(self._discarded)]
        self._persist()


def adopted(record: StoredRecord) -> HalfMessage:
    """The table's entry for a half message found in the log (``half_scan``): checked back from
    its store time on, as if registered then."""
    props = record.property_map()
    return HalfMessage(
        offset=record.physical_offset,
        group=props.get(PGROUP, ""),
        topic=record.topic,
        msg_id=record.msg_id,
        transaction_id=props.get(UNIQ_KEY, record.msg_id),
        stored_ms=record.store_timestamp,
        immunity_ms=immunity_ms(props.get(CHECK_IMMUNITY_TIME_IN_SECONDS)),
    )


def immunity_ms(value: str | None) -> int:
    """A half message's CHECK_IMMUNITY_TIME_IN_SECONDS in ms, read as RocketMQ's
    ``getImmunityTime`` reads it: no integer (or -1) is -1, checked after transactionTimeOut."""
    try:
        seconds = int(value) if value is not None else -1
    except ValueError:
        return -1
    return -1 if seconds == -1 else seconds * 1000
