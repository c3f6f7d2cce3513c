"""RouteTable: the name server's registry of brokers and topic routes (RocketMQ's
RouteInfoManager).

Messages (proxy methods; each returns at once, nothing blocks):
- ``register_broker(RegisterBroker)`` -> ``RegisterResult(master_addr, ha_server_addr)``, or
  None when it is refused: part of a table from a broker not registered under its id (below).
  One for an id that another address, live in the same cluster, holds with a higher
  ``stateVersion`` is ignored, as RocketMQ 5's ("Registered Broker conflicts with the existed
  one"): answered with no master, and its address leaves the group and the live brokers
- ``register_topic(topic, queue_datas)`` -> whether applied (REGISTER_TOPIC_IN_NAMESRV, RocketMQ
  5's brokers with ``enableSingleTopicRegister``): the topic's queue data on each named broker
  group, beside the other groups'; none when a named group is not registered
- ``unregister_broker(cluster, broker_name, broker_addr, broker_id)`` -> None: the address
  leaves the routes when the group ``broker_name`` holds it (under any id, as RocketMQ 5)
- ``query_data_version(cluster, broker_addr, data_version)`` -> ``(changed, stored)``
  (QUERY_DATA_VERSION, which RocketMQ's brokers send before registering when
  ``forceRegister=false``): whether ``data_version`` differs from the one the broker last
  registered with (True when it is not registered in ``cluster``) and that stored one (None
  then). A registered broker's query counts as a sign of life, as in RocketMQ: its last
  update is now, so a broker that only queries is not expired
- ``broker_heartbeat(cluster, broker_addr)`` -> whether that broker is registered in
  ``cluster`` (BROKER_HEARTBEAT: its last update is now, as RocketMQ 5's name server does)
- ``channel_closed(session_id)`` -> names of the brokers dropped (a broker's connection closed)
- ``scan_not_active(expire_ms)`` -> names of the brokers dropped (told by HeartbeatScanner):
  those silent for longer than their own timeout, the ``heartbeatTimeoutMillis`` they
  registered with (RocketMQ 5's brokers send it with ``enableSlaveActingMaster``), else
  ``expire_ms`` (``brokerChannelExpiredTime``, 120 s). Their connections are closed, as
  RocketMQ's scanNotActiveBroker closes the channel: the broker's next registration, on a new
  connection, is its whole table (any other broker registered on that connection goes too)
- ``route(topic)`` -> ``TopicRouteData`` or None
- ``cluster_info()`` -> ``ClusterInfo``
- ``topic_list()`` -> sorted topic names
- ``delete_topic(topic, cluster=None)`` -> True when a route was removed (DELETE_TOPIC_IN_NAMESRV:
  the topic's queue data on every broker, or only on the brokers of ``cluster``). A broker
  that still has the topic brings it back with its next registration naming it (an actormq
  broker's next full one, within ``registerNameServerPeriod``), as in RocketMQ 5
- ``wipe_write_perm(broker_name)`` / ``add_write_perm(broker_name)`` -> how many topics the
  broker group serves (WIPE_WRITE_PERM_OF_BROKER: the WRITE bit cleared from its queue data in
  every route; ADD_WRITE_PERM_OF_BROKER: perm set to READ|WRITE, RocketMQ 5's rule)
- ``topics_by_cluster(cluster)`` -> the topics any broker of ``cluster`` serves (sorted; none
  for an unknown cluster)
- ``system_topic_list()`` -> (every cluster name followed by its broker names, one broker
  address or None): GET_SYSTEM_TOPIC_LIST_FROM_NS

A registration is one of three ``Registration`` kinds, told by the header's marks:

- ``WHOLE`` (``actormqFull``: actormq's brokers, every full registration): the broker's whole
  table. Its topics are applied when it registers first (a new address for its id) or when they
  differ from its previous registration, and a topic it left out leaves the broker's route (it
  was deleted on the broker); a topic the table lost for that broker (deleted in the name
  server) is added back on any registration.
- ``INCREMENT`` (``actormqIncremental``: actormq's brokers send only the topics created or
  changed, as RocketMQ's ``registerIncrementBrokerData``): merged into the broker's table and
  applied, nothing else touched. Refused (None) from an address that does not hold the
  broker's id (dropped, or another broker took the id since): applied, it would route the
  broker with those topics alone. The broker's registrar registers its whole table on a new
  connection (an expired broker's is closed) or at its next round.
- ``MERGE`` (no mark: RocketMQ's own brokers, whose full and incremental registrations look
  alike, and actormq brokers before session 16): merged as RocketMQ's name server does, so
  nothing leaves a route by registration (deleting a topic takes DELETE_TOPIC_IN_NAMESRV, as
  ``mqadmin deleteTopic`` sends, or the broker's going away); the topics new or changed since
  its previous registration are applied and lost ones added back. One naming a single topic
  while the group holds no address for the broker's id is refused (None), as RocketMQ 5's
  registerBroker refuses it (its brokers' first registration names their system topics too).

Whose topics are applied: a master's (id 0), and, as in RocketMQ 5, the group's "prime slave":
a RocketMQ 5 broker (header ``enableActingMaster``, true or false; or an actormq broker's marks)
registering as a slave with the group's lowest id, so while no master is registered. Its topics
are applied as a master's, with the WRITE bit cleared and none removed (a master's queue data it
lacks stay). So a name server restarted while a group's master is down routes the group's topics
read-only on the slave (RocketMQ 5.2's name server clears the bit only when ``enableActingMaster``
is true; 5.0 and 5.1 always did, as actormq does). Other slaves' topics are never applied.

RocketMQ compares the broker's
data version instead, which its brokers bump exactly when their topics change; actormq's brokers
send a new data version with every registration, so the topics themselves are compared. Hence,
as in RocketMQ 4.9 and 5: a perm changed by wipe/add write perm lasts until the broker's topics
change or it registers afresh (restart, connection lost, 120 s silence), which restore the
broker's own perms.

State owned (in memory only; brokers re-register every 30 s): topic -> broker name -> queue
data, broker name -> cluster + {brokerId: address}, cluster -> broker names, broker address ->
liveness (last update, data version, session id, HA address). Durability point: none.
"""

