"""RouteTable: topic routes from the name servers, cached and refreshed.

Messages:
- ``FetchRoute(topic, allow_default, reply)``: make sure ``topic`` has a fresh route; ``reply``
  (a GeventFuture, or None) gets the ``TopicRoute`` or a ClientError. Concurrent fetches of one
  topic share one request. With ``allow_default`` (producers), a topic the name server does not
  know gets a route derived from ``TBW102`` (at most 4 queues per broker), and sends name
  ``defaultTopic=TBW102`` so the broker may create the topic, as RocketMQ's clients do.
- ``RouteFetched(topic, allow_default, route, error)``: the fetch greenlet's outcome. A route
  naming a broker address that no cached route had calls ``on_new_brokers`` (the client's
  ``brokers_appeared``: a heartbeat, see ``actors.client.heartbeat``): a broker that started,
  or a slave added or restarted, hears this client's heartbeat within a route refresh instead
  of at the next 30 s heartbeat, so it lists the client's groups before it is needed (a slave
  promoted at the next failover).
- ``RefreshRoutes``: timer tick (30 s): fetch every known topic again. A refreshed route
  whose readable queues changed calls ``on_queues_changed(topic, queues)`` (the client's
  ``queues_changed``: a lite consumer's queue-change listeners).

State owned: ``routes`` (topic -> TopicRoute, a dict shared read-only with the client's
greenlets, so the send path reads it without a message), the fetches in flight, which name
server to ask next (rotates on failure).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.client.errors import BrokerError, ClientError, NoRouteError
from actors.client.remoting import Remoting, make_request
from runtime.actor import GeventActor, GeventFuture
from runtime.errors import ProtocolError
from runtime.remoting.bodies import (
    MessageQueue,
    OrderTopicRouteData,
    TopicRouteData,
    decode_body,
)
from runtime.remoting.codes import PermName, RequestCode, ResponseCode
from runtime.remoting.headers import DEFAULT_TOPIC

DEFAULT_TOPIC_QUEUE_NUMS = 4
QueuesChanged = Callable[[str, tuple[MessageQueue, ...]], None]
MASTER_ID = 0


class TopicRoute(msgspec.Struct, frozen=True, kw_only=True):
    """A topic's route, digested: the queues to write and to read, and broker addresses."""

    topic: str
    data: TopicRouteData
    publish: tuple[MessageQueue, ...]
    """Writable queues on brokers that have a master, in (broker name, queue id) order."""
    subscribe: tuple[MessageQueue, ...]
    """Readable queues, sorted."""
    brokers: dict[str, dict[int, str]]
    """Broker name -> broker id -> address (id 0 is the master)."""
    via_default: bool = False
    """True while the route is derived from TBW102 (the topic does not exist yet)."""
    fetched_at: float = 0.0

    def master(self, broker_name: str) -> str | None:
        return self.brokers.get(broker_name, {}).get(MASTER_ID)

    def any_address(self, broker_name: str) -> str | None:
        """The master, else the lowest-numbered slave."""
        addrs = self.brokers.get(broker_name) or {}
        if MASTER_ID in addrs:
            return addrs[MASTER_ID]
        return addrs[min(addrs)] if addrs else None

    def masters(self) -> list[str]:
        return [a[MASTER_ID] for _, a in sorted(self.brokers.items()) if MASTER_ID in a]


def order_queues(topic: str, conf: str) -> list[MessageQueue]:
    """The publish queues an ``orderTopicConf`` (``brokerName:queueNums;...``) names, in its
    order; malformed items are left out."""
    queues: list[MessageQueue] = []
    for item in conf.split(";"):
        name, _, nums = item.strip().partition(":")
        if name and nums.strip().isdigit():
            queues.extend(
                MessageQueue(topic=topic, broker_name=name, queue_id=i) for i in range(int(nums))
            )
    return queues


