"""HAClient: a slave's link to its master's HA port.

Messages accepted:
- ``MasterAddress(address, source, epoch)`` (told by the node: ``config`` haMasterAddress,
  ``namesrv`` from the registration reply, ``controller`` from the ControllerClient). In
  controller mode only the controller's word counts; otherwise config beats namesrv. When the
  address changes the current link is dropped and a new one made. A restarted client starts
  from the name server's address its previous incarnation followed (``HAState``).
- ``ClientDone(generation, reason, retry_after)`` (from its link greenlet): the link ended.
- ``ClientTick`` (timer, 0.2 s): reconnect when due.

The link (one greenlet per connection; edge code, every wait has a timeout): connect, say HELLO
(node id, segment size, epoch entries, the log's end), then follow the master: ACCEPT ->
mirror the master's epoch entries, mark the master reachable (an ACCEPT past this slave's
empty log, at a segment start: the master's log no longer starts at 0; mirror the entries and
have the node start the log there, a restart, then a new HELLO); DATA -> ``AppendRaw`` to the
writer, which checks, writes, dispatches and flushes per the slave's mode, then REPORT the new
end (also every haSendHeartbeatInterval); CONFIRM -> the Dispatcher may show consumers the log
up to there (``Shown``: its source "master", never past the log's end; told again with every
heartbeat), so this slave serves no record its master has not shown its own consumers;
TRUNCATE -> ``truncate(offset)`` (the node records the cut and restarts this broker on the
same store: recovery trims everything past it, then a new HELLO); FETCH (before ACCEPT: a
classic master back from a power loss lacks what this slave holds of its log) -> send the log
from there to this slave's end as TAIL frames (whole records, ``read_raw``), then the empty
TAIL, and wait for the master's answer; REFUSED -> retry later (not ready after an ACCEPT:
the master began a new term, whose epoch entries this slave must mirror: at once);
CHALLENGE (a master with an inner account) -> PROOF from this broker's inner account
(``HAContext.credentials``), or, without one, end the link with an ERROR naming the key (at
most one a minute; also when the master refuses the proof).

In controller mode the link waits for the slave's first metadata sync
(``HAState.metadata_synced``, set by SlaveSynchronize): an in-sync slave is electable.

State owned: the known master addresses by source, the link's generation (a stale greenlet's
report is ignored), ``HAState.master_link_up`` / ``master_ha_addr``. Durability point: the
writer's (the REPORT goes out only after the append's flush condition held).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.socket
import pykka
from loguru import logger

from actors.broker.ha_messages import ClientDone, ClientTick, MasterAddress
from actors.broker.ha_service import HAContext
from actors.broker.messages import AppendRaw, Confirm
from runtime.actor import GeventActor, new_future, offload
from runtime.errors import ActorFailure, AddressError, ProtocolError
from runtime.ha import protocol as P
from runtime.ha.state import ByteRate
from runtime.hostport import parse_address
from runtime.receive import receiver
from runtime.session import READ_SIZE
from runtime.store.raw import read_raw

CONNECT_TIMEOUT_S = 3.0
APPEND_TIMEOUT_S = 30.0
RETRY_S = 1.0
TICK_S = 0.2


class HAClient(GeventActor):
    """See the module docstring."""

    def __init__(
        self, ha: HAContext, truncate: Callable[[int], None], configured: str | None = None
    ) -> None:
        super().__init__()
        self.ha = ha
        self.state = ha.state
        self.truncate = truncate
        self.sources: dict[str, str | None] = {"config": configured or None}
        self.address: str | None = None
        self._generation = 0
        self._sock: socket.socket | None = None
        self._linked = False
        self._retry_at = 0.0
        self._waiting_logged = False
        self._credentials_logged_at = float("-inf")

    def on_start(self) -> None:
        if not self.state.controller_mode and not self.sources["config"]:
            # Restarted after a failure: follow the address the name server gave the previous
            # incarnation (HAState outlives it); the registrar tells it only when it changes.
            self.sources["namesrv"] = self.state.master_ha_addr
        self.state.master_link_up = False
        self.send_every(TICK_S, ClientTick())
        self._choose()

    def on_stop(self) -> None:
        self._drop("stopping")

    def on_failure(self, *_exc: Any) -> None:
        self._drop("failed")

    # -- messages ------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, MasterAddress):
            self.sources[message.source] = message.address
            self._choose()
        elif isinstance(message, ClientDone):
            if message.generation == self._generation:
                self._sock = None
                self._linked = False
                self.state.master_link_up = False
                self.state.notify()
                self._retry_at = time.monotonic() + message.retry_after
                logger.info("HA client: link to {} ended: {}", self.address, message.reason)
                if message.retry_after <= 0 and self.address and self._may_link():
                    self._connect()  # (told to link again at once: not at the next tick)
        elif isinstance(message, ClientTick):
            due = time.monotonic() >= self._retry_at
            if not self._linked and self.address and due and self._may_link():
                self._connect()
        else:
            return super().on_receive(message)
        return None

    def _choose(self) -> None:
        if self.state.controller_mode:
            address = self.sources.get("controller")
        else:
            address = self.sources.get("config") or self.sources.get("namesrv")
        if address == self.address:
            return
        logger.info("HA client: master HA address {} -> {}", self.address, address)
        self._drop(f"master moved to {address}")
        self.address = address
        self.state.master_ha_addr = address
        self._retry_at = 0.0
        if address and self._may_link():
            self._connect()

    def _may_link(self) -> bool:
        """In controller mode, only once the slave holds its master's metadata (a first
        SlaveSynchronize round succeeded): an in-sync slave is electable, and a promoted slave
        without the topics and consumer offsets would answer TOPIC_NOT_EXIST and lose the
        groups' progress."""
        if not self.state.controller_mode or self.state.metadata_synced:
            self._waiting_logged = False
            return True
        if not self._waiting_logged:
            self._waiting_logged = True
            logger.info("HA client: linking once the master's metadata is synced")
        return False

    def _drop(self, reason: str) -> None:
        self._generation += 1
        self._linked = False
        self.state.master_link_up = False
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            logger.info("HA client: dropped the link to {}: {}", self.address, reason)

    def _connect(self) -> None:
        self._generation += 1
        self._linked = True
        gevent.spawn(self._link, self._generation, self.address)

    # -- the link (a greenlet; tells the actor how it ended) ------------------------------------

    def _link(self, generation: int, address: str) -> None:
        reason, retry = "closed", RETRY_S
        try:
            reason, retry = self._follow(generation, address)
        except (OSError, ProtocolError, AddressError, pykka.Timeout) as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
        except (pykka.ActorDeadError, ActorFailure) as exc:
            reason = f"store not running: {exc}"
        except Exception as exc:  # the link must always report how it ended
            logger.exception("HA client: link to {} failed", address)
            reason = f"{exc.__class__.__name__}: {exc}"
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(ClientDone(generation, reason, retry))

    def _follow(self, generation: int, address: str) -> tuple[str, float]:
        host, port = parse_address(address)
        sock = gevent.socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if generation != self._generation:
            sock.close()
            return "superseded", 0.0
        self._sock = sock
        ha = self.ha
        log = ha.store.require_open().log
        state = self.state  # (a new link: haStatus shows nothing of an earlier one)
        state.last_read_ms = state.last_report_ms = 0
        state.received = ByteRate()
        hello = P.Hello(
            node=self.state.node_id,
            segment_size=log.segment_size,
            epochs=tuple(ha.epochs.entries),
            max_offset=log.write_offset,
            group=ha.store.settings.broker_name,
        )
        sock.sendall(P.encode_hello(hello))
        decoder = P.MasterStreamDecoder()
        accepted = False
        shown = Shown(ha)
        sync_flush = ha.store.settings.sync_flush
        last_report = time.monotonic()
        sock.settimeout(ha.housekeeping_s)
        receive = receiver(sock, READ_SIZE)
        while generation == self._generation:
            try:
                data = receive()
            except TimeoutError:
                return f"master silent for {ha.housekeeping_s:g}s", RETRY_S
            if not data:
                return "master closed the connection", RETRY_S
            self.state.last_read_ms = int(time.time() * 1000)
            for frame in decoder.feed(data):
                if isinstance(frame, P.Data):
                    if not accepted:
                        raise ProtocolError("data before ACCEPT")
                    if frame.data:
                        self._append(frame)
                        self._report(sock, held(log, sync_flush))
                        last_report = time.monotonic()
                    shown.update(log.write_offset, again=not frame.data)
                elif isinstance(frame, P.Confirm):
                    if not accepted:
                        raise ProtocolError("a CONFIRM before ACCEPT")
                    shown.confirmed(frame.offset, log.write_offset)
                elif isinstance(frame, P.Accept):
                    if not accepted and _starts_empty_log(log, frame.offset):
                        return self._start_at(frame, address)
                    if accepted or frame.offset != log.write_offset:
                        raise ProtocolError(f"unexpected ACCEPT at {frame.offset}")
                    offload(ha.epochs.replace, frame.epochs)
                    self.state.epoch = frame.epoch
                    ha.clear_power_cut()  # (a master accepted its log: it follows)
                    self.state.master_link_up = True
                    self.state.leased = True  # (its log is the group's: it may serve reads)
                    self.state.notify()
                    accepted = True
                    # what it holds, at once: the master counts no ack of a new link before
                    # its first REPORT (the HELLO's end may not be fsync'd yet)
                    self._report(sock, held(log, sync_flush))
                    last_report = time.monotonic()
                    logger.info(
                        "HA client: replicating from {} at offset {} (epoch {})",
                        address,
                        frame.offset,
                        frame.epoch,
                    )
                elif isinstance(frame, P.Fetch):
                    if accepted:
                        raise ProtocolError("a FETCH after ACCEPT")
                    self._send_tail(sock, log, frame.offset, address)
                elif isinstance(frame, P.Challenge):
                    if accepted:
                        raise ProtocolError("a CHALLENGE after ACCEPT")
                    credentials = ha.credentials
                    if credentials is None:
                        self._config_problem(
                            address,
                            "asks slaves to prove its inner account: set the same "
                            "innerClientAuthenticationCredentials on this broker",
                        )
                        return "the master asks for the inner account", RETRY_S
                    sock.sendall(P.proof_of(credentials.secret_key, frame.nonce))
                elif isinstance(frame, P.Truncate):
                    logger.warning("HA client: {} says truncate at {}", address, frame.offset)
                    self.truncate(frame.offset)
                    return f"truncating at {frame.offset}", 60.0
                else:
                    if frame.reason is P.RefuseReason.UNAUTHENTICATED:
                        self._config_problem(
                            address,
                            "refused this broker's proof: its innerClientAuthenticationCredentials "
                            "differ from the master's",
                        )
                    if frame.reason is P.RefuseReason.OTHER_GROUP:
                        self._config_problem(address, f"is not this group's master: {frame.text}")
                    not_ready = frame.reason is P.RefuseReason.NOT_READY
                    why = f"refused: {frame.reason.name}: {frame.text}"
                    if not_ready and accepted:  # a new term to mirror: link again at once
                        return why, 0.0
                    return why, TICK_S if not_ready else RETRY_S
            if accepted and time.monotonic() - last_report >= ha.heartbeat_s:
                self._report(sock, held(log, sync_flush))
                last_report = time.monotonic()
        return "superseded", 0.0

    def _start_at(self, frame: P.Accept, address: str) -> tuple[str, float]:
        """An ACCEPT past this empty log's end, at a segment start: the master's log no longer
        starts at 0. Mirror its epochs (the next HELLO must show them: its log then starts
        past 0), then have the node start the log there (``truncate``: the node records it
        and restarts on the same store) and link again."""
        offload(self.ha.epochs.replace, frame.epochs)
        logger.warning(
            "HA client: {}'s log starts at {}: this empty slave's log starts there (a restart)",
            address,
            frame.offset,
        )
        self.truncate(frame.offset)
        return f"starting the log at {frame.offset}", 60.0

    def _send_tail(self, sock: Any, log: Any, start: int, address: str) -> None:
        """Answer a FETCH: this slave's log from ``start`` to its end, then the empty TAIL."""
        end = log.write_offset  # (nothing is appended before an ACCEPT)
        if not log.min_offset <= start <= end:
            raise ProtocolError(f"FETCH from {start}, outside this log [{log.min_offset}, {end}]")
        logger.warning(
            "HA client: {} lost its log past {} (a power loss?): sending it this slave's, up to {}",
            address,
            start,
            end,
        )
        pos = start
        while pos < end:
            data, after = read_raw(log, pos, self.ha.batch_size, end)
            if not data:
                raise ProtocolError(f"FETCH from {start}: no whole record at {pos} in this log")
            sock.sendall(P.tail_header(pos, len(data)) + data)
            pos = after
        sock.sendall(P.tail_header(pos, 0))

    def _config_problem(self, address: str, what: str) -> None:
        """An ERROR (at most one a minute): the link fails for the configuration (the inner
        account, the master address)."""
        now = time.monotonic()
        if now - self._credentials_logged_at < 60.0:
            return
        self._credentials_logged_at = now
        logger.error("HA client: the master at {} {}", address, what)

    def _report(self, sock: Any, end: int) -> None:
        """REPORT ``end`` (what this slave holds) to the master."""
        sock.sendall(P.encode_report(end))
        state = self.state
        state.last_report_ms = int(time.time() * 1000)
        state.received.note(end, time.monotonic())

    def _append(self, frame: P.Data) -> None:
        writer = self.ha.store.directory.require(self.ha.store.names.writer)
        reply = new_future()
        writer.tell(AppendRaw(frame.offset, frame.data, reply))
        result = reply.get(timeout=APPEND_TIMEOUT_S)
        if not result.ok:
            raise ProtocolError(f"append at {frame.offset} refused: {result.reason}")


