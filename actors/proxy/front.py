"""Front: plain and TLS gRPC clients on one port (``tls.server.mode=permissive``), and the
PROXY protocol (``--proxy-protocol``).

RocketMQ's proxy serves both on its gRPC port, and RocketMQ 5's Java and Go clients use TLS
unless told not to (trusting any certificate) while the Python and Node.js ones do not: one
port must take both. grpcio cannot: a listener is plain or TLS. So the front owns the public
port and grpcio listens on two loopback ports, one plain and one TLS; each connection's first
byte (0x16, a TLS handshake record, or the HTTP/2 preface's ``P``) picks the one it is
relayed to, bytes both ways, unchanged (TLS ends in grpcio: the front never sees plaintext).
With one of the ports only (``tls.server.mode`` enforcing: TLS, disabled: plain), a connection
wanting the other is closed.

With ``proxy_protocol`` a connection may begin with a load balancer's PROXY protocol header
(``runtime.proxy_protocol``; read before the first byte is looked at, as RocketMQ does): the
connection is taken as coming from the client the header names, and the rest of its bytes are
relayed (the header's are not: grpcio would not read them). grpcio cannot read one,
so the proxy runs the front for every mode then.

The relay costs CPU (about 0.1 - 0.2 ms a call; docs/benchmarks.md "Session 23"):
``tls.server.mode=disabled`` or ``enforcing`` without the PROXY protocol let grpcio own the
public port itself.

``origin(peer)``: the client's own address for a gRPC peer string of a relayed connection
(what grpcio sees is the front's loopback connection): the ACL's address whitelists use it
(``actors.proxy.origins``, re-exported here with ``caller_address`` and ``peer_address``).

Threads: two a front, whatever the connections: one accepting (here: ``Front._accept``), and
one (``relay.Relay``: a poll loop over non-blocking sockets, the unpatched epoll) that opens
(``openings``) and then relays every connection. Both are native threads with the socket
module's own sockets and locks even in a monkey-patched process (``native``), since relaying
as greenlets on the brokers' hub (``cluster --proxy``) cost a call twice as much more.
At most ``conn_limits.MAX_CONNECTIONS`` connections at once, ``MAX_PER_HOST`` from one host
(not behind a balancer): more are closed at once, by the accepting thread.

Owns the listening socket, the accepting thread, the set of open sockets (to shut down on
``close_all``) and the connection places (``conn_limits``); the module layout:
``front`` (this), ``relay`` (the poll loop), ``openings`` (connections still opening),
``pipe`` (a relayed connection's state), ``origins``, ``native``.
"""

from __future__ import annotations

import socket

from actors.proxy import conn_limits, openings
from actors.proxy.conn_limits import ConnectionLimits, Refusals, per_host_limit
from actors.proxy.native import Socket, close, new_lock, shutdown, sleep, start_thread
from actors.proxy.opening import PREFACE as PREFACE  # (re-exported: tests, bench)
from actors.proxy.opening import FirstBytes
from actors.proxy.openings import Opening
from actors.proxy.origins import caller_address as caller_address  # (re-exported)
from actors.proxy.origins import origin as origin  # (re-exported)
from actors.proxy.origins import peer_address as peer_address  # (re-exported)
from actors.proxy.relay import Relay

ACCEPT_BACKOFF_S = 0.05


class Front:
    """``start()`` binds ``host:port`` (0: a free port) and returns the port; connections go
    to ``plain_port`` or ``tls_port`` on 127.0.0.1 by their first byte (None: that kind is
    closed). ``stop_accepting()`` closes the port (calls under way go on); ``close_all()`` ends
    the relayed connections.

    Only the relay's thread closes the sockets of a connection handed over to it (the
    accepting thread closes one it could not hand over); other threads shut them down (a
    socket closed under another thread's poll could have its descriptor reused meanwhile)."""

    def __init__(
        self,
        host: str,
        port: int,
        plain_port: int | None,
        tls_port: int | None,
        *,
        proxy_protocol: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.plain_port = plain_port
        self.tls_port = tls_port
        self.proxy_protocol = proxy_protocol
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = new_lock()
        self._stopped = False
        self.limits = ConnectionLimits(per_host=None if proxy_protocol else per_host_limit())
        self.refusals = Refusals()
        """Connections closed by the front, by reason (``conn_limits``)."""
        self.accept_errors = 0
        self._relay = Relay(self)

    @property
    def refused(self) -> int:
        """Connections closed at once: past a limit."""
        return self.refusals.count(conn_limits.FULL) + self.refusals.count(conn_limits.HOST_FULL)

    @property
    def turned_away(self) -> int:
        """Connections closed for what they began with: not gRPC, a malformed PROXY header, or
        TLS (plain) where the port takes only plain (TLS) clients."""
        return self.refusals.count(conn_limits.TURNED_AWAY)

    def start(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = Socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(512)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        try:
            self._relay.start()
            start_thread(self._accept, ())
        except BaseException:
            self._stopped = True
            self._relay.wake()
            listener.close()
            raise
        return self.port

    def stop_accepting(self) -> None:
        self._stopped = True
        if self._listener is not None:
            shutdown(self._listener)  # the accept thread sees it, and closes the port
        self._relay.wake()  # (it ends once its connections have)

    def close_all(self) -> None:
        self.stop_accepting()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            shutdown(sock)

    def stop(self) -> None:
        self.close_all()

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None
        try:
            while not self._stopped:
                try:
                    # (``accept()`` would wrap the connection in the module's socket class:
                    # gevent's, in a monkey-patched process, of no use in a native thread)
                    fd, address = listener._accept()  # type: ignore[attr-defined]
                    client = Socket(listener.family, socket.SOCK_STREAM, fileno=fd)
                except OSError:
                    if self._stopped:
                        return
                    self.accept_errors += 1  # (EMFILE, ...: not logged from this thread)
                    sleep(ACCEPT_BACKOFF_S)
                    continue
                self._admit(client, address)
        finally:
            close(listener)

    def _admit(self, client: socket.socket, address: tuple[str, int]) -> None:
        """A connection accepted: its place taken (else closed at once), then the relay's
        thread reads its opening (``Openings``)."""
        host = address[0]
        refused = self.limits.take(host)
        if refused is not None:
            self.refusals.note(refused)
            close(client)
            return
        self._track(client)
        within = openings.FIRST_BYTE_S
        opening = Opening(client, address, FirstBytes(self.proxy_protocol), within)
        if not self._relay.take(opening):  # (the relay has ended: the front is stopping)
            self._end(client, None, host)

    def _end(self, client: socket.socket, upstream: socket.socket | None, host: str) -> None:
        for sock in (client, upstream):
            if sock is not None:
                self._untrack(sock)
                close(sock)
        self.limits.give(host)
        if self._stopped:
            self._relay.wake()  # (its last connection may have ended)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)
        if self._stopped:
            shutdown(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
