"""ClientInstance: one client's actors and shared state on the hub (RocketMQ's MQClientInstance).

Not an actor itself: it builds a Supervisor whose children are ``Connections``, ``RouteTable``,
``Heartbeat`` and whatever the member adds (a consumer's offset store and rebalancer), and it
offers the greenlet-side helpers every member uses (routes, requests). Everything here runs on
the client's hub; the public Producer/Consumer classes reach it through ``ClientHub.call``.

Shared state (plain dicts, written by their owner actor only, read by any greenlet on the hub):
``sessions`` (Connections), ``routes`` (RouteTable), ``members`` (the member's own groups).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pykka
from loguru import logger

from actors.client.config import ClientConfig
from actors.client.connections import Connections
from actors.client.errors import ClientError, ClientStateError, RequestTimeoutError
from actors.client.heartbeat import Beat, Heartbeat, Members, NewBrokers, Unregister
from actors.client.remoting import Remoting
from actors.client.routes import FetchRoute, QueuesChanged, RouteTable, TopicRoute
from runtime.acl.signature import signer_for
from runtime.actor import GeventFuture, new_future
from runtime.directory import Directory
from runtime.remoting.bodies import MessageQueue
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle
from runtime.supervisor import ChildSpec, Supervisor

InboundHandler = Callable[[SessionHandle, RemotingCommand], "RemotingCommand | None"]


class ClientInstance:
    """See the module docstring. Create, ``start`` and ``stop`` on the hub."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.client_id = config.client_id
        self.directory = Directory()
        self.sessions: dict[str, SessionHandle] = {}
        self.routes: dict[str, TopicRoute] = {}
        self.members = Members()
        self.inbound_handlers: dict[int, InboundHandler] = {}
        self.queue_listeners: dict[str, list[QueuesChanged]] = {}
        """Topic -> what to call (on the hub) when its readable queues change."""
        self.prefix = f"client[{config.client_id}]"
        self.names = {
            "connections": f"{self.prefix}/connections",
            "routes": f"{self.prefix}/routes",
            "heartbeat": f"{self.prefix}/heartbeat",
        }
        self.remoting = Remoting(
            self.sessions,
            self.directory,
            self.names["connections"],
            connect_timeout=config.connect_timeout,
        )
        self._supervisor: pykka.ActorRef[Supervisor] | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self, extra: list[ChildSpec] | None = None) -> None:
        cfg = self.config
        children = [
            ChildSpec(
                name=self.names["connections"],
                start=lambda: Connections.start(
                    self.sessions,
                    connect_timeout=cfg.connect_timeout,
                    inbound=self._inbound,
                    signer=signer_for(cfg.credentials),
                    tls=None if cfg.tls is None else cfg.tls.context(),
                ),
            ),
            ChildSpec(
                name=self.names["routes"],
                start=lambda: RouteTable.start(
                    self.routes,
                    self.remoting,
                    cfg.namesrv,
                    timeout=cfg.request_timeout,
                    refresh_interval=cfg.route_refresh_interval,
                    on_new_brokers=self.brokers_appeared,
                    on_queues_changed=self.queues_changed,
                ),
            ),
            ChildSpec(
                name=self.names["heartbeat"],
                start=lambda: Heartbeat.start(
                    cfg.client_id,
                    self.members,
                    self.routes,
                    self.remoting,
                    interval=cfg.heartbeat_interval,
                    timeout=cfg.request_timeout,
                ),
            ),
            *(extra or []),
        ]
        self._supervisor = Supervisor.start(
            self.prefix, children, directory=self.directory, max_restarts=5, within_seconds=10.0
        )

    @property
    def alive(self) -> bool:
        return self._supervisor is not None and self._supervisor.is_alive()

    def stop_child(self, child: str, timeout: float = 10.0) -> None:
        """Stop one supervised child for good (a consumer's rebalancer at shutdown)."""
        if self._supervisor is not None:
            with contextlib.suppress(pykka.Timeout, pykka.ActorDeadError):
                self._supervisor.proxy().stop_child(self.name(child)).get(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._supervisor is not None:
            with contextlib.suppress(pykka.Timeout, pykka.ActorDeadError):
                self._supervisor.stop(block=True, timeout=timeout)
            self._supervisor = None

    # -- helpers for greenlets ------------------------------------------------------------------

    def name(self, child: str) -> str:
        return f"{self.prefix}/{child}"

    def _inbound(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        handler = self.inbound_handlers.get(request.code)
        if handler is None:
            return None
        return handler(session, request)

    def route(self, topic: str, *, allow_default: bool = False, timeout: float = 3.0) -> TopicRoute:
        """The cached route of ``topic``, fetched if there is none (blocks this greenlet)."""
        route = self.routes.get(topic)
        if route is not None:
            return route
        return self.fetch_route(topic, allow_default=allow_default, timeout=timeout)

    def fetch_route(
        self, topic: str, *, allow_default: bool = False, timeout: float = 3.0
    ) -> TopicRoute:
        """Fetch ``topic``'s route now (blocks this greenlet)."""
        reply: GeventFuture[TopicRoute] = new_future()
        self._tell("routes", FetchRoute(topic, allow_default, reply))
        try:
            return reply.get(timeout=timeout + self.config.connect_timeout)
        except pykka.Timeout:
            raise RequestTimeoutError(f"route of {topic}", timeout) from None

    def refresh_route(self, topic: str, *, allow_default: bool = False) -> None:
        """Ask for a fresh route of ``topic`` without waiting (after a send error)."""
        try:
            self._tell("routes", FetchRoute(topic, allow_default))
        except ClientError as exc:
            logger.debug("client: route refresh of {} skipped: {}", topic, exc)

    def heartbeat(self, timeout: float | None = None) -> int:
        """Send a heartbeat to every known broker now; the number that answered SUCCESS."""
        reply: GeventFuture[int] = new_future()
        self._tell("heartbeat", Beat(reply))
        wait = (timeout or self.config.request_timeout) + self.config.connect_timeout + 1
        try:
            return reply.get(timeout=wait)
        except pykka.Timeout:
            return 0

    def beat_soon(self) -> None:
        """Ask for a heartbeat to every known broker now, without waiting for it (a beat
        already running is followed by one more)."""
        try:
            self._tell("heartbeat", Beat())
        except ClientError as exc:
            logger.debug("client: heartbeat skipped: {}", exc)

    def queues_changed(self, topic: str, queues: tuple[MessageQueue, ...]) -> None:
        """A refreshed route of ``topic`` has other readable queues: its listeners hear it."""
        for listener in self.queue_listeners.get(topic, ()):
            try:
                listener(topic, queues)
            except Exception:
                logger.exception("client: a queue-change listener of {} failed", topic)

    def brokers_appeared(self) -> None:
        """A route names a broker no cached route had: heartbeat now, unless no beat was sent
        yet (``actors.client.heartbeat``, ``NewBrokers``)."""
        try:
            self._tell("heartbeat", NewBrokers())
        except ClientError as exc:
            logger.debug("client: heartbeat skipped: {}", exc)

    def unregister(self, timeout: float | None = None) -> int:
        """UNREGISTER_CLIENT to every known broker (shutdown); waits up to ``timeout`` (None:
        a request's timeout plus a connect's) for the answers."""
        reply: GeventFuture[int] = new_future()
        try:
            self._tell("heartbeat", Unregister(reply))
        except ClientError:
            return 0
        if timeout is None:
            timeout = self.config.request_timeout + self.config.connect_timeout + 1
        try:
            return reply.get(timeout=timeout)
        except pykka.Timeout:
            return 0

    def _tell(self, child: str, message: object) -> None:
        name = self.names.get(child) or self.name(child)
        ref = self.directory.get(name)
        if ref is None:
            raise ClientStateError(name, "not running")
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            raise ClientStateError(name, "stopped") from None

    def ask_child(self, child: str, message: object, timeout: float) -> object:
        ref = self.directory.get(self.name(child))
        if ref is None:
            raise ClientStateError(self.name(child), "not running")
        return ref.ask(message, timeout=timeout)
