"""ClientSession: one actor per TCP connection, speaking RocketMQ remoting.

Messages it accepts (told by its own reader greenlet and by request handlers):
- ``Outbound(frame, locked)``: write one encoded frame. ``SessionHandle.write`` (requests,
  oneways, pushes from other actors) first tries one non-blocking ``send`` itself when nothing
  is being written or queued, and queues here only what the socket buffer did not take (then
  holding the write lock for the rest: ``locked``) or every frame while another write is under
  way, so its caller never blocks on a slow peer. Responses are written by their request's
  greenlet (``SessionHandle.reply``). Every path holds the handle's write lock while it writes,
  so frames never interleave, and ``write`` never overtakes a frame it queued earlier.
- ``Closed(reason)``: the reader saw EOF or a fatal framing error; stop.
- ``CheckIdle``: timer tick; close the channel after ``idle_timeout`` seconds without a frame.
Proxy-free API through ``SessionHandle`` (safe from any greenlet): ``send_oneway``, ``request``,
``close``.

State owned: the socket, the frame decoder (inside the reader greenlet), outbound requests
waiting for a response (by opaque), the requests in flight (``runtime.in_flight``: past its
bounds a request is answered SYSTEM_BUSY and not served).

Behaviour: every request runs in its own greenlet (a reused one: ``runtime.workers``), so a
15 s long-poll pull never delays the heartbeat or offset query behind it on the same
connection; responses go out by opaque in whatever order they finish. The processor's
``ordered_codes`` (the broker's sends) still take effect in arrival order: each waits, at the
step its handler marks (``wait_turn`` / ``end_turn``), for the previous one of the connection,
so pipelined async sends are stored in the order they were written. Oneway requests get no
reply. A frame that was read whole but has a bad header gets an error response and the
connection goes on; a broken stream (bad length, wrong serialize type), or a header whose
request id cannot be read, gets an error reply when its opaque can be read and the connection
closes.
Durability point: none; the processor decides when to reply.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.lock
import msgspec
import pykka
from loguru import logger

from runtime import workers
from runtime.actor import GeventActor, GeventFuture, new_future
from runtime.errors import ProtocolError
from runtime.in_flight import MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES, InFlight
from runtime.receive import receiver
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import FrameDecoder, encode
from runtime.request_context import Turn, begin, finish

READ_SIZE = 65536
"""Bytes asked of each ``recv``. Not more: CPython allocates the whole size before the call and
shrinks the result after; above glibc's mmap threshold (128 KiB until the process frees a larger
mapped block, which a long-running broker soon has) that is an ``mmap`` and a ``munmap`` per
call, ~13 us here even when a few bytes arrive (or none: EAGAIN). Larger frames take several
reads."""

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


class Outbound(msgspec.Struct, frozen=True, tag=True):
    frame: bytes
    locked: bool = False
    """The sender holds the write lock for this frame (the rest of a partial direct write):
    write it without taking the lock, then release it."""


class Closed(msgspec.Struct, frozen=True, tag=True):
    reason: str


class CheckIdle(msgspec.Struct, frozen=True, tag=True):
    pass


class SessionHandle:
    """What a processor holds of a session: address, id, and ways to talk back."""

    __slots__ = (
        "_lock",
        "_lock_queued",
        "_pending",
        "_queued",
        "_raw",
        "_ref",
        "_sock",
        "remote_address",
        "session_id",
        "state",
    )

    def __init__(
        self,
        ref: pykka.ActorRef[Any],
        remote_address: str,
        session_id: int,
        sock: socket.socket | None = None,
    ) -> None:
        self._ref = ref
        self._sock = sock
        self._raw = getattr(sock, "_sock", None)
        """gevent's underlying non-blocking socket: a frame that fits the send buffer is
        written at once, from any greenlet or hub callback (``write``)."""
        self._queued = 0
        """Frames told to the session actor and not written yet: a direct write must not
        overtake them."""
        self._lock_queued = False
        """The write lock is held for a queued ``Outbound(locked=True)``."""
        self._lock = gevent.lock.Semaphore()
        """Held while a frame is written: frames never interleave (one writer at a time)."""
        self._pending: dict[int, GeventFuture[RemotingCommand]] = {}
        self.remote_address = remote_address
        self.session_id = session_id
        self.state: dict[str, Any] = {}
        """Per-connection scratch space for the processor (e.g. the client id seen)."""

    @property
    def alive(self) -> bool:
        return self._ref.is_alive()

    def write(self, cmd: RemotingCommand) -> bool:
        """Write ``cmd`` without ever blocking the caller; False when the session is gone.

        When nothing else is being written or queued, the frame goes straight to the socket
        (one non-blocking ``send``); whatever the send buffer does not take, and every frame
        while another write is under way, is queued on the session actor, so a slow peer never
        blocks the caller (actors, hub callbacks)."""
        frame = encode(cmd)
        raw = self._raw
        if raw is not None and not self._queued and not self._lock.locked():
            try:
                sent = raw.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = -1  # the actor's write reports the failure and closes
            if sent == len(frame):
                return True
            if sent > 0:
                # The rest must follow before any other frame: hold the lock until the
                # session actor has written it (or, closing, released it).
                self._lock.acquire(blocking=False)
                self._lock_queued = True
                return self._queue(Outbound(frame[sent:], locked=True))
        return self._queue(Outbound(frame))

    def _queue(self, message: Outbound) -> bool:
        self._queued += 1
        try:
            self._ref.tell(message)
        except pykka.ActorDeadError:
            self._queued -= 1
            if message.locked:
                self._lock_queued = False
                self._lock.release()
            return False
        return True

    def reply(self, cmd: RemotingCommand) -> bool:
        """Write a response now, from the request's own greenlet (the fast path: no actor hop).

        Only request greenlets call this; actors use ``write``, which queues the frame on the
        session actor so that a slow peer never blocks them."""
        sock = self._sock
        if sock is None:
            return self.write(cmd)
        frame = encode(cmd)
        try:
            with self._lock:
                send_frame(sock, self._raw, frame)
        except OSError as exc:
            with contextlib.suppress(pykka.ActorDeadError):
                self._ref.tell(Closed(f"write failed: {exc}"))
            return False
        return True

    def send_oneway(self, cmd: RemotingCommand) -> bool:
        """Send a request that expects no response (e.g. NOTIFY_CONSUMER_IDS_CHANGED)."""
        if not cmd.is_oneway:
            cmd = msgspec.structs.replace(cmd, flag=cmd.flag | 2)
        return self.write(cmd)

    def request(self, cmd: RemotingCommand) -> GeventFuture[RemotingCommand]:
        """Send a request to the peer; the future gets its response (caller picks the timeout
        and, on timeout, calls ``forget(cmd.opaque)``)."""
        future: GeventFuture[RemotingCommand] = new_future()
        self._pending[cmd.opaque] = future
        if not self.write(cmd):
            self._pending.pop(cmd.opaque, None)
            future.set_exception((ConnectionError, ConnectionError("session closed"), None))
        return future

    def call(self, cmd: RemotingCommand, timeout: float) -> RemotingCommand:
        """``request`` and wait up to ``timeout`` seconds (pykka.Timeout after that)."""
        future = self.request(cmd)
        try:
            return future.get(timeout=timeout)
        finally:
            self._pending.pop(cmd.opaque, None)

    def forget(self, opaque: int) -> None:
        """Stop waiting for the response to ``opaque`` (after a timeout)."""
        self._pending.pop(opaque, None)

    def close(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.tell(Closed("closed by this side"))

    def _response(self, cmd: RemotingCommand) -> None:
        future = self._pending.pop(cmd.opaque, None)
        if future is not None:
            future.set(cmd)

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception((ConnectionError, ConnectionError("session closed"), None))

    def __repr__(self) -> str:
        return f"<session {self.session_id} {self.remote_address}>"


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
    ) -> None:
        super().__init__()
        self.role = role
        self.sock = sock
        self.processor = processor
        self.idle_timeout = idle_timeout
        self.handle = SessionHandle(
            self.actor_ref, f"{address[0]}:{address[1]}", next(_session_ids), sock
        )
        self._last_read = time.monotonic()
        self._in_flight = InFlight(max_in_flight, max_in_flight_bytes)
        self._ordered: frozenset[int] = getattr(processor, "ordered_codes", frozenset())
        self._last_turn: Turn | None = None
        self._reader: gevent.Greenlet | None = None
        self._closed = False

    def on_start(self) -> None:
        self._reader = gevent.spawn(self._read_loop)
        if self.idle_timeout != float("inf"):
            self.send_every(min(10.0, max(self.idle_timeout / 4, 0.05)), CheckIdle())
        logger.debug("{}: {} connected", self.role, self.handle)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Outbound):
            self.handle._queued -= 1
            self._write(message.frame, locked=message.locked)
        elif isinstance(message, Closed):
            logger.debug("{}: {} closing: {}", self.role, self.handle, message.reason)
            self.stop()
        elif (
            isinstance(message, CheckIdle)
            and time.monotonic() - self._last_read > self.idle_timeout
        ):
            logger.info("{}: {} idle for {:g}s: closing", self.role, self.handle, self.idle_timeout)
            self.stop()
        return None

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, *_exc: Any) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.handle._lock_queued:  # that frame will never be written: free the lock
            self.handle._lock_queued = False
            self.handle._lock.release()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.handle._fail_pending()
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
        decoder = FrameDecoder()
        ref = self.actor_ref
        reason = "peer closed the connection"
        receive = receiver(self.sock, READ_SIZE)
        try:
            while True:
                data = receive()
                if not data:
                    break
                self._last_read = time.monotonic()
                self._feed(decoder, data)
                while decoder.pending:
                    self._feed(decoder, b"")
        except ProtocolError as exc:
            reason = f"protocol error: {exc.reason}"
            logger.warning("{}: {} {}: closing", self.role, self.handle, reason)
            if exc.opaque is not None:
                self._reply_error(exc.opaque, ResponseCode.SYSTEM_ERROR, exc.reason)
        except OSError as exc:
            reason = f"read failed: {exc}"
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(Closed(reason))

    def _feed(self, decoder: FrameDecoder, data: bytes) -> None:
        try:
            commands = decoder.feed(data)
        except ProtocolError as exc:
            if exc.fatal or exc.opaque is None:
                # No request id to answer: like RocketMQ's Java servers, close the channel
                # rather than leave the peer waiting for a reply that cannot come.
                raise ProtocolError(exc.reason, fatal=True) from exc
            logger.info("{}: {} bad request: {}", self.role, self.handle, exc.reason)
            self._reply_error(exc.opaque, ResponseCode.SYSTEM_ERROR, exc.reason)
            return
        for cmd in commands:
            if cmd.is_response:
                self.handle._response(cmd)
                continue
            refused = self._in_flight.admit(len(cmd.body))
            if refused is not None:
                if not cmd.is_oneway:
                    self._reply_error(cmd.opaque, ResponseCode.SYSTEM_BUSY, refused)
            else:
                turn = None
                if cmd.code in self._ordered:
                    turn = self._last_turn = Turn(self._last_turn)
                workers.submit(self._serve, cmd, self._last_read, turn)

    def _reply_error(self, opaque: int, code: int, remark: str) -> None:
        probe = RemotingCommand(code=0, opaque=opaque)
        self.handle.write(RemotingCommand.response_to(probe, code, remark=remark))

    def _serve(self, request: RemotingCommand, arrived: float, turn: Turn | None) -> None:
        begin(arrived, turn)
        try:
            response = self._process(request)
            if response is not None and not request.is_oneway and not self._closed:
                self.handle.reply(response)
        finally:
            self._in_flight.release(len(request.body))
            finish()

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


def send_frame(sock: socket.socket, raw: Any, frame: bytes) -> None:
    """Write all of ``frame`` (the caller holds the session's write lock).

    One non-blocking ``send`` on gevent's underlying socket ``raw`` first: a frame that fits the
    send buffer (nearly all) costs one system call. gevent's ``sendall`` also asks the kernel for
    ``SO_SNDBUF`` on every call (a ``getsockopt``, twice per message on the broker's hot path),
    so it only writes what the first send left, waiting for the socket as needed."""
    sent = 0
    if raw is not None:
        try:
            sent = raw.send(frame)
        except BlockingIOError:
            sent = 0
    if sent < len(frame):
        sock.sendall(memoryview(frame)[sent:] if sent else frame)


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


def connect(
    address: str,
    *,
    role: str = "client",
    processor: Processor | None = None,
    timeout: float = 3.0,
    idle_timeout: float = float("inf"),
) -> SessionHandle:
    """Open an outbound remoting connection to ``host:port`` and return its handle.

    The session actor is not supervised: whoever connects closes it (``handle.close()``).
    Raises OSError when the peer cannot be reached within ``timeout``.
    """
    import gevent.socket

    host, _, port = address.rpartition(":")
    sock = gevent.socket.create_connection((host, int(port)), timeout=timeout)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ref = ClientSession.start(
        role, sock, (host, int(port)), processor or RejectAll(), idle_timeout=idle_timeout
    )
    handle = ref.proxy().handle.get(timeout=timeout)
    return handle
