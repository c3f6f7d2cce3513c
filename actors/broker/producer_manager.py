"""ProducerManager: live producer groups and their channels (RocketMQ's ProducerManager).

Messages (proxy methods; none blocks):
- ``register(group, client_id, session)`` -> None (every heartbeat)
- ``sent_half(group, session)`` -> None (a connection stored a half message of ``group``)
- ``sent_request(client_id, session)`` -> None (a connection stored a request message of
  request-reply naming ``client_id`` as REPLY_TO_CLIENT)
- ``unregister(group, client_id)`` -> None
- ``channel_closed(session_id)`` -> None
- ``any_channel(group)`` -> a live SessionHandle of the group, or None (transaction check-back):
  one that sent a heartbeat for the group, else one that sent a half message of the group
- ``find_channel(client_id)`` -> the live SessionHandle of that client (any group), or None
  (request-reply: the requester of a reply): one its heartbeat came on, else one it sent a
  request message on
- ``groups()`` -> group -> sorted client ids
- ``connections(group)`` -> the group's ``Connection``s (client id, address, language and
  version of its last heartbeat), sorted; [] when none
- ``producer_table()`` -> group -> its ``ProducerInfo``s (GET_ALL_PRODUCER_INFO, 328): the
  same connections with the wall-clock time of their last heartbeat

State owned (memory only): group -> client id -> (session, last heartbeat), group -> session
id -> (session, last half message), and client id -> session id -> (session, last request
message); indexed by client id (its groups) and by connection (its client ids and keys), so a
closed connection costs its own entries only, not a walk of the tables (a reconnect storm of
thousands of producers). Producers silent for 120 s are dropped by the periodic scan. A
connection is remembered for at most ``MAX_CLIENT_IDS_PER_SESSION`` heartbeat client ids, and
``MAX_KEYS_PER_SESSION`` half-message groups and as many request client ids (the least recent
beyond that is forgotten): all come from what the client sends (its heartbeat's client id, its
header's group, its message's REPLY_TO_CLIENT), and a client that varied them with every
heartbeat or send grew these tables by one entry each for 120 s.
Durability point: none.

A connection that sent a half message is a producer of its group even before its first heartbeat
reaches this broker: RocketMQ's clients heartbeat every 30 s, and one whose first heartbeat ran
before it knew any broker (the C++ client's runs 10 ms after start) stays unknown here for 30 s,
so its open transactions would go unchecked that long. Such connections answer the check-back
when no heartbeat-registered one is live; they are not listed as the group's connections.
Likewise a requester of request-reply whose reply arrives before its first heartbeat gets it on
the connection its request came on (RocketMQ's broker finds heartbeated channels only, and
answers the responder "channel of <id> not found").
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from runtime.actor import GeventActor
from runtime.remoting.bodies import Connection
from runtime.remoting.producer_bodies import ProducerInfo

EXPIRE_S = 120.0
MAX_KEYS_PER_SESSION = 16
"""Half-message groups, and request client ids, remembered per connection (a RocketMQ client
has one client id per connection, and few producer groups)."""
MAX_CLIENT_IDS_PER_SESSION = 16
"""Client ids whose heartbeats a connection's registrations are kept for (one per connection
from a RocketMQ client instance); a heartbeat under a new one beyond that drops the least
recently heartbeated one's registrations on that connection."""


class _Scan(msgspec.Struct, frozen=True, tag=True):
    pass


