"""NamesrvRegistrar: registers this broker with every configured name server (RocketMQ's
BrokerOuterAPI.registerBrokerAll).

Messages:
- ``RegisterNow(topics=None)`` (tell): register at once (topics changed, or a master got its
  first lease); also its own timer every ``registerNameServerPeriod`` (30 s) and once at start.
  With ``topics`` (they were created or changed), a name server that took a full registration
  on its current connection gets only those topics (RocketMQ's registerIncrementBrokerData,
  marked ``actormqIncremental``: actormq's name server merges them), the others the whole
  table, marked ``actormqFull`` (actormq's name server then drops the topics it leaves out, the
  ones deleted here; RocketMQ's merges every registration). The body is JSON, or RocketMQ's
  compressed binary form (header ``compressed``) with ``compressedRegister`` or when the JSON
  would pass ``COMPRESS_ABOVE`` (that form carries no topic sys flag or order). In controller
  mode a master registers only while it holds the controller's lease (``registrable``), so a
  deposed or paused master never takes brokerId 0 back from its successor; and every
  registration carries the master epoch as its DataVersion's ``stateVersion``
  (``state_version``), so a name server ignores one that was already on its way when the
  master was deposed (RocketMQ 5's rule, ``actors.namesrv.route_table``).
- ``Recheck`` (its own timer, every ``RECHECK_S``, 1 s): a name server that does not hold this
  broker's whole table on a live connection (it restarted, with no routes; or it was down at
  the last round) is registered with again at once, not at the next 30 s round (RocketMQ's
  brokers wait for it: a restarted name server routed nothing for up to 30 s, chaos R27). A
  name server being registered with is not asked twice; after a failure or a refusal it is
  left alone 1 s, then 2, 4, up to 5 s (logged once until a registration succeeds again), then
  registered with in full (a refused incremental registration: it dropped this broker while the
  connection stayed open).
- ``Registered(namesrv, master_addr, ha_server_addr)`` (tell, from its own greenlets): a name
  server took the registration; ``on_registered()`` is called (the all-in-one process prints
  its ready line once every broker registered).
- ``master_addr()`` (proxy) -> the master address the name server reported (slaves), or None;
  ``on_master(master_addr, ha_server_addr)`` is called when it changes (a slave's HAClient
  learns where to replicate from).
State owned: one outbound connection per name server and which of them took a full
registration, the data version of the topic table.
Network round trips run in greenlets of their own, so the actor never waits on the network.
On stop it unregisters from every name server (best effort, short timeout).
Durability point: none.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection
from typing import Any

import gevent
import gevent.lock
import msgspec
import pykka
from loguru import logger

from config import BrokerConfig
from runtime import tls
from runtime.acl.signature import signer_for
from runtime.actor import GeventActor, offload
from runtime.remoting.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
    encode_body,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.register_body import body_crc32, encode_register_body
from runtime.session import SessionHandle, connect

REGISTER_TIMEOUT_S = 6.0
RECHECK_S = 1.0
RECHECK_MAX_S = 5.0
"""The longest a failing name server is left alone between rechecks (a long outage's end is
seen within this; the 30 s rounds go on meanwhile)."""

TopicTable = Callable[[Collection[str] | None], dict[str, TopicConfig]]
"""Returns the broker's current topic table (only the named topics that exist, when names are
given); called from the registrar's greenlets."""

INCREMENTAL = "actormqIncremental"
"""REGISTER_BROKER ext field: the body holds only the topics that changed."""

FULL = "actormqFull"
"""REGISTER_BROKER ext field: the body is the whole table (a topic left out was deleted here).
Without it actormq's name server merges, as RocketMQ's does with every registration."""


COMPRESS_ABOVE = 4 * 1024 * 1024
"""A registration whose JSON body would be larger than this is sent in RocketMQ's compressed
binary form even without ``compressedRegister``: a broker with very many topics (the retry
topic of every consumer group: ~200 bytes of JSON a topic, so ~20,000 topics) would otherwise
pass the name server's 16 MiB frame limit, have its registration dropped, and fall out of the
routes. A quarter of the limit leaves room for topics created between two registrations."""


