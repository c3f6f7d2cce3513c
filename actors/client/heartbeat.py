"""Heartbeat: tells every broker in the client's routes which groups this client belongs to.

Messages:
- ``Beat(reply)``: send HEART_BEAT (34) to every broker now (the 30 s timer tells it without a
  reply; members tell it with one when they start, so brokers know a consumer before it asks
  for the group's member list). ``reply`` gets the number of brokers that answered SUCCESS.
- ``BeatDone(count)``: the beat greenlet finished.
- ``NewBrokers``: a fetched route names a broker address no cached route had (the RouteTable
  tells it through ``ClientInstance.brokers_appeared``): beat now, so that broker lists this
  client's groups — once a first beat was sent (a consumer's start beats only after asking the
  brokers about its SQL92 subscriptions, and the route fetches before it must not list it
  early); a client of producers only beats at once (a producer's first route brings it to the
  broker within a moment, as a Java producer's first beat a second after its start does, not
  at the 30 s tick: ``producerConnection``, the metrics).
- ``Unregister(reply)``: UNREGISTER_CLIENT (35) to every broker, for each group (shutdown).

State owned: nothing durable; it reads the shared ``Members`` (groups and subscriptions) and the
shared route dict. One beat runs at a time; ticks during a beat fold into it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.client.remoting import Remoting, make_request
from actors.client.routes import MASTER_ID, TopicRoute
from runtime.actor import GeventActor, GeventFuture
from runtime.remoting.bodies import ConsumerData, HeartbeatData, ProducerData, encode_body
from runtime.remoting.codes import RequestCode, ResponseCode


class Members:
    """The groups of one client and, for consumers, what each subscribes (hub-side state)."""

    def __init__(self) -> None:
        self.producer_groups: set[str] = set()
        self.consumers: dict[str, ConsumerData] = {}

    def heartbeat(self, client_id: str) -> HeartbeatData:
        return HeartbeatData(
            client_id=client_id,
            producer_data_set=[ProducerData(group_name=g) for g in sorted(self.producer_groups)],
            consumer_data_set=list(self.consumers.values()),
        )


class Beat(msgspec.Struct, frozen=True, tag=True):
    reply: Any = None  # GeventFuture[int] | None


class BeatDone(msgspec.Struct, frozen=True, tag=True):
    count: int


class NewBrokers(msgspec.Struct, frozen=True, tag=True):
    pass


class Unregister(msgspec.Struct, frozen=True, tag=True):
    reply: Any = None  # GeventFuture[int] | None


def broker_addresses(routes: dict[str, TopicRoute], *, slaves: bool) -> list[str]:
    """Every broker address in the cached routes (masters; slaves too if ``slaves``)."""
    out: set[str] = set()
    for route in list(routes.values()):
        for addrs in route.brokers.values():
            for broker_id, address in addrs.items():
                if broker_id == MASTER_ID or slaves:
                    out.add(address)
    return sorted(out)


class Heartbeat(GeventActor):
    """See the module docstring."""

    def __init__(
        self,
        client_id: str,
        members: Members,
        routes: dict[str, TopicRoute],
        remoting: Remoting,
        *,
        interval: float = 30.0,
        timeout: float = 3.0,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.members = members
        self.routes = routes
        self.remoting = remoting
        self.interval = interval
        self.timeout = timeout
        self._running = False
        self._again = False
        self._beaten = False
        self._replies: list[GeventFuture[int]] = []
        self._next_replies: list[GeventFuture[int]] = []

    def on_start(self) -> None:
        if self.interval > 0:
            self.send_every(self.interval, Beat())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Beat):
            if self._running:
                self._again = True
                if message.reply is not None:
                    self._next_replies.append(message.reply)
            else:
                if message.reply is not None:
                    self._replies.append(message.reply)
                self._start_beat()
        elif isinstance(message, NewBrokers):
            if self._running:
                self._again = True
            elif self._beaten or (self.members.producer_groups and not self.members.consumers):
                self._start_beat()
        elif isinstance(message, BeatDone):
            replies, self._replies = self._replies, []
            for reply in replies:
                reply.set(message.count)
            self._running = False
            if self._again:
                self._again = False
                self._replies, self._next_replies = self._next_replies, []
                self._start_beat()
        elif isinstance(message, Unregister):
            gevent.spawn(self._unregister, message.reply)
        return None

    def _start_beat(self) -> None:
        self._running = True
        self._beaten = True
        body = encode_body(self.members.heartbeat(self.client_id))
        addresses = broker_addresses(self.routes, slaves=bool(self.members.consumers))
        gevent.spawn(self._beat, addresses, body)

    def _beat(self, addresses: list[str], body: bytes) -> None:
        count = 0
        try:
            calls = [(a, make_request(RequestCode.HEART_BEAT, body=body)) for a in addresses]
            results = self.remoting.invoke_all(calls, self.timeout, "heartbeat")
            for address, result in zip(addresses, results, strict=True):
                if isinstance(result, BaseException):
                    logger.debug("client: heartbeat to {} failed: {}", address, result)
                elif result.code != ResponseCode.SUCCESS:
                    logger.warning(
                        "client: heartbeat to {} refused: {} {}",
                        address,
                        result.code,
                        result.remark,
                    )
                else:
                    count += 1
        finally:
            with contextlib.suppress(pykka.ActorDeadError):
                self.actor_ref.tell(BeatDone(count))

    def _unregister(self, reply: GeventFuture[int] | None) -> None:
        calls = []
        for address in broker_addresses(self.routes, slaves=True):
            for group in sorted(self.members.producer_groups):
                ext = {"clientID": self.client_id, "producerGroup": group}
                calls.append((address, make_request(RequestCode.UNREGISTER_CLIENT, ext)))
            for group in sorted(self.members.consumers):
                ext = {"clientID": self.client_id, "consumerGroup": group}
                calls.append((address, make_request(RequestCode.UNREGISTER_CLIENT, ext)))
        results = self.remoting.invoke_all(calls, self.timeout, "unregister")
        ok = sum(1 for r in results if not isinstance(r, BaseException) and r.code == 0)
        if reply is not None:
            reply.set(ok)
