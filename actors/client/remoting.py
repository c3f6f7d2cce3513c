"""Remoting: how the client's greenlets talk to name servers and brokers.

Not an actor: a thin helper over the session pool that any greenlet on the client's hub may use.
A request on an existing session costs one tell to the session actor; only the first request to
an address goes through ``Connections`` (which dedups the connect). Timeouts forget the request's
opaque so a late answer is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import gevent
import gevent.pool
import pykka

from actors.client.config import LANGUAGE
from actors.client.connections import Connect
from actors.client.errors import (
    BrokerError,
    ClientError,
    ConnectError,
    RequestInvalidError,
    RequestTimeoutError,
)
from runtime.actor import GeventFuture, new_future
from runtime.directory import Directory
from runtime.errors import ProtocolError
from runtime.remoting.command import RemotingCommand, next_opaque, stringify_ext
from runtime.session import SessionHandle

Request = RemotingCommand | Callable[[], RemotingCommand]
"""A request, or what makes it right before its write (``Remoting.invoke``)."""


def make_request(
    code: int,
    ext_fields: Mapping[str, object] | None = None,
    body: bytes = b"",
    *,
    oneway: bool = False,
) -> RemotingCommand:
    """A request command carrying our language; ext values already strings stay as they are."""
    ext: dict[str, str]
    if ext_fields is None:
        ext = {}
    elif all(v.__class__ is str for v in ext_fields.values()):
        ext = dict(ext_fields)  # type: ignore[arg-type]
    else:
        ext = stringify_ext(ext_fields)
    return RemotingCommand(
        code=int(code),
        language=LANGUAGE,
        opaque=next_opaque(),
        flag=2 if oneway else 0,
        ext_fields=ext,
        body=body,
    )


def forget(handle: SessionHandle, opaque: int) -> None:
    """Drop a request that timed out (SessionHandle has no public ``forget`` yet)."""
    handle._pending.pop(opaque, None)


class Remoting:
    """Request/response over the pooled sessions (hub greenlets only)."""

    def __init__(
        self,
        sessions: dict[str, SessionHandle],
        directory: Directory,
        connections: str,
        *,
        connect_timeout: float = 3.0,
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.connections = connections
        self.connect_timeout = connect_timeout

    def session(self, address: str, timeout: float | None = None) -> SessionHandle:
        """The live session to ``address``, connecting if needed (blocks this greenlet)."""
        handle = self.sessions.get(address)
        if handle is not None and handle.alive:
            return handle
        reply: GeventFuture[SessionHandle] = new_future()
        try:
            self.directory.tell(self.connections, Connect(address, reply))
        except ClientError:
            raise
        except Exception as exc:
            raise ConnectError(address, f"client is stopping: {exc}") from None
        wait = self.connect_timeout + 1.0 if timeout is None else timeout
        try:
            return reply.get(timeout=wait)
        except pykka.Timeout:
            raise ConnectError(address, f"no connection within {wait:g}s") from None

    def cached(self, address: str) -> SessionHandle | None:
        handle = self.sessions.get(address)
        return handle if handle is not None and handle.alive else None

    def invoke(
        self,
        address: str,
        cmd: Request,
        timeout: float,
        what: str = "request",
        sent: Callable[[SessionHandle, int, Any], None] | None = None,
    ) -> RemotingCommand:
        """Send ``cmd`` and wait for its response (this greenlet only). ``sent(handle, opaque,
        future)`` is called once the request is out, before the wait: whoever wants to cancel
        the wait sets an exception on that future (and forgets the opaque).

        ``cmd`` may be a callable (``Request``): it is called once the session is up, right
        before the write, with nothing yielding in between, and gives the request to write
        then, or raises to write nothing. For a request whose content can go stale while the
        connection (or a route) comes: a pull's commit offset after its pull was cancelled, an
        offset commit after its queue was handed over."""
        deadline = time.monotonic() + timeout
        handle = self.session(address, timeout)
        if not isinstance(cmd, RemotingCommand):
            cmd = cmd()
        future = handle.request(cmd)
        if sent is not None:
            sent(handle, cmd.opaque, future)
        try:
            return future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except pykka.Timeout:
            forget(handle, cmd.opaque)
            raise RequestTimeoutError(what, timeout, address) from None
        except ConnectionError as exc:
            raise ConnectError(address, f"connection lost: {exc}") from None
        except ProtocolError as exc:  # (not sent: its header passes the server's limit)
            raise RequestInvalidError(what, exc.reason) from None

    def oneway(self, address: str, cmd: RemotingCommand, timeout: float | None = None) -> None:
        """Send a oneway request (connecting first if needed)."""
        handle = self.session(address, timeout)
        if not handle.send_oneway(cmd):
            raise ConnectError(address, "connection closed")

    def invoke_ok(
        self,
        address: str,
        cmd: RemotingCommand,
        timeout: float,
        what: str,
        ok: frozenset[int] = frozenset({0}),
    ) -> RemotingCommand:
        """``invoke`` that raises BrokerError unless the response code is in ``ok``."""
        response = self.invoke(address, cmd, timeout, what)
        if response.code not in ok:
            raise BrokerError(response.code, response.remark, address, what)
        return response

    def invoke_all(
        self,
        calls: list[tuple[str, Request]],
        timeout: float,
        what: str,
        *,
        in_flight: int | None = None,
    ) -> list[RemotingCommand | BaseException]:
        """Invoke several requests concurrently (at most ``in_flight`` at once when given); each
        slot holds a response or its error."""

        def one(address: str, cmd: Request) -> Any:
            try:
                return self.invoke(address, cmd, timeout, what)
            except ClientError as exc:
                return exc

        spawn = gevent.spawn if in_flight is None else gevent.pool.Pool(in_flight).spawn
        jobs = [spawn(one, address, cmd) for address, cmd in calls]
        gevent.joinall(jobs, timeout=timeout + self.connect_timeout + 1.0)
        return [
            job.value if job.ready() else RequestTimeoutError(what, timeout, calls[i][0])
            for i, job in enumerate(jobs)
        ]
