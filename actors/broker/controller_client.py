"""ControllerClient: a broker's link to the controller (controller mode only).

Messages accepted:
- ``HeartbeatNow`` (its own 1 s timer; the HAService when the in-sync set changes; the
  controller's CONTROLLER_NOTIFY): send a heartbeat unless one is in flight (then one more
  follows it).
- ``HeartbeatDone(sent_at, reply, isr)`` (from the heartbeat greenlet): apply the controller's
  word, unless a reply to a heartbeat sent later was applied already (an older reply never
  overrides a newer one's in-sync set or lease):
  MASTER, this node runs a slave subtree -> promotion: the node is rebuilt as a master on the
  same store (``BrokerHandle.replace``); MASTER with a newer epoch -> ``NewEpoch`` to the
  HAService (the epoch entry is written before the term's first write), then heartbeat again;
  MASTER with a lease -> ``HAState.lease_until = sent_at + lease`` (the lease runs from when the
  heartbeat was *sent*, on this node's monotonic clock) and the in-sync set the controller now
  knows; the first lease of a term re-registers with the name servers (brokerId 0).
  SLAVE, this node runs a master subtree -> fenced at once (no more writes), then rebuilt as a
  slave registering with the id the controller gave; SLAVE otherwise -> where the master is
  (HA address to the HAClient, broker address for SlaveSynchronize).
  WAIT or no answer -> nothing (a master's lease simply runs out).
- ``_RebuildCheck`` (its own timer after asking for a rebuild): a rebuild that failed (the
  handle refused or raised, or the node is still here long after) is logged as an ERROR; the
  node heartbeats again and retries the rebuild when the controller still asks for it, no
  sooner than a backoff (1 s, doubling to 30 s). A failed rebuild used to leave it silent.

Each heartbeat carries this actor's incarnation (random) and a sequence number: the controller
applies no heartbeat older than one it applied (two connections may deliver them out of order).

State owned: the connection to the controller, whether a heartbeat is in flight, the
``HAState`` fields role/epoch/lease/fenced/isr_acknowledged/isr_reported/master_addr.
Durability point: none (the epoch file is the HAService's).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.broker.ha_messages import HeartbeatDone, HeartbeatNow, MasterAddress, NewEpoch
from actors.broker.ha_service import HAContext
from config import BrokerConfig, BrokerRole, with_overrides
from runtime import tls
from runtime.acl.signature import signer_for
from runtime.actor import GeventActor, new_future, offload
from runtime.ha import boot
from runtime.ha.control import (
    CONTROLLER_HEARTBEAT,
    CONTROLLER_NOTIFY,
    HEARTBEAT_S,
    ControllerHeartbeat,
    ControllerReply,
    ControlRole,
    encode,
)
from runtime.ha.state import Role
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle, connect

CALL_TIMEOUT_S = 1.0
REBUILD_RETRY_S = 1.0
"""After a failed rebuild the next one waits this long, doubling up to ``REBUILD_RETRY_MAX_S``."""
REBUILD_RETRY_MAX_S = 30.0
REBUILD_CHECK_S = 10.0
"""A rebuild asked for: how often this (old) node checks that it is under way."""
REBUILD_GIVE_UP_S = 120.0
"""A rebuild still not done this long after it was asked for failed (the broker's subtree may
take ``BROKER_STOP_S``, 90 s, to stop)."""
_REPLY = msgspec.json.Decoder(ControllerReply)


class _RebuildCheck(msgspec.Struct, frozen=True, tag=True):
    """Internal: is the rebuild asked for under way?"""


class _Notified:
    """Processor for the controller connection: CONTROLLER_NOTIFY -> heartbeat now."""

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self.ref = ref

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        if request.code == CONTROLLER_NOTIFY:
            with contextlib.suppress(pykka.ActorDeadError):
                self.ref.tell(HeartbeatNow())
            return None
        if request.is_oneway:
            return None
        return RemotingCommand.response_to(request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)

    def on_close(self, session: SessionHandle) -> None:
        pass


class ControllerClient(GeventActor):
    """See the module docstring. ``handle`` rebuilds this broker node (actors.broker.node)."""

    def __init__(self, cfg: BrokerConfig, ha: HAContext, handle: Any, register: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.ha = ha
        self.state = ha.state
        self.handle = handle
        self.register = register
        self.address = cfg.controller_address()
        self._session: SessionHandle | None = None
        self._in_flight = False
        self._again = False
        self._resigned = 0
        """The handover token this master gave its lease up for (0: none)."""
        self._leased_epoch = 0
        self._changing = False
        """A rebuild of the node was asked for: no heartbeat until it is done (or failed)."""
        self._rebuild_asked_at = 0.0
        self._rebuild_after = 0.0  # no rebuild before (monotonic): a failed one backs off
        self._rebuild_backoff = REBUILD_RETRY_S
        self._incarnation = secrets.randbelow(2**62) + 1
        self._seq = 0  # heartbeats sent by this incarnation
        self._applied_at = float("-inf")  # when the heartbeat of the last reply applied was sent

    def on_start(self) -> None:
        self.state.epoch = self.ha.epochs.last_epoch
        self.send_every(HEARTBEAT_S, HeartbeatNow())
        self.actor_ref.tell(HeartbeatNow())

    def on_stop(self) -> None:
        if self._session is not None:
            self._session.close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, HeartbeatNow):
            if self._in_flight:
                self._again = True
            elif self.address and not self._changing:
                self._in_flight = True
                gevent.spawn(self._beat, self._heartbeat())
        elif isinstance(message, HeartbeatDone):
            self._in_flight = False
            if message.reply is not None and not self._changing:
                if message.sent_at > self._applied_at:
                    self._applied_at = message.sent_at
                    self._apply(message.sent_at, message.reply, message.isr)
                else:
                    logger.debug("{}: a reply to an older heartbeat ignored", self.handle.name)
            if self._again:
                self._again = False
                self.actor_ref.tell(HeartbeatNow())
        elif isinstance(message, _RebuildCheck):
            self._check_rebuild()
        else:
            return super().on_receive(message)
        return None

    # -- sending (a greenlet per heartbeat) ------------------------------------------------------

    def _heartbeat(self) -> ControllerHeartbeat:
        state, epochs = self.state, self.ha.epochs
        last = epochs.last
        master = state.role is Role.MASTER
        opened = self.ha.store.opened
        if state.power_cut is None and opened is not None:
            state.power_cut = offload(  # (it fsyncs)
                boot.power_cut_suspected,
                opened.settings.root,
                opened.report.unclean,
                None,
                opened.settings.sync_flush,
            )
            if state.power_cut:
                logger.warning(
                    "{}: the store stopped uncleanly before the machine restarted: it may lack "
                    "what it acknowledged; the controller elects it only with every in-sync "
                    "member back",
                    self.handle.name,
                )
        if master:  # the controller may take these before its reply comes (or if it never does)
            state.isr_reported |= state.in_sync
        self._seq += 1
        return ControllerHeartbeat(
            cluster=self.cfg.broker_cluster_name,
            group=self.cfg.broker_name,
            node=state.node_id,
            addr=self.cfg.broker_addr(),
            ha_addr=self.cfg.ha_addr(),
            claim_master=master and (last is None or last.node == state.node_id),
            epoch=epochs.last_epoch,
            max_offset=opened.log.write_offset if opened is not None else 0,
            sync=state.sync,
            in_sync=sorted(state.in_sync) if master else [],
            writable=state.accepting_writes(),
            resigned=self._resigned,
            confirmed=self._confirmed(opened) if master else 0,
            power_cut=bool(state.power_cut),
            incarnation=self._incarnation,
            seq=self._seq,
        )

    def _confirmed(self, opened: Any) -> int:
        """What this master acknowledged (PUT_OK) or showed consumers: ``HAState.visible``,
        which the slaves' acks raise before this master's own fsync; under SYNC_FLUSH neither
        a PUT_OK nor consumers go past the fsync'd end, so no further than that (a power loss
        then takes nothing acknowledged, and the controller must not think it did)."""
        visible = self.state.visible
        if opened is None or not opened.settings.sync_flush:
            return visible
        return min(visible, opened.log.segments.flushed_offset)

    def _beat(self, hb: ControllerHeartbeat) -> None:
        sent_at = time.monotonic()
        reply: ControllerReply | None = None
        try:
            session = self._session
            if session is None or not session.alive:
                session = self._session = connect(
                    self.address,  # type: ignore[arg-type]
                    role=f"{self.cfg.broker_name}-{self.state.node_id}->controller",
                    processor=_Notified(self.actor_ref),
                    timeout=CALL_TIMEOUT_S,
                    tls=tls.outbound(),
                    signer=signer_for(self.cfg.inner_credentials()),
                )
            request = RemotingCommand.request(CONTROLLER_HEARTBEAT, body=encode(hb))
            response = session.call(request, timeout=CALL_TIMEOUT_S)
            if response.code == ResponseCode.SUCCESS:
                reply = _REPLY.decode(response.body)
            else:
                logger.warning(
                    "{}: controller {} answered {} {}",
                    self.handle.name,
                    self.address,
                    response.code,
                    response.remark,
                )
        except (
            OSError,
            ConnectionError,
            pykka.Timeout,
            gevent.Timeout,
            msgspec.DecodeError,
        ) as exc:
            logger.debug("{}: heartbeat to {} failed: {}", self.handle.name, self.address, exc)
        except Exception:
            logger.exception("{}: heartbeat to {} failed", self.handle.name, self.address)
        finally:  # a heartbeat must always report back (a gevent.Timeout, a GreenletExit
            # too), or _in_flight stays set and no heartbeat follows: the node goes silent
            with contextlib.suppress(pykka.ActorDeadError):
                self.actor_ref.tell(HeartbeatDone(sent_at, reply, frozenset(hb.in_sync)))

    # -- applying the controller's word -----------------------------------------------------------

    def _apply(self, sent_at: float, reply: ControllerReply, _isr: frozenset[int]) -> None:
        state = self.state
        if reply.role is ControlRole.MASTER:
            if reply.resign and state.role is Role.MASTER:
                if self._resigned != reply.resign:
                    logger.info("{}: handing the group over: lease given up", self.handle.name)
                    state.lease_until = 0.0  # nothing more is appended or acknowledged
                    state.notify()
                    self._resigned = reply.resign  # said in every heartbeat from now on
                    self._again = True  # the controller hears it at once
                return
            if state.role is Role.SLAVE:
                self._become(
                    BrokerRole.SYNC_MASTER if reply.sync else BrokerRole.ASYNC_MASTER, 0, reply
                )
                return
            if reply.epoch > self.ha.epochs.last_epoch:
                self.ha.clear_power_cut()  # elected for a new term: its log is the group's
                done = new_future()
                self.ha.tell(self.ha.service, NewEpoch(reply.epoch, done))
                me = self.actor_ref
                done.add_done_callback(lambda f: _epoch_written(me, f))
                return
            if reply.lease_ms > 0 and reply.epoch == self.ha.epochs.last_epoch:
                self._resigned = 0
                state.epoch = reply.epoch
                state.lease_until = sent_at + reply.lease_ms / 1000
                state.isr_acknowledged = frozenset(reply.in_sync)
                state.isr_reported = frozenset()  # (one heartbeat in flight: this was it)
                state.fenced = False
                state.leased = True
                state.notify()
                if self._leased_epoch != reply.epoch:
                    self._leased_epoch = reply.epoch
                    logger.info("{}: master of epoch {}, lease held", self.handle.name, reply.epoch)
                    self.register()
            return
        if reply.role is ControlRole.SLAVE:
            if state.role is Role.MASTER:
                state.fenced = True
                state.lease_until = 0.0
                state.notify()
                self._become(BrokerRole.SLAVE, reply.register_id, reply)
                return
            state.epoch = reply.epoch
            if reply.master_addr and state.master_addr != reply.master_addr:
                state.master_addr = reply.master_addr
                state.notify()
            self.ha.tell(
                self.ha.client,
                MasterAddress(reply.master_ha_addr or None, "controller", reply.epoch),
            )

    def _become(self, role: BrokerRole, broker_id: int, reply: ControllerReply) -> None:
        if time.monotonic() < self._rebuild_after:
            return  # a rebuild failed a moment ago: the controller's next word retries it
        logger.warning(
            "{}: the controller says {} (epoch {}): rebuilding this node as {} (brokerId {})",
            self.handle.name,
            reply.role.value,
            reply.epoch,
            role.value,
            broker_id,
        )
        why = "its supervisor is not running"
        try:
            cfg = with_overrides(self.cfg, broker_role=role, broker_id=broker_id)
            asked = self.handle.replace(cfg)
        except Exception as exc:  # (a handler: it must not fail this actor, nor silence it)
            asked, why = False, f"{exc.__class__.__name__}: {exc}"
        if not asked:
            self._rebuild_failed(why)
            return
        self._changing = True
        self._rebuild_asked_at = time.monotonic()
        self.send_after(REBUILD_CHECK_S, _RebuildCheck())

    def _check_rebuild(self) -> None:
        """Still here after asking for a rebuild: wait while the node's supervisor is on it
        (``BrokerHandle.rebuilding``; it stops this subtree first), else it failed."""
        if not self._changing:
            return
        waited = time.monotonic() - self._rebuild_asked_at
        if self.handle.rebuilding and waited < REBUILD_GIVE_UP_S:
            self.send_after(REBUILD_CHECK_S, _RebuildCheck())
            return
        self._rebuild_failed(f"not done after {waited:.0f} s")

    def _rebuild_failed(self, why: str) -> None:
        """Heartbeat on (a master told SLAVE stays fenced), and retry the rebuild when the
        controller still asks for it, after a backoff."""
        delay = self._rebuild_backoff
        logger.error(
            "{}: rebuilding the node failed ({}); heartbeating on, retrying in {:g} s at the "
            "controller's next word",
            self.handle.name,
            why,
            delay,
        )
        self._changing = False
        self._rebuild_after = time.monotonic() + delay
        self._rebuild_backoff = min(delay * 2, REBUILD_RETRY_MAX_S)
        self.actor_ref.tell(HeartbeatNow())


def _epoch_written(ref: pykka.ActorRef[Any], done: pykka.Future[Any]) -> None:
    """The new term's epoch entry is on disk: heartbeat at once for its lease. Not written
    (the HAService answered False, or failed): the 1 s timer's heartbeat asks again, no
    sooner (a disk that refuses it would otherwise be asked at the controller's round trip)."""
    try:
        written = done.get(timeout=0) is True
    except Exception:
        written = False
    if written:
        _tell(ref, HeartbeatNow())


def _tell(ref: pykka.ActorRef[Any], message: Any) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
