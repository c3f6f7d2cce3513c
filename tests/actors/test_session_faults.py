"""Actor-level faults in a broker's client sessions (issue 6, item 5), over loopback TCP to an
in-process broker: a request handler that raises (before anything is stored, or after the store
appended the record), and a session actor stopped through its ref while a request is in flight.

What must hold: the client gets an error response (SYSTEM_ERROR with a remark) instead of
waiting forever, the same connection goes on serving, other connections are unaffected, nothing
acknowledged is lost (pulled back over the wire), and no actor but the stopped session ends.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import gevent.event
import pykka
import pytest

from actors.broker import processor
from actors.broker.store_adapter import StoreAdapter
from actors.broker.store_port import PutOutcome
from runtime.actor import actor_of
from runtime.node import Node
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import ClientSession, SessionHandle
from runtime.store.record import PutRecord, decode_record
from tests.actors.ha_support import (
    T,
    broker_config,
    label,
    send,
    start_broker,
    start_namesrv,
    stop_node,
    store_ctx,
    wait_queue,
)
from tests.wire import WireClient, send_v2

pytestmark = pytest.mark.timeout(20)

BUG_IN_HANDLER = b"poison: the send handler raises before storing"
BUG_AFTER_STORE = b"poison: the store port raises after the append"
HOLD = b"hold: the store port waits for the test"


class InjectedFault(RuntimeError):
    """The exception the test makes a broker handler raise."""


class Faults:
    """Faults keyed by message body, installed before the broker starts (its processor copies
    the handler table): the send handler raising, the store port raising after a real append,
    and the store port holding a send until ``release`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = gevent.event.Event()
        self.release = gevent.event.Event()
        send_handler = processor.HANDLERS[RequestCode.SEND_MESSAGE_V2]
        real_put = StoreAdapter.put
        faults = self

        def faulty_send(ctx: Any, session: SessionHandle, request: RemotingCommand) -> Any:
            if request.body == BUG_IN_HANDLER:
                raise InjectedFault("send handler bug")
            return send_handler(ctx, session, request)

        def faulty_put(self: StoreAdapter, records: list[PutRecord]) -> PutOutcome:
            bodies = {r.body for r in records}
            if HOLD in bodies:
                faults.entered.set()
                assert faults.release.wait(T)
            outcome = real_put(self, records)
            if BUG_AFTER_STORE in bodies:
                raise InjectedFault("store port failed after the append")
            return outcome

        monkeypatch.setitem(processor.HANDLERS, RequestCode.SEND_MESSAGE_V2, faulty_send)
        monkeypatch.setattr(StoreAdapter, "put", faulty_put)


class Broker:
    def __init__(self, node: Node, faults: Faults) -> None:
        self.node = node
        self.faults = faults
        self.address = node.addresses[label(node)]
        self.clients: list[WireClient] = []

    def connect(self) -> WireClient:
        client = WireClient(self.address, timeout=T)
        self.clients.append(client)
        return client

    def sessions(self) -> list[pykka.ActorRef[Any]]:
        acceptor = actor_of(self.node.directory.require(f"{label(self.node)}/acceptor"))
        return list(acceptor._sessions.values())  # type: ignore[union-attr]

    def session_of(self, client: WireClient) -> pykka.ActorRef[Any]:
        """The ClientSession actor serving ``client``'s connection."""
        host, port = client.sock.getsockname()[:2]
        for ref in self.sessions():
            session = actor_of(ref)
            assert isinstance(session, ClientSession)
            if session.handle.remote_address == f"{host}:{port}":
                return ref
        raise AssertionError(f"no session for {host}:{port}")


@pytest.fixture
def broker(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    faults = Faults(monkeypatch)
    namesrv = start_namesrv()
    cfg = broker_config("broker-s", 0, "ASYNC_MASTER", namesrv.addresses["namesrv"])
    b = Broker(start_broker(cfg, tmp_path / "b"), faults)
    yield b
    faults.release.set()
    for client in b.clients:
        client.close()
    stop_node(b.node)
    stop_node(namesrv)


def live_actors() -> dict[str, pykka.ActorRef[Any]]:
    return {ref.actor_urn: ref for ref in pykka.ActorRegistry.get_all() if ref.is_alive()}


def send_request(topic: str, body: bytes) -> RemotingCommand:
    return send_v2(topic, body, group="fault-pg")


def pull_bodies(client: WireClient, topic: str, max_nums: int = 32) -> list[bytes]:
    """PULL queue 0 of ``topic`` from offset 0 over the wire; the records' bodies."""
    ext = {
        "consumerGroup": "fault-g",
        "topic": topic,
        "queueId": 0,
        "queueOffset": 0,
        "maxMsgNums": max_nums,
        "sysFlag": 4,
        "commitOffset": 0,
        "suspendTimeoutMillis": 0,
        "subscription": "*",
        "subVersion": 0,
        "expressionType": "TAG",
    }
    reply = client.call(RequestCode.PULL_MESSAGE, ext)
    assert reply.code == ResponseCode.SUCCESS, (reply.code, reply.remark)
    bodies, pos = [], 0
    while pos < len(reply.body):
        record = decode_record(reply.body, pos)
        bodies.append(record.body)
        pos += record.total_size
    return bodies


def closed_by_server(client: WireClient) -> bool:
    """True once the server closed the connection; a read timeout fails the test."""
    try:
        return client.sock.recv(1 << 16) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("poison", [BUG_IN_HANDLER, BUG_AFTER_STORE], ids=["handler", "store"])
def test_a_handler_raising_mid_request_answers_system_error_and_serving_goes_on(
    broker: Broker, poison: bytes
) -> None:
    # Given two connections, and three messages acknowledged on the first
    first, second = broker.connect(), broker.connect()
    acked = [f"acked-{i}".encode() for i in range(3)]
    for body in acked:
        assert send(first, "FAULT", body).code == ResponseCode.SUCCESS
    before = live_actors()
    # When a send's handling raises (before the store saw it, or after it appended it)
    reply = send(first, "FAULT", poison)
    # Then that request is answered SYSTEM_ERROR with the reason, not left hanging
    assert reply.code == ResponseCode.SYSTEM_ERROR
    assert "InjectedFault" in (reply.remark or "")
    # and the same connection serves its next request, and the other connection its own
    assert send(first, "FAULT", b"next-on-first").code == ResponseCode.SUCCESS
    assert send(second, "FAULT", b"next-on-second").code == ResponseCode.SUCCESS
    # and nothing acknowledged is lost: pulled back in order (the record the store appended
    # before the fault is there too: SYSTEM_ERROR does not promise "not stored")
    stored = [poison] if poison == BUG_AFTER_STORE else []
    want = acked + stored + [b"next-on-first", b"next-on-second"]
    wait_queue(store_ctx(broker.node), "FAULT", 0, len(want))
    assert pull_bodies(second, "FAULT") == want
    # and no actor ended: not the session, not the broker's
    assert [urn for urn, ref in before.items() if not ref.is_alive()] == []
    assert len(broker.sessions()) == 2


def test_a_session_stopped_with_a_request_in_flight_closes_only_that_connection(
    broker: Broker,
) -> None:
    # Given two connections, one message acknowledged, and a send held inside the store port
    doomed, bystander = broker.connect(), broker.connect()
    assert send(doomed, "KILL", b"acked").code == ResponseCode.SUCCESS
    doomed.send(send_request("KILL", HOLD))
    assert broker.faults.entered.wait(T), "the held send never reached the store"
    session = broker.session_of(doomed)
    before = live_actors()
    # When that connection's session actor is stopped through its ref
    session.stop(block=True, timeout=T)
    # Then its client sees the connection close (no reply left hanging)
    doomed.sock.settimeout(T)
    assert closed_by_server(doomed)
    # and, once the held send completes, the broker still serves the other connection and
    # a new one
    broker.faults.release.set()
    assert send(bystander, "KILL", b"bystander").code == ResponseCode.SUCCESS
    newcomer = broker.connect()
    assert send(newcomer, "KILL", b"newcomer").code == ResponseCode.SUCCESS
    # and nothing acknowledged is lost; the in-flight send (outcome unknown to its client)
    # is stored once
    wait_queue(store_ctx(broker.node), "KILL", 0, 4)
    bodies = pull_bodies(newcomer, "KILL")
    assert [b for b in bodies if b != HOLD] == [b"acked", b"bystander", b"newcomer"]
    assert bodies.count(HOLD) == 1
    # and only that session ended
    gone = [urn for urn, ref in before.items() if not ref.is_alive()]
    assert gone == [session.actor_urn]
    assert session.actor_urn not in {r.actor_urn for r in broker.sessions()}
    assert len(broker.sessions()) == 2