class ProducerManager(GeventActor):
    """Producer groups and their channels."""

    def __init__(self, *, expire_s: float = EXPIRE_S, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.expire_s = expire_s
        self._clock = clock
        self._groups: dict[str, dict[str, tuple[Any, float]]] = {}
        """group -> client id -> (session, last heartbeat)."""
        self._groups_of: dict[str, dict[str, None]] = {}
        """client id -> the groups of ``_groups`` listing it."""
        self._ids_of: dict[int, dict[str, None]] = {}
        """session id -> the client ids heartbeated on it, least recent first (an entry may
        since have moved to another connection: checked on use)."""
        self._speaks: dict[str, tuple[str, int]] = {}
        """client id -> (language, version) of its last heartbeat (while a group lists it)."""
        self._senders: dict[str, dict[int, tuple[Any, float]]] = {}
        """group -> session id -> (session, last half message sent on it)."""
        self._requesters: dict[str, dict[int, tuple[Any, float]]] = {}
        """client id -> session id -> (session, last request message sent on it)."""
        self._keys_of: dict[tuple[int, int], dict[str, None]] = {}
        """(table, session id) -> the keys of ``_senders`` (0) or ``_requesters`` (1) naming
        that session, least recently used first."""
        self._round = 0

    def on_start(self) -> None:
        self.send_every(10.0, _Scan())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Scan):
            now = self._clock()
            expired = [
                (group, cid)
                for group, clients in self._groups.items()
                for cid, (_s, seen) in clients.items()
                if now - seen > self.expire_s
            ]
            for group, cid in expired:
                self._unlist(group, cid)
            for table in (self._senders, self._requesters):
                _drop(table, lambda _s, seen: now - seen > self.expire_s)
            self._forget_expired_keys()
            self._forget_expired_ids()
            return None
        return super().on_receive(message)

    def register(
        self, group: str, client_id: str, session: Any, language: str = "", version: int = 0
    ) -> None:
        sid = session.session_id
        self._groups.setdefault(group, {})[client_id] = (session, self._clock())
        self._groups_of.setdefault(client_id, {})[group] = None
        self._speaks[client_id] = (language, version)
        ids = self._ids_of.setdefault(sid, {})
        ids.pop(client_id, None)
        ids[client_id] = None
        if len(ids) > MAX_CLIENT_IDS_PER_SESSION:
            oldest = next(iter(ids))
            del ids[oldest]
            self._unlist_on(oldest, sid)

    def sent_half(self, group: str, session: Any) -> None:
        self._remember(0, self._senders, group, session)

    def sent_request(self, client_id: str, session: Any) -> None:
        self._remember(1, self._requesters, client_id, session)

    def _remember(
        self, which: int, table: dict[str, dict[int, tuple[Any, float]]], key: str, session: Any
    ) -> None:
        """``table[key][session]`` is now; the session's least recent key beyond
        ``MAX_KEYS_PER_SESSION`` is forgotten."""
        sid = session.session_id
        keys = self._keys_of.setdefault((which, sid), {})
        keys.pop(key, None)
        keys[key] = None
        if len(keys) > MAX_KEYS_PER_SESSION:
            oldest = next(iter(keys))
            del keys[oldest]
            _forget(table, oldest, sid)
        table.setdefault(key, {})[sid] = (session, self._clock())

    def _unlist(self, group: str, client_id: str) -> None:
        """Remove ``client_id`` from ``group`` (and its language / version once no group
        lists it)."""
        clients = self._groups.get(group)
        if clients is None or clients.pop(client_id, None) is None:
            return
        if not clients:
            del self._groups[group]
        groups = self._groups_of.get(client_id)
        if groups is not None:
            groups.pop(group, None)
            if not groups:
                del self._groups_of[client_id]
                self._speaks.pop(client_id, None)

    def _unlist_on(self, client_id: str, session_id: int) -> None:
        """Remove ``client_id``'s registrations that are on connection ``session_id``."""
        for group in list(self._groups_of.get(client_id, ())):
            entry = self._groups[group][client_id]
            if entry[0].session_id == session_id:
                self._unlist(group, client_id)

    def unregister(self, group: str, client_id: str) -> None:
        self._unlist(group, client_id)

    def channel_closed(self, session_id: int) -> None:
        for client_id in self._ids_of.pop(session_id, ()):
            self._unlist_on(client_id, session_id)
        for which, table in enumerate((self._senders, self._requesters)):
            for key in self._keys_of.pop((which, session_id), ()):
                _forget(table, key, session_id)

    def _forget_expired_keys(self) -> None:
        """Drop from ``_keys_of`` what the scan expired from the tables."""
        tables = (self._senders, self._requesters)
        for (which, sid), keys in list(self._keys_of.items()):
            table = tables[which]
            for key in [k for k in keys if sid not in table.get(k, ())]:
                del keys[key]
            if not keys:
                del self._keys_of[(which, sid)]

    def _forget_expired_ids(self) -> None:
        """Drop from ``_ids_of`` the client ids no registration on that connection holds."""
        for sid, ids in list(self._ids_of.items()):
            for cid in [c for c in ids if not self._listed_on(c, sid)]:
                del ids[cid]
            if not ids:
                del self._ids_of[sid]

    def _listed_on(self, client_id: str, session_id: int) -> bool:
        return any(
            self._groups[g][client_id][0].session_id == session_id
            for g in self._groups_of.get(client_id, ())
        )

    def any_channel(self, group: str) -> Any:
        clients = [s for s, _t in self._groups.get(group, {}).values() if s.alive]
        if not clients:
            clients = [s for s, _t in self._senders.get(group, {}).values() if s.alive]
        if not clients:
            return None
        self._round += 1
        return clients[self._round % len(clients)]

    def find_channel(self, client_id: str) -> Any:
        for group in self._groups_of.get(client_id, ()):
            session = self._groups[group][client_id][0]
            if session.alive:
                return session
        for session, _t in self._requesters.get(client_id, {}).values():
            if session.alive:
                return session
        return None

    def groups(self) -> dict[str, list[str]]:
        return {g: sorted(c) for g, c in self._groups.items()}

    def connections(self, group: str) -> list[Connection]:
        out = []
        for cid, (session, _t) in sorted(self._groups.get(group, {}).items()):
            language, version = self._speaks.get(cid, ("", 0))
            address = getattr(session, "remote_address", "")
            out.append(
                Connection(client_id=cid, client_addr=address, language=language, version=version)
            )
        return out

    def producer_table(self) -> dict[str, list[ProducerInfo]]:
        wall_minus_clock = time.time() - self._clock()
        table: dict[str, list[ProducerInfo]] = {}
        for group, clients in sorted(self._groups.items()):
            for cid, (session, seen) in sorted(clients.items()):
                language, version = self._speaks.get(cid, ("", 0))
                address = getattr(session, "remote_address", "")
                table.setdefault(group, []).append(
                    ProducerInfo(
                        client_id=cid,
                        remote_ip=f"/{address}" if address else "",
                        language=language,
                        version=version,
                        last_update_timestamp=int((seen + wall_minus_clock) * 1000),
                    )
                )
        return table


def _forget(table: dict[str, dict[int, tuple[Any, float]]], key: str, session_id: int) -> None:
    """Remove ``table[key][session_id]``, and ``key`` when it names no session any more."""
    sessions = table.get(key)
    if sessions is not None:
        sessions.pop(session_id, None)
        if not sessions:
            del table[key]


def _drop(table: dict[str, dict[Any, tuple[Any, float]]], gone: Any) -> None:
    """Remove the entries ``gone(session, seen)`` names from ``table``, and groups left empty."""
    for group, clients in list(table.items()):
        for key, (session, seen) in list(clients.items()):
            if gone(session, seen):
                del clients[key]
        if not clients:
            del table[group]
