"""ConsumerManager: the broker's live consumer groups (RocketMQ's ConsumerManager).

Messages (proxy methods; none blocks):
- ``register(ConsumerHeartbeat)`` -> True when the group's membership changed (a heartbeat
  whose connection has closed meanwhile registers nothing: False)
- ``unregister(group, client_id, notify=True, session_id=None)`` -> None
- ``channel_closed(session_id)`` -> None (drops every client of that connection)
- ``scan_expired(expire_s)`` -> dropped client ids (every 10 s by its own timer)
- ``consumer_ids(group, topic=None)`` -> sorted client ids, one per connection (with
  ``topic``: of the members whose last heartbeat subscribed it)
- ``subscription(group, topic)`` -> the group's SubscriptionData for the topic, or None
- ``groups_subscribing(topic)`` -> the online groups with a subscription to ``topic``, sorted
- ``group(group)`` -> ``GroupInfo`` or None
- ``connections(group)`` -> ``ConsumerConnection`` (members, addresses, languages,
  subscriptions) or None when no member is online
- ``tell_members(group, cmd, cmd_for_c=None)`` -> how many members ``cmd`` (a oneway request)
  was written to; members whose heartbeats said language CPP get ``cmd_for_c`` when given
- ``find_channel(group, client_id)`` -> the member's session, or None when it is not online
- ``member_counts()`` -> {group: live members} of every group with one (the metrics)
  (RocketMQ's findChannel; a request handler then calls the client itself)

Replies nothing else. When a group's membership changes it tells every remaining member's
session NOTIFY_CONSUMER_IDS_CHANGED (oneway), so they rebalance at once rather than within 20 s
— except for a join, a topic change or an unregister whose heartbeat / request handler passed
``notify=False`` (the group's ``notifyConsumerIdsChangedEnable`` is off: its members find out at
their next rebalance). A member lost with its connection or expired is always announced, as in
RocketMQ, and so is a heartbeat that drops dead connections of its client id (listed once each:
the lists shrink). In a group of actormq clients only (per-topic lists) a notice names the
topics whose lists changed (``topics`` ext: the joiner's, the leaver's, or those a member took
up or dropped), each member is told the ones it subscribes and members subscribing none are not
told; a member changing its topics is not told itself. In other groups a topic change tells no
one (their lists hold every member whatever it subscribes).
State owned (memory only; clients heartbeat every 30 s): group -> client id -> its connections
(channels) and the topics it subscribes, and the group's subscriptions (of the topics some
member subscribes: a topic no member subscribes any more goes, as RocketMQ's
``updateSubscription`` drops it). Durability point: none.

Members are connections, as in RocketMQ (``ConsumerGroupInfo.channelInfoTable`` is keyed by
channel): two processes may heartbeat with one client id (ali-ons broadcasting consumers on one
host are all ``<ip>@DEFAULT``). Both are listed (the id twice), both are told of changes, and
when one unregisters or disconnects the other stays. A heartbeat whose client id is listed only
on dead connections (a reconnect whose close is not processed yet, or a member carried over a
role change) replaces them without counting as a join.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from loguru import logger

from runtime.actor import GeventActor
from runtime.remoting.bodies import Connection, ConsumerConnection, SubscriptionData
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle

EXPIRE_S = 120.0
PER_TOPIC = "PYTHON"
"""The heartbeat language of actormq's clients, which ask for a topic's consumer list: a group
whose members all are gets per-topic lists; a group with any other client, every member."""
SCAN_INTERVAL_S = 10.0
TOPICS_PER_NOTICE = 16 * 1024
"""Characters of topic names one NOTIFY_CONSUMER_IDS_CHANGED names at most (its header's limit
is 64 KiB: a lite group of thousands of topics is told in several)."""


class ConsumerHeartbeat(msgspec.Struct, frozen=True, tag=True):
    group: str
    client_id: str
    session: Any  # SessionHandle
    consume_type: str
    message_model: str
    consume_from_where: str
    subscriptions: tuple[SubscriptionData, ...]
    notify: bool = True  # the group's notifyConsumerIdsChangedEnable
    language: str = ""  # of the heartbeat request (JAVA, CPP, PYTHON, ...)
    version: int = 0


class _Channel(msgspec.Struct):
    session: Any  # SessionHandle
    last_update: float


class _Client(msgspec.Struct):
    """One client id of a group: its connections by session id (usually one)."""

    channels: dict[int, _Channel]
    language: str = ""
    version: int = 0
    topics: frozenset[str] = frozenset()
    """The topics its last heartbeat subscribed."""

    @property
    def session(self) -> Any:
        """The connection that heartbeated last."""
        return max(self.channels.values(), key=lambda c: c.last_update).session

    def sessions(self) -> list[Any]:
        return [c.session for c in self.channels.values()]


class GroupInfo(msgspec.Struct):
    group: str
    consume_type: str
    message_model: str
    consume_from_where: str
    subscriptions: dict[str, SubscriptionData]
    clients: dict[str, _Client]


class _Scan(msgspec.Struct, frozen=True, tag=True):
    pass


class _Detached:
    """The session of a member carried over from before a role change: its connection is gone
    until the client's next heartbeat (which brings the new one)."""

    session_id = -1
    alive = False

    def send_oneway(self, cmd: Any) -> bool:
        return False