from __future__ import annotations

import enum
import time
from typing import Any

import msgspec
from loguru import logger

from runtime.actor import GeventActor
from runtime.remoting.bodies import BrokerData, ClusterInfo, QueueData, TopicRouteData
from runtime.remoting.codes import RETRY_PREFIX

PERM_WRITE = 2
PERM_READ_WRITE = 6


class TopicConfigEntry(msgspec.Struct, frozen=True):
    """What a broker says about one of its topics when it registers."""

    topic_name: str
    read_queue_nums: int
    write_queue_nums: int
    perm: int = PERM_READ_WRITE
    topic_sys_flag: int = 0


class Registration(enum.Enum):
    """What a registration's topics are (told by its header's marks)."""

    WHOLE = "whole"
    """``actormqFull``: the whole table; topics left out leave the broker's route."""
    INCREMENT = "increment"
    """``actormqIncremental``: only created or changed topics, each applied."""
    MERGE = "merge"
    """No mark (RocketMQ's brokers): merged, new or changed topics applied, none dropped."""


class RegisterBroker(msgspec.Struct, frozen=True, tag=True):
    cluster_name: str
    broker_name: str
    broker_addr: str
    broker_id: int
    ha_server_addr: str
    topics: tuple[TopicConfigEntry, ...]
    data_version: str
    session_id: int | None = None
    session: Any = None
    """The SessionHandle it came on (None in tests of the table alone): closed when the broker
    is expired (``scan_not_active``)."""
    kind: Registration = Registration.WHOLE
    """How ``topics`` combine with the broker's previous ones (see the module docstring)."""
    heartbeat_timeout_ms: int | None = None
    """The header's ``heartbeatTimeoutMillis``: the broker is dropped after this long without
    a sign of life (None: the scanner's ``expire_ms``)."""
    enable_acting_master: bool | None = None
    """The header's ``enableActingMaster``: RocketMQ 5's brokers send it, true or false (None:
    a RocketMQ 4 broker, whose slave is never a prime slave)."""
    state_version: int = 0
    """The body's DataVersion ``stateVersion`` (RocketMQ 5's brokers in controller mode: their
    master epoch; 0 without one). A registration for an id held by another live address with a
    higher one is ignored."""

    def rocketmq5(self) -> bool:
        """Whether a RocketMQ 5 broker sent it: the header ``enableActingMaster`` (true or
        false), or an actormq broker (its marks; they behave as RocketMQ 5's)."""
        return self.enable_acting_master is not None or self.kind is not Registration.MERGE