def build_route(topic: str, data: TopicRouteData, *, via_default: bool = False) -> TopicRoute:
    """Digest a TopicRouteData (RocketMQ's topicRouteData2TopicPublish/SubscribeInfo). With an
    ``orderTopicConf`` (an ordered topic, name server ``orderMessageEnable``) the publish queues
    are the ones it lists, whether or not their broker has a master now (a send to a broker
    that is down fails instead of moving a sharding key to another queue), as RocketMQ's."""
    brokers = {b.broker_name: dict(b.broker_addrs) for b in data.broker_datas}
    conf = getattr(data, "order_topic_conf", None)
    ordered = order_queues(topic, conf) if conf else []
    publish: list[MessageQueue] = list(ordered)
    subscribe: list[MessageQueue] = []
    for qd in sorted(data.queue_datas, key=lambda q: q.broker_name):
        writable = qd.perm & PermName.WRITE and MASTER_ID in brokers.get(qd.broker_name, {})
        if writable and not ordered:  # an order conf chose the publish queues
            publish.extend(
                MessageQueue(topic=topic, broker_name=qd.broker_name, queue_id=i)
                for i in range(qd.write_queue_nums)
            )
        if qd.perm & PermName.READ:
            subscribe.extend(
                MessageQueue(topic=topic, broker_name=qd.broker_name, queue_id=i)
                for i in range(qd.read_queue_nums)
            )
    return TopicRoute(
        topic=topic,
        data=data,
        publish=tuple(publish),
        subscribe=tuple(sorted(subscribe)),
        brokers=brokers,
        via_default=via_default,
        fetched_at=time.monotonic(),
    )


def _addresses(route: TopicRoute) -> set[str]:
    return {address for addrs in route.brokers.values() for address in addrs.values()}


def default_route(topic: str, default: TopicRouteData, queue_nums: int) -> TopicRoute:
    """The route a producer uses for a topic that does not exist yet: TBW102's brokers, at most
    ``queue_nums`` queues on each."""
    queues = [
        msgspec.structs.replace(
            qd,
            read_queue_nums=min(queue_nums, qd.read_queue_nums),
            write_queue_nums=min(queue_nums, qd.read_queue_nums),
        )
        for qd in default.queue_datas
    ]
    data = msgspec.structs.replace(default, queue_datas=queues)
    return build_route(topic, data, via_default=True)


class FetchRoute(msgspec.Struct, frozen=True, tag=True):
    topic: str
    allow_default: bool = False
    reply: Any = None  # GeventFuture[TopicRoute] | None


class RouteFetched(msgspec.Struct, frozen=True, tag=True):
    topic: str
    allow_default: bool
    route: Any  # TopicRoute | None
    error: Any  # ClientError | None


class RefreshRoutes(msgspec.Struct, frozen=True, tag=True):
    pass


