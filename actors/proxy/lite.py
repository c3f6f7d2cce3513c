"""Lite topics (RocketMQ 5.5's LiteTopic) as actormq's proxy stores them, and the topic types
that say which topics take them.

A lite topic is a small ordered channel inside a parent topic whose ``message.type`` attribute
is LITE (``admin updateTopic -t P -a +message.type=LITE``): one per session, task or user.
RocketMQ keeps each as a light message queue named ``%LMQ%$<parent>$<lite topic>``; actormq
keeps each as a topic of that name with one queue, made by the proxy on first use (a send or
a subscription) on one master of the parent's route (picked by the lite topic's hash), so a
lite topic's messages are stored, and consumed, in order. Everything else (offsets per
consumer group, retention, replication) is the broker's as for any topic.

- ``lite_problem``: why a lite topic name is refused (RocketMQ's rule: 1 - 64 bytes of
  ``[a-zA-Z0-9_-]``); ``lmq_name`` / ``split_lmq``: the queue topic's name and back.
- ``TopicTypes``: each topic's ``message.type`` as its brokers keep it (read at most every
  ``TYPE_TTL_S``, kept for ``MAX_TYPES`` topics at most), and the message types a QueryRoute
  says its queues accept.
- ``LiteTopics.ensure``: the lite topic's queue topic, made when missing; at most
  ``max_lite_topics`` of them in the cluster (LITE_TOPIC_QUOTA_EXCEEDED past that).
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from loguru import logger

from actors.client import Admin
from actors.client.errors import BrokerError, ClientError, NoRouteError
from actors.proxy.proto import Code, MessageType
from runtime.remoting.codes import ResponseCode
from runtime.store.topic_attributes import message_type
from runtime.store.topic_names import LITE_QUEUE_PREFIX, topic_problem

LMQ_PREFIX = LITE_QUEUE_PREFIX
LITE_TOPIC_MAX_BYTES = 64
"""RocketMQ's proxy ``maxLiteTopicSize``: a lite topic name's length in UTF-8 bytes."""
MAX_LITE_TOPICS = 20_000
"""Lite topics the proxy makes in the cluster at most (RocketMQ's ``maxLmqConsumeQueueNum``)."""
BULK_LOOKUP = 8
"""More lite topics unknown here than this in one subscription: the topic list is read once
(and more missing than this are made several at once)."""
MAKING_AT_ONCE = 8
"""Lite topics made at once for one subscription of many new ones (each takes its place in the
quota before its creation: those being made count)."""
TYPE_TTL_S = 30.0
"""How long a topic's message type is taken as read (a changed type applies after this)."""
MAX_TYPES = 50_000
"""Topics whose types are kept at most: past it the oldest reads are forgotten (read again at
their next use). Every SendMessage names a topic, existing or not: without a bound, sends to
ever new names grew the proxy without end."""
_LITE_RE = re.compile(r"[a-zA-Z0-9_-]+\Z")
_ACCEPTS = {
    "MIXED": (MessageType.NORMAL, MessageType.FIFO, MessageType.DELAY, MessageType.TRANSACTION),
    "NORMAL": (MessageType.NORMAL,),
    "FIFO": (MessageType.FIFO,),
    "DELAY": (MessageType.DELAY,),
    "TRANSACTION": (MessageType.TRANSACTION,),
    "LITE": (MessageType.LITE,),
    "PRIORITY": (MessageType.PRIORITY, MessageType.NORMAL),
}


class TopicTypeUnknownError(ClientError):
    """A topic's type could not be read (its brokers unreachable): try again."""


class LiteError(Exception):
    """A lite topic that cannot be used; ``code`` is the ``Code`` to answer with."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


def lite_problem(lite: str) -> str | None:
    """Why ``lite`` is not a lite topic name, or None (RocketMQ's proxy texts)."""
    if not lite or not lite.strip():
        return "lite topic cannot be the char sequence of whitespace"
    if len(lite.encode()) > LITE_TOPIC_MAX_BYTES:
        return f"lite topic exceed the max size {LITE_TOPIC_MAX_BYTES}"
    if not _LITE_RE.match(lite):
        return "lite topic can only contain alphanumeric characters, hyphens(-), and underscores(_)"
    return None


def lmq_name(parent: str, lite: str) -> str:
    """The topic a lite topic's messages are stored in; LiteError ILLEGAL_LITE_TOPIC when the
    name is not one."""
    problem = lite_problem(lite)
    name = f"{LMQ_PREFIX}{parent}${lite}"
    if problem is None:
        problem = topic_problem(name)
    if problem is not None:
        raise LiteError(Code.ILLEGAL_LITE_TOPIC, problem)
    return name


class TopicTypes:
    """Topic -> its attributes (``message.type``: MIXED when it has none or they cannot be
    read), read from a master that has the topic at most every ``ttl_s``."""

    def __init__(
        self, admin: Admin, ttl_s: float = TYPE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.admin = admin
        self.ttl_s = ttl_s
        self.clock = clock
        self._known: dict[str, tuple[dict[str, str], float]] = {}
        """Topic -> (its attributes, when read), oldest read first; at most ``MAX_TYPES``."""
        self._lock = threading.Lock()
        """Guards changes of ``_known`` (calls of several threads read and add)."""

    def of(self, topic: str, strict: bool = False) -> str:
        """The topic's ``message.type`` (``strict``: see ``attributes``)."""
        return message_type(self.attributes(topic, strict))

    def attributes(self, topic: str, strict: bool = False) -> dict[str, str]:
        """The topic's attributes; when the brokers cannot be asked, what was read last, or
        none (or, ``strict``, TopicTypeUnknownError: a caller that must not guess)."""
        now = self.clock()
        known = self._known.get(topic)
        if known is not None and now - known[1] < self.ttl_s:
            return known[0]
        found = self._read(topic)
        if found is None:
            if known is not None:
                return known[0]
            if strict:
                raise TopicTypeUnknownError(f"the attributes of {topic}: brokers unreachable")
            return {}
        with self._lock:
            self._known.pop(topic, None)  # (to the end: the oldest read first)
            while len(self._known) >= MAX_TYPES:
                del self._known[next(iter(self._known))]
            self._known[topic] = (found, now)
        return found

    def _read(self, topic: str) -> dict[str, str] | None:
        try:
            masters = self.admin.masters()
        except ClientError:
            return None
        unreachable = False
        for address in masters.values():
            try:
                config = self.admin.topic_config(topic, address)
            except BrokerError as exc:
                unreachable |= exc.code != ResponseCode.TOPIC_NOT_EXIST
                continue
            except ClientError:
                unreachable = True
                continue
            return dict(config.attributes)
        return None if unreachable else {}

    def accepts(self, topic: str) -> tuple[int, ...]:
        """The message types QueryRoute lists for the topic's queues."""
        return _ACCEPTS.get(self.of(topic), _ACCEPTS["MIXED"])


class LiteTopics:
    """The lite topics' queue topics this proxy knows to exist, made when missing."""

    def __init__(self, admin: Admin, max_lite_topics: int = MAX_LITE_TOPICS) -> None:
        self.admin = admin
        self.max_lite_topics = max_lite_topics
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._counting = threading.Lock()
        self._making: dict[str, threading.Lock] = {}
        """Queue topic -> the lock its first users take (one makes it; the others wait)."""
        self._count: tuple[int, float] | None = None
        """(lite topics in the cluster, when counted): counted again every ``TYPE_TTL_S``."""
        self._reserved = 0
        """Lite topics being made now (places in the quota taken, not yet counted)."""
        self.made_at: dict[str, int] = {}
        """Queue topic -> when this proxy made it (ms since the epoch): the age of a lite topic
        no message was sent to yet (``actors.proxy.lite_expiry``)."""

    def ensure(self, parent: str, lite: str) -> str:
        """The queue topic of ``parent``'s lite topic ``lite``, made first if no broker has
        it. LiteError: ILLEGAL_LITE_TOPIC, LITE_TOPIC_QUOTA_EXCEEDED, TOPIC_NOT_FOUND (no
        master serves the parent); ClientError: brokers unreachable."""
        name = lmq_name(parent, lite)
        if name in self._known:
            return name
        with self._lock:
            making = self._making.setdefault(name, threading.Lock())
        try:
            with making:  # two first users of one lite topic must not make it twice
                if name not in self._known:
                    if not self._exists(name):
                        self._make(parent, lite, name)
                    self._known.add(name)
        finally:
            with self._lock:
                self._making.pop(name, None)
        return name

    def ensure_all(self, parent: str, lites: list[str]) -> list[str]:
        """``ensure`` for many (a client's whole set, after a proxy restart): the name
        servers' topic list read once for those not known here, not a route each; more than
        ``BULK_LOOKUP`` still missing are made ``MAKING_AT_ONCE`` at a time (each is a few
        round trips, mostly waiting). Every one is tried; the first failure is raised."""
        names = [lmq_name(parent, lite) for lite in lites]
        if sum(1 for name in names if name not in self._known) > BULK_LOOKUP:
            listed = set(self.admin.topic_list())
            self._known.update(name for name in names if name in listed)
        missing = [lite for lite, name in zip(lites, names, strict=True) if name not in self._known]
        if len(missing) > BULK_LOOKUP:
            with ThreadPoolExecutor(MAKING_AT_ONCE, thread_name_prefix="lite-make") as pool:
                done = [pool.submit(self.ensure, parent, lite) for lite in missing]
                for future in done:
                    future.exception()  # every one ended
            for future in done:
                future.result()  # the first failure, if any
        return [self.ensure(parent, lite) for lite in lites]

    def forget(self, name: str) -> None:
        """``name`` was deleted (it is made again at its next use)."""
        self._known.discard(name)
        self.made_at.pop(name, None)
        with self._lock:
            self._count = None

    def _counted(self) -> int:
        """Lite topics in the cluster: the name servers' topic list, read again every
        ``TYPE_TTL_S`` (those made here meanwhile added)."""
        with self._lock:
            count = self._count
        if count is None or time.monotonic() - count[1] > TYPE_TTL_S:
            with self._counting:  # one list read, not one per maker at once
                with self._lock:
                    count = self._count
                if count is None or time.monotonic() - count[1] > TYPE_TTL_S:
                    listed = self.admin.topic_list()
                    made = sum(1 for topic in listed if topic.startswith(LMQ_PREFIX))
                    count = (made, time.monotonic())
                    with self._lock:
                        self._count = count
        return count[0]

    def _reserve(self) -> None:
        """Take a place in the quota for one lite topic about to be made (those being made at
        once count too); LITE_TOPIC_QUOTA_EXCEEDED when none is left."""
        self._counted()  # (read again when stale)
        with self._lock:
            made = (self._count[0] if self._count is not None else 0) + self._reserved
            if made >= self.max_lite_topics:
                raise LiteError(
                    Code.LITE_TOPIC_QUOTA_EXCEEDED,
                    f"{made} lite topics exist: the quota is {self.max_lite_topics}",
                )
            self._reserved += 1

    def _exists(self, name: str) -> bool:
        try:
            route = self.admin.topic_route(name)
        except (NoRouteError, BrokerError):
            return False
        return bool(route.queue_datas)

    def _make(self, parent: str, lite: str, name: str) -> None:
        try:
            route = self.admin.topic_route(parent)
        except ClientError as exc:
            raise LiteError(Code.TOPIC_NOT_FOUND, f"parent topic {parent}: {exc}") from None
        serving = {q.broker_name for q in route.queue_datas}
        masters = {
            b.broker_name: b.broker_addrs[0]
            for b in route.broker_datas
            if 0 in b.broker_addrs and b.broker_name in serving
        }
        if not masters:
            raise LiteError(Code.TOPIC_NOT_FOUND, f"no master serves topic {parent}")
        self._reserve()
        brokers = sorted(masters)
        broker = brokers[zlib.crc32(lite.encode()) % len(brokers)]
        try:
            self.admin.create_topic(name, broker_addr=masters[broker], queues=1)
        finally:
            with self._lock:
                self._reserved -= 1
        self.made_at[name] = int(time.time() * 1000)
        with self._lock:
            if self._count is not None:
                self._count = (self._count[0] + 1, self._count[1])
        deadline, pause = time.monotonic() + 5.0, 0.002
        while not self._exists(name):  # the broker registers it with the name servers at once
            if time.monotonic() > deadline:
                raise ClientError(f"lite topic {name} made on {broker}: no route after 5 s")
            time.sleep(pause)  # a few ms as a rule: look again soon, then less often
            pause = min(pause * 2, 0.1)
        logger.info("proxy: lite topic {} of {} made on {}", lite, parent, broker)
