"""Listening sockets and the Acceptor actor.

Sockets are bound by the process before any actor starts, so a port clash is reported at once,
with the address, and ``ready`` names the ports actually bound (port 0 = ephemeral).

An IPv6 host (``::``, ``::1``) binds an AF_INET6 socket. ``::`` is dual stack (IPV6_V6ONLY off,
where the OS allows it): IPv4 clients connect too and show as their IPv4 address; any other
IPv6 address takes IPv6 only.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent.event
import gevent.socket
import pykka
from gevent.server import StreamServer
from loguru import logger

from runtime import proxy_protocol, tls
from runtime.actor import GeventActor, watch
from runtime.conn_budget import PROCESS, ConnectionBudget
from runtime.errors import ConfigError, ProtocolError
from runtime.future import new_future
from runtime.hostport import family_of, format_address
from runtime.session import Finish, Quiesce, abort

SessionFactory = Callable[[socket.socket, tuple[str, int]], "pykka.ActorRef[Any] | None"]


def bind(host: str, port: int, *, what: str) -> socket.socket:
    """A listening TCP socket on (host, port); ConfigError naming ``what`` when it cannot bind.
    IPv6 hosts bind AF_INET6; ``::`` also accepts IPv4 where the OS allows dual stack."""
    host = host.strip().strip("[]")
    family = family_of(host)
    try:
        sock = gevent.socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(None, what, f"cannot listen on {host}: {exc.strerror}") from exc
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host == "::":
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        problem = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        where = format_address(host, port)
        raise ConfigError(None, what, f"cannot listen on {where}: {problem}") from exc
    return sock


def address_of(sock: socket.socket) -> str:
    """``host:port`` of a bound socket, RocketMQ style (``::1:9876`` for IPv6)."""
    host, port = sock.getsockname()[:2]
    return format_address(host, port)


LINGER_S = 1.0
"""How long a shutting-down acceptor waits for its peers to close after their last answers."""

STOP_S = 2.0
"""How long a stopping acceptor waits for its sessions to write what they hold and stop before
it shuts their sockets down (a session blocked writing to a peer that reads nothing stops only
then), and then again for them to stop."""


OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ACCEPT_PAUSE_S = 0.5
"""How long a listener stops accepting after ``accept`` found no descriptor free."""


class _Server(StreamServer):
    """A StreamServer that leaves accepted sockets open (the session actor owns each one) and,
    out of descriptors, stops accepting for ``ACCEPT_PAUSE_S`` with a warning (gevent printed a
    traceback for every refused ``accept``)."""

    budget: ConnectionBudget = PROCESS

    def do_read(self) -> Any:
        try:
            return super().do_read()
        except OSError as exc:
            if exc.errno not in OUT_OF_DESCRIPTORS:
                raise
            self.budget.out_of_descriptors(exc)
            self.stop_accepting()
            gevent.spawn_later(ACCEPT_PAUSE_S, self._resume)
            return None

    def _resume(self) -> None:
        if self.started and not self.closed:
            self.start_accepting()

    def do_close(self, sock: socket.socket, *args: Any) -> None:
        pass


class Acceptor(GeventActor):
    """Accepts TCP connections on a bound socket and hands each to the session factory.

    Messages: none besides stop. Owns a gevent StreamServer over a socket it does not own (the
    process binds it once, so a restarted acceptor keeps the same port) and the sessions it
    started: stopping it stops accepting, then stops every live session. With ``drain`` (seconds
    to wait, asked at stop: the broker's when its process shuts down), the sessions first stop
    serving and finish the sends they serve (``_quiesce``). With ``proxy_protocol`` a
    connection that begins with a PROXY protocol header (``runtime.proxy_protocol``, before TLS
    as in RocketMQ) is taken as coming from the client it names. Every connection is held
    against ``budget`` (the process's, ``runtime.conn_budget``): one past it is closed at once.
    """

    def __init__(
        self,
        name: str,
        sock: socket.socket,
        session_factory: SessionFactory,
        *,
        drain: Callable[[], float] | None = None,
        secure: bool = False,
        proxy_protocol: bool = False,
        budget: ConnectionBudget = PROCESS,
    ) -> None:
        super().__init__()
        self.name = name
        self._budget = budget
        self._proxy_protocol = proxy_protocol
        self._secure = secure
        """A remoting listener: its connections get the process's TLS mode (``runtime.tls``)."""
        self._sock = sock
        self._factory = session_factory
        self._drain = drain
        self._none_left = gevent.event.Event()
        self._server: _Server | None = None
        self._sessions: dict[str, pykka.ActorRef[Any]] = {}
        self._sockets: dict[str, socket.socket] = {}
        """Each live session's socket, to shut down if it does not stop (``on_stop``)."""
        self._stopping = False

    def on_start(self) -> None:
        self._server = _Server(self._sock, self._handle)
        self._server.budget = self._budget
        self._server.start()
        logger.debug("{} accepting on {}", self.name, address_of(self._sock))

    def _handle(self, conn: socket.socket, address: tuple[str, int]) -> None:
        if not self._budget.take():
            with contextlib.suppress(OSError):
                conn.close()
            return
        ref = None
        try:
            ref = self._serve(conn, address)
        finally:
            if ref is None:
                self._budget.give()
            else:
                watch(ref, lambda _ref, _failure: self._budget.give())

    def _serve(self, conn: socket.socket, address: tuple[str, int]) -> pykka.ActorRef[Any] | None:
        """The session serving ``conn``, or None when it was closed instead."""
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._proxy_protocol:  # (this connection's own greenlet: waiting blocks no other)
            client = self._client_of(conn, address)
            if client is None:
                return None
            address = client
        if self._secure:  # this connection's own greenlet: a handshake blocks no other
            accepted = tls.accept(conn, address)
            if accepted is None:
                return None
            conn = accepted
        if self._stopping:  # stopped while this one's header or handshake was read
            with contextlib.suppress(OSError):
                conn.close()
            return None
        try:
            ref = self._factory(conn, address)
        except Exception:
            logger.exception("{}: session for {} failed", self.name, address)
            conn.close()
            return None
        if ref is not None:
            self._sessions[ref.actor_urn] = ref
            self._sockets[ref.actor_urn] = conn
            watch(ref, self._gone)
        return ref

    def _client_of(self, conn: socket.socket, address: Any) -> tuple[str, int] | None:
        """The address ``conn`` comes from: its PROXY protocol header's, else its own; None
        when it is closed (a malformed header, or none whole within ``tls.FIRST_BYTE_S``)."""
        try:
            found = proxy_protocol.read_header(conn, tls.FIRST_BYTE_S)
            if isinstance(found, proxy_protocol.Absent):
                if found.prefix:  # (no remoting frame or TLS record begins like a header)
                    raise ProtocolError(f"began with {found.prefix!r}: not a PROXY header")
                return address
        except (ProtocolError, OSError) as exc:
            logger.info("{}: connection from {} closed: {}", self.name, address, exc)
            with contextlib.suppress(OSError):
                conn.close()
            return None
        if found is None:
            return address
        logger.debug("{}: connection from {} is {}'s", self.name, address, found)
        return found

    def _gone(self, dead: pykka.ActorRef[Any], _failure: BaseException | None) -> None:
        self._sessions.pop(dead.actor_urn, None)
        self._sockets.pop(dead.actor_urn, None)
        if not self._sessions:
            self._none_left.set()

    def session_count(self) -> int:
        return len(self._sessions)

    def _quiesce(self, seconds: float) -> None:
        """Every session stops serving (``Quiesce``), and each is given up to ``seconds`` in
        all for the sends it is serving to be answered: a send read before the shutdown is
        stored and acknowledged, or not stored and refused, never stored and cut off."""
        waiting = []
        for ref in list(self._sessions.values()):
            reply = new_future()
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Quiesce(reply))
                waiting.append(reply)
        deadline = time.monotonic() + seconds
        left = 0
        for reply in waiting:
            try:
                reply.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                left += 1
        if left:
            logger.warning(
                "{}: {} sessions still serving sends after {:g}s", self.name, left, seconds
            )
        # Then each sends its FIN after its last answer and reads (discarding) until its peer
        # closes: closed with unread requests in its buffer, the socket would send a RST and
        # drop the answers the peer had not read yet, whose sends were stored.
        if not self._sessions:
            return
        self._none_left.clear()
        for ref in list(self._sessions.values()):
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Finish())
        if not self._sessions:
            return
        self._none_left.wait(LINGER_S)

    def on_stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            # Stop accepting but leave the socket bound: the process owns it.
            self._server.stop_accepting()
            self._server = None
        seconds = self._drain() if self._drain is not None else 0.0
        if seconds > 0:
            self._quiesce(seconds)
        self._stop_sessions()
        self._sessions.clear()
        self._sockets.clear()

    def _stop_sessions(self) -> None:
        """Stop every session at once; shut down the sockets of those not stopped within
        ``STOP_S`` (blocked writing to a peer that reads nothing: the stop waits behind the
        write in their inbox) and wait ``STOP_S`` more. Sessions were stopped one at a time,
        up to 5 s each, and such a session was left running."""
        stopping = []
        for ref in list(self._sessions.values()):
            with contextlib.suppress(pykka.ActorDeadError):
                stopping.append((ref, ref.stop(block=False)))
        for attempt in range(2):
            deadline = time.monotonic() + STOP_S
            left = []
            for ref, future in stopping:
                try:
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
                except pykka.Timeout:
                    left.append((ref, future))
                except pykka.ActorDeadError:
                    pass
            stopping = left
            if not stopping:
                return
            if attempt == 0:
                for ref, _future in stopping:
                    sock = self._sockets.get(ref.actor_urn)
                    if sock is not None:
                        abort(sock)
        logger.warning("{}: {} sessions did not stop", self.name, len(stopping))