def _joined(topics: frozenset[str]) -> list[str]:
    """The names comma-joined, in pieces of at most ``TOPICS_PER_NOTICE`` characters."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for topic in sorted(topics):
        if current and size + len(topic) + 1 > TOPICS_PER_NOTICE:
            pieces.append(",".join(current))
            current, size = [], 0
        current.append(topic)
        size += len(topic) + 1
    pieces.append(",".join(current))
    return pieces


def _leaving_topics(info: GroupInfo, leaving: list[_Client]) -> frozenset[str] | None:
    """The topics whose lists change when ``leaving`` go (their topics), or None (every list:
    the group is not all actormq clients). Call before they go."""
    if not _per_topic(info):
        return None
    return frozenset().union(*(c.topics for c in leaving))


def _per_topic(info: GroupInfo) -> bool:
    """Whether the group's consumer lists are per topic (all its members actormq clients)."""
    return all(c.language == PER_TOPIC for c in info.clients.values())


class ConsumerManager(GeventActor):
    """Consumer groups and their members. See the module docstring.

    ``carried``: the groups a previous incarnation had when its node was rebuilt in another role
    (failover); ``keep(groups)`` is called at stop so the next incarnation can carry them. Their
    members stay listed (rebalancing and subscriptions work at once) until they heartbeat again
    or expire."""

    def __init__(
        self,
        *,
        expire_s: float = EXPIRE_S,
        clock: Any = time.monotonic,
        carried: dict[str, GroupInfo] | None = None,
        keep: Any = None,
    ) -> None:
        super().__init__()
        self.expire_s = expire_s
        self._clock = clock
        self._groups: dict[str, GroupInfo] = {}
        self._keep = keep
        now = clock()
        for name, info in (carried or {}).items():
            clients = {
                cid: _Client(
                    channels={_Detached.session_id: _Channel(_Detached(), now)},
                    language=client.language,
                    topics=client.topics,
                )
                for cid, client in info.clients.items()
            }
            self._groups[name] = msgspec.structs.replace(
                info, subscriptions=dict(info.subscriptions), clients=clients
            )

    def on_start(self) -> None:
        self.send_every(SCAN_INTERVAL_S, _Scan())

    def on_stop(self) -> None:
        if self._keep is not None:
            self._keep(dict(self._groups))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Scan):
            self.scan_expired(self.expire_s)
            return None
        return super().on_receive(message)

    def register(self, hb: ConsumerHeartbeat) -> bool:
        if not hb.session.alive:
            # its connection closed while the heartbeat was served (e.g. creating the retry
            # topic), and the close was processed first: listed now, a member nobody is behind
            # would hold its share of the queues until it expired (120 s)
            return False
        info = self._groups.get(hb.group)
        if info is None:
            info = GroupInfo(
                group=hb.group,
                consume_type=hb.consume_type,
                message_model=hb.message_model,
                consume_from_where=hb.consume_from_where,
                subscriptions={},
                clients={},
            )
            self._groups[hb.group] = info
        info.consume_type = hb.consume_type
        info.message_model = hb.message_model
        info.consume_from_where = hb.consume_from_where
        for sub in hb.subscriptions:
            # the newest subscribe() wins (RocketMQ's updateSubscription; equal: taken, as our
            # client always sends 0): members of one group heartbeating in turn do not flip
            # the filter of pulls that send none, nor undo a newer one
            old = info.subscriptions.get(sub.topic)
            if old is None or sub.sub_version >= old.sub_version:
                info.subscriptions[sub.topic] = sub
        session_id = hb.session.session_id
        per_topic_before = _per_topic(info)
        client = info.clients.get(hb.client_id)
        listed = 0 if client is None else len(client.channels)  # (its entries in the lists)
        if client is None:
            client = info.clients[hb.client_id] = _Client(channels={})
            joined = True
        else:
            others = [s for s, c in client.channels.items() if s != session_id]
            dead = [s for s in others if not client.channels[s].session.alive]
            joined = session_id not in client.channels and len(dead) < len(others)
            for stale in dead:
                del client.channels[stale]
        client.channels[session_id] = _Channel(session=hb.session, last_update=self._clock())
        client.language, client.version = hb.language, hb.version
        topics = frozenset(sub.topic for sub in hb.subscriptions)
        moved = topics ^ client.topics
        if moved:
            client.topics = topics
            self._prune(info)
        scoped = per_topic_before and _per_topic(info)
        if joined:
            also = f" (its connection {len(client.channels)})" if len(client.channels) > 1 else ""
            logger.info("broker: consumer {} joined group {}{}", hb.client_id, hb.group, also)
        # a join (on another connection too: the topics it dropped changed as well), or dead
        # connections of its id dropped (listed once each: its entries in the lists are fewer,
        # announced as a leave is): every member sharing its topics (it too) looks again
        if (joined and hb.notify) or len(client.channels) < listed:
            self._notify(info, topics | moved if scoped else None)
        elif moved and scoped and hb.notify:
            # the lists of the topics it took up or dropped changed: the members subscribing
            # them are told (it rebalances them itself); other lists did not change
            self._notify(info, moved, skip=hb.client_id)
        return joined

    def unregister(
        self, group: str, client_id: str, notify: bool = True, session_id: int | None = None
    ) -> None:
        """``session_id``: the requesting connection. When the client id is listed on several
        connections, only that one leaves (RocketMQ unregisters the requesting channel);
        otherwise the client id leaves, whichever connection asked."""
        info = self._groups.get(group)
        client = info.clients.get(client_id) if info is not None else None
        if info is None or client is None:
            return
        affected = _leaving_topics(info, [client])
        if len(client.channels) > 1 and session_id in client.channels:
            del client.channels[session_id]
            logger.info("broker: consumer {} left group {} (one connection)", client_id, group)
        else:
            del info.clients[client_id]
            logger.info("broker: consumer {} left group {}", client_id, group)
        self._after_removal(info, notify, affected)

    def channel_closed(self, session_id: int) -> None:
        for info in list(self._groups.values()):
            gone = [cid for cid, c in info.clients.items() if session_id in c.channels]
            affected = _leaving_topics(info, [info.clients[cid] for cid in gone])
            for cid in gone:
                self._drop_channels(info, cid, [session_id])
                logger.info("broker: consumer {} of {} disconnected", cid, info.group)
            if gone:
                self._after_removal(info, True, affected)

    def scan_expired(self, expire_s: float) -> list[str]:
        now = self._clock()
        dropped = []
        for info in list(self._groups.values()):
            expired: list[_Client] = []
            per_topic = _per_topic(info)  # (before any goes)
            for cid, client in list(info.clients.items()):
                stale = [s for s, c in client.channels.items() if now - c.last_update > expire_s]
                if stale:
                    expired.append(client)
                    self._drop_channels(info, cid, stale)
                    dropped.append(cid)
                    logger.info("broker: consumer {} of {} expired", cid, info.group)
            if expired:
                topics = frozenset().union(*(c.topics for c in expired)) if per_topic else None
                self._after_removal(info, True, topics)
        return dropped

    @staticmethod
    def _drop_channels(info: GroupInfo, client_id: str, session_ids: list[int]) -> None:
        client = info.clients[client_id]
        for session_id in session_ids:
            client.channels.pop(session_id, None)
        if not client.channels:
            del info.clients[client_id]

    @staticmethod
    def _prune(info: GroupInfo) -> None:
        """The group's subscriptions keep only topics a member subscribes (a group whose
        members come and go with lite topics would otherwise keep every one for ever)."""
        wanted: set[str] = set()
        for client in info.clients.values():
            wanted |= client.topics
        for topic in [t for t in info.subscriptions if t not in wanted]:
            del info.subscriptions[topic]

    def _after_removal(
        self, info: GroupInfo, notify: bool = True, topics: frozenset[str] | None = None
    ) -> None:
        if info.clients:
            self._prune(info)
            if notify:
                self._notify(info, topics if _per_topic(info) else None)
        else:
            del self._groups[info.group]

    def _notify(
        self, info: GroupInfo, topics: frozenset[str] | None = None, skip: str | None = None
    ) -> None:
        """NOTIFY_CONSUMER_IDS_CHANGED to the members. ``topics``: only these topics' lists
        changed (a group of actormq clients only): the notice names the ones each member
        subscribes (``topics`` ext, comma-separated: no topic name holds a comma), and
        members subscribing none of them are not told (several notices when the names would
        pass ``TOPICS_PER_NOTICE`` characters: a header has at most 64 KiB); ``skip``: a
        member not told (unless it is on several connections: the others may not know)."""
        for cid, client in info.clients.items():
            if cid == skip and len(client.channels) == 1:
                continue
            notices: list[dict[str, str]] = [{"consumerGroup": info.group}]
            if topics is not None:
                mine = client.topics & topics
                if not mine:
                    continue
                notices = [{"consumerGroup": info.group, "topics": t} for t in _joined(mine)]
            sessions: list[SessionHandle] = client.sessions()
            for session in sessions:
                for ext in notices:
                    session.send_oneway(
                        RemotingCommand.request(
                            RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, ext, oneway=True
                        )
                    )

    def consumer_ids(self, group: str, topic: str | None = None) -> list[str]:
        info = self._groups.get(group)
        if info is None:
            return []
        if topic is not None and not _per_topic(info):
            topic = None  # other clients rebalance over every member: so must ours, to agree
        return sorted(
            cid
            for cid, c in info.clients.items()
            if topic is None or topic in c.topics
            for _ in c.channels
        )

    def subscription(self, group: str, topic: str) -> SubscriptionData | None:
        info = self._groups.get(group)
        return info.subscriptions.get(topic) if info else None

    def groups_subscribing(self, topic: str) -> list[str]:
        return sorted(g for g, info in self._groups.items() if topic in info.subscriptions)

    def group(self, group: str) -> GroupInfo | None:
        return self._groups.get(group)

    def member_counts(self) -> dict[str, int]:
        """{group: its live members} (the metrics' consumer connections)."""
        return {g: len(info.clients) for g, info in self._groups.items() if info.clients}

    def tell_members(
        self, group: str, cmd: RemotingCommand, cmd_for_c: RemotingCommand | None = None
    ) -> int:
        info = self._groups.get(group)
        if info is None:
            return 0
        told = 0
        for c in info.clients.values():
            mine = cmd_for_c if cmd_for_c is not None and c.language == "CPP" else cmd
            told += sum(bool(session.send_oneway(mine)) for session in c.sessions())
        return told

    def find_channel(self, group: str, client_id: str) -> SessionHandle | None:
        info = self._groups.get(group)
        client = info.clients.get(client_id) if info is not None else None
        channels = sorted(client.channels.values(), key=lambda c: -c.last_update) if client else []
        return next((c.session for c in channels if c.session.alive), None)

    def connections(self, group: str) -> ConsumerConnection | None:
        info = self._groups.get(group)
        if info is None or not info.clients:
            return None
        return ConsumerConnection(
            connection_set=[
                Connection(
                    client_id=cid,
                    client_addr=getattr(session, "remote_address", ""),
                    language=c.language,
                    version=c.version,
                )
                for cid, c in sorted(info.clients.items())
                for session in c.sessions()
            ],
            subscription_table=dict(info.subscriptions),
            consume_type=info.consume_type,
            message_model=info.message_model,
            consume_from_where=info.consume_from_where,
        )
