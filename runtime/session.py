"""ClientSession: one actor per TCP connection, speaking RocketMQ remoting.

Messages it accepts (told by its own reader greenlet and by request handlers):
- ``Outbound(frame, locked)``: write one encoded frame. ``SessionHandle.write`` (requests,
  oneways, pushes from other actors) first tries one non-blocking ``send`` itself when nothing
  is being written or queued, and queues here only what the socket buffer did not take (then
  holding the write lock for the rest: ``locked``) or every frame while another write is under
  way, so its caller never blocks on a slow peer. Responses are written by their request's
  greenlet (``SessionHandle.reply``). Every path holds the handle's write lock while it writes,
  so frames never interleave, and ``write`` never overtakes a frame it queued earlier.
- ``Closed(reason)``: the reader saw EOF, a fatal framing error or a fault of its own; stop.
- ``Quiesce(reply)``: the process is shutting down (its acceptor asks before it stops the
  session): requests read from now on are answered SERVICE_NOT_AVAILABLE and not served;
  ``reply`` is set once the ordered requests in service (sends) have been answered.
- ``Finish``: after ``Quiesce`` (or a fatal framing error), send the FIN behind the last answer
  (once no frame is being written: the write lock, ``LINGER_S`` at most) and read (dropping
  what comes) until the peer closes: a socket closed with unread bytes sends a RST, which
  discards what this side had not sent yet and makes the peer's kernel drop the answers it
  had not read yet.
Proxy-free API through ``SessionHandle`` (safe from any greenlet): ``send_oneway``, ``request``,
``close``.

State owned: the socket, the frame decoder (inside the reader greenlet), its SessionHandle (the
write lock, the frames queued here, outbound requests waiting for a response by opaque), the
requests in flight (``runtime.in_flight``: past its bounds a request is answered SYSTEM_BUSY and
not served).

Behaviour: every request runs in its own greenlet (a reused one: ``runtime.workers``), so a
15 s long-poll pull never delays the heartbeat or offset query behind it on the same
connection; responses go out by opaque in whatever order they finish. The processor's
``ordered_codes`` (the broker's sends) still take effect in arrival order: each waits, at the
step its handler marks (``wait_turn`` / ``end_turn``), for the previous one of the connection,
so pipelined async sends are stored in the order they were written. Oneway requests get no
reply. A frame that was read whole but has a bad header gets an error response and the
connection goes on; a broken stream (bad length, wrong serialize type), or a header whose
request id cannot be read, gets an error reply when its opaque can be read and the connection
closes: the FIN goes behind what was written, and what the peer still sends is read and dropped
until it closes (``LINGER_S``, ``LINGER_BYTES`` at most), so that the close sends no RST that
would discard the answers on their way. A header over the session's ``max_header`` inside a
frame within ``max_frame`` is refused alone (SYSTEM_ERROR), like a bad header. A fault of the
reader itself (a bug) is logged with the peer and closes the connection at once.
A server's session stops reading while more than ``max_backlog`` bytes of its frames wait to
be written (``runtime.session_handle``: back-pressure on a client that reads nothing). A hub
timer closes the channel after ``idle_timeout`` seconds with nothing read and no waiting frame
written, shutting the socket down so that a session blocked writing to its peer wakes too.
Durability point: none; the processor decides when to reply.

``SessionHandle`` (and ``send_frame``, the ``Outbound`` and ``Closed`` messages) live in
``runtime.session_handle``; ``SessionHandle`` is re-exported here, where most importers (the
handlers' type hints) have always found it.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import msgspec
import pykka
from loguru import logger

from runtime import workers
from runtime.actor import GeventActor
from runtime.errors import ProtocolError
from runtime.hostport import format_address, parse_address
from runtime.in_flight import MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES, InFlight
from runtime.latency import rpc_labels
from runtime.proxy_protocol import V1_PREFIX, V2_SIGNATURE
from runtime.receive import is_tls, receiver
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import (
    MAX_FRAME,
    MAX_HEADER,
    MAX_RESPONSE_FRAME,
    MAX_RESPONSE_HEADER,
    FrameDecoder,
)
from runtime.request_context import Turn, begin, finish, was_held
from runtime.session_handle import (
    MAX_BACKLOG,
    QUEUED_FRAME_COST,
    Closed,
    Outbound,
    SessionHandle,
    send_frame,
)

READ_SIZE = 65536
"""Bytes asked of each ``recv``. Not more: CPython allocates the whole size before the call and
shrinks the result after; above glibc's mmap threshold (128 KiB until the process frees a larger
mapped block, which a long-running broker soon has) that is an ``mmap`` and a ``munmap`` per
call, ~13 us here even when a few bytes arrive (or none: EAGAIN). Larger frames take several
reads."""

LINGER_S = 2.0
"""After a fatal framing error: how long the FIN waits for a frame being written, and the
reader drops what the peer still sends before the socket is closed."""
LINGER_BYTES = 4 * 1024 * 1024
"""After a fatal framing error: the most bytes read and dropped before the socket is closed."""

_session_ids = itertools.count(1)


class Processor(Protocol):
    """Serves the requests of one role (name server or broker).

    ``process`` runs in a greenlet of its own and may block on futures (with timeouts); it
    returns the response, or None for a oneway request or when it replied itself. A processor
    may name ``ordered_codes`` (a frozenset of request codes) whose handlers take turns in
    arrival order (``wait_turn``).
    """

    def process(
        self, session: SessionHandle, request: RemotingCommand
    ) -> RemotingCommand | None: ...

    def on_close(self, session: SessionHandle) -> None: ...


class Finish(msgspec.Struct, frozen=True, tag=True):
    """After ``Quiesce``: send the FIN (after every answer written), then read and discard
    until the peer closes, which stops the session."""


class Quiesce(msgspec.Struct, frozen=True, tag=True):
    """Serve nothing more: every request read from now on is answered SERVICE_NOT_AVAILABLE,
    unserved (nothing stored: a client may send it elsewhere); ``reply`` (a future) is set
    once the ordered requests in service (the broker's sends) have been answered."""

    reply: Any


class ClientSession(GeventActor):
    """One remoting connection. See the module docstring."""

    def __init__(
        self,
        role: str,
        sock: socket.socket,
        address: tuple[str, int],
        processor: Processor,
        *,
        idle_timeout: float = 120.0,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_in_flight_bytes: int = MAX_IN_FLIGHT_BYTES,
        max_header: int = MAX_HEADER,
        max_frame: int = MAX_FRAME,
        max_backlog: float = MAX_BACKLOG,
    ) -> None:
        super().__init__()
        self.role = role
        self.max_backlog = max_backlog
        """Bytes of frames waiting to be written past which the reader stops reading until
        they drain (``SessionHandle.wait_drained``; a server's connections: ``MAX_BACKLOG``,
        a client's own: never, since its peer may be waiting for it to read)."""
        self.max_header = max_header
        """The largest frame header decoded (a server's connections: 256 KiB, a larger one
        is refused alone; a client's own, which read responses: ``MAX_RESPONSE_HEADER``)."""
        self.max_frame = max_frame
        """The largest frame read (a server's connections: 16 MiB; a client's own:
        ``MAX_RESPONSE_FRAME``)."""
        self.sock = sock
        self.processor = processor
        self._latency = getattr(processor, "rpc_latency", None)
        """The processor's ``rocketmq_rpc_latency`` (``runtime.latency``), when it keeps one."""
        self.idle_timeout = idle_timeout
        self.handle = SessionHandle(
            self.actor_ref, format_address(address[0], address[1]), next(_session_ids), sock
        )
        self._last_read = time.monotonic()
        self._in_flight = InFlight(max_in_flight, max_in_flight_bytes)
        self._ordered: frozenset[int] = getattr(processor, "ordered_codes", frozenset())
        self._last_turn: Turn | None = None
        self._ordered_in_service = 0
        self._quiesced: Any = None  # Quiesce's reply once asked; set when no send is in service
        self._finishing = False  # Finish: FIN sent, requests read now are dropped
        self._reader: gevent.Greenlet | None = None
        self._idle_timer: Any = None
        self._written = 0  # the handle's frames written at the last idle check
        self._wrote_at = self._last_read  # when that count last moved
        self._closed = False

    def on_start(self) -> None:
        self._reader = gevent.spawn(self._read_loop)
        if self.idle_timeout != float("inf"):
            interval = min(10.0, max(self.idle_timeout / 4, 0.05))
            self._idle_timer = gevent.get_hub().loop.timer(interval, interval)
            self._idle_timer.start(self._check_idle)
        logger.debug("{}: {} connected", self.role, self.handle)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Outbound):
            self.handle._queued -= 1
            try:
                self._write(message.frame, locked=message.locked)
            finally:
                self.handle._wrote(len(message.frame) + QUEUED_FRAME_COST)
        elif isinstance(message, Closed):
            logger.debug("{}: {} closing: {}", self.role, self.handle, message.reason)
            self.stop()
        elif isinstance(message, Finish):
            self._finishing = True
            self._send_fin()
        elif isinstance(message, Quiesce):
            self._quiesced = message.reply
            if not self._ordered_in_service:
                message.reply.set(True)
        return None

    def _send_fin(self) -> None:
        """The FIN, behind the frame being written if one is (the write lock; queued frames
        were written before, being earlier in the inbox), ``LINGER_S`` at most."""
        lock = self.handle._lock
        locked = lock.acquire(timeout=LINGER_S)
        try:
            with contextlib.suppress(OSError):
                _half_close(self.sock)
        finally:
            if locked:
                lock.release()

    def _check_idle(self) -> None:
        """A hub timer's callback (never blocks): close the channel after ``idle_timeout``
        seconds in which nothing was read and no waiting frame was written, as RocketMQ's
        servers close a channel idle for 120 s (reads and writes both count). Not a message to
        the actor: a peer that reads nothing can keep the actor blocked writing to it, and it
        is exactly that peer that must be closed; shutting the socket down wakes every
        greenlet blocked on it."""
        now = time.monotonic()
        written = self.handle._written
        if written != self._written:
            self._written = written
            self._wrote_at = now
        if now - max(self._last_read, self._wrote_at) <= self.idle_timeout:
            return
        self._idle_timer.stop()
        reason = f"idle for {self.idle_timeout:g}s"
        logger.info("{}: {} {}: closing", self.role, self.handle, reason)
        abort(self.sock)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(Closed(reason))

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, *_exc: Any) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.close()
        if self.handle._lock_queued:  # that frame will never be written: free the lock
            self.handle._lock_queued = False
            self.handle._lock.release()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.handle._fail_pending()
        self.handle._release_reader()  # (a reader waiting for the backlog to drain)
        try:
            self.processor.on_close(self.handle)
        except Exception:
            logger.exception("{}: on_close failed for {}", self.role, self.handle)

    def _write(self, frame: bytes, *, locked: bool = False) -> None:
        lock = self.handle._lock
        if locked:
            self.handle._lock_queued = False
        if self._closed:
            if locked:
                lock.release()
            return
        if not locked:
            lock.acquire()
        try:
            send_frame(self.sock, self.handle._raw, frame)
        except OSError as exc:
            self.actor_ref.tell(Closed(f"write failed: {exc}"))
        finally:
            lock.release()

    # -- reading (a greenlet owned by this actor; it only tells the actor) -----------------

    def _read_loop(self) -> None:
        decoder = FrameDecoder(max_frame=self.max_frame, max_header=self.max_header)
        ref = self.actor_ref
        reason = "peer closed the connection"
        receive = receiver(self.sock, READ_SIZE)
        handle = self.handle
        max_backlog = self.max_backlog
        first = b""
        try:
            while True:
                if handle._backlog > max_backlog:  # a peer not reading its answers
                    handle.wait_drained(max_backlog)
                data = receive()
                if not data:
                    break
                if len(first) < len(V2_SIGNATURE):  # (enough to tell a PROXY header)
                    first += data[: len(V2_SIGNATURE) - len(first)]
                self._last_read = time.monotonic()
                self._feed(decoder, data)
                while decoder.pending:
                    self._feed(decoder, b"")
        except ProtocolError as exc:
            reason = f"protocol error: {exc.reason}{_proxy_hint(first)}"
            logger.warning("{}: {} {}: closing", self.role, self.handle, reason)
            if exc.opaque is not None:
                self._reply_error(exc.opaque, ResponseCode.SYSTEM_ERROR, exc.reason)
            self._linger(receive)
        except OSError as exc:
            reason = f"read failed: {exc}"
        except Exception as exc:  # a bug: the connection must not stay open unread
            reason = f"read loop failed: {exc.__class__.__name__}: {exc}"
            logger.exception("{}: {} {}: closing", self.role, self.handle, reason)
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(Closed(reason))

    def _linger(self, receive: Callable[[], bytes]) -> None:
        """Before closing for a fatal framing error: have the FIN sent behind what was written
        (``Finish``) and read and drop what the peer still sends until it closes, ``LINGER_S``
        and ``LINGER_BYTES`` at most. A socket closed with unread bytes sends a RST, and the
        RST discards what was not sent yet (the error reply, earlier answers) and what the
        peer had not read yet."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(Finish())
        left = LINGER_BYTES
        with gevent.Timeout(LINGER_S, False), contextlib.suppress(OSError):
            while left > 0:
                data = receive()
                if not data:
                    return
                left -= len(data)

    def _feed(self, decoder: FrameDecoder, data: bytes) -> None:
        try:
            commands = decoder.feed(data)
        except ProtocolError as exc:
            if exc.fatal or exc.opaque is None:
                # No request id to answer: like RocketMQ's Java servers, close the channel
                # rather than leave the peer waiting for a reply that cannot come.
                raise ProtocolError(exc.reason, fatal=True, opaque=exc.opaque) from exc
            logger.info("{}: {} bad request: {}", self.role, self.handle, exc.reason)
            self._reply_error(exc.opaque, ResponseCode.SYSTEM_ERROR, exc.reason)
            return
        for cmd in commands:
            if cmd.is_response:
                self.handle._response(cmd)
                continue
            if self._finishing:  # no answer can go out any more
                continue
            if self._quiesced is not None:
                if not cmd.is_oneway:
                    self._reply_error(
                        cmd.opaque,
                        ResponseCode.SERVICE_NOT_AVAILABLE,
                        f"{self.role} is shutting down: not served",
                    )
                continue
            refused = self._in_flight.admit(len(cmd.body))
            if refused is not None:
                if not cmd.is_oneway:
                    self._reply_error(cmd.opaque, ResponseCode.SYSTEM_BUSY, refused)
            else:
                turn = None
                if cmd.code in self._ordered:
                    turn = self._last_turn = Turn(self._last_turn)
                    self._ordered_in_service += 1
                workers.submit(self._serve, cmd, self._last_read, turn)

    def _reply_error(self, opaque: int, code: int, remark: str) -> None:
        probe = RemotingCommand(code=0, opaque=opaque)
        self.handle.write(RemotingCommand.response_to(probe, code, remark=remark))

    def _serve(self, request: RemotingCommand, arrived: float, turn: Turn | None) -> None:
        begin(arrived, turn)
        try:
            response = self._process(request)
            if response is not None and not request.is_oneway and not self._closed:
                written = self.handle.reply(response)
                # (from its read to its answer written; not a pull held for long polling)
                if self._latency is not None and written and not was_held():
                    labels = rpc_labels(request.code, response.code)
                    self._latency.observe(labels, time.monotonic() - arrived)
        finally:
            self._in_flight.release(len(request.body))
            finish()
            if turn is not None:
                self._ordered_in_service -= 1
                if not self._ordered_in_service and self._quiesced is not None:
                    with contextlib.suppress(queue.Full):
                        self._quiesced.set(True)

    def _process(self, request: RemotingCommand) -> RemotingCommand | None:
        try:
            return self.processor.process(self.handle, request)
        except ProtocolError as exc:
            return RemotingCommand.response_to(
                request, ResponseCode.SYSTEM_ERROR, remark=exc.reason
            )
        except (gevent.Timeout, pykka.Timeout) as exc:
            logger.warning("{}: request code {} timed out: {}", self.role, request.code, exc)
            return RemotingCommand.response_to(
                request, ResponseCode.SYSTEM_BUSY, remark=f"timed out: {exc}"
            )
        except Exception as exc:
            logger.exception("{}: request code {} failed", self.role, request.code)
            return RemotingCommand.response_to(
                request, ResponseCode.SYSTEM_ERROR, remark=f"{exc.__class__.__name__}: {exc}"
            )


def _proxy_hint(first: bytes) -> str:
    """What to add to a broken stream's reason when it began with a PROXY protocol header
    (a load balancer's, on a listener not told to read one)."""
    if first.startswith((V1_PREFIX, V2_SIGNATURE)):
        return " (a PROXY protocol header: set enableProxyProtocol=true to read it)"
    return ""


def session_factory(
    role: str, processor: Processor, **options: Any
) -> Callable[[socket.socket, tuple[str, int]], pykka.ActorRef[Any]]:
    """A factory for the Acceptor: one ClientSession per accepted connection."""

    def start(sock: socket.socket, address: tuple[str, int]) -> pykka.ActorRef[Any]:
        return ClientSession.start(role, sock, address, processor, **options)

    return start


class RejectAll:
    """Processor for outbound connections whose peer is not expected to send requests."""

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        if request.is_oneway:
            return None
        return RemotingCommand.response_to(
            request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED, remark="not served here"
        )

    def on_close(self, session: SessionHandle) -> None:
        pass


def abort(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways without closing it (never blocks): every greenlet blocked
    reading or writing it wakes with EOF or an error. A TLS socket's underlying socket is shut
    (its own ``shutdown`` drops its TLS layer first: see ``_half_close``)."""
    target = getattr(sock, "_sock", sock) if is_tls(sock) else sock
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_RDWR)


def _half_close(sock: socket.socket) -> None:
    """Send the FIN (SHUT_WR). A TLS socket's own ``shutdown`` drops its TLS layer (its reads
    then fail), so its underlying socket is shut instead: the peer sees the
    end of the stream, and what it still sends is read and decrypted as before."""
    target = getattr(sock, "_sock", sock) if is_tls(sock) else sock
    target.shutdown(socket.SHUT_WR)


def connect(
    address: str,
    *,
    role: str = "client",
    processor: Processor | None = None,
    timeout: float = 3.0,
    idle_timeout: float = float("inf"),
    tls: Any = None,
    signer: Callable[[RemotingCommand], RemotingCommand] | None = None,
) -> SessionHandle:
    """Open an outbound remoting connection to ``host:port`` and return its handle; over TLS
    with ``tls``, an ``ssl.SSLContext`` of gevent's (``runtime.tls``); every request sent on it
    passes through ``signer`` (``runtime.acl.signature.signer_for``) when one is given.

    The session actor is not supervised: whoever connects closes it (``handle.close()``).
    Raises OSError when the peer cannot be reached within ``timeout`` (or the TLS handshake
    fails: ``ssl.SSLError`` is one), AddressError when ``address`` is no ``host:port`` (an IPv6
    host with or without brackets).
    """
    import gevent.socket

    host, port = parse_address(address)
    sock = gevent.socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        from runtime.tls import wrap_client

        sock = wrap_client(sock, tls, timeout)
    ref = ClientSession.start(
        role,
        sock,
        (host, port),
        processor or RejectAll(),
        idle_timeout=idle_timeout,
        max_header=MAX_RESPONSE_HEADER,
        max_frame=MAX_RESPONSE_FRAME,
        max_backlog=float("inf"),
    )
    handle = ref.proxy().handle.get(timeout=timeout)
    handle.signer = signer
    return handle
