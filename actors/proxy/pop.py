"""PopGroup: one consumer group's messages as RocketMQ 5 consumers receive them through the
proxy: handed out for an invisible duration, gone once acked, handed out again when the
duration passes unacked, dead-lettered after ``max_attempts`` deliveries.

RocketMQ's broker keeps this state itself (POP); actormq's proxy keeps it over a lite pull
consumer of the group with manual acks (``PullConsumer(manual_ack=True)``): the queues are
pulled by the proxy (shared with the group's other members, other proxies included, by the
usual rebalancing), a message stays in its queue's process queue until acked, so the offset
committed for the queue never passes an unacked message, and a proxy that dies loses nothing:
the group's next reader starts at the oldest unacked message (at-least-once, as RocketMQ).

- ``subscribe`` / ``change_topics`` / ``set_priority`` / ``wake``: its topics
  (``actors.proxy.pop_topics``).
- ``receive(topics, max_messages, invisible_ms, wait_s, holder)``: messages of the topic (or
  of several: a lite consumer's lite topics) whose invisible duration ran out first (the next
  delivery attempt), then new ones; waits up to ``wait_s`` for the first. Each comes as a
  ``Delivery`` with a fresh receipt handle. ``remember(attempt, deliveries)`` /
  ``retry(attempt, ...)``: a receive retried under its attempt id gets what the first one
  handed out and is still out (``actors.proxy.attempts``).
- ``ack(handle)``, ``change_invisible(handle, ms, suspend)`` (a new handle), ``let_go(client)``
  (a push consumer terminated: what it held comes due within a second),
  ``dead_letter(handle)`` (``actors.proxy.dead_letters``); ``sweep()`` every second:
  dead-letter what ran out of attempts though no receive came, renew the deliveries of push
  consumers still calling (``auto_renew``).

A FIFO group (``fifo=True``: its ``consumeMessageOrderly``; every lite group) hands out one
message of a message group (RocketMQ's sharding key ``__SHARDINGKEY``; a lite topic is one) at
a time: the next waits until the one out is acked or dead-lettered (and wakes a waiting
receive then), so a message group is consumed in order even across redeliveries. In other
groups a priority topic's waiting messages go highest queue first (``actors.proxy.priority``).

State owned: the deliveries in flight by handle, a heap of their deadlines per topic, messages
waiting for their topic's receive (a priority topic's in a heap), the deliveries out of
attempts waiting for the sweep, a FIFO group's message groups out and the messages held behind
them, the topics unsubscribed lately and each topic's subscription generation. A message of a
queue rebalanced away (``PullConsumer.still_owned``) is dropped: its new owner reads it again.
Not an actor: the proxy's handlers call it from their threads (greenlets under gevent); one lock
guards the state, never held across the consumer's ``poll`` or a dead-letter send.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence

from actors.client.message import MessageExt
from actors.client.pull_consumer import PullConsumer
from actors.proxy.attempts import Attempts
from actors.proxy.dead_letters import BURY_BATCH, DeadLetters
from actors.proxy.delivery import MAX_RENEW_S, Delivery, message_group
from actors.proxy.delivery import of_topic as _of_topic
from actors.proxy.pop_topics import PopTopics
from actors.proxy.priority import Urgent
from actors.proxy.redelivery import RECHECK_S, Redelivery
from actors.proxy.settings import MAX_ATTEMPTS

DRAIN_BATCH = 256
"""Messages a receive of a priority topic takes from the consumer's buffer at once to choose
the most urgent of."""
DROPPED_S = 60.0
"""How long an unsubscribed topic's late messages are dropped (its puller stopped long since)."""


MEMBER_S = 30 * 60.0
"""How long a client that received through a group counts as its member (its heartbeats keep
the group)."""
MAX_RECEIVERS = 1024


