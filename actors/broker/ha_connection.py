"""HAConnection: one slave's link on a master (one actor per accepted HA connection).

Messages accepted (told by its own greenlets and timers):
- ``LinkHello(hello)``: the slave's HELLO, answered as ``actors.broker.ha_hello`` decides:
  REFUSED (with a reason), FETCH (a master reconciling after a power loss asks for the
  slave's log past its end), TRUNCATE (the slave's log diverges: cut it at the last common
  epoch point, then the link closes), START (an empty slave of a master whose log no longer
  starts at 0: an ACCEPT at the master's first segment, then the link closes; the slave
  starts its log there and links again), or ACCEPT from the slave's end — then a sender
  greenlet streams raw commit-log bytes from there (``read_raw``: whole records, at most
  ``haTransferBatchSize`` per frame, never across a segment end) and a heartbeat frame when idle;
  a damaged record ends the link with an ERROR naming its offset (once a minute per slave): one
  ``read_raw`` refuses (``RawDamaged``), or where no record starts (a flipped magic byte) though
  the log is written past it, for ``STALL_S``;
  to a slave whose HELLO is version 3 or later, a CONFIRM right after the ACCEPT and whenever
  this master's consumers may read further (``StoreContext.dispatched``): the slave shows its
  consumers no more.
- ``LinkProof(mac)``: with an inner account (``HAContext.credentials``) the link sends a
  CHALLENGE (a fresh nonce) as soon as it opens and keeps the HELLO until the slave's PROOF
  matches the account's secret; a wrong one is REFUSED (UNAUTHENTICATED) with a WARNING. No
  PROOF within the HELLO's 10 s closes the link.
- ``LinkTail(offset, data)``: part of the slave's log after a FETCH: appended as it is
  (``AppendRaw(reconcile=True)``: checked, written, dispatched, fsync'd in either flush
  mode) while the master still reconciles; the empty one ends it, and the HELLO is answered
  again (now level: ACCEPT). One FETCH per link; a TAIL at another offset, past the slave's
  HELLO or without a FETCH closes the link. The reader hands over one TAIL at a time and
  reads on once it is handled, so a long tail is never held in memory.
- ``LinkReport(offset)``: the slave holds the log up to ``offset``; passed to the HAService as
  ``SlaveAck`` (by the slave's node id). A REPORT past the end of what this link sent closes
  the link with a WARNING: a peer that reported 2^62 without reading made a SYNC_MASTER answer
  SEND_OK for records no slave held (a hostile-input probe; without an inner account a peer
  that reads and reports what it read is not detected: the HA port then trusts its network, as
  RocketMQ's). A HELLO naming the master's own node id, or a negative one, is refused.
- ``LinkClosed(reason, relink)``: the socket ended (reader or sender) or the HAService closed
  the link; ``relink`` (a new epoch: the slave must mirror it): an accepted link's sender ends
  its stream with REFUSED not ready, so the slave links again at once instead of the 1 s it
  waits after a plain close (a second of SLAVE_NOT_AVAILABLE after every reconciliation, and
  after a controller's new term for a master that stays); closed anyway after
  ``RELINK_GRACE_S`` if the sender is stuck in a send.
- ``LinkCheck`` (timer): close the link when the slave sent nothing for haHousekeepingInterval.

At most ``UNACCEPTED_PER_HOST`` links from one host may wait for their ACCEPT (their HELLO,
their PROOF) at a time; one more is closed at once (a WARNING a minute per master): peers
without the secret holding silent links open for 10 s each kept every slave off the HA port's
256 connections (a review of the CHALLENGE; a real slave opens one link at a time).

State owned: the socket, the reader and sender greenlets (they end when the socket closes),
the slave's node id once it said HELLO. Durability point: none (the slave's REPORT is the ack).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import gevent
import gevent.event
import pykka
from loguru import logger

from actors.broker import ha_hello
from actors.broker.ha_messages import (
    LinkCheck,
    LinkClosed,
    LinkHello,
    LinkProof,
    LinkReport,
    LinkTail,
    SlaveAck,
    SlaveJoined,
    SlaveLeft,
)
from actors.broker.ha_service import HAContext
from actors.broker.messages import AppendRaw
from runtime.actor import GeventActor, new_future
from runtime.errors import ProtocolError
from runtime.ha import protocol as P
from runtime.receive import receiver
from runtime.store.raw import RawDamaged, read_raw

HELLO_TIMEOUT_S = 10.0
RELINK_GRACE_S = 2.0
APPEND_TIMEOUT_S = 30.0
UNACCEPTED_PER_HOST = 8
STALL_S = 5.0
"""How long the sender waits on "no whole record at pos" while the log is written past pos
before it calls the record there damaged (a flipped magic byte) and ends the link."""


class HAConnection(GeventActor):
    """See the module docstring."""

    def __init__(self, ha: HAContext, sock: socket.socket, address: tuple[str, int]) -> None:
        super().__init__()
        self.ha = ha
        self.sock = sock
        self.peer = f"{address[0]}:{address[1]}"
        self.host = address[0]
        self._unaccepted = False
        """Counted in ``HAContext.unaccepted`` (until accepted or closed)."""
        self.node: int | None = None
        self._sent_end = 0
        """The end of what this link has sent (or is sending): no slave can report past it."""
        self._closed = False
        self._last_read = time.monotonic()
        self._opened = self._last_read
        self._nonce = os.urandom(P.NONCE_SIZE) if ha.credentials is not None else None
        """The CHALLENGE's nonce (None: no inner account, no challenge)."""
        self._proven = self._nonce is None
        self._pending: P.Hello | None = None
        """A HELLO kept until the PROOF comes."""
        self._fetch: tuple[P.Hello, int] | None = None
        """After a FETCH: the slave's HELLO and the offset its next TAIL must start at."""
        self._fetched = False
        self._relink: str | None = None
        """Set by ``LinkClosed(relink=True)``: the sender says REFUSED not ready and stops."""
        self._tail_done: gevent.event.Event | None = None
        """Set when the TAIL the reader handed over was handled (or the link closed)."""

    def on_start(self) -> None:
        waiting = self.ha.unaccepted
        if waiting.get(self.host, 0) >= UNACCEPTED_PER_HOST:
            _log_too_many(self.host)
            self.actor_ref.tell(LinkClosed(f"{UNACCEPTED_PER_HOST} links from the host waiting"))
            return
        waiting[self.host] = waiting.get(self.host, 0) + 1
        self._unaccepted = True
        if self._nonce is not None and not self._send(P.encode_challenge(self._nonce)):
            return
        gevent.spawn(self._read_loop)
        self.send_every(max(0.05, min(1.0, self.ha.housekeeping_s / 4)), LinkCheck())

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, *_exc: Any) -> None:
        self._shutdown()

    def _accepted(self) -> None:
        """No longer counted as waiting for its ACCEPT."""
        if self._unaccepted:
            self._unaccepted = False
            waiting = self.ha.unaccepted
            left = waiting.get(self.host, 1) - 1
            if left > 0:
                waiting[self.host] = left
            else:
                waiting.pop(self.host, None)

    def _shutdown(self) -> None:
        self._accepted()
        if self._closed:
            return
        self._closed = True
        if self._tail_done is not None:
            self._tail_done.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        if self.node is not None:
            self.ha.tell(self.ha.service, SlaveLeft(self.node, self.actor_urn))

    # -- messages ------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LinkReport):
            if self.node is not None and message.offset > self._sent_end:
                text = f"reported {message.offset}, past the {self._sent_end} it was sent"
                logger.warning("HA link {} (slave {}): {}", self.peer, self.node, text)
                self.actor_ref.tell(LinkClosed(text))
            elif self.node is not None:
                ack = SlaveAck(self.node, self.actor_urn, message.offset, self.peer)
                self.ha.tell(self.ha.service, ack)
        elif isinstance(message, LinkHello):
            if self._proven:
                self._hello(message.hello)
            else:
                self._pending = message.hello
        elif isinstance(message, LinkProof):
            self._proof(message.mac)
        elif isinstance(message, LinkTail):
            try:
                self._tail(message.offset, message.data)
            finally:
                if message.done is not None:
                    message.done.set()
        elif isinstance(message, LinkClosed):
            if message.relink and self.node is not None and self._relink is None:
                self._relink = message.reason  # (the sender ends the stream, then closes)
                self.ha.state.wake()
                self.send_after(RELINK_GRACE_S, LinkClosed(message.reason))
                return None
            logger.info("HA link {} (slave {}) closed: {}", self.peer, self.node, message.reason)
            self.stop()
        elif isinstance(message, LinkCheck):
            now = time.monotonic()
            waiting = self.node is None and self._fetch is None
            if waiting and now - self._opened > HELLO_TIMEOUT_S:
                self.actor_ref.tell(LinkClosed("no HELLO"))
            elif now - self._last_read > self.ha.housekeeping_s:
                self.actor_ref.tell(LinkClosed(f"silent for {self.ha.housekeeping_s:g}s"))
        else:
            return super().on_receive(message)
        return None

    def _refuse(self, reason: P.RefuseReason, text: str) -> None:
        logger.warning("HA link {}: refusing: {}", self.peer, text)
        self._send(P.encode_refused(reason, text))
        self.actor_ref.tell(LinkClosed(f"refused: {text}"))

    def _proof(self, mac: bytes) -> None:
        credentials, nonce, hello = self.ha.credentials, self._nonce, self._pending
        if credentials is None or nonce is None or hello is None or self._proven:
            self.actor_ref.tell(LinkClosed("an unexpected PROOF"))
            return
        if not P.proof_matches(credentials.secret_key, nonce, mac):
            self._refuse(
                P.RefuseReason.UNAUTHENTICATED,
                f"node {hello.node}'s proof does not match this broker's inner account "
                "(innerClientAuthenticationCredentials)",
            )
            return
        self._proven = True
        self._pending = None
        self._hello(hello)

    def _hello(self, hello: P.Hello) -> None:
        if self.node is not None:
            self.actor_ref.tell(LinkClosed("a second HELLO"))
            return
        reply = ha_hello.answer(self.ha, hello, self.peer, self._fetched)
        if isinstance(reply, ha_hello.Refuse):
            self._refuse(reply.reason, reply.text)
        elif isinstance(reply, ha_hello.Fetch):
            # a power loss took this master's tail; the slave holds it: copy it back first
            self._fetch = (hello, reply.offset)
            self._send(P.encode_fetch(reply.offset))
        elif isinstance(reply, ha_hello.Truncate):
            self._send(P.encode_truncate(reply.offset))
            self.actor_ref.tell(LinkClosed("told to truncate"))
        elif isinstance(reply, ha_hello.Start):
            # an ACCEPT past the empty slave's end: it mirrors the epochs, starts its log
            # there (a restart) and links again; not a member meanwhile
            epochs = tuple(self.ha.epochs.entries)
            self._send(P.encode_accept(P.Accept(reply.offset, self.ha.state.epoch, epochs)))
            self.actor_ref.tell(LinkClosed(f"told to start its log at {reply.offset}"))
        else:
            self._accept(hello, reply.offset)

    def _accept(self, hello: P.Hello, point: int) -> None:
        self.node = hello.node
        self._accepted()
        self._sent_end = point
        epochs = tuple(self.ha.epochs.entries)
        if not self._send(P.encode_accept(P.Accept(point, self.ha.state.epoch, epochs))):
            return
        mirrored = epochs[-1].epoch if epochs else 0
        joined = SlaveJoined(hello.node, self.actor_urn, point, self.peer, mirrored)
        self.ha.tell(self.ha.service, joined)
        gevent.spawn(self._send_loop, point, hello.version >= P.CONFIRMING)

    def _tail(self, offset: int, data: bytes) -> None:
        """Append part of the slave's log a FETCH asked for; at its end, answer the HELLO."""
        fetch = self._fetch
        if fetch is None or self.node is not None:
            self.actor_ref.tell(LinkClosed("a TAIL without a FETCH"))
            return
        hello, at = fetch
        if not data:
            self._fetch = None
            self._fetched = True
            logger.info("HA link {}: reconciled from slave {} up to {}", self.peer, hello.node, at)
            self._hello(hello)
            return
        if offset != at or offset + len(data) > hello.max_offset:
            self.actor_ref.tell(LinkClosed(f"a TAIL at {offset}, expected {at}"))
            return
        if not self.ha.state.reconciling:
            self.actor_ref.tell(LinkClosed("the master stopped reconciling during the FETCH"))
            return
        writer = self.ha.store.directory.require(self.ha.store.names.writer)
        reply = new_future()
        writer.tell(AppendRaw(offset, data, reply, reconcile=True))
        try:
            result = reply.get(timeout=APPEND_TIMEOUT_S)
        except pykka.Timeout:
            self.actor_ref.tell(LinkClosed(f"the append of the TAIL at {offset} timed out"))
            return
        if not result.ok:
            logger.error(
                "HA link {}: slave {}'s log at {} cannot be appended: {}",
                self.peer,
                hello.node,
                offset,
                result.reason,
            )
            self.actor_ref.tell(LinkClosed(f"TAIL at {offset} refused: {result.reason}"))
            return
        self._fetch = (hello, result.write_offset)

    def _send(self, frame: bytes) -> bool:
        try:
            self.sock.sendall(frame)
            return True
        except OSError as exc:
            self.actor_ref.tell(LinkClosed(f"write failed: {exc}"))
            return False

    # -- greenlets (they only tell the actor) ------------------------------------------------------

    def _read_loop(self) -> None:
        decoder = P.SlaveStreamDecoder(proof=self._nonce is not None)
        ref = self.actor_ref
        reason = "slave closed the connection"
        receive = receiver(self.sock, 65536)
        try:
            while True:
                data = receive()
                if not data:
                    break
                self._last_read = time.monotonic()
                for msg in decoder.feed(data):
                    if isinstance(msg, P.Hello):
                        ref.tell(LinkHello(msg))
                    elif isinstance(msg, P.Proof):
                        ref.tell(LinkProof(msg.mac))
                    elif isinstance(msg, P.Tail):
                        # read no further until it is appended: a slave sends its whole tail
                        # at once, which the link would otherwise hold in memory
                        done = self._tail_done = gevent.event.Event()
                        ref.tell(LinkTail(msg.offset, msg.data, done))
                        done.wait(APPEND_TIMEOUT_S + HELLO_TIMEOUT_S)
                        if self._closed:
                            return
                        self._last_read = time.monotonic()
                    else:
                        ref.tell(LinkReport(msg.max_offset))
        except ProtocolError as exc:
            reason = f"protocol error: {exc.reason}"
        except OSError as exc:
            reason = f"read failed: {exc}"
        except pykka.ActorDeadError:
            return
        except Exception as exc:  # the link must always end through the actor
            logger.exception("HA link {}: reader failed", self.peer)
            reason = f"reader failed: {exc!r}"
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(LinkClosed(reason))

    def _send_loop(self, pos: int, confirms: bool) -> None:
        """Stream the log from ``pos``: whole records, a heartbeat frame when idle; to a slave
        that takes them (``confirms``), a CONFIRM whenever this master's consumers may read
        further (``StoreContext.dispatched``), first of all right after the ACCEPT."""
        store = self.ha.store
        log = store.require_open().log
        state = self.ha.state
        batch = self.ha.batch_size
        idle_s = min(1.0, self.ha.heartbeat_s)
        last = 0.0
        shown = -1
        stalled: float | None = None
        """Since when reads at ``pos`` found no whole record though the log is written past it."""
        reason = "stopped"
        try:
            while not self._closed:
                if self._relink is not None:
                    text = f"{self._relink}: link again"
                    self.sock.sendall(P.encode_refused(P.RefuseReason.NOT_READY, text))
                    reason = self._relink
                    break
                if pos < log.min_offset:
                    reason = f"offset {pos} was deleted before the slave got it"
                    break
                grew = state.growth()  # (before the read: an append after it wakes the wait)
                moved = store.dispatch_moved() if confirms else None  # (the same)
                head = b""
                if confirms and store.dispatched > shown:
                    shown = store.dispatched
                    head = P.encode_confirm(shown)
                limit = log.write_offset
                data, after = read_raw(log, pos, batch, limit)
                if data:
                    self._sent_end = after  # (before: a quick slave's report may overtake it)
                    self.sock.sendall(head + P.data_header(pos, len(data)) + data)
                    pos = after
                    last = time.monotonic()
                    stalled = None
                    continue
                if pos < limit:  # written, yet no record starts here: damage, if it lasts
                    now = time.monotonic()
                    stalled = now if stalled is None else stalled
                    if now - stalled >= STALL_S:
                        raise RawDamaged(
                            pos, f"no record starts there, the log is written to {limit}"
                        )
                else:
                    stalled = None
                if head or time.monotonic() - last >= idle_s:
                    # (a CONFIRM alone is sent at once; it may yield: appends go on)
                    self.sock.sendall(head or P.data_header(pos, 0))
                    last = time.monotonic()
                if moved is None:
                    grew.wait(idle_s)
                else:
                    gevent.wait([grew, moved], timeout=idle_s, count=1)
        except RawDamaged as exc:  # the operator must repair the log there or rebuild the slave
            self._log_damaged(exc)
            reason = str(exc)
        except OSError as exc:
            reason = f"send failed: {exc}"
        except Exception as exc:  # e.g. a segment deleted under the reader
            logger.exception("HA link {}: sender failed", self.peer)
            reason = f"sender failed: {exc!r}"
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(LinkClosed(reason))

    def _log_damaged(self, exc: RawDamaged) -> None:
        """One ERROR (no traceback) a minute per slave host and node: the slave relinks and
        meets the same record again and again."""
        if not ha_hello.once_a_minute("send-damaged", f"{self.host}/{self.node}"):
            return
        logger.error(
            "HA link {} (slave {}): replication stops at offset {}: {}. Repair the master's "
            "commit log there or rebuild the slave (logged once a minute per slave)",
            self.peer,
            self.node,
            exc.offset,
            exc,
        )


def _log_too_many(host: str) -> None:
    if not ha_hello.once_a_minute("unaccepted", host):
        return
    logger.warning(
        "HA port: {} already has {} links waiting for their ACCEPT; closing more of them "
        "(logged once a minute per host)",
        host,
        UNACCEPTED_PER_HOST,
    )


def connection_factory(ha: HAContext) -> Any:
    """A session factory for the HA port's Acceptor: one HAConnection per slave."""

    def start(sock: socket.socket, address: tuple[str, int]) -> pykka.ActorRef[Any]:
        return HAConnection.start(ha, sock, address)

    return start