class Shown:
    """What this slave shows its consumers (a Dispatcher source, "master"): no further than
    its master's CONFIRM (what the master's own consumers may read) nor its log's end."""

    __slots__ = ("_confirmed", "_ha", "_told")

    def __init__(self, ha: HAContext) -> None:
        self._ha = ha
        self._confirmed = 0
        self._told = -1

    def confirmed(self, offset: int, end: int) -> None:
        """The master's CONFIRM of ``offset``; the log ends at ``end``."""
        self._confirmed = max(self._confirmed, offset)
        self.update(end)

    def update(self, end: int, *, again: bool = False) -> None:
        """The log now ends at ``end``; ``again`` (a heartbeat): tell the Dispatcher even if
        nothing changed (a restarted Dispatcher starts from what it dispatched)."""
        offset = min(self._confirmed, end)
        if offset > self._told or again:
            self._told = offset
            self._ha.tell(self._ha.store.names.dispatcher, Confirm(offset, "master", False))


def held(log: Any, sync_flush: bool) -> int:
    """What this slave REPORTs it holds: its log's end, under SYNC_FLUSH no further than its
    fsync (an append whose fsync was still pending when a link ended, its flush timed out,
    was in the end a heartbeat REPORT of the next link gave: a SYNC_MASTER answered PUT_OK on
    it)."""
    end = log.write_offset
    return min(end, log.segments.flushed_offset) if sync_flush else end


def _starts_empty_log(log: Any, offset: int) -> bool:
    """Whether an ACCEPT at ``offset`` starts this log there: it holds no bytes and
    ``offset``, past its end, is a segment start."""
    end = log.write_offset
    return end == log.min_offset and offset > end and offset % log.segment_size == 0
