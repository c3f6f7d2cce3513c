"""QueuePuller: the long-poll pull loop of one assigned queue.

Messages:
- ``PullNext``: issue the next PULL_MESSAGE (SUSPEND: the broker holds it up to 15 s) unless one
  is in flight, the puller is paused by flow control, or it is quiescing. The pull itself (which
  broker, the request, its cancellation) is ``actors.client.pull_ticket``'s.
- ``PullDone(generation, result, error)``: the pull greenlet's outcome. Found messages go into
  the ProcessQueue and to the sink (the push consumer's listener pool, or the lite consumer's
  poll buffer); then the next pull starts at once (after ``pull_interval`` when messages were
  found), unless more than ``max_cached_messages`` or ``max_cached_bytes`` are cached, or (not
  orderly) the cached offsets span more than ``max_span``, or (lite) the poll buffer holds more
  than ``max_cached_messages_total`` (flow control, ``actors.client.pull_limits``: pulling
  resumes when consumption catches up). An error retries after ``error_delay``. An answer
  that moves nothing (NO_MATCHED_MSG with ``nextBeginOffset`` where the pull started: a slave
  keeping a consumer whose offset it does not hold yet, while the route has no master to try
  instead) refreshes the route and pulls again after ``STALLED_DELAY`` instead of at once, so
  it never spins.
- ``Consumed(generation, offsets, retry)``: the sink finished messages; ``retry`` ones
  (RECONSUME_LATER or an exception) are, with ``send_back`` (clustering push consumers), handed
  back to the broker (CONSUMER_SEND_MSG_BACK, delay level 0: the broker's ``%RETRY%<group>``
  with level 3 + reconsumeTimes, or ``%DLQ%<group>`` past ``max_reconsume_times``) by a
  greenlet; otherwise delivered again locally after ``reconsume_delay`` (broadcasting: up to
  ``max_reconsume_times`` times, then dropped with a warning, as RocketMQ drops them at once;
  ``actors.client.puller_retry``). The committable offset goes to the OffsetStore.
- ``SentBack(generation, ok, failed, expired)``: the send-back greenlet's outcome. Accepted
  messages count as consumed (the offset moves past them); the others are retried locally
  (``expired``, sent back by the consume timeout: left as they are).
- ``Redeliver(generation, offsets)``: timer for the local redelivery.
- ``ExpireCheck``: timer (with ``consume_timeout``): messages whose listener call outlasted it
  are sent back and leave the process queue (``actors.client.consume_timeout``).
- ``Seek(offset)``: drop what is cached, pull from ``offset`` (lite consumer).
- ``Quiesce``: stop pulling (shutdown: let the listeners finish first).
- ``Hold(on)``: the user paused the queue (no pull starts; one in flight completes and its
  messages are delivered, as RocketMQ's) or resumed it (pulling starts again).
- ``SetLimits(max_cached_messages, max_cached_bytes)``: new per-queue limits (the rebalancer's
  share of the topic thresholds); ``FlowCheck``: the sink has room again; both look at flow
  control again and resume pulling if no longer over. ``IntervalOver``: ``pull_interval`` ended.
- ``queue_info()`` (proxy) -> ``ProcessQueueInfo`` of this queue (GET_CONSUMER_RUNNING_INFO):
  what is cached, the lock (orderly), when it last pulled and consumed; ``commit_offset`` is
  left to the caller (the OffsetStore holds it).

``PullDone`` and ``Consumed`` (and the OffsetStore's ``UpdateOffset``, told from here) are
handled inline by whoever tells them while the actor is idle (``tell_now``): the pull greenlet,
a listener task's greenlet, or a hub callback in a plain program. Their handlers must never
yield (no blocking call, ask or sleep): a hub callback cannot switch at all.

Generations (unique in the process): a seek sets a new one, and so does an offset the broker
moved (OFFSET_ILLEGAL); anything tagged with an older one is dropped, so a message cached
before either is never committed after it (nor taken for a message pulled since at the same
offset), and the sink is told (``Sink.drop``), so one delivered but not consumed yet is never
given to a listener (RocketMQ drops the ProcessQueue on a reset or a moved offset). On stop the last
committable offset goes to the OffsetStore (a rebalance persists it before the queue moves on).
Every pull in clustering mode also carries that offset (COMMIT_OFFSET), as RocketMQ does.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
import pykka
from loguru import logger

from actors.client.consume_timeout import (
    ExpireCheck,
    check_interval,
)
from actors.client.errors import BrokerError, ClientError
from actors.client.instance import ClientInstance
from actors.client.message import MessageExt, MessageQueue, PullStatus
from actors.client.offsets import UpdateOffset
from actors.client.process_queue import ProcessQueue
from actors.client.pull import PullResult, TagFilter
from actors.client.pull_limits import over_queue_limits
from actors.client.pull_ticket import PullCancelled, PullTicket, pull_once
from actors.client.puller_messages import (
    CappedSink,
    Consumed,
    FlowCheck,
    Hold,
    IntervalOver,
    PullDone,
    PullNext,
    PullOptions,
    Quiesce,
    Redeliver,
    Seek,
    SentBack,
    SetLimits,
    Sink,
    next_generation,
)
from actors.client.puller_retry import FailedMessages
from runtime import workers
from runtime.actor import GeventActor, tell_now
from runtime.errors import ProtocolError
from runtime.remoting.running_info import ProcessQueueInfo

MIB = 1024 * 1024
STALLED_DELAY = 0.2
"""Seconds before pulling again after an answer that moved nothing (see the docstring)."""


class QueuePuller(FailedMessages, GeventActor):
    """See the module docstring."""

    CONCURRENT = True
    """Concurrent consumption: ``max_span`` and ``consume_timeout`` apply (not to orderly
    consumers, as in RocketMQ)."""

    def __init__(
        self,
        instance: ClientInstance,
        group: str,
        mq: MessageQueue,
        start_offset: int,
        tag_filter: TagFilter,
        sink: Sink,
        offsets_name: str,
        options: PullOptions,
    ) -> None:
        super().__init__()
        self.instance = instance
        self.group = group
        self.mq = mq
        self.tag_filter = tag_filter
        self.sink = sink
        self.offsets_name = offsets_name
        self.options = options
        self.pq = ProcessQueue(start_offset)
        self.generation = next_generation()
        self.paused = False
        self.quiescing = False
        self.on_hold = False
        """Paused by the user (``Hold``): no pull starts until ``Hold(False)``."""
        self._pull: PullTicket | None = None
        self._reported = start_offset
        self._warned = False
        self._suggested = 0
        """The broker id the last pull response suggested reading from (0: the master)."""
        self.last_pull_ms = 0
        self.last_consume_ms = 0
        self._expiring: set[int] = set()
        """Offsets being sent back by the consume timeout."""
        self._not_before = 0.0
        """``time.monotonic()`` before which no pull starts (``pull_interval``)."""
        self._interval_timer = False

    # -- life cycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        self.actor_ref.tell(PullNext())
        timeout = self.options.consume_timeout
        if timeout > 0 and self.options.send_back and self.CONCURRENT:
            self.send_every(check_interval(timeout), ExpireCheck())

    def on_stop(self) -> None:
        self._cancel_pull()
        self._report(force=False)

    def on_failure(self, *_exc: Any) -> None:
        self._cancel_pull()

    def _cancel_pull(self) -> None:
        if self._pull is not None:
            self._pull.cancel()
            self._pull = None

    # -- messages -----------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, PullDone):
            self._pull_done(message)
        elif isinstance(message, Consumed):
            self._consumed(message)
        elif isinstance(message, PullNext):
            self._pull_next()
        elif isinstance(message, SentBack):
            self._sent_back(message)
        elif isinstance(message, Redeliver):
            self._redeliver(message)
        elif isinstance(message, Seek):
            self._seek(message.offset, message.generation)
        elif isinstance(message, Quiesce):
            self.quiescing = True
            self._cancel_pull()
        elif isinstance(message, ExpireCheck):
            self._expire()
        elif isinstance(message, SetLimits):
            self.options = msgspec.structs.replace(
                self.options,
                max_cached_messages=message.max_cached_messages,
                max_cached_bytes=message.max_cached_bytes,
            )
            self._recheck_flow()
        elif isinstance(message, FlowCheck):
            self._recheck_flow()
        elif isinstance(message, IntervalOver):
            self._interval_timer = False
            self._pull_next()
        elif isinstance(message, Hold):
            self.on_hold = message.on
            self._pull_next()
        return None

    def committable(self) -> int:
        return self.pq.committable()

    def cached(self) -> tuple[int, int]:
        return self.pq.count, self.pq.bytes

    def queue_info(self) -> ProcessQueueInfo:
        offsets = self.pq.msgs.keys()
        locked, last_lock_ms = self._lock_info()
        return ProcessQueueInfo(
            cached_msg_min_offset=min(offsets, default=0),
            cached_msg_max_offset=max(offsets, default=0),
            cached_msg_count=self.pq.count,
            cached_msg_size_in_mib=self.pq.bytes // MIB,
            locked=locked,
            last_lock_timestamp=last_lock_ms,
            last_pull_timestamp=self.last_pull_ms,
            last_consume_timestamp=self.last_consume_ms,
        )

    def _lock_info(self) -> tuple[bool, int]:
        """Whether the queue's broker lock is held, and when it was last granted (ms)."""
        return False, 0

    # -- pulling -----------------------------------------------------------------------------

    def _pull_next(self) -> None:
        if self._pull is not None or self.paused or self.quiescing or self.on_hold:
            return
        wait = self._not_before - time.monotonic()
        if wait > 0:  # pull_interval: the timer pulls (again, should it fire early)
            if not self._interval_timer:
                self._interval_timer = True
                self.send_after(wait, IntervalOver())
            return
        commit = self.pq.committable() if self.options.commit_in_pull else -1
        self.last_pull_ms = int(time.time() * 1000)
        self._pull = ticket = PullTicket()
        # a reused greenlet (not a fresh one per pull): cancelled through its ticket
        workers.submit(self._pull_greenlet, ticket, self.generation, self.pq.pulled_upto, commit)

    def _pull_greenlet(self, ticket: PullTicket, generation: int, offset: int, commit: int) -> None:
        result: PullResult | None = None
        error: Exception | None = None
        try:
            result = pull_once(
                self.instance,
                self.group,
                self.mq,
                offset=offset,
                commit=commit,
                tag_filter=self.tag_filter,
                options=self.options,
                suggested=self._suggested,
                ticket=ticket,
            )
        except (ClientError, ProtocolError) as exc:
            error = exc
        except PullCancelled:
            return
        if ticket.cancelled:
            return
        with contextlib.suppress(pykka.ActorDeadError):
            # an idle puller takes it here: its PullDone handler never yields
            tell_now(self.actor_ref, PullDone(generation, result, error))

    def _pull_done(self, message: PullDone) -> None:
        if message.generation != self.generation:
            return
        self._pull = None
        if message.error is not None:
            if isinstance(message.error, BrokerError) and not self._warned:
                # e.g. a SQL92 subscription the broker cannot parse or does not support
                self._warned = True
                logger.warning("client: pull {} refused: {}", self.mq, message.error)
            logger.debug("client: pull {} failed: {}", self.mq, message.error)
            if isinstance(message.error, ClientError):
                self.instance.refresh_route(self.mq.topic)
            self.send_after(self.options.error_delay, PullNext())
            return
        result: PullResult = message.result
        self._suggested = result.suggest_which_broker_id
        status = result.status
        if status is PullStatus.FOUND:
            fresh = self.pq.add(result.messages, result.next_begin_offset)
            if fresh:
                self._deliver(fresh)
            if result.messages and self.options.pull_interval > 0:
                self._not_before = time.monotonic() + self.options.pull_interval
        elif status is PullStatus.OFFSET_ILLEGAL:
            logger.debug(  # pull_once warned, naming the broker
                "client: offset {} of {} is illegal; moving to {}",
                self.pq.pulled_upto,
                self.mq,
                result.next_begin_offset,
            )
            # a new generation, as a seek: what was cached is dropped (and not consumed), and a
            # late report of it must not take a message pulled after the move at the same
            # offset for it
            self._renew(next_generation())
            self.pq.clear(result.next_begin_offset)
            self._report(force=True)
            self.send_after(min(self.options.error_delay, 1.0), PullNext())
            return
        else:
            stalled = (
                status is PullStatus.NO_MATCHED_MSG
                and result.next_begin_offset <= self.pq.pulled_upto
            )
            self.pq.advance(result.next_begin_offset)
            self._report()
            if stalled:
                self.instance.refresh_route(self.mq.topic)
                self._check_flow()
                self.send_after(STALLED_DELAY, PullNext())
                return
        self._check_flow()
        self._pull_next()

    def _check_flow(self) -> None:
        opts = self.options
        pq = self.pq
        over = over_queue_limits(pq, opts, self.CONCURRENT)
        if not over and opts.max_cached_messages_total > 0:
            sink: CappedSink = self.sink  # type: ignore[assignment]
            over = not sink.room(self.actor_ref)  # tells FlowCheck once there is room
        if over and not self.paused:
            logger.debug(
                "client: {} flow control: {} messages / {} bytes cached, offsets span {}",
                self.mq,
                pq.count,
                pq.bytes,
                pq.span(),
            )
        self.paused = over

    def _deliver(self, fresh: list[MessageExt]) -> None:
        """Hand newly pulled messages to the sink (the orderly puller queues them instead)."""
        self.sink.deliver(self.actor_ref, self.generation, self.mq, fresh)

    def _consumed(self, message: Consumed) -> None:
        if message.generation != self.generation:
            return
        self.last_consume_ms = int(time.time() * 1000)
        self.pq.remove(message.offsets)
        if message.retry:
            self._retry(message.retry, message.delay_levels)
        self._settled()

    def _settled(self) -> None:
        """Messages left the process queue: report the offset, maybe resume pulling."""
        self._report()
        self._recheck_flow()

    def _recheck_flow(self) -> None:
        if self.paused:
            self._check_flow()
            if not self.paused:
                self._pull_next()

    def _renew(self, generation: int) -> None:
        """Move to ``generation``: the sink drops what it holds of older ones."""
        self.generation = generation
        self.sink.drop(self.mq, generation)

    def _seek(self, offset: int, generation: int) -> None:
        self._renew(generation)
        self._cancel_pull()
        self.pq.clear(max(offset, 0))
        self.paused = False
        self._not_before = 0.0
        self._report(force=True)
        self._pull_next()

    def _report(self, force: bool = False) -> None:
        offset = self.pq.committable()
        if offset == self._reported and not force:
            return
        self._reported = offset
        ref = self.instance.directory.get(self.offsets_name)
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                # the OffsetStore's UpdateOffset handler never yields: inline when it is idle
                tell_now(ref, UpdateOffset(self.mq, offset, force))