class RouteTable(GeventActor):
    """Route cache. See the module docstring."""

    def __init__(
        self,
        routes: dict[str, TopicRoute],
        remoting: Remoting,
        namesrv: tuple[str, ...],
        *,
        timeout: float = 3.0,
        refresh_interval: float = 30.0,
        default_queue_nums: int = DEFAULT_TOPIC_QUEUE_NUMS,
        on_new_brokers: Callable[[], None] | None = None,
        on_queues_changed: QueuesChanged | None = None,
    ) -> None:
        super().__init__()
        self.on_new_brokers = on_new_brokers
        self.on_queues_changed = on_queues_changed
        """Called (on the hub) when a refreshed route's readable queues differ from the cached
        route's (not on a topic's first route): ``(topic, queues)``."""
        """Called when a fetched route names a broker address no cached route had (a broker
        started, a slave added or restarted): the client heartbeats at once, so that broker
        lists it before it is needed (e.g. promoted at the next failover)."""
        self.routes = routes
        self.remoting = remoting
        self.namesrv = namesrv
        self.timeout = timeout
        self.refresh_interval = refresh_interval
        self.default_queue_nums = default_queue_nums
        self._fetching: dict[str, list[GeventFuture[TopicRoute]]] = {}
        self._allow_default: dict[str, bool] = {}
        self._ns_index = 0
        self._address_refs: Counter[str] = Counter()
        """How many cached routes name each broker address (a route looks for new addresses
        without scanning every route: thousands of topics made that quadratic)."""

    def on_start(self) -> None:
        if self.refresh_interval > 0:
            self.send_every(self.refresh_interval, RefreshRoutes())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, FetchRoute):
            self._fetch(message)
        elif isinstance(message, RouteFetched):
            self._fetched(message)
        elif isinstance(message, RefreshRoutes):
            for topic in list(self._allow_default):
                self._fetch(FetchRoute(topic, self._allow_default[topic]))
        return None

    def _fetch(self, message: FetchRoute) -> None:
        topic = message.topic
        self._allow_default[topic] = self._allow_default.get(topic, False) or message.allow_default
        waiting = self._fetching.get(topic)
        if waiting is None:
            waiting = self._fetching[topic] = []
            gevent.spawn(self._fetch_greenlet, topic, self._allow_default[topic])
        if message.reply is not None:
            waiting.append(message.reply)

    def _fetched(self, message: RouteFetched) -> None:
        waiting = self._fetching.pop(message.topic, [])
        route: TopicRoute | None = message.route
        if route is not None:
            old = self.routes.get(message.topic)
            if old is None or old.data != route.data or old.via_default != route.via_default:
                logger.debug(
                    "client: route of {} now {} publish / {} subscribe queues{}",
                    message.topic,
                    len(route.publish),
                    len(route.subscribe),
                    " (via TBW102)" if route.via_default else "",
                )
            now = _addresses(route)
            before = set() if old is None else _addresses(old)
            fresh = {a for a in now if not self._address_refs[a]} if now != before else set()
            if now != before:
                self._address_refs.update(now)
                self._address_refs.subtract(before)
                for address in before - now:
                    if not self._address_refs[address]:
                        del self._address_refs[address]
            self.routes[message.topic] = route
            if fresh and self.on_new_brokers is not None:
                self.on_new_brokers()
            changed = old is not None and old.subscribe != route.subscribe
            if changed and self.on_queues_changed is not None:
                self.on_queues_changed(message.topic, route.subscribe)
            for reply in waiting:
                reply.set(route)
            return
        error = message.error
        kept = self.routes.get(message.topic)
        for reply in waiting:
            if kept is not None and not isinstance(error, NoRouteError):
                reply.set(kept)  # a name server hiccup: the cached route is still good
            else:
                reply.set_exception((type(error), error, None))

    # -- the fetch itself (a greenlet) ------------------------------------------------------

    def _fetch_greenlet(self, topic: str, allow_default: bool) -> None:
        route: TopicRoute | None = None
        error: ClientError | None = None
        try:
            data = self._query(topic)
            if data is not None:
                route = build_route(topic, data)
            elif allow_default:
                default = self._query(DEFAULT_TOPIC)
                if default is None:
                    error = NoRouteError(topic, f"unknown, and no broker serves {DEFAULT_TOPIC}")
                else:
                    route = default_route(topic, default, self.default_queue_nums)
            else:
                error = NoRouteError(topic, "unknown to the name server")
        except ClientError as exc:
            error = exc
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(RouteFetched(topic, allow_default, route, error))

    def _query(self, topic: str) -> TopicRouteData | None:
        """The route from a name server; None when it says TOPIC_NOT_EXIST."""
        last: ClientError | None = None
        for _ in range(len(self.namesrv)):
            address = self.namesrv[self._ns_index % len(self.namesrv)]
            cmd = make_request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
            try:
                response = self.remoting.invoke(address, cmd, self.timeout, "route query")
            except ClientError as exc:
                last = exc
                self._ns_index += 1
                continue
            if response.code == ResponseCode.TOPIC_NOT_EXIST:
                return None
            if response.code != ResponseCode.SUCCESS:
                raise BrokerError(response.code, response.remark, address, "route query")
            try:
                return decode_body(OrderTopicRouteData, response.body)
            except ProtocolError as exc:
                raise BrokerError(
                    ResponseCode.SYSTEM_ERROR, exc.reason, address, "route query"
                ) from None
        assert last is not None
        raise last