class PopGroup(PopTopics, DeadLetters, Redelivery):
    def __init__(
        self,
        group: str,
        consumer: PullConsumer,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        fifo: bool = False,
        lite: bool = False,
        alive: Callable[[str], bool] = lambda _client_id: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.alive = alive
        """Whether a client (by id) was heard from lately: its auto-renewed deliveries stay
        invisible."""
        self.group = group
        self.fifo = fifo
        """FIFO consumption (the group's ``consumeMessageOrderly``): one batch of a message
        group out at a time; the next once all of it is acked or dead-lettered."""
        self.lite = lite
        """A group of lite push consumers: it pulls the queue topics of the lite topics its
        clients subscribed (``actors.proxy.lite_subscriptions``), FIFO per lite topic."""
        self.started = False
        """Its consumer runs (from the first subscription to ``shutdown``)."""
        self.priority_topics: set[str] = set()
        """Topics whose ``message.type`` is PRIORITY: the highest queue's waiting messages are
        handed out first (``actors.proxy.priority``; not in a FIFO group); ``set_priority``."""
        self._urgent = Urgent()
        """A priority topic's waiting messages (instead of ``_ready``), most urgent first."""
        self._dropped: dict[str, float] = {}
        """Topics unsubscribed (and not subscribed again), and when: their messages polled
        late go (the sweep forgets them after ``DROPPED_S``)."""
        self._generation: dict[str, int] = {}
        """Topic -> how often it was unsubscribed: a delivery of an earlier subscription no
        longer frees its message group (``_release``); forgotten with ``_dropped``'s entry."""
        self.lite_lock = threading.Lock()
        """Held while the service matches the group's lite topics to its clients' (one change
        at a time)."""
        self._busy: dict[tuple[str, str], int] = {}
        """(topic, message group) -> its messages out (its batch; ``fifo`` only)."""
        self._held: dict[tuple[str, str], deque[MessageExt]] = {}
        """Messages waiting behind their message group's batch (``fifo`` only)."""
        self.consumer = consumer
        self.max_attempts = max_attempts
        self.clock = clock
        self.in_flight: dict[str, Delivery] = {}
        self._deadlines: dict[str, list[tuple[float, int, str]]] = {}
        """Topic -> a heap of (deadline, seq, handle) of its deliveries (stale entries, of
        deliveries acked or handed out again since, are skipped when they come up)."""
        self._seq = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._ready: dict[str, deque[MessageExt]] = {}
        self.expressions: dict[str, tuple[str, str | None]] = {}
        """Topic -> (tag expression, SQL or None) subscribed; the consumer runs once one is."""
        self._subscribing = threading.Lock()
        self._bury: deque[Delivery] = deque()
        """Deliveries out of attempts, for the sweep to dead-letter (under the lock)."""
        self.burying = False
        """A batch of ``due_dead_letters`` is being sent (``bury``): the next waits for it."""
        self.broken = False
        """Its consumer failed to start (e.g. a SQL92 filter brokers refuse): the service
        makes the group anew at its next use."""
        self._lock = threading.Lock()
        """Guards the state below and above: receives, acks and the sweep may come from
        several threads (a proxy without gevent) or greenlets; never held over a network call
        or the consumer's poll."""
        self.last_used = clock()
        """When a consumer last received or acked through this group (``clock`` time): a
        group idle for long leaves (``ProxyService``), so its queues go to members in use."""
        self.receivers: dict[str, float] = {}
        """Client id -> when it last received through this group (``clock`` time): its
        heartbeats keep the group for ``MEMBER_S`` after (a member polling less often than
        the idle limit must not make the group leave and come back at each poll)."""
        self.attempts = Attempts(clock)
        """The handles each receive with an attempt id handed out (``retry``)."""

    # -- receiving -------------------------------------------------------------------------------

    def seen_receiver(self, who: str) -> None:
        """``who`` receives through this group now (kept ``MEMBER_S``; at most
        ``MAX_RECEIVERS`` remembered, the oldest forgotten first)."""
        if not who:
            return
        with self._lock:
            self.receivers.pop(who, None)
            self.receivers[who] = self.clock()
            while len(self.receivers) > MAX_RECEIVERS:
                del self.receivers[next(iter(self.receivers))]

    def is_member(self, who: str) -> bool:
        """Whether ``who`` received through this group within ``MEMBER_S``."""
        since = self.receivers.get(who)
        return since is not None and self.clock() - since <= MEMBER_S

    def remember(self, attempt: Hashable, deliveries: Sequence[Delivery]) -> None:
        """A receive of ``attempt`` (its client, topic and attempt id) handed out these."""
        if deliveries:
            with self._lock:
                self.attempts.remember(attempt, [d.handle for d in deliveries])

    def retry(self, attempt: Hashable, invisible_ms: int, holder: str | None) -> list[Delivery]:
        """A receive retried (the same attempt id: its client never got the answer): what
        the first one handed out and is still out under its handle, in the same order, each
        invisible ``invisible_ms`` from now and held for ``holder`` (RocketMQ's broker re-pops
        a FIFO queue's batch for the attempt id that popped it); none: receive as usual."""
        with self._lock:
            now = self.clock()
            again = [self.in_flight.get(h) for h in self.attempts.handles(attempt)]
            out = [d for d in again if d is not None and self.consumer.still_owned(d.msg)]
            if not out:
                self.attempts.forget(attempt)
            for delivery in out:
                delivery.invisible_s = invisible_ms / 1000.0
                delivery.deadline = now + delivery.invisible_s
                delivery.holder = holder
                self._schedule(delivery)
            if out:
                self.last_used = now
            return out

    def receive(
        self,
        topic: str | Sequence[str] | Callable[[], Sequence[str]],
        max_messages: int,
        invisible_ms: int,
        wait_s: float,
        holder: str | None = None,
        ended: Callable[[], bool] = lambda: False,
    ) -> list[Delivery]:
        """Deliveries of ``topic``, or of any of several (a lite push consumer's lite topics:
        a callable is asked again each time the receive looks, so a lite topic subscribed
        meanwhile is served at once); ``holder``: the client id of a receive asking for
        ``auto_renew``. The wait ends early once ``ended`` says so (its gRPC call was
        cancelled: ``wake`` the group then); what it handed out by then is returned, for the
        caller to make visible again."""
        if callable(topic):
            current = topic
        else:
            fixed: tuple[str, ...] = (topic,) if isinstance(topic, str) else tuple(topic)

            def current() -> Sequence[str]:
                return fixed

        out: list[Delivery] = []
        batch: set[tuple[str, str]] = set()
        """Message groups this receive began handing out (it may add their next messages)."""
        until = self.clock() + max(wait_s, 0.0)
        self.last_used = until
        while True:
            if ended():
                return out
            topics = tuple(current())
            wanted = set(topics)
            urgent = set() if self.fifo else wanted & self.priority_topics
            if urgent:  # what waits in the consumer's buffer too, to pick the highest first
                self._drain()
            with self._lock:
                now = self.clock()
                wait = max(0.0, until - now)
                for name in topics:
                    self._look(name, name in urgent, max_messages, invisible_ms, out, holder, batch)
                    heap = self._deadlines.get(name)
                    if heap:  # wake for the first of its deliveries to come due
                        wait = min(wait, max(0.0, heap[0][0] - now))
                # ... and look again every second at most (a safety net: what a receive waits
                # for besides the consumer's messages, ``_release`` and ``wake``, wake it)
                wait = 0.0 if out else min(wait, RECHECK_S)
            if len(out) >= max_messages:
                return out
            polled = self.consumer.poll(timeout=wait, max_messages=max_messages - len(out))
            with self._lock:
                # parked behind what waits already (another receive of the group may have
                # parked earlier messages of these topics): one ordered line per topic
                for msg in polled:
                    self._park(msg)
                for name in topics:
                    self._take_ready(name, max_messages, invisible_ms, out, holder, batch)
                # the wait is over whatever else came (other topics' messages keep arriving)
                gone = ended()
                done = bool(out) or gone or self.clock() >= until
                if done and not out and not gone:
                    for name in topics:
                        self._due(name, max_messages - len(out), invisible_ms, out, holder)
            if done:
                return out

    def _look(
        self,
        topic: str,
        urgent: bool,
        max_messages: int,
        invisible_ms: int,
        out: list[Delivery],
        holder: str | None,
        batch: set[tuple[str, str]],
    ) -> None:
        """``topic``'s deliveries due again and waiting messages into ``out``: redeliveries
        first, but a priority topic's after its waiting messages (RocketMQ serves a priority
        topic's retries last). Under the lock."""
        if urgent:
            self._take_ready(topic, max_messages, invisible_ms, out, holder, batch)
        self._due(topic, max_messages - len(out), invisible_ms, out, holder)
        if not urgent:
            self._take_ready(topic, max_messages, invisible_ms, out, holder, batch)

    def _drain(self) -> None:
        """Everything the consumer has buffered, parked here (a priority topic's receive
        chooses among all of it)."""
        while True:
            polled = self.consumer.poll(timeout=0.0, max_messages=DRAIN_BATCH)
            with self._lock:
                for msg in polled:
                    self._park(msg)
            if len(polled) < DRAIN_BATCH:
                return

    def _park(self, msg: MessageExt) -> None:
        """A polled message waits for its topic's receive. Under the lock."""
        if msg.topic in self._dropped:
            return  # its topic was unsubscribed meanwhile
        if msg.topic in self.priority_topics and not self.fifo:
            self._urgent.push(msg)
        else:
            self._ready.setdefault(msg.topic, deque()).append(msg)

    def _take_ready(
        self,
        topic: str,
        max_messages: int,
        invisible_ms: int,
        out: list[Delivery],
        holder: str | None,
        batch: set[tuple[str, str]],
    ) -> None:
        """First deliveries of ``topic``'s waiting messages into ``out`` (up to
        ``max_messages`` in all): a priority topic's highest queue first. Under the lock."""
        ready = self._ready.get(topic)
        if topic in self.priority_topics and not self.fifo:
            while ready:  # parked before the topic was known to be a priority topic
                self._urgent.push(ready.popleft())
            while len(out) < max_messages:
                msg = self._urgent.pop(topic)
                if msg is None:
                    return
                self._first(msg, topic, invisible_ms, out, holder, batch)
            return
        while ready and len(out) < max_messages:
            self._first(ready.popleft(), topic, invisible_ms, out, holder, batch)

    def _first(
        self,
        msg: MessageExt,
        topic: str,
        invisible_ms: int,
        out: list[Delivery],
        holder: str | None,
        batch: set[tuple[str, str]],
    ) -> None:
        """A message's first delivery, into ``out``; dropped if its queue is another proxy's
        now. In a FIFO group a message group's messages go out as a batch of one receive (the
        receive that hands out its first one takes those after it, in order); one that comes
        later waits (held) until every message of the batch is done. Under the lock."""
        if not self.consumer.still_owned(msg):
            return  # rebalanced away: its new owner reads it again from the committed offset
        if self.fifo:
            key = message_group(msg, topic)
            if key is not None:
                if key in self._busy and (key not in batch or key in self._held):
                    self._held.setdefault(key, deque()).append(msg)
                    return
                if key not in self._busy:
                    batch.add(key)
                self._busy[key] = self._busy.get(key, 0) + 1
        out.append(self._hand_out(msg, topic, 1, invisible_ms, holder))

    def _renewed(self, delivery: Delivery, now: float) -> bool:
        """An auto-renewed delivery whose holder is alive gets another invisible duration
        (the same handle); True if so. Under the lock."""
        holder = delivery.holder
        if holder is None or now - delivery.since >= MAX_RENEW_S or not self.alive(holder):
            return False
        delivery.deadline = now + delivery.invisible_s
        self._schedule(delivery)
        return True

    def _release(self, delivery: Delivery) -> None:
        """A delivery is done (acked, dead-lettered): in a FIFO group, once its batch is all
        done, its message group's next messages are first in line for the topic's next receive
        (and a receive waiting for the topic is woken). Under the lock."""
        if not self.fifo or delivery.generation != self._generation.get(delivery.topic, 0):
            return  # (a delivery of an earlier subscription of the topic frees nothing now)
        group_key = message_group(delivery.msg, delivery.topic)
        if group_key is None or group_key not in self._busy:
            return
        left = self._busy[group_key] - 1
        if left > 0:
            self._busy[group_key] = left
            return
        del self._busy[group_key]
        held = self._held.pop(group_key, None)
        if held:
            self._ready.setdefault(delivery.topic, deque()).extendleft(reversed(held))
            self.consumer.wakeup()  # a receive waiting for the topic takes them now

    def _hand_out(
        self,
        msg: MessageExt,
        topic: str,
        attempt: int,
        invisible_ms: int,
        holder: str | None = None,
    ) -> Delivery:
        handle = f"{self._prefix}{next(self._seq):x}"
        now = self.clock()
        delivery = Delivery(msg, topic, handle, attempt, now, invisible_ms / 1000.0, holder)
        delivery.generation = self._generation.get(topic, 0)
        self.in_flight[handle] = delivery
        self._schedule(delivery)
        return delivery

    def _schedule(self, delivery: Delivery) -> None:
        heap = self._deadlines.setdefault(delivery.topic, [])
        heapq.heappush(heap, (delivery.deadline, next(self._seq), delivery.handle))

    def sweep(self) -> int:
        """Dead-letter the deliveries whose last allowed attempt ran out (RocketMQ's broker
        does this without a receive, so must the proxy): ``due_dead_letters`` then ``bury``,
        here and now. Returns how many went: at most ``BURY_BATCH``, and none more after a
        send failed (the broker may be down: the next sweep tries again)."""
        return self.bury(self.due_dead_letters())

    def due_dead_letters(self) -> list[Delivery]:
        """The sweep's part under the lock (no network call: the proxy's sweep runs it for
        every group each second, whatever a broker does): auto-renewed deliveries renewed,
        deliveries of queues rebalanced away forgotten, and up to ``BURY_BATCH`` deliveries
        out of attempts taken for ``bury``; none while the group's last batch is still being
        sent (``burying``: the next batch goes after it, in order)."""
        with self._lock:
            now = self.clock()
            for topic in [t for t, at in self._dropped.items() if now - at > DROPPED_S]:
                del self._dropped[topic]
                # (its deliveries went when it was dropped: no count of its unsubscriptions
                # kept for every lite topic a long-lived lite group ever let go)
                self._generation.pop(topic, None)
            for heap in self._deadlines.values():
                kept: list[tuple[float, int, str]] = []
                while heap and heap[0][0] <= now:
                    entry = heapq.heappop(heap)
                    delivery = self.in_flight.get(entry[2])
                    if delivery is None or delivery.deadline != entry[0]:
                        continue
                    if self._renewed(delivery, now):
                        continue
                    if delivery.attempt >= self.max_attempts:
                        del self.in_flight[delivery.handle]
                        self._bury.append(delivery)
                    else:
                        kept.append(entry)  # due for its next receive
                for entry in kept:
                    heapq.heappush(heap, entry)
            owned = self.consumer.still_owned
            for delivery in [d for d in self.in_flight.values() if not owned(d.msg)]:
                del self.in_flight[delivery.handle]  # rebalanced away: an ack would be ignored
                self._release(delivery)
            if self.burying:
                return []
            batch = [self._bury.popleft() for _ in range(min(BURY_BATCH, len(self._bury)))]
            self.burying = bool(batch)
            return batch

    # -- acknowledging ---------------------------------------------------------------------------

    def ack(self, handle: str, topic: str | None = None) -> bool:
        """False when ``handle`` is unknown (acked already, or handed out again since), or
        when ``topic`` (the ack's) is not its message's (a lite topic's: its parent)."""
        with self._lock:
            delivery = self.in_flight.get(handle)
            if delivery is None or (topic is not None and not _of_topic(delivery.msg, topic)):
                return False
            del self.in_flight[handle]
            self.last_used = self.clock()
            self._release(delivery)
        self.consumer.ack([delivery.msg])
        return True

    def change_invisible(
        self, handle: str, invisible_ms: int, suspend: bool = False, topic: str | None = None
    ) -> str | None:
        """The delivery's new receipt handle, visible again ``invisible_ms`` from now (None:
        ``handle`` unknown, or ``topic``, the call's, not its message's, as for ``ack``). The
        next delivery counts as the next attempt, unless ``suspend`` (a lite consumer pausing
        a lite topic: RocketMQ counts no retry then)."""
        with self._lock:
            delivery = self.in_flight.get(handle)
            if delivery is None or (topic is not None and not _of_topic(delivery.msg, topic)):
                return None
            del self.in_flight[handle]
            attempt = delivery.attempt - 1 if suspend else delivery.attempt
            again = self._hand_out(delivery.msg, delivery.topic, attempt, invisible_ms)
        self.wake()  # due sooner, perhaps: a waiting receive looks again
        return again.handle

    def let_go(self, holder: str, within_s: float) -> int:
        """A client that terminated: its auto-renewed deliveries are renewed no more and come
        due within ``within_s`` (those due sooner keep their time). How many it held."""
        with self._lock:
            due = self.clock() + within_s
            held = [d for d in self.in_flight.values() if d.holder == holder]
            for delivery in held:
                delivery.holder = None
                if delivery.deadline > due:
                    delivery.deadline = due
                    self._schedule(delivery)
        return len(held)

    def disown(self, handle: str) -> None:
        """The delivery is no longer held for its client (it never reached it: the receive's
        stream ended first): not renewed, it comes due at the end of its invisible duration."""
        with self._lock:
            delivery = self.in_flight.get(handle)
            if delivery is not None:
                delivery.holder = None

    def shutdown(self) -> None:
        if self.started:
            self.consumer.shutdown()
