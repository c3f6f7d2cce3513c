"""The ProducerManager's heartbeat table (actors/broker/producer_manager.py): a closed
connection costs its own entries only (a reconnect storm of thousands of producers walked the
whole table once per close), and one connection keeps a few heartbeat client ids whatever it
sends (ever-new client ids grew the table by one entry a heartbeat for 120 s)."""

from __future__ import annotations

import json
import pathlib
import time

import gevent
import pytest

from actors.broker.producer_manager import MAX_CLIENT_IDS_PER_SESSION, ProducerManager
from runtime.actor import actor_of
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import broker_config, label, start_broker, stop_node
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

PRODUCERS = 2000


class Touches:
    """Counts how often the manager looked at the entries of connections other than the one
    that closed."""

    def __init__(self) -> None:
        self.count = 0
        self.closing = -1


class CountedSession:
    """A SessionHandle stand-in whose ``session_id`` reads are counted."""

    def __init__(self, session_id: int, touches: Touches) -> None:
        self._id = session_id
        self._touches = touches
        self.alive = True
        self.remote_address = f"10.0.0.1:{session_id}"

    @property
    def session_id(self) -> int:
        if self._id != self._touches.closing:
            self._touches.count += 1
        return self._id


class CountedId(str):
    """A client id whose hashing (a set or dict lookup of it) is counted."""

    touches: Touches

    def __hash__(self) -> int:
        if not self.endswith(f"@{self.touches.closing}"):
            self.touches.count += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


def test_a_closed_connection_costs_its_own_entries_only() -> None:
    touches = Touches()
    CountedId.touches = touches
    manager = ProducerManager.start().proxy()
    try:
        # Given thousands of producers, each heartbeating on its own connection
        sessions = [CountedSession(i, touches) for i in range(PRODUCERS)]
        for i, session in enumerate(sessions):
            manager.register("pg", CountedId(f"10.0.0.1@{i}"), session, "JAVA", 1).get(timeout=5)
        # When one connection closes
        touches.closing, touches.count = 7, 0
        manager.channel_closed(7).get(timeout=5)
        # Then the manager looked at none of the other producers' entries (it walked the
        # whole table, and gathered every client id, once per close)
        assert touches.count == 0
        # And the closed one is gone, the others stay
        groups = manager.groups().get(timeout=5)
        assert len(groups["pg"]) == PRODUCERS - 1 and "10.0.0.1@7" not in groups["pg"]
        assert manager.find_channel("10.0.0.1@7").get(timeout=5) is None
        assert manager.find_channel("10.0.0.1@8").get(timeout=5) is sessions[8]
    finally:
        manager.stop()


def heartbeat(client_id: str, group: str) -> bytes:
    body = {"clientID": client_id, "producerDataSet": [{"groupName": group}]}
    return json.dumps({**body, "consumerDataSet": []}).encode()


def test_one_connection_keeps_a_few_heartbeat_client_ids(tmp_path: pathlib.Path) -> None:
    node = start_broker(broker_config("broker-t", 0, "ASYNC_MASTER", ""), tmp_path / "b")
    client = WireClient(node.addresses[label(node)])
    other = WireClient(node.addresses[label(node)])
    try:
        producers = actor_of(node.directory.require(f"{label(node)}/producers"))
        assert producers is not None
        # Given another connection's producer of the same group
        got = other.call(RequestCode.HEART_BEAT, body=heartbeat("10.0.0.2@1", "pg"))
        assert got.code == ResponseCode.SUCCESS
        # When one connection sends 200 heartbeats, each under a new client id
        for i in range(200):
            got = client.call(RequestCode.HEART_BEAT, body=heartbeat(f"10.0.0.9@{i}", "pg"))
            assert got.code == ResponseCode.SUCCESS, got.remark
        # Then the group lists that connection's most recent few client ids only, and the
        # other connection's producer
        listed = set(producers._groups["pg"])
        assert len(listed) == MAX_CLIENT_IDS_PER_SESSION + 1
        assert {"10.0.0.2@1", "10.0.0.9@199"} <= listed and "10.0.0.9@0" not in listed
        assert len(producers._speaks) == MAX_CLIENT_IDS_PER_SESSION + 1
        # And once the connection closes only the other producer is left
        client.close()
        deadline = time.monotonic() + 10
        while set(producers._groups.get("pg", ())) != {"10.0.0.2@1"}:
            assert time.monotonic() < deadline, "the closed connection's entries stayed"
            gevent.sleep(0.05)
        assert set(producers._speaks) == {"10.0.0.2@1"}
    finally:
        client.close()
        other.close()
        stop_node(node)


def test_a_client_id_that_moved_connection_stays_when_its_old_one_closes() -> None:
    touches = Touches()
    manager = ProducerManager.start().proxy()
    try:
        old, new = CountedSession(1, touches), CountedSession(2, touches)
        # Given a producer that reconnected: its heartbeat now comes on a new connection
        manager.register("pg", "10.0.0.1@1", old).get(timeout=5)
        manager.register("pg", "10.0.0.1@1", new).get(timeout=5)
        # When the old connection's close is seen
        manager.channel_closed(1).get(timeout=5)
        # Then the producer is still reached on its new one
        assert manager.find_channel("10.0.0.1@1").get(timeout=5) is new
        assert manager.any_channel("pg").get(timeout=5) is new
        # And the new one's close removes it
        manager.channel_closed(2).get(timeout=5)
        assert manager.groups().get(timeout=5) == {}
    finally:
        manager.stop()