def register_body(
    body: RegisterBrokerBody, compressed: bool, above: int = COMPRESS_ABOVE
) -> tuple[bytes, bool]:
    """The REGISTER_BROKER body and whether it is compressed: the binary form when
    ``compressed`` (``compressedRegister``) or when the JSON would pass ``above`` bytes, else
    the JSON. Call it from a greenlet: it deflates in the hub's thread pool."""
    if not compressed:
        data = encode_body(body)
        if len(data) <= above:
            return data, False
    return offload(encode_register_body, body), True


class RegisterNow(msgspec.Struct, frozen=True, tag=True):
    topics: tuple[str, ...] | None = None


class Recheck(msgspec.Struct, frozen=True, tag=True):
    pass


class Registered(msgspec.Struct, frozen=True, tag=True):
    namesrv: str
    master_addr: str | None
    ha_server_addr: str | None


class NamesrvRegistrar(GeventActor):
    """Keeps this broker registered with every name server."""

    def __init__(
        self,
        cfg: BrokerConfig,
        topic_table: TopicTable,
        on_master: Callable[[str | None, str | None], None] | None = None,
        registrable: Callable[[], bool] | None = None,
        keep_registration: Callable[[], bool] | None = None,
        sessions: dict[str, SessionHandle] | None = None,
        on_registered: Callable[[], None] | None = None,
        compress_above: int = COMPRESS_ABOVE,
        state_version: Callable[[], int] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.state_version = state_version
        """Controller mode: the master epoch this broker knows (its own term's as master, its
        master's as slave), sent as the DataVersion's ``stateVersion``, as RocketMQ 5's
        brokers do (ReplicasManager's ``nextVersion(newMasterEpoch)``): a name server ignores a
        registration for an id another live address holds with a higher one, so an old
        master's late registration never takes brokerId 0 back. None: 0 (classic mode)."""
        self.compress_above = compress_above
        """JSON bodies larger than this are sent compressed (``COMPRESS_ABOVE``; tests lower
        it)."""
        self.on_master = on_master
        self.on_registered = on_registered
        self.registrable = registrable
        self.keep_registration = keep_registration
        """True at stop time when this node is being rebuilt in another role: no unregister and
        the connections stay open, so the next registration moves the address (slave id ->
        master id 0) in one step, as RocketMQ's does, and routes never lose the group."""
        self.topic_table = topic_table
        self.namesrvs = [f"{h}:{p}" for h, p in cfg.namesrv_addresses()]
        self._sessions: dict[str, SessionHandle] = sessions if sessions is not None else {}
        """One connection per name server; a dict shared with the next incarnation when the
        node is rebuilt (the name server drops a broker whose connection closes)."""
        self._full_on: dict[str, SessionHandle] = {}
        """Name server -> the connection on which it took a full registration (it holds the
        whole table while that connection lives: it drops a broker whose connection closes)."""
        self._counter = 0
        self._pending: dict[str, int] = {}
        """Name server -> registrations being sent to it."""
        self._failing: set[str] = set()
        """Name servers whose last registration failed (logged once)."""
        self._retry_at: dict[str, tuple[float, float]] = {}
        """Name server -> (monotonic time before which ``Recheck`` leaves it alone, the backoff
        that gave it): after a failure 1 s, doubling up to ``RECHECK_MAX_S``, so a refusing or
        overloaded name server is not sent the whole table every second."""
        self._connecting: dict[str, gevent.lock.Semaphore] = {}
        """One connect at a time per name server (a Recheck and a round could both connect,
        one session overwriting, and leaking, the other)."""
        self._master_addr: str | None = None
        self._ha_master_addr: str | None = None

    def on_start(self) -> None:
        if not self.namesrvs:
            logger.warning("{}: no namesrvAddr configured; not registering", self._label())
            return
        self.actor_ref.tell(RegisterNow())
        self.send_every(self.cfg.register_name_server_period / 1000, RegisterNow())
        self.send_every(RECHECK_S, Recheck())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RegisterNow):
            self._counter += 1
            gevent.spawn(self._register_all, self._counter, message.topics)
        elif isinstance(message, Recheck):
            for namesrv in self.namesrvs:
                session = self._sessions.get(namesrv)
                busy = self._pending.get(namesrv, 0) > 0
                later = time.monotonic() < self._retry_at.get(namesrv, (0.0, 0.0))[0]
                if not busy and not later and not self._holds_table(namesrv, session):
                    self._counter += 1
                    gevent.spawn(self._register_again, namesrv, self._counter)
        elif isinstance(message, Registered):
            if self.on_registered is not None:
                self.on_registered()
            before = (self._master_addr, self._ha_master_addr)
            if message.master_addr:
                self._master_addr = message.master_addr
            if message.ha_server_addr:
                self._ha_master_addr = message.ha_server_addr
            after = (self._master_addr, self._ha_master_addr)
            if after != before and self.on_master is not None:
                self.on_master(*after)
        else:
            return super().on_receive(message)
        return None

    def master_addr(self) -> str | None:
        return self._master_addr

    def ha_master_addr(self) -> str | None:
        return self._ha_master_addr

    def on_stop(self) -> None:
        if self.keep_registration is not None and self.keep_registration():
            return  # the connections stay open for the rebuilt node's registrar
        header = {
            "brokerName": self.cfg.broker_name,
            "brokerAddr": self.cfg.broker_addr(),
            "clusterName": self.cfg.broker_cluster_name,
            "brokerId": self.cfg.broker_id,
        }
        for namesrv, session in list(self._sessions.items()):
            try:
                session.call(
                    RemotingCommand.request(RequestCode.UNREGISTER_BROKER, header), timeout=1.0
                )
            except (pykka.Timeout, ConnectionError, OSError) as exc:
                logger.debug("{}: unregister from {} failed: {}", self._label(), namesrv, exc)
            session.close()
        self._sessions.clear()

    def _label(self) -> str:
        return f"{self.cfg.broker_name}/{self.cfg.broker_id}"

    def _register_all(self, counter: int, topics: tuple[str, ...] | None) -> None:
        """One registration round (a greenlet of its own: the topic table may take a moment):
        only ``topics`` to the name servers that hold the whole table, else all of it."""
        if self.registrable is not None and not self.registrable():
            logger.debug("{}: not registering: no master lease", self._label())
            return
        requests: dict[bool, RemotingCommand] = {}
        for namesrv in self.namesrvs:
            full = topics is None or not self._holds_table(namesrv, self._sessions.get(namesrv))
            try:
                if full not in requests:
                    requests[full] = self._request(counter, None if full else topics)
            except Exception as exc:
                logger.warning("{}: cannot read the topic table: {}", self._label(), exc)
                return
            gevent.spawn(self._register_one, namesrv, requests[full], counter)

    def _register_again(self, namesrv: str, counter: int) -> None:
        """A full registration with ``namesrv`` alone (``Recheck``)."""
        if self.registrable is not None and not self.registrable():
            return
        try:
            request = self._full_request(counter)
        except ConnectionError as exc:
            logger.warning("{}: {}", self._label(), exc)
            return
        self._register_one(namesrv, request, counter)

    def _may_register(self) -> bool:
        """Checked again just before a registration goes out: a greenlet that began before a
        role change (a master deposed, its node rebuilt as a slave) must not send brokerId 0
        after its successor registered (the route table keeps the last one, until the next
        round: a review finding)."""
        if not self.actor_ref.is_alive():
            return False
        return self.registrable is None or self.registrable()

    def _holds_table(self, namesrv: str, session: SessionHandle | None) -> bool:
        """Whether ``namesrv`` took a full registration on ``session``, still open."""
        return session is not None and session.alive and self._full_on.get(namesrv) is session

    def _full_request(self, counter: int) -> RemotingCommand:
        try:
            return self._request(counter, None)
        except Exception as exc:
            raise ConnectionError(f"cannot read the topic table: {exc}") from exc

    def _request(self, counter: int, topics: tuple[str, ...] | None) -> RemotingCommand:
        wrapper = TopicConfigSerializeWrapper(
            topic_config_table=self.topic_table(topics),
            data_version=DataVersion(
                timestamp=int(time.time() * 1000),
                counter=counter,
                state_version=self.state_version() if self.state_version is not None else 0,
            ),
        )
        body, compressed = register_body(
            RegisterBrokerBody(topic_config_serialize_wrapper=wrapper),
            self.cfg.compressed_register,
            self.compress_above,
        )
        header = {
            "brokerName": self.cfg.broker_name,
            "brokerAddr": self.cfg.broker_addr(),
            "clusterName": self.cfg.broker_cluster_name,
            "haServerAddr": self.cfg.ha_addr(),
            "brokerId": self.cfg.broker_id,
            "compressed": compressed,
            "bodyCrc32": body_crc32(body),  # (RocketMQ's name server refuses a body damaged)
        }
        header[FULL if topics is None else INCREMENTAL] = True
        return RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body)

    def _register_one(self, namesrv: str, request: RemotingCommand, counter: int) -> None:
        self._pending[namesrv] = self._pending.get(namesrv, 0) + 1
        try:
            self._send_registration(namesrv, request, counter)
        finally:
            self._pending[namesrv] -= 1

    def _failed(self, namesrv: str, problem: str) -> None:
        """Log a failure once until a registration succeeds again, and back off. ``namesrv``
        no longer counts as holding the whole table: its next registration is a full one, by
        ``Recheck`` once the backoff is over (an incremental one it refused, because it dropped
        this broker while the connection stayed open, would else be refused again at every
        topic change, and the broker left out of its routes until the next round, up to
        30 s)."""
        self._full_on.pop(namesrv, None)
        if namesrv not in self._failing:
            logger.warning("{}: register with {}: {}", self._label(), namesrv, problem)
        self._failing.add(namesrv)
        longest = min(RECHECK_MAX_S, self.cfg.register_name_server_period / 1000)
        backoff = min(longest, max(RECHECK_S, 2 * self._retry_at.get(namesrv, (0.0, 0.0))[1]))
        self._retry_at[namesrv] = (time.monotonic() + backoff, backoff)

    def _session(self, namesrv: str) -> SessionHandle:
        lock = self._connecting.setdefault(namesrv, gevent.lock.Semaphore())
        with lock:
            session = self._sessions.get(namesrv)
            if session is None or not session.alive:
                session = connect(
                    namesrv,
                    role=f"{self._label()}->namesrv",
                    tls=tls.outbound(),
                    signer=signer_for(self.cfg.inner_credentials()),
                )
                self._sessions[namesrv] = session
            return session

    def _send_registration(self, namesrv: str, request: RemotingCommand, counter: int) -> None:
        try:
            session = self._session(namesrv)
            full = not request.ext_fields.get(INCREMENTAL)
            if not full and not self._holds_table(namesrv, session):  # a new connection
                request, full = self._full_request(counter), True
            request = msgspec.structs.replace(request, opaque=RemotingCommand.request(0).opaque)
            if not self._may_register():
                return  # (deposed, or this incarnation stopped, while it was being prepared)
            reply = session.call(request, timeout=REGISTER_TIMEOUT_S)
        except (pykka.Timeout, ConnectionError, OSError) as exc:
            self._failed(namesrv, f"failed: {exc}")
            return
        if reply.code != ResponseCode.SUCCESS:
            self._failed(namesrv, f"refused: {reply.code} {reply.remark}")
            return
        if full:
            self._full_on[namesrv] = session
        self._retry_at.pop(namesrv, None)
        if namesrv in self._failing:
            self._failing.discard(namesrv)
            logger.info("{}: registered with {} again", self._label(), namesrv)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(
                Registered(
                    namesrv,
                    reply.ext_fields.get("masterAddr") or None,
                    reply.ext_fields.get("haServerAddr") or None,
                )
            )
