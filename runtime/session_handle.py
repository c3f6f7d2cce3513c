"""SessionHandle: what a processor and other actors hold of a remoting session (the
``ClientSession`` actor in ``runtime.session``), and the write path they share with it.

State owned: the session's write lock (held while a frame is written: frames never interleave),
the count of frames queued on the session actor (a direct write never overtakes them), and the
outbound requests waiting for their response, by opaque. ``write`` (any greenlet, actors, hub
callbacks) sends at once when nothing else is being written or queued and otherwise queues an
``Outbound`` frame on the session actor; ``reply`` (a request's own greenlet) writes under the
lock; ``send_frame`` is the one way both write a frame. ``Closed`` asks the session to stop.

No frame goes out whose header or length passes the peer's limit (a request: a server's 256 KiB
header, ``MAX_HEADER``, which it refuses, and 16 MiB frame, ``MAX_FRAME``; a response: a
client's 8 MiB header, ``MAX_RESPONSE_HEADER``, and 128 MiB frame, ``MAX_RESPONSE_FRAME``): the
peer would refuse it or close the connection, failing every other request on it (a frame past
the limit). Such a request fails alone (its future gets a
non-fatal ``ProtocolError``; a oneway one is not sent), such a response is replaced by a
SYSTEM_ERROR saying so.

Back-pressure: ``backlog`` counts the bytes of frames accepted for writing and not written yet
(queued on the session actor, each also counted ``QUEUED_FRAME_COST``, or held by a request
greenlet waiting for the write lock or the socket). A server's session stops reading its peer's
requests while the backlog passes the session's ``max_backlog`` (``MAX_BACKLOG``) and reads
again once it is at most a quarter of that (``wait_drained``): a client that sends requests and
never reads their answers stops being read (its own writes block) instead of growing the
server's memory by an answer per request; with nothing read it is closed after the idle
timeout (120 s).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

import gevent.event
import gevent.lock
import msgspec
import pykka

from runtime.actor import GeventFuture, new_future
from runtime.errors import ProtocolError
from runtime.hostport import format_address
from runtime.receive import raw_socket
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import (
    MAX_FRAME,
    MAX_HEADER,
    MAX_RESPONSE_FRAME,
    MAX_RESPONSE_HEADER,
    encode,
)

MAX_BACKLOG = 32 * 1024 * 1024
"""Bytes of answers waiting to be written past which a server's session stops reading its
peer's requests (``SessionHandle.wait_drained``): above the largest answers a slow but reading
client has waiting at once (16 pull answers of 32 messages: ~16-20 MiB)."""

QUEUED_FRAME_COST = 512
"""What a frame queued on the session actor costs besides its bytes (its ``Outbound``, the
actor's envelope, the bytes object), counted in the backlog: a client sending tiny requests
and reading nothing would otherwise queue ~200,000 tiny answers (~100 MiB) within the bound."""


class Outbound(msgspec.Struct, frozen=True, tag=True):
    frame: bytes
    locked: bool = False
    """The sender holds the write lock for this frame (the rest of a partial direct write):
    write it without taking the lock, then release it."""


class Closed(msgspec.Struct, frozen=True, tag=True):
    reason: str


class SessionHandle:
    """What a processor holds of a session: address, id, and ways to talk back."""

    __slots__ = (
        "_backlog",
        "_drained",
        "_lock",
        "_lock_queued",
        "_paused_at",
        "_pending",
        "_queued",
        "_raw",
        "_ref",
        "_sock",
        "_written",
        "remote_address",
        "session_id",
        "signer",
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
        self._raw = raw_socket(sock)
        """gevent's underlying non-blocking socket: a frame that fits the send buffer is
        written at once, from any greenlet or hub callback (``write``). None for TLS."""
        self._queued = 0
        """Frames told to the session actor and not written yet: a direct write must not
        overtake them."""
        self._lock_queued = False
        """The write lock is held for a queued ``Outbound(locked=True)``."""
        self._lock = gevent.lock.Semaphore()
        """Held while a frame is written: frames never interleave (one writer at a time)."""
        self._pending: dict[int, GeventFuture[RemotingCommand]] = {}
        self._backlog = 0
        """Bytes of frames accepted for writing and not written yet (``backlog``)."""
        self._paused_at = -1
        """While the reader waits in ``wait_drained``: the backlog at or under which it goes on
        (-1: not waiting)."""
        self._drained = gevent.event.Event()
        """Set when the waiting reader may go on."""
        self._written = 0
        """Frames counted in the backlog written so far (the session's idle check reads it:
        a connection whose answers are being written is not idle)."""
        self.remote_address = remote_address
        self.session_id = session_id
        self.signer: Callable[[RemotingCommand], RemotingCommand] | None = None
        """Applied to every request sent (``request``, ``send_oneway``): an ACL client's
        signature (``runtime.acl.signature.sign``)."""
        self.state: dict[str, Any] = {}
        """Per-connection scratch space for the processor (e.g. the client id seen)."""

    @property
    def alive(self) -> bool:
        return self._ref.is_alive()

    @property
    def backlog(self) -> int:
        """Bytes of frames accepted for writing and not written yet: queued on the session
        actor, or held by request greenlets waiting for the write lock or the socket."""
        return self._backlog

    def wait_drained(self, high: float) -> None:
        """Wait (the session's reader, before it reads more requests) while more than ``high``
        bytes wait to be written, until at most a quarter of ``high`` do or the session closes
        (``_release_reader``)."""
        if self._backlog <= high:
            return
        self._paused_at = int(high // 4)
        self._drained.clear()
        self._drained.wait()

    def _wrote(self, size: int) -> None:
        """A frame of ``size`` bytes counted in the backlog is written (or dropped)."""
        self._backlog -= size
        self._written += 1
        if self._paused_at >= 0 and self._backlog <= self._paused_at:
            self._release_reader()

    def _release_reader(self) -> None:
        self._paused_at = -1
        self._drained.set()

    @property
    def local_address(self) -> str:
        """``host:port`` this connection reached (``[v6]:port``), "" once it is closed."""
        try:
            host, port = self._sock.getsockname()[:2]
        except (OSError, AttributeError, ValueError, TypeError):
            return ""
        return format_address(str(host), int(port))

    def write(self, cmd: RemotingCommand) -> bool:
        """Write ``cmd`` without ever blocking the caller; False when the session is gone.

        When nothing else is being written or queued, the frame goes straight to the socket
        (one non-blocking ``send``); whatever the send buffer does not take, and every frame
        while another write is under way, is queued on the session actor, so a slow peer never
        blocks the caller (actors, hub callbacks)."""
        frame = _frame_of(cmd)
        if frame is None:
            return False  # (a oneway request whose header passes the limit: not sent)
        return self._write_frame(frame)

    def _write_frame(self, frame: bytes) -> bool:
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
        self._backlog += len(message.frame) + QUEUED_FRAME_COST
        try:
            self._ref.tell(message)
        except pykka.ActorDeadError:
            self._queued -= 1
            self._wrote(len(message.frame) + QUEUED_FRAME_COST)
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
        frame = _frame_of(cmd)
        assert frame is not None  # (a response always has a frame)
        size = len(frame)
        self._backlog += size
        try:
            with self._lock:
                send_frame(sock, self._raw, frame)
        except OSError as exc:
            with contextlib.suppress(pykka.ActorDeadError):
                self._ref.tell(Closed(f"write failed: {exc}"))
            return False
        finally:
            self._wrote(size)
        return True

    def send_oneway(self, cmd: RemotingCommand) -> bool:
        """Send a request that expects no response (e.g. NOTIFY_CONSUMER_IDS_CHANGED)."""
        if not cmd.is_oneway:
            cmd = msgspec.structs.replace(cmd, flag=cmd.flag | 2)
        if self.signer is not None:
            cmd = self.signer(cmd)
        return self.write(cmd)

    def request(self, cmd: RemotingCommand) -> GeventFuture[RemotingCommand]:
        """Send a request to the peer; the future gets its response (caller picks the timeout
        and, on timeout, calls ``forget(cmd.opaque)``)."""
        future: GeventFuture[RemotingCommand] = new_future()
        if self.signer is not None:
            cmd = self.signer(cmd)
        frame = encode(cmd)
        problem = _too_large(frame, MAX_HEADER, MAX_FRAME, "request")
        if problem:
            problem += ": not sent"
            future.set_exception((ProtocolError, ProtocolError(problem, fatal=False), None))
            return future
        self._pending[cmd.opaque] = future
        if not self._write_frame(frame):
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


def _header_length(frame: bytes) -> int:
    """The header length a frame's header word gives (its low 24 bits)."""
    return int.from_bytes(frame[5:8], "big")


def _frame_of(cmd: RemotingCommand) -> bytes | None:
    """``cmd`` encoded; a response whose header or whole frame would pass the limit as a
    SYSTEM_ERROR saying so, a request's None (not to be sent)."""
    frame = encode(cmd)
    if cmd.is_response:
        problem = _too_large(frame, MAX_RESPONSE_HEADER, MAX_RESPONSE_FRAME, "response")
        if not problem:
            return frame
        return encode(RemotingCommand.response_to(cmd, ResponseCode.SYSTEM_ERROR, remark=problem))
    return None if _too_large(frame, MAX_HEADER, MAX_FRAME, "request") else frame


def _too_large(frame: bytes, max_header: int, max_frame: int, what: str) -> str:
    """Why the peer would refuse ``frame`` (closing the connection), or "" when it would not."""
    if _header_length(frame) > max_header:
        return f"{what} header of {_header_length(frame)} bytes passes the {max_header}-byte limit"
    if len(frame) - 4 > max_frame:
        return f"{what} of {len(frame) - 4} bytes passes the {max_frame}-byte limit"
    return ""