class RegisterResult(msgspec.Struct, frozen=True):
    master_addr: str | None
    ha_server_addr: str | None


class _BrokerLive(msgspec.Struct):
    cluster_name: str
    broker_name: str
    broker_id: int
    last_update: float
    data_version: str
    session_id: int | None
    ha_server_addr: str
    session: Any = None
    """The connection it last registered on (closed when it expires)."""
    topics: dict[str, TopicConfigEntry] = {}
    """Its topics as it last registered them (an incremental registration updates it)."""
    heartbeat_timeout_ms: int | None = None
    """Its own liveness timeout, from its last registration (None: the scanner's)."""
    state_version: int = 0
    """The ``stateVersion`` of its last registration (see ``RegisterBroker``)."""


class RouteTable(GeventActor):
    """The route registry. See the module docstring for messages and state."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._topics: dict[str, dict[str, QueueData]] = {}
        self._brokers: dict[str, tuple[str, dict[int, str]]] = {}  # name -> (cluster, {id: addr})
        self._clusters: dict[str, set[str]] = {}
        self._live: dict[str, _BrokerLive] = {}

    # -- registration ---------------------------------------------------------------------

    def register_broker(self, msg: RegisterBroker) -> RegisterResult | None:
        if self._conflicts(msg):
            return RegisterResult(master_addr=None, ha_server_addr=None)
        if self._unregistered_part(msg):
            logger.warning(
                "namesrv: registration of {} topic(s) from broker {} id {} at {} refused: it has "
                "not registered its whole table",
                len(msg.topics),
                msg.broker_name,
                msg.broker_id,
                msg.broker_addr,
            )
            return None
        self._clusters.setdefault(msg.cluster_name, set()).add(msg.broker_name)
        cluster, addrs = self._brokers.setdefault(msg.broker_name, (msg.cluster_name, {}))
        if cluster != msg.cluster_name:
            self._move_cluster(msg.broker_name, cluster, msg.cluster_name)
        # One address per broker id; an address that moved to another id (slave promoted to
        # master) is removed from its old id first, as RocketMQ does.
        for broker_id, addr in list(addrs.items()):
            if addr == msg.broker_addr and broker_id != msg.broker_id:
                del addrs[broker_id]
        first_time = msg.broker_addr not in self._live or addrs.get(msg.broker_id) is None
        addrs[msg.broker_id] = msg.broker_addr
        previous = self._live.get(msg.broker_addr)
        merged = msg.kind is not Registration.WHOLE and previous is not None
        news: tuple[TopicConfigEntry, ...] = ()
        if merged:  # merged in place
            topics = previous.topics
            news = tuple(t for t in msg.topics if topics.get(t.topic_name) != t)
            changed = bool(news)
            topics.update((t.topic_name, t) for t in news)
        else:
            topics = {t.topic_name: t for t in msg.topics}
            changed = previous is None or previous.topics != topics
        self._live[msg.broker_addr] = _BrokerLive(
            cluster_name=msg.cluster_name,
            broker_name=msg.broker_name,
            broker_id=msg.broker_id,
            last_update=self._clock(),
            data_version=msg.data_version,
            session_id=msg.session_id,
            ha_server_addr=msg.ha_server_addr,
            session=msg.session,
            topics=topics,
            heartbeat_timeout_ms=msg.heartbeat_timeout_ms,
            state_version=msg.state_version,
        )
        if msg.broker_id == 0:
            self._apply(msg, tuple(topics.values()), news, changed, first_time)
        elif _is_prime_slave(msg, addrs):
            self._apply_prime_slave(msg, tuple(topics.values()), news, changed, first_time)
        if first_time:
            logger.info(
                "namesrv: registered broker {} id {} at {} (cluster {})",
                msg.broker_name,
                msg.broker_id,
                msg.broker_addr,
                msg.cluster_name,
            )
        master_addr = None
        ha_addr = None
        if msg.broker_id != 0:
            master_addr = addrs.get(0)
            if master_addr is not None and master_addr in self._live:
                ha_addr = self._live[master_addr].ha_server_addr
        return RegisterResult(master_addr=master_addr, ha_server_addr=ha_addr)

    def _apply(
        self,
        msg: RegisterBroker,
        table: tuple[TopicConfigEntry, ...],
        news: tuple[TopicConfigEntry, ...],
        changed: bool,
        first_time: bool,
        *,
        drop_left_out: bool = True,
    ) -> None:
        """A master's registration applied to the routes (``table``: the broker's topics after
        it; ``news``: a merged registration's new or changed ones). ``drop_left_out``: a
        ``WHOLE`` table's left-out topics leave the group's routes."""
        name = msg.broker_name
        if msg.kind is Registration.INCREMENT:
            # Only the topics it names, even on a first registration (RocketMQ merges every
            # registration): the broker group's other topics keep their queue data.
            self._upsert_topics(name, msg.topics)
        elif msg.kind is Registration.MERGE:
            self._upsert_topics(name, msg.topics if first_time else news)
            self._add_missing_topics(name, msg.topics)
        elif (changed or first_time) and drop_left_out:
            self._update_topics(name, table)
        elif changed or first_time:
            self._upsert_topics(name, table)
        else:
            self._add_missing_topics(name, msg.topics)

    def _apply_prime_slave(
        self,
        msg: RegisterBroker,
        table: tuple[TopicConfigEntry, ...],
        news: tuple[TopicConfigEntry, ...],
        changed: bool,
        first_time: bool,
    ) -> None:
        """A prime slave's registration (``_is_prime_slave``) applied as a master's, as RocketMQ
        5's registerBroker does: read-only (the WRITE bit cleared: the slave takes no sends),
        and nothing leaves the routes (a topic its table lacks may be one the master created
        and it has not synced yet: the master's queue data stay). So a group whose master is
        down stays readable after a name server restart, read-only, until the master comes
        back, whose registration (a new address for id 0) applies its own perms."""
        self._apply(
            _read_only_msg(msg),
            tuple(map(_read_only, table)),
            tuple(map(_read_only, news)),
            changed,
            first_time,
            drop_left_out=False,
        )

    def _conflicts(self, msg: RegisterBroker) -> bool:
        """Whether ``msg`` is ignored, as RocketMQ 5's registerBroker ignores it ("Registered
        Broker conflicts with the existed one, just ignore"): another address, live in the same
        cluster, holds the broker's id with a higher ``stateVersion`` (in controller mode the
        master epoch: an old master coming back with a stale registration must not take id 0
        back from its successor). Like RocketMQ, the ignored address leaves the group (under any
        other id it held) and the live brokers, and the answer is a success without a master."""
        group = self._brokers.get(msg.broker_name)
        holder = None if group is None else group[1].get(msg.broker_id)
        if holder is None or holder == msg.broker_addr:
            return False
        held = self._live.get(holder)
        if held is None or held.cluster_name != msg.cluster_name:
            return False
        if held.state_version <= msg.state_version:
            return False
        logger.warning(
            "namesrv: registration of broker {} id {} at {} (stateVersion {}) ignored: it "
            "conflicts with {} (stateVersion {}), which holds the id",
            msg.broker_name,
            msg.broker_id,
            msg.broker_addr,
            msg.state_version,
            holder,
            held.state_version,
        )
        if msg.broker_addr in self._live or msg.broker_addr in group[1].values():
            self._remove_addr(msg.broker_addr, reason="its registration conflicts with the id's")
        return True

    def _unregistered_part(self, msg: RegisterBroker) -> bool:
        """Whether ``msg`` is part of a table from a broker not registered under its id: an
        ``INCREMENT`` whose address does not hold the id (expired, or another broker took the
        id since), or, as RocketMQ 5 refuses, an unmarked registration of a single topic while
        the group holds no address for the id (its registerBroker returns null: "Register
        single topic route info should be after the broker completes the first
        registration"). Applied, either would route the group's broker with only those
        topics until its next full registration."""
        group = self._brokers.get(msg.broker_name)
        holder = None if group is None else group[1].get(msg.broker_id)
        if msg.kind is Registration.INCREMENT:
            return holder != msg.broker_addr
        return msg.kind is Registration.MERGE and len(msg.topics) == 1 and holder is None

    def register_topic(self, topic: str, queue_datas: list[QueueData]) -> bool:
        """REGISTER_TOPIC_IN_NAMESRV: ``topic``'s queue data on each named broker group, kept
        beside those of other groups; nothing when one of the groups is not registered (as
        RocketMQ 5's registerTopic, which logs "Register topic contains illegal broker")."""
        unknown = [qd.broker_name for qd in queue_datas if qd.broker_name not in self._brokers]
        if unknown or not queue_datas:
            if unknown:
                logger.warning(
                    "namesrv: topic {} not registered: broker {} is not registered",
                    topic,
                    ", ".join(unknown),
                )
            return False
        per_broker = self._topics.setdefault(topic, {})
        for qd in queue_datas:
            per_broker[qd.broker_name] = qd
        names = ", ".join(qd.broker_name for qd in queue_datas)
        logger.info("namesrv: registered topic {} on {}", topic, names)
        return True

    def _move_cluster(self, broker_name: str, old: str, new: str) -> None:
        """The group registered under another cluster name: it leaves the old cluster (RocketMQ
        keeps it listed there too, until the name server restarts; its issue 1989 is the same
        flaw for a renamed broker)."""
        members = self._clusters.get(old)
        if members is not None:
            members.discard(broker_name)
            if not members:
                del self._clusters[old]
        self._brokers[broker_name] = (new, self._brokers[broker_name][1])
        logger.info("namesrv: broker {} moved from cluster {} to {}", broker_name, old, new)

    def _update_topics(self, broker_name: str, topics: tuple[TopicConfigEntry, ...]) -> None:
        wanted = {t.topic_name for t in topics}
        for topic, per_broker in list(self._topics.items()):
            if broker_name in per_broker and topic not in wanted:
                del per_broker[broker_name]
                if not per_broker:
                    del self._topics[topic]
        for t in topics:
            self._topics.setdefault(t.topic_name, {})[broker_name] = _queue_data(broker_name, t)

    def _upsert_topics(self, broker_name: str, topics: tuple[TopicConfigEntry, ...]) -> None:
        for t in topics:
            self._topics.setdefault(t.topic_name, {})[broker_name] = _queue_data(broker_name, t)

    def _add_missing_topics(self, broker_name: str, topics: tuple[TopicConfigEntry, ...]) -> None:
        for t in topics:
            per_broker = self._topics.setdefault(t.topic_name, {})
            if broker_name not in per_broker:
                per_broker[broker_name] = _queue_data(broker_name, t)

    def unregister_broker(
        self, cluster_name: str, broker_name: str, broker_addr: str, broker_id: int
    ) -> None:
        """UNREGISTER_BROKER: drop ``broker_addr`` when the group ``broker_name`` holds it,
        under any id, as RocketMQ 5's unRegisterBroker removes the address from the named
        group's addresses (``brokerId`` only tells it whether the lowest id changed); an
        address the group does not hold (another group's, or long gone) stays."""
        group = self._brokers.get(broker_name)
        if group is None or broker_addr not in group[1].values():
            logger.info(
                "namesrv: unregister of broker {} id {} at {} (cluster {}) ignored: the group "
                "does not hold that address",
                broker_name,
                broker_id,
                broker_addr,
                cluster_name,
            )
            return
        self._remove_addr(broker_addr, reason="unregistered")

    def query_data_version(
        self, cluster_name: str, broker_addr: str, data_version: str
    ) -> tuple[bool, str | None]:
        live = self._live.get(broker_addr)
        if live is None or live.cluster_name != cluster_name:
            return True, None
        live.last_update = self._clock()
        return live.data_version != data_version, live.data_version

    def broker_heartbeat(self, cluster_name: str, broker_addr: str) -> bool:
        live = self._live.get(broker_addr)
        if live is None or live.cluster_name != cluster_name:
            return False
        live.last_update = self._clock()
        return True

    def channel_closed(self, session_id: int) -> list[str]:
        gone = [addr for addr, live in self._live.items() if live.session_id == session_id]
        return [self._remove_addr(addr, reason="connection closed") for addr in gone]

    def scan_not_active(self, expire_ms: int) -> list[str]:
        now = self._clock()
        stale = {
            addr: timeout
            for addr, live in self._live.items()
            if (now - live.last_update) * 1000 > (timeout := live.heartbeat_timeout_ms or expire_ms)
        }
        return [self._expire(addr, timeout) for addr, timeout in stale.items()]

    def _expire(self, broker_addr: str, timeout: int) -> str:
        """Drop a silent broker and close its connection, as RocketMQ's scanNotActiveBroker
        does: its registrar then registers its whole table on a new one (on the old one it would
        go on sending only the topics it creates, and the routes would list just those). Any
        other broker registered on that connection goes with it (RocketMQ's channel close)."""
        session = self._live[broker_addr].session
        reason = f"silent for over {timeout} ms"
        if session is not None:
            session.close()  # (a tell)
            reason += ", connection closed"
        return self._remove_addr(broker_addr, reason=reason)

    def _remove_addr(self, broker_addr: str, *, reason: str) -> str:
        live = self._live.pop(broker_addr, None)
        name = live.broker_name if live else "?"
        for broker_name, (cluster, addrs) in list(self._brokers.items()):
            for broker_id, addr in list(addrs.items()):
                if addr == broker_addr:
                    del addrs[broker_id]
                    name = f"{broker_name}/{broker_id}"
            if not addrs:
                del self._brokers[broker_name]
                members = self._clusters.get(cluster)
                if members is not None:
                    members.discard(broker_name)
                    if not members:
                        del self._clusters[cluster]
                for topic, per_broker in list(self._topics.items()):
                    per_broker.pop(broker_name, None)
                    if not per_broker:
                        del self._topics[topic]
        logger.info("namesrv: dropped broker {} at {}: {}", name, broker_addr, reason)
        return name

    def delete_topic(self, topic: str, cluster: str | None = None) -> bool:
        per_broker = self._topics.get(topic)
        if not per_broker:
            return False
        if cluster is None:
            names = set(per_broker)
        else:
            names = set(per_broker) & self._clusters.get(cluster, set())
        for name in names:
            del per_broker[name]
        if not per_broker:
            del self._topics[topic]
        if names:
            where = "" if cluster is None else f" in cluster {cluster}"
            logger.info("namesrv: deleted topic {}{} ({})", topic, where, ", ".join(sorted(names)))
        return bool(names)

    def wipe_write_perm(self, broker_name: str) -> int:
        return self._set_perms(broker_name, lambda perm: perm & ~PERM_WRITE, "wiped write perm")

    def add_write_perm(self, broker_name: str) -> int:
        return self._set_perms(broker_name, lambda _perm: PERM_READ_WRITE, "added write perm")

    def _set_perms(self, broker_name: str, change: Any, what: str) -> int:
        count = 0
        for per_broker in self._topics.values():
            qd = per_broker.get(broker_name)
            if qd is not None:
                per_broker[broker_name] = msgspec.structs.replace(qd, perm=change(qd.perm))
                count += 1
        logger.info("namesrv: {} of broker {} in {} topics", what, broker_name, count)
        return count

    # -- queries ------------------------------------------------------------------------------

    def route(self, topic: str) -> TopicRouteData | None:
        per_broker = self._topics.get(topic)
        if per_broker:
            queue_datas = [per_broker[name] for name in sorted(per_broker)]
        elif topic.startswith(RETRY_PREFIX) and self._brokers:
            # A consumer asks for its retry topic before any broker has created it: serve one
            # queue on every master, as the broker will create it on first use.
            queue_datas = [
                QueueData(
                    broker_name=name, read_queue_nums=1, write_queue_nums=1, perm=PERM_READ_WRITE
                )
                for name, (_c, addrs) in sorted(self._brokers.items())
                if 0 in addrs
            ]
        else:
            return None
        broker_datas = [
            self._broker_data(qd.broker_name)
            for qd in queue_datas
            if qd.broker_name in self._brokers
        ]
        if not broker_datas:
            return None
        return TopicRouteData(broker_datas=broker_datas, queue_datas=queue_datas)

    def _broker_data(self, name: str) -> BrokerData:
        cluster, addrs = self._brokers[name]
        return BrokerData(
            cluster=cluster, broker_name=name, broker_addrs={i: addrs[i] for i in sorted(addrs)}
        )

    def cluster_info(self) -> ClusterInfo:
        return ClusterInfo(
            broker_addr_table={name: self._broker_data(name) for name in sorted(self._brokers)},
            cluster_addr_table={c: sorted(names) for c, names in sorted(self._clusters.items())},
        )

    def topic_list(self) -> list[str]:
        return sorted(self._topics)

    def topics_by_cluster(self, cluster: str) -> list[str]:
        names = self._clusters.get(cluster, set())
        return sorted(t for t, per_broker in self._topics.items() if names & per_broker.keys())

    def system_topic_list(self) -> tuple[list[str], str | None]:
        topics: dict[str, None] = {}  # ordered, without duplicates (RocketMQ's is a set)
        for cluster, names in sorted(self._clusters.items()):
            topics[cluster] = None
            topics.update(dict.fromkeys(sorted(names)))
        addr = next(
            (addrs[min(addrs)] for _name, (_c, addrs) in sorted(self._brokers.items()) if addrs),
            None,
        )
        return list(topics), addr

    def live_brokers(self) -> dict[str, str]:
        """broker address -> "name/id" (for tests and the controller)."""
        return {addr: f"{v.broker_name}/{v.broker_id}" for addr, v in self._live.items()}


def _is_prime_slave(msg: RegisterBroker, addrs: dict[int, str]) -> bool:
    """Whether ``msg``, registered into the group's ``addrs``, is from its "prime slave", as
    RocketMQ 5's registerBroker has it: a slave of a RocketMQ 5 broker (``rocketmq5``) holding
    the group's lowest id, so no master (id 0) is registered."""
    return msg.broker_id != 0 and msg.rocketmq5() and msg.broker_id == min(addrs)


def _read_only(t: TopicConfigEntry) -> TopicConfigEntry:
    return msgspec.structs.replace(t, perm=t.perm & ~PERM_WRITE)


def _read_only_msg(msg: RegisterBroker) -> RegisterBroker:
    return msgspec.structs.replace(msg, topics=tuple(map(_read_only, msg.topics)))


def _queue_data(broker_name: str, t: TopicConfigEntry) -> QueueData:
    return QueueData(
        broker_name=broker_name,
        read_queue_nums=t.read_queue_nums,
        write_queue_nums=t.write_queue_nums,
        perm=t.perm,
        topic_sys_flag=t.topic_sys_flag,
    )
