"""PullConsumer: the lite pull consumer (RocketMQ's DefaultLitePullConsumer).

```python
consumer = PullConsumer("orders-audit", namesrv="127.0.0.1:9876")
consumer.subscribe("Orders", "*")          # or: consumer.assign(queues)
consumer.start()
for msg in consumer.poll(timeout=1.0): ...
consumer.commit()                          # automatic every 5 s unless auto_commit=False
consumer.seek(mq, 0)
```

Queues are pulled in the background (one long-poll loop per queue, as the push consumer) into
a buffer; ``poll`` takes up to ``max_poll_messages`` from it. Polled messages count as
consumed: their offsets are what ``commit`` writes (and what auto-commit writes every
``commit_interval`` and on each pull). ``auto_commit=False`` turns those two off; as in
RocketMQ, a queue that moves to another member and ``shutdown`` still write what was polled.

With ``manual_ack=True`` a polled message counts as consumed once ``ack``ed: until then the
offset written for its queue stays at it, and its queue's pulling pauses past ``max_span``
offsets (``actors.client.manual_ack``; actormq's gRPC proxy consumes this way).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pykka

from actors.client.allocate import AllocateOption
from actors.client.config import TlsOptions
from actors.client.consumer_base import ConsumerBase
from actors.client.consumer_requests import OFFSETS
from actors.client.consumer_trace import ConsumerTrace
from actors.client.errors import ClientError, ClientStateError, RebalancerUnavailableError
from actors.client.hub import ClientHub
from actors.client.manual_ack import Unacked
from actors.client.message import MessageExt, MessageQueue
from actors.client.namespace import plain_queue, wire_name, wire_queue
from actors.client.offsets import Persist, UpdateOffset
from actors.client.poll_buffer import PollBuffer
from actors.client.pull import TagFilter, subscription
from actors.client.pull_limits import check_total
from actors.client.puller_messages import (
    Consumed,
    FlowCheck,
    PullOptions,
    Sink,
    next_generation,
)
from actors.client.rebalance import Assign, ConsumeFrom, SeekQueue
from runtime.acl.signature import SessionCredentials
from runtime.remoting.codes import MessageModel, RequestCode


class PullConsumer(ConsumerBase, ConsumerTrace):
    """A lite pull consumer of one group. See the module docstring.

    Options as ``PushConsumer`` where they apply (``allocate``, ``enable_msg_trace`` and
    ``trace_topic`` too: each ``poll``'s messages are traced as RocketMQ's
    DefaultLitePullConsumer traces them, ``actors.client.consumer_trace``), plus
    ``auto_commit`` (True), ``max_poll_messages`` (32) and ``pull_batch_size`` (32);
    ``max_span`` (2000) is RocketMQ's consumeMaxSpan here; ``max_cached_messages_total``
    (10000: RocketMQ's pullThresholdForAll) pauses every queue's pulling while more messages
    than that were pulled but not polled yet, all queues together (0 turns it off)."""

    consume_type = "CONSUME_ACTIVELY"

    def __init__(
        self,
        group: str,
        namesrv: str | list[str] | None = None,
        *,
        model: MessageModel = MessageModel.CLUSTERING,
        consume_from: ConsumeFrom = ConsumeFrom.LAST,
        consume_timestamp: int | None = None,
        auto_commit: bool = True,
        commit_interval: float = 5.0,
        max_poll_messages: int = 32,
        pull_batch_size: int = 32,
        max_cached_messages: int = 1000,
        max_cached_bytes: int = 100 * 1024 * 1024,
        max_span: int = 2000,
        max_cached_messages_total: int = 10_000,
        rebalance_interval: float = 20.0,
        suspend_timeout: float = 15.0,
        pull_error_delay: float = 3.0,
        offset_store_dir: str | os.PathLike[str] | None = None,
        instance_name: str | None = None,
        heartbeat_interval: float = 30.0,
        route_refresh_interval: float = 30.0,
        credentials: SessionCredentials | None = None,
        tls: TlsOptions | bool | None = None,
        hub: ClientHub | None = None,
        allocate: AllocateOption = "AVG",
        enable_msg_trace: bool = False,
        trace_topic: str | None = None,
        namespace: str | None = None,
        manual_ack: bool = False,
    ) -> None:
        options = PullOptions(
            batch_size=pull_batch_size,
            suspend_ms=int(suspend_timeout * 1000),
            max_cached_messages=max_cached_messages,
            max_cached_bytes=max_cached_bytes,
            max_span=max_span,
            max_cached_messages_total=check_total(max_cached_messages_total),
            error_delay=pull_error_delay,
            commit_in_pull=auto_commit,
            lite=True,
        )
        super().__init__(
            group,
            namesrv,
            model=model,
            consume_from=consume_from,
            consume_timestamp=consume_timestamp,
            pull_options=options,
            rebalance_interval=rebalance_interval,
            commit_interval=commit_interval if auto_commit else 0.0,
            offset_store_dir=offset_store_dir,
            instance_name=instance_name,
            heartbeat_interval=heartbeat_interval,
            route_refresh_interval=route_refresh_interval,
            hub=hub,
            credentials=credentials,
            tls=tls,
            allocate=allocate,
            namespace=namespace,
        )
        self.auto_commit = auto_commit
        self.max_poll_messages = max_poll_messages
        self.buffer = PollBuffer(max_cached_messages_total)
        self.unacked: Unacked | None = Unacked() if manual_ack else None
        """Polled messages not acknowledged yet (``manual_ack=True``), else None."""
        self._listener_pool: concurrent.futures.Executor | None = None
        """The thread queue-change listeners run on (made by the first registration)."""
        self.enable_msg_trace = enable_msg_trace
        self.trace_topic = trace_topic

    # -- configuration -------------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = "*", *, sql: str | None = None) -> None:
        """Subscribe (group members share the queues) with a TAG ``expression`` or a SQL92
        property filter ``sql`` (the broker needs ``enablePropertyFilter``). Before or after
        ``start`` (as the push consumer's); not with ``assign``."""
        if self._fixed is not None:
            raise ClientError("subscribe and assign cannot be mixed")
        self._set_subscription(
            wire_name(self.namespace, topic), subscription(expression, sql), 10.0
        )

    def change_topics(self, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """Subscribe the topics ``add`` (every tag) and unsubscribe ``remove`` at once: one
        heartbeat, one rebalance of just those topics (a consumer of thousands of topics,
        actormq's proxy's lite groups, changes many cheaply)."""
        if self._fixed is not None:
            raise ClientError("subscribe and assign cannot be mixed")
        changes: dict[str, TagFilter | None] = {
            wire_name(self.namespace, t): subscription("*", None) for t in add
        }
        changes.update({wire_name(self.namespace, t): None for t in remove})
        if changes:
            self._set_subscriptions(changes, 10.0)

    def assign(self, queues: Sequence[MessageQueue]) -> None:
        """Pull exactly these queues (no group rebalancing). Before or after ``start``."""
        if self.subscriptions:
            raise ClientError("subscribe and assign cannot be mixed")
        queues = tuple(sorted(set(queues)))
        for mq in queues:
            if not isinstance(mq, MessageQueue):
                raise ClientError(f"assign: {mq!r} is not a MessageQueue")
        queues = tuple(wire_queue(self.namespace, mq) for mq in queues)
        if self._state == "created":
            self._fixed = queues
            return
        hub = self._running_hub("assign")

        def apply() -> None:
            before, self._fixed = self._fixed, queues  # what a restarted rebalancer starts with
            try:
                self._ask_rebalancer(lambda reply: Assign(queues, reply), 30.0, "assign")
            except RebalancerUnavailableError:
                self._fixed = before
                raise

        hub.call(apply, timeout=35, what="assign")

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> PullConsumer:
        self._start_traced()
        return self

    def shutdown(self, timeout: float = 15.0) -> None:
        """Stop pulling, write the offsets of what was polled, unregister. Idempotent. A
        ``poll`` waiting in another thread returns [] at once."""
        try:
            self.buffer.close()
            self._shutdown(None, timeout)
        finally:
            self._stop_msg_trace()  # after the last poll's records
            if self._listener_pool is not None:
                self._listener_pool.shutdown(wait=False)

    def register_topic_queue_listener(
        self,
        topic: str,
        listener: Callable[[str, set[MessageQueue]], None],
        timeout: float = 10.0,
    ) -> set[MessageQueue]:
        """Call ``listener(topic, queues)`` whenever a route refresh (every
        ``route_refresh_interval``, 30 s) finds ``topic``'s readable queues changed (a broker
        added or gone, queues added), on a thread of the consumer's own, never the hub
        (RocketMQ's ``registerTopicMessageQueueChangeListener``); an ``assign`` user re-assigns
        there. Returns the queues now, the baseline. After ``start``."""
        hub = self._running_hub("register_topic_queue_listener")
        wire, ns = wire_name(self.namespace, topic), self.namespace
        with self._lock:
            if self._listener_pool is None:
                self._listener_pool = hub.executor(1, f"actormq-queues-{self.group}")
            pool = self._listener_pool

        def changed(_wire: str, queues: tuple[MessageQueue, ...]) -> None:  # on the hub
            with contextlib.suppress(RuntimeError):  # the pool shut down with the consumer
                pool.submit(listener, topic, {plain_queue(ns, mq) for mq in queues})

        def register() -> set[MessageQueue]:
            instance = self._instance
            if instance is None:
                raise ClientStateError(f"consumer {self.group}", self._state)
            route = instance.fetch_route(wire, timeout=timeout)
            instance.queue_listeners.setdefault(wire, []).append(changed)
            return {plain_queue(ns, mq) for mq in route.subscribe}

        return hub.call(register, timeout=timeout + 5, what="register_topic_queue_listener")

    def __enter__(self) -> PullConsumer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    # -- consuming ------------------------------------------------------------------------------

    def poll(self, timeout: float = 1.0, max_messages: int | None = None) -> list[MessageExt]:
        """Up to ``max_messages`` (default ``max_poll_messages``) messages, waiting up to
        ``timeout`` seconds for the first; [] when none came. The returned messages count as
        consumed (with ``manual_ack``: once acked)."""
        hub = self._running_hub("poll")
        limit = self.max_poll_messages if max_messages is None else max(1, max_messages)
        batches = self.buffer.take(limit, timeout)
        out: list[MessageExt] = []
        hooks = self._consume_hooks
        ns = self.namespace
        for batch in batches:
            if ns is not None:
                for m in batch.msgs:
                    m.topic = ns.unwrap(m.topic)
            out.extend(batch.msgs)
            offsets = [m.queue_offset for m in batch.msgs]
            if self.unacked is not None:
                self.unacked.record(batch.puller, batch.generation, batch.mq, offsets)
            else:
                with contextlib.suppress(ClientError):
                    hub.post(_tell, batch.puller, Consumed(batch.generation, offsets))
            if hooks is not None and hooks.hooks:
                hooks.polled(plain_queue(ns, batch.mq), batch.msgs)
        self._wake_waiting(hub)
        return out

    def wakeup(self) -> None:
        """Make every ``poll`` waiting now return at once (with what it has: usually nothing),
        as Kafka's ``wakeup`` does without raising: a caller waiting on the consumer and on
        something else (actormq's proxy) looks at the other thing again."""
        self.buffer.wakeup()

    def ack(self, msgs: Sequence[MessageExt]) -> int:
        """Acknowledge polled messages (``manual_ack=True``): their queues' offsets may move
        past them. How many were held (an ack twice, or of one not polled here, counts none)."""
        hub = self._running_hub("ack")
        if self.unacked is None:
            raise ClientError("ack: this consumer was not made with manual_ack=True")
        ns = self.namespace
        told, unknown = self.unacked.take(msgs, lambda m: wire_name(ns, m.topic))
        for (puller, _generation), done in told.items():
            with contextlib.suppress(ClientError):
                hub.post(_tell, puller, done)
        self._wake_waiting(hub)
        return len(msgs) - unknown

    def still_owned(self, msg: MessageExt) -> bool:
        """(``manual_ack``) A polled, unacked message's queue is still this consumer's (not
        given to another member since, which reads it again: an ack here would be ignored)."""
        if self.unacked is None:
            raise ClientError("still_owned: this consumer was not made with manual_ack=True")
        return self.unacked.held_by_live_puller(msg, wire_name(self.namespace, msg.topic))

    def _wake_waiting(self, hub: ClientHub) -> None:
        """Tell the pullers that waited for room in the buffer (``max_cached_messages_total``)
        that there is some again."""
        for ref in self.buffer.released():
            with contextlib.suppress(ClientError):
                hub.post(_tell, ref, FlowCheck())

    def commit(
        self, timeout: float = 10.0, *, offsets: Mapping[MessageQueue, int] | None = None
    ) -> int:
        """Write the offsets of everything polled so far (synchronously). Returns how many
        queues' offsets were written. With ``offsets`` (queue -> the offset of the next message
        to consume), write those instead, as given, lower than the polled position too
        (RocketMQ 5's ``commit(offsetMap, true)``, Kafka's ``commitSync(offsets)``); a later
        poll of such a queue moves its offset to what was polled again."""
        if offsets is None:
            return self.persist_offsets(timeout)
        given: dict[MessageQueue, int] = {}
        for mq, offset in offsets.items():
            if not isinstance(mq, MessageQueue):
                raise ClientError(f"commit: {mq!r} is not a MessageQueue")
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise ClientError(f"commit: offset {offset!r} of {mq} is not an offset")
            given[wire_queue(self.namespace, mq)] = offset
        hub = self._running_hub("commit")

        def write() -> int:
            instance = self._instance
            store = instance.directory.get(instance.name(OFFSETS)) if instance else None
            if store is None:
                raise ClientStateError(f"commit ({self.group})", "stopping")
            for mq, offset in given.items():  # before the Persist: one mailbox, in order
                store.tell(UpdateOffset(mq, offset, True))
            return self._ask(OFFSETS, lambda reply: Persist(tuple(given), reply), timeout)

        return hub.call(write, timeout=timeout + 5, what="commit")

    def _before_reset(self, mq: MessageQueue, generation: int) -> None:
        self.buffer.drop(mq, generation)

    def seek(self, mq: MessageQueue, offset: int, timeout: float = 10.0) -> None:
        """Continue ``mq`` at ``offset``: buffered messages of that queue are dropped, and the
        offset to commit becomes ``offset``. The queue must be assigned to this consumer."""
        hub = self._running_hub("seek")
        mq = wire_queue(self.namespace, mq)
        generation = next_generation()
        self.buffer.drop(mq, generation)
        self._wake_waiting(hub)

        def forward() -> bool:  # asked again of a restarted rebalancer (_ask_rebalancer)
            return self._ask_rebalancer(
                lambda reply: SeekQueue(mq, int(offset), generation, reply), timeout, "seek"
            )

        if not hub.call(forward, timeout=timeout + 5, what="seek"):
            raise ClientError(f"seek: {mq} is not assigned to this consumer")

    def pause(self, queues: Sequence[MessageQueue], timeout: float = 10.0) -> None:
        """Stop pulling ``queues`` and returning their messages from ``poll`` until ``resume``
        (RocketMQ's ``pause``; Kafka's: nothing of a paused queue is returned, what was
        buffered waits). A pull in flight completes into the buffer. A queue not assigned now
        starts paused when it is; offsets, commits and seeks are unaffected."""
        self._hold_queues(queues, True, timeout)

    def resume(self, queues: Sequence[MessageQueue], timeout: float = 10.0) -> None:
        """Pull and return ``queues``' messages again (RocketMQ's and Kafka's ``resume``)."""
        self._hold_queues(queues, False, timeout)

    def paused(self) -> set[MessageQueue]:
        """The queues paused now (Kafka's ``paused``)."""
        return {plain_queue(self.namespace, mq) for mq in self.buffer.paused}

    def _hold_queues(self, queues: Sequence[MessageQueue], on: bool, timeout: float) -> None:
        hub = self._running_hub("pause" if on else "resume")
        for mq in queues:
            if not isinstance(mq, MessageQueue):
                raise ClientError(f"{'pause' if on else 'resume'}: {mq!r} is not a MessageQueue")
        mqs = tuple(wire_queue(self.namespace, mq) for mq in queues)
        changing = [mq for mq in mqs if (mq in self.buffer.paused) != on]
        self.buffer.hold(mqs, on)
        self._wake_waiting(hub)  # a pause may have taken the buffer back under the cap
        try:
            self._hold(mqs, on, hub, timeout)
        except RebalancerUnavailableError:
            self.buffer.hold(changing, not on)  # not applied: as before the call
            raise

    def seek_to_begin(self, mq: MessageQueue, timeout: float = 10.0) -> int:
        offset = self._queue_offset(RequestCode.GET_MIN_OFFSET, mq, timeout)
        self.seek(mq, offset, timeout)
        return offset

    def seek_to_end(self, mq: MessageQueue, timeout: float = 10.0) -> int:
        offset = self._queue_offset(RequestCode.GET_MAX_OFFSET, mq, timeout)
        self.seek(mq, offset, timeout)
        return offset

    def offset_for_timestamp(
        self, mq: MessageQueue, timestamp_ms: int, timeout: float = 10.0
    ) -> int:
        """The offset of the first message of ``mq`` stored at or after ``timestamp_ms``."""
        hub = self._running_hub("offset_for_timestamp")
        mq = wire_queue(self.namespace, mq)
        instance = self._instance
        assert instance is not None
        from actors.client.offsets import queue_offset

        return hub.call(
            lambda: queue_offset(
                instance, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, mq, timeout, timestamp_ms
            ),
            timeout=timeout + 5,
            what="offset_for_timestamp",
        )

    # -- ConsumerBase hooks -----------------------------------------------------------------------

    def _sink(self) -> Sink:
        return self.buffer

    def _settings(self) -> dict[str, str]:
        settings = super()._settings()
        settings["pullThresholdForAll"] = str(self.pull_options.max_cached_messages_total)
        return settings


def _tell(ref: pykka.ActorRef[Any], message: Any) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
