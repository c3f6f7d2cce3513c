"""Rebalancer: decides which queues this consumer pulls, and runs one QueuePuller per queue.

Messages:
- ``DoRebalance(reason, reply, topics)``: recompute the assignment now (of ``topics`` only when
  given: the others keep their queues). Clustering: the topic's readable queues (sorted) shared
  over the group's client ids (sorted, from GET_CONSUMER_LIST_BY_GROUP: those subscribing the
  topic, with actormq's brokers) by the consumer's allocation strategy
  (``actors.client.allocate``; AVG by default); broadcasting: every queue; assigned mode (lite
  ``assign``): the fixed set. A strategy that raises, or answers a queue it was not offered, is
  refused for that round: the topic keeps its queues and the refusal is logged as an error. A 20 s
  timer and NOTIFY_CONSUMER_IDS_CHANGED (with the topics it names) tell it. A topic whose consumer
  list lacks this client (a broker that restarted before our heartbeat reached it) keeps its
  queues that round; the rebalancer warns once (until a list has us again) and asks for a
  heartbeat at once, so the broker lists us (and tells the group) without waiting for the 30 s
  timer. After a round that changed the assignment, a push consumer with
  ``pull_threshold_for_topic`` / ``pull_threshold_size_for_topic`` shares them over the queues it
  holds and tells every puller its new limits (``SetLimits``).
- ``Assign(queues, reply)``: switch to a fixed assignment (lite consumer).
- ``SeekQueue(mq, offset, reply)``: forward a seek to the queue's puller (lite consumer).
- ``PullerExited(mq, urn, failure)``: a puller died; a failed one is started again from the
  offset the OffsetStore holds.
- ``QuiesceAll(reply)``: stop every puller from pulling (first step of a shutdown); no puller
  is started afterwards, nor by a rebalancer restarted during the shutdown (``quiesced``).
- ``SetSubscriptions(subscriptions, reply)``: subscriptions changed after start (``_resubscribe``).
- ``HoldQueues(queues, on, reply)``: the user paused or resumed queues (None: all); their
  pullers are told ``Hold``, and a puller started later for a paused queue starts held.
- ``ReadAssignment(reply)``: the queues held (the consumer's ``assignment()``).
- ``assignment()`` / ``pullers_by_queue()`` (proxy): the queues held, and their pullers.

A queue taken away: its puller stops (recording its last committable offset), that offset is
persisted synchronously, then forgotten. A queue gained: its start offset is the group's
committed offset, or — for a group with none — the consume-from policy (see ``start_offset``),
which is then committed at once so the group's position is fixed from that moment (for a
broadcasting consumer, whose offsets are a local file, with the file's next write: the
OffsetStore defers start offsets, as RocketMQ's LocalFileOffsetStore writes none at start).

The messages are in ``actors.client.rebalance_messages``.

State owned: the subscriptions, the pullers by queue, the pull options new pullers start with
(their per-queue limits changed by the topic thresholds). What the user changed while it runs
outlives it, should it fail and its supervisor restart it: the consumer keeps its
subscriptions (a restarted rebalancer starts with the consumer's subscriptions then, not those
at the consumer's start) and the ``Holds`` object it is given; and a restarted one
(``restarted``) rebalances at once, before it handles any message (a seek, ``ReadAssignment``
or ``HoldQueues`` re-sent by the consumer finds the pullers), its predecessor's pullers
having stopped with it. The
handler blocks on the network (with timeouts); that is what serialises rebalances.

Subclasses (``OrderlyRebalancer``) change ``puller_class`` and hook ``_start_pullers`` /
``_stop_pullers`` (queue locks around starting and stopping pullers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from actors.client.allocate import (
    AllocateMessageQueueAveragely,
    AllocateStrategy,
    AllocationRefused,
    allocate_queues,
)
from actors.client.consumer_lists import ConsumerLists
from actors.client.errors import ClientError
from actors.client.fan_out import ONE_BY_ONE, fan_out
from actors.client.holds import Holds
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.offsets import (
    Forget,
    Persist,
    ReadOffset,
    UpdateOffset,
)
from actors.client.pull import TagFilter
from actors.client.pull_limits import share_topic_limits
from actors.client.puller import QueuePuller
from actors.client.puller_messages import Hold, PullOptions, Quiesce, Seek, Sink
from actors.client.rebalance_messages import (
    Assign,
    ConsumeFrom,
    DoRebalance,
    HoldQueues,
    PullerExited,
    QuiesceAll,
    ReadAssignment,
    SeekQueue,
    SetSubscriptions,
)
from actors.client.start_offsets import consume_from_offset, start_offsets
from runtime.actor import GeventActor, GeventFuture, new_future, watch
from runtime.remoting.codes import MessageModel

CATCH_UP = "restarted"
"""The round a restarted rebalancer runs before handling anything else."""
UNLISTED_RETRY = "not listed yet"
UNLISTED_RETRY_S = 1.0
"""A topic whose consumer list lacked this client is looked at again this much later (once;
then the 20 s timer), after the heartbeat it asked for."""


class Rebalancer(GeventActor):
    """See the module docstring."""

    puller_class: type[QueuePuller] = QueuePuller

    def __init__(
        self,
        instance: ClientInstance,
        group: str,
        subscriptions: dict[str, TagFilter],
        sink: Sink,
        offsets_name: str,
        options: PullOptions,
        *,
        model: MessageModel = MessageModel.CLUSTERING,
        consume_from: ConsumeFrom = ConsumeFrom.LAST,
        consume_timestamp: int | None = None,
        interval: float = 20.0,
        timeout: float = 3.0,
        assigned: tuple[MessageQueue, ...] | None = None,
        on_change: Callable[[list[MessageQueue]], None] | None = None,
        allocate: AllocateStrategy | None = None,
        holds: Holds | None = None,
        restarted: bool = False,
        quiesced: bool = False,
    ) -> None:
        super().__init__()
        self.restarted = restarted
        """Started again by the supervisor after a failure (which stopped every puller): it
        rebalances at once rather than leave the queues unpulled until its timer."""
        self.quiesced = quiesced
        """The consumer is shutting down (``QuiesceAll`` told, or restarted after it began):
        no puller is started any more (a round still lets queues go)."""
        self.instance = instance
        self.group = group
        self.subscriptions = subscriptions
        self.sink = sink
        self.offsets_name = offsets_name
        self.options = options
        self.model = model
        self.consume_from = consume_from
        self.consume_timestamp = consume_timestamp
        self.interval = interval
        self.timeout = timeout
        self.lists = ConsumerLists(instance, group, timeout)
        self.fixed: tuple[MessageQueue, ...] | None = assigned
        self.on_change = on_change
        self.allocate = allocate or AllocateMessageQueueAveragely()
        self.pullers: dict[MessageQueue, pykka.ActorRef[QueuePuller]] = {}
        self._stopping = False
        self._catching_up = False  # restarted: its first round not run yet (on_start)
        self._unlisted: set[str] = set()  # topics whose last consumer list lacked this client
        self._retrying: set[str] = set()  # unlisted topics a retry round is scheduled for
        self.holds = Holds() if holds is None else holds
        """The queues the user paused (``HoldQueues``), held now or not: the consumer's
        object, given again to a rebalancer its supervisor restarts, which thus keeps them."""

    def on_start(self) -> None:
        if self.interval > 0:
            self.send_every(self.interval, DoRebalance("timer"))
        if self.restarted:  # the round runs before whatever the inbox holds (on_receive)
            self._catching_up = True
            self.actor_ref.tell(DoRebalance(CATCH_UP))  # and runs should nothing else come

    def on_stop(self) -> None:
        self._stopping = True
        self._stop_pullers(list(self.pullers))

    def on_failure(self, *_exc: Any) -> None:
        self._stopping = True
        self._stop_pullers(list(self.pullers), persist=False)

    def on_receive(self, message: Any) -> Any:
        if self._catching_up:
            # a restarted rebalancer's first round, before it answers anything: a seek, an
            # assignment() asked of it as it started would else find no puller yet
            self._catching_up = False
            self._rebalance(CATCH_UP)
        if isinstance(message, DoRebalance) and message.reason == CATCH_UP:
            return None  # the round just run
        if isinstance(message, DoRebalance):
            changed = self._rebalance(message.reason, message.topics)
            if message.reply is not None:
                message.reply.set(changed)
        elif isinstance(message, Assign):
            self.fixed = tuple(message.queues)
            changed = self._rebalance("assign")
            if message.reply is not None:
                message.reply.set(changed)
        elif isinstance(message, SeekQueue):
            ref = self.pullers.get(message.mq)
            if ref is not None:
                ref.tell(Seek(message.offset, message.generation))
            if message.reply is not None:
                message.reply.set(ref is not None)
        elif isinstance(message, PullerExited):
            self._puller_exited(message)
        elif isinstance(message, SetSubscriptions):
            changed = self._resubscribe(message.subscriptions)
            if message.reply is not None:
                message.reply.set(changed)
        elif isinstance(message, HoldQueues):
            changed = self.holds.apply(message, self.pullers)
            if message.reply is not None:
                message.reply.set(changed)
        elif isinstance(message, QuiesceAll):
            self.quiesced = True
            for ref in self.pullers.values():
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.tell(Quiesce())
            if message.reply is not None:
                message.reply.set(len(self.pullers))
        elif isinstance(message, ReadAssignment):
            message.reply.set(self.assignment())
        return None

    def assignment(self) -> list[MessageQueue]:
        return sorted(self.pullers)

    def _resubscribe(self, subscriptions: dict[str, TagFilter]) -> bool:
        """New subscriptions: a topic's queues restart (offsets persisted) when its filter
        changed, an unsubscribed topic's are let go, a new topic's allocated."""
        old, new = self.subscriptions, dict(subscriptions)
        self.subscriptions = new
        changed = {t for t in old.keys() & new.keys() if old[t] != new[t]}
        refiltered = [mq for mq in self.pullers if mq.topic in changed]
        self._stop_pullers(refiltered)
        # only the topics that changed are looked at (one consumer-list request each): a
        # consumer of thousands of topics (a proxy's lite group) subscribes one more cheaply
        touched = (new.keys() - old.keys()) | changed
        return self._rebalance("subscriptions changed", touched) or bool(refiltered)

    def pullers_by_queue(self) -> dict[MessageQueue, pykka.ActorRef[QueuePuller]]:
        return dict(self.pullers)

    # -- allocation ---------------------------------------------------------------------------

    def _rebalance(self, reason: str, only: set[str] | None = None) -> bool:
        """``only``: allocate just these topics; the others subscribed keep their queues (a
        topic no longer subscribed lets its go either way)."""
        if self._stopping:
            return False
        if reason == UNLISTED_RETRY:
            self._retrying = set()
        wanted: set[MessageQueue] = set()
        # topics we could not look at this round, or whose consumer list lacks us, keep theirs
        keep: set[MessageQueue] = set()
        if self.fixed is not None:
            wanted = set(self.fixed)
        else:
            unlisted: set[str] = set()
            topics = sorted(
                self.subscriptions if only is None else only & self.subscriptions.keys()
            )
            if only is not None:
                keep.update(
                    mq
                    for mq in self.pullers
                    if mq.topic in self.subscriptions and mq.topic not in only
                )
            # many topics (a lite group's) are looked at many at once: a route and a consumer
            # list each (one per broker when this client is the group's only member there)
            self.lists.start_round(many=len(topics) > ONE_BY_ONE)
            try:
                shares = fan_out(topics, self._share)
            finally:
                self.lists.end_round()
            for topic, (mine, listed) in shares.items():
                if not listed:
                    unlisted.add(topic)
                if mine is None:
                    keep.update(mq for mq in self.pullers if mq.topic == topic)
                else:
                    wanted.update(mine)
            if unlisted:
                self.instance.beat_soon()  # so the broker lists us by the next round
                if reason != UNLISTED_RETRY and not unlisted <= self._retrying:
                    # and that round comes in a second, not 20 s: a heartbeat that only takes
                    # up topics tells the others, not the member itself
                    self._retrying |= unlisted
                    again = DoRebalance(UNLISTED_RETRY, topics=frozenset(self._retrying))
                    self.send_after(UNLISTED_RETRY_S, again)
        wanted |= keep
        removed = [mq for mq in self.pullers if mq not in wanted]
        added = [] if self.quiesced else sorted(mq for mq in wanted if mq not in self.pullers)
        if removed:
            self._stop_pullers(removed)
        started = self._start_pullers(added)
        changed = bool(removed or started)
        if changed:
            self.options = share_topic_limits(self.options, self.pullers, self.group)
            logger.info(
                "client: {} rebalanced ({}): +{} -{} -> {} queues",
                self.group,
                reason,
                len(started),
                len(removed),
                len(self.pullers),
            )
            if self.on_change is not None:
                self.on_change(sorted(self.pullers))
        return changed

    def _share(self, topic: str) -> tuple[list[MessageQueue] | None, bool]:
        """``_allocate(topic)``, and False when this client was not listed; a failure or a
        refused strategy: None (the topic keeps its queues this round)."""
        try:
            mine = self._allocate(topic)
        except ClientError as exc:
            logger.debug("client: rebalance of {} skipped: {}", topic, exc)
            return None, True
        except AllocationRefused as exc:
            logger.error("client: {} keeps its queues of {} this round: {}", self.group, topic, exc)
            return None, True
        return mine, mine is not None

    def _allocate(self, topic: str) -> list[MessageQueue] | None:
        """This client's share of ``topic``; None when the broker asked does not list this
        client (the assignment of the topic is then kept as it is). Raises
        ``AllocationRefused`` when the strategy fails."""
        route = self.instance.route(topic, timeout=self.timeout)
        queues = list(route.subscribe)
        if self.model is MessageModel.BROADCASTING:
            return queues
        if not queues:
            return []
        cids = self.lists.ids(route.masters(), topic)
        if self.instance.client_id not in cids:
            self._note_unlisted(topic, cids)
            return None
        if topic in self._unlisted:
            self._unlisted.discard(topic)
            logger.info(
                "client: {} listed in group {} again; rebalancing {}",
                self.instance.client_id,
                self.group,
                topic,
            )
        return allocate_queues(
            self.allocate, self.group, self.instance.client_id, sorted(queues), sorted(cids)
        )

    def _note_unlisted(self, topic: str, cids: list[str]) -> None:
        """The broker asked does not list this client (it restarted and our heartbeat has not
        reached it yet): warn once per topic until it lists us again."""
        if topic in self._unlisted:
            return
        self._unlisted.add(topic)
        logger.warning(
            "client: {} not in the consumer list of group {} ({}); keeping the queues of {} "
            "until a broker lists it (heartbeat sent)",
            self.instance.client_id,
            self.group,
            cids,
            topic,
        )

    # -- pullers --------------------------------------------------------------------------------

    def _offsets(self) -> pykka.ActorRef[Any]:
        ref = self.instance.directory.get(self.offsets_name)
        if ref is None:
            raise ClientError(f"{self.offsets_name} is not running")
        return ref

    def _ask_offsets(self, message_factory: Callable[[GeventFuture[int]], Any]) -> int:
        reply: GeventFuture[int] = new_future()
        self._offsets().tell(message_factory(reply))
        try:
            return reply.get(timeout=self.timeout + self.instance.config.connect_timeout + 1)
        except pykka.Timeout:
            raise ClientError(f"{self.offsets_name} did not answer") from None

    def start_offset(self, mq: MessageQueue) -> int:
        """The offset a newly assigned queue starts at: the group's committed offset, else the
        consume-from policy (LAST: max offset; FIRST: min offset; TIMESTAMP: the offset of the
        first message stored at or after ``consume_timestamp``; retry topics: min offset), then
        committed (at once to the brokers; a local offsets file takes it with its next write)."""
        stored = self._ask_offsets(lambda reply: ReadOffset(mq, reply))
        if stored >= 0:
            return stored
        offset = consume_from_offset(
            self.instance, mq, self.consume_from, self.consume_timestamp, self.timeout
        )
        self._offsets().tell(UpdateOffset(mq, offset, True))
        self._ask_offsets(lambda reply: Persist((mq,), reply))
        logger.debug("client: {} starts {} at {} ({})", self.group, mq, offset, self.consume_from)
        return offset

    def _start_pullers(self, mqs: list[MessageQueue]) -> list[MessageQueue]:
        """Start pullers for newly assigned queues (in ``mqs``' order, once every start offset
        is known); the ones started. A queue whose start offset cannot be had is left out (a
        warning; the next rebalance tries again)."""
        offsets = start_offsets(mqs, self.start_offset)
        started = []
        for mq in mqs:
            if mq in offsets:
                self._start_puller(mq, offsets[mq])
                started.append(mq)
        return started

    def _start_puller(self, mq: MessageQueue, offset: int) -> None:
        ref = self.puller_class.start(
            self.instance,
            self.group,
            mq,
            offset,
            self.subscriptions.get(mq.topic) or TagFilter("*"),
            self.sink,
            self.offsets_name,
            self.options,
        )
        self.pullers[mq] = ref
        if mq in self.holds:
            ref.tell(Hold(True))
        me = self.actor_ref

        def exited(dead: pykka.ActorRef[Any], failure: BaseException | None) -> None:
            reason = None if failure is None else f"{failure.__class__.__name__}: {failure}"
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(PullerExited(mq, dead.actor_urn, reason))

        watch(ref, exited)

    def _stop_pullers(self, mqs: list[MessageQueue], persist: bool = True) -> None:
        for mq in mqs:
            ref = self.pullers.pop(mq, None)
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                    ref.stop(block=True, timeout=5)
        if not mqs or not persist:
            return
        try:
            self._ask_offsets(lambda reply: Persist(tuple(mqs), reply))
            for mq in mqs:
                self._offsets().tell(Forget(mq))
        except ClientError as exc:
            logger.warning("client: offsets of removed queues not persisted: {}", exc)

    def _puller_exited(self, message: PullerExited) -> None:
        ref = self.pullers.get(message.mq)
        if ref is None or ref.actor_urn != message.urn or self._stopping:
            return
        del self.pullers[message.mq]
        if message.failure is not None and not self.quiesced:
            logger.error("client: puller of {} failed: {}; restarting", message.mq, message.failure)
            self._start_pullers([message.mq])
