"""Connections: the client's pool of remoting sessions, one per peer address.

Messages:
- ``Connect(address, reply)``: make sure a session to ``address`` exists; ``reply`` (a
  GeventFuture) gets the SessionHandle or a ConnectError. Concurrent connects to one address
  share one attempt, made in a greenlet of its own so the actor never blocks on a slow peer.
- ``Connected(address, handle, error)``: the attempt's outcome (told by that greenlet).
- ``SessionClosed(handle)``: the peer or the network closed a session; forget it.

State owned: ``sessions`` (address -> live SessionHandle, a dict shared read-only with the
client's greenlets through ``Remoting``), the attempts in flight. On stop every session closes.

Requests the peers push (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE...) reach the
``inbound`` function given at start, in the request's own greenlet (``runtime.session``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.client.errors import ConnectError
from runtime.actor import GeventActor, GeventFuture
from runtime.errors import AddressError
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle, connect

Inbound = Callable[[SessionHandle, RemotingCommand], "RemotingCommand | None"]


class Connect(msgspec.Struct, frozen=True, tag=True):
    address: str
    reply: Any  # GeventFuture[SessionHandle]


class Connected(msgspec.Struct, frozen=True, tag=True):
    address: str
    handle: Any  # SessionHandle | None
    error: str | None


class SessionClosed(msgspec.Struct, frozen=True, tag=True):
    handle: Any  # SessionHandle


class ClientProcessor:
    """Serves what brokers push to this client; tells Connections when a session closes."""

    def __init__(self, inbound: Inbound | None, closed: Callable[[SessionHandle], None]) -> None:
        self._inbound = inbound
        self._closed = closed

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        response = self._inbound(session, request) if self._inbound is not None else None
        if response is None and not request.is_oneway:
            response = RemotingCommand.response_to(
                request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED, remark="not served by client"
            )
        return response

    def on_close(self, session: SessionHandle) -> None:
        self._closed(session)


class Connections(GeventActor):
    """The session pool. See the module docstring."""

    def __init__(
        self,
        sessions: dict[str, SessionHandle],
        *,
        connect_timeout: float = 3.0,
        inbound: Inbound | None = None,
        role: str = "client",
        signer: Callable[[RemotingCommand], RemotingCommand] | None = None,
        tls: Any = None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.tls = tls
        """A gevent ``SSLContext``: every connection over TLS (None: plain)."""
        self.connect_timeout = connect_timeout
        self.role = role
        self.signer = signer
        self._attempts: dict[str, list[GeventFuture[SessionHandle]]] = {}
        ref = self.actor_ref

        def closed(handle: SessionHandle) -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(SessionClosed(handle))

        self._processor = ClientProcessor(inbound, closed)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Connect):
            self._connect(message)
        elif isinstance(message, Connected):
            self._connected(message)
        elif isinstance(message, SessionClosed):
            handle = message.handle
            for address, live in list(self.sessions.items()):
                if live is handle:
                    del self.sessions[address]
                    logger.debug("client: session to {} closed", address)
        return None

    def _connect(self, message: Connect) -> None:
        handle = self.sessions.get(message.address)
        if handle is not None and handle.alive:
            message.reply.set(handle)
            return
        waiting = self._attempts.get(message.address)
        if waiting is not None:
            waiting.append(message.reply)
            return
        self._attempts[message.address] = [message.reply]
        gevent.spawn(self._attempt, message.address)

    def _attempt(self, address: str) -> None:
        try:
            handle = connect(
                address,
                role=self.role,
                processor=self._processor,
                timeout=self.connect_timeout,
                tls=self.tls,
            )
        except (OSError, AddressError, pykka.Timeout) as exc:
            outcome = Connected(address, None, f"{exc.__class__.__name__}: {exc}")
        else:
            handle.signer = self.signer
            outcome = Connected(address, handle, None)
        try:
            self.actor_ref.tell(outcome)
        except pykka.ActorDeadError:
            if outcome.handle is not None:
                outcome.handle.close()

    def _connected(self, message: Connected) -> None:
        waiting = self._attempts.pop(message.address, [])
        if message.handle is not None:
            self.sessions[message.address] = message.handle
            for reply in waiting:
                reply.set(message.handle)
            return
        error = ConnectError(message.address, message.error or "connect failed")
        for reply in waiting:
            reply.set_exception((ConnectError, error, None))

    def on_stop(self) -> None:
        self._close_all()

    def on_failure(self, *_exc: Any) -> None:
        self._close_all()

    def _close_all(self) -> None:
        for handle in list(self.sessions.values()):
            handle.close()
        self.sessions.clear()
        error = ConnectError("*", "client stopped")
        for waiting in self._attempts.values():
            for reply in waiting:
                reply.set_exception((ConnectError, error, None))
        self._attempts.clear()
