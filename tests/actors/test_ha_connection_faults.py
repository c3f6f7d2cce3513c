"""Actor-level faults on the replication link (issue 6, item 5), in one process.

A master's ``HAConnection`` (one per slave link, started by the HA port's Acceptor and not
restarted: the slave's ``HAClient`` reconnects) and a slave's ``HAClient`` (a PERMANENT child of
the broker's supervisor) fail inside a handler, or are stopped through their ref, while a
SYNC_MASTER append waits for the slave's ack. What must hold: the master keeps serving, the
pending append is never PUT_OK on an ack nobody counted, the slave relinks and catches up to a
byte-identical log, a relinked slave counts once (by its node id), and PUT_OK comes back.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import gevent.event
import pykka
import pytest

from actors.broker.ha_client import HAClient
from actors.broker.ha_connection import HAConnection
from actors.broker.ha_messages import ClientTick, LinkReport
from runtime.actor import actor_of, watch
from runtime.ha import protocol as P
from runtime.node import Node
from runtime.remoting.codes import ResponseCode
from tests.actors.ha_support import (
    FakeSlave,
    T,
    broker_config,
    broker_node,
    ha_state,
    label,
    queue_records,
    same_commit_log,
    send,
    start_broker,
    stop_node,
    store_ctx,
    wait_in_sync,
    wait_queue,
)
from tests.wire import WireClient, send_v2

pytestmark = pytest.mark.timeout(30)

STORED_NOT_REPLICATED = {ResponseCode.FLUSH_SLAVE_TIMEOUT, ResponseCode.SLAVE_NOT_AVAILABLE}


class InjectedFault(RuntimeError):
    """The exception a test makes an actor's handler raise."""


class Pair:
    """A SYNC_MASTER and (unless ``slave=False``) its real slave (node id 1), each a Node."""

    def __init__(
        self, tmp: pathlib.Path, namesrv: str, *, slave: bool = True, discover: bool = False
    ) -> None:
        cfg = broker_config("broker-a", 0, "SYNC_MASTER", namesrv)
        self.master = start_broker(cfg, tmp / "m")
        self.ha = self.master.ha_addresses[label(self.master)]
        self.client = WireClient(self.master.addresses[label(self.master)])
        self.slave: Node | None = None
        if slave:
            # discover: no haMasterAddress; the slave learns it from the name server
            where = "" if discover else self.ha
            scfg = broker_config("broker-a", 1, "SLAVE", namesrv, ha_master_address=where)
            self.slave = start_broker(scfg, tmp / "s")

    def directory_ref(self, node: Node, suffix: str) -> pykka.ActorRef[Any]:
        return node.directory.require(f"{label(node)}/{suffix}")

    def close(self) -> None:
        self.client.close()
        if self.slave is not None:
            stop_node(self.slave)
        stop_node(self.master)


@pytest.fixture
def pairs() -> Iterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for p in made:
        p.close()


def live_connections() -> list[pykka.ActorRef[Any]]:
    return [r for r in pykka.ActorRegistry.get_by_class(HAConnection) if r.is_alive()]


def link_of(master: Node, slave: int) -> pykka.ActorRef[Any]:
    """The HAConnection actor serving ``slave``'s current link on ``master``."""
    ref = pykka.ActorRegistry.get_by_urn(ha_state(master).slaves[slave].urn)
    assert ref is not None, "no live link for that slave"
    return ref


def ended(ref: pykka.ActorRef[Any]) -> gevent.event.AsyncResult:
    """Set once the actor's greenlet has ended: its failure, or None after a clean stop."""
    done = gevent.event.AsyncResult()
    watch(ref, lambda _ref, failure: done.set(failure))
    return done


def break_on_report_past(ref: pykka.ActorRef[Any], offset: int, *, mode: str) -> gevent.event.Event:
    """Make this one HAConnection's handler fail on the first REPORT past ``offset`` (the slave
    holds the new record and says so), and set the returned event: ``raise`` raises inside the
    handler; ``stop`` swallows the report (still queued, as it were) so the test can stop the
    actor through its ref."""
    actor = actor_of(ref)
    assert isinstance(actor, HAConnection)
    original = actor.on_receive
    hit = gevent.event.Event()

    def on_receive(message: Any) -> Any:
        if isinstance(message, LinkReport) and message.offset > offset:
            hit.set()
            if mode == "raise":
                raise InjectedFault("HAConnection handler bug while passing on an ack")
            return None
        return original(message)

    actor.on_receive = on_receive  # type: ignore[method-assign]  # this instance only
    return hit


@pytest.mark.parametrize("mode", ["raise", "stop"])
def test_a_master_link_dying_mid_replication_never_acks_falsely_and_the_slave_relinks(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair], mode: str
) -> None:
    # Given a SYNC_MASTER whose slave is in sync, with 10 messages acknowledged PUT_OK
    p = Pair(tmp_path, namesrv)
    pairs.append(p)
    assert p.slave is not None
    wait_in_sync(p.master, 1)
    for i in range(10):
        assert send(p.client, "LINK", f"before-{i}".encode()).code == ResponseCode.SUCCESS
    state = ha_state(p.master)
    master_log = store_ctx(p.master).require_open().log
    slave_log = store_ctx(p.slave).require_open().log
    service = p.directory_ref(p.master, "ha-service")
    supervisor = broker_node(p.master)
    old = link_of(p.master, 1)
    old_ended = ended(old)
    hit = break_on_report_past(old, master_log.write_offset, mode=mode)
    # When a send is in flight and its link dies as the slave's ack for it comes in
    other = WireClient(p.master.addresses[label(p.master)])
    pending = send_async(p.client, "LINK", b"pending")
    assert hit.wait(T), "the slave never reported the pending record"
    end_of_pending = master_log.write_offset
    if mode == "stop":
        old.stop(block=True, timeout=T)
    failure = old_ended.get(timeout=T)
    # Then the master keeps serving on another connection while the link is down
    during = send(other, "LINK", b"during")
    other.close()
    assert during.code in STORED_NOT_REPLICATED | {ResponseCode.SUCCESS}, during
    # and the pending send is not PUT_OK on the lost ack: it times out (or, were the slave to
    # relink first, is PUT_OK on the new link, whose HELLO proves the slave holds it)
    reply = receive_reply(p.client, pending)
    if reply.code == ResponseCode.SUCCESS:
        assert state.slaves[1].urn != old.actor_urn
        assert slave_log.write_offset >= end_of_pending
    else:
        assert reply.code in STORED_NOT_REPLICATED, reply
    # and only the link died: the HAService and the broker subtree are the same actors
    assert isinstance(failure, InjectedFault) if mode == "raise" else failure is None
    assert p.directory_ref(p.master, "ha-service").actor_urn == service.actor_urn
    assert service.is_alive() and broker_node(p.master).actor_urn == supervisor.actor_urn
    # When the slave relinks (its HAClient reconnects)
    assert state.wait_until(lambda s: 1 in s.in_sync and s.slaves[1].urn != old.actor_urn, T), (
        state.slaves
    )
    # Then the slave counts once: one entry for node 1, one live link
    assert set(state.slaves) == {1}
    assert [r.actor_urn for r in live_connections()] == [state.slaves[1].urn]
    # and later sends are PUT_OK again
    for i in range(5):
        assert send(p.client, "LINK", f"after-{i}".encode()).code == ResponseCode.SUCCESS
    # and the slave caught up: every record once, in order, byte-identical segment files
    slave_ctx = store_ctx(p.slave)
    wait_queue(slave_ctx, "LINK", 0, 17)
    bodies = [r.body for r in queue_records(slave_ctx, "LINK", 0, 32)]
    want = [f"before-{i}".encode() for i in range(10)] + [b"pending", b"during"]
    assert bodies == want + [f"after-{i}".encode() for i in range(5)]
    same_commit_log(store_ctx(p.master), slave_ctx)


def test_an_ack_the_dead_link_swallowed_is_never_counted(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair]
) -> None:
    # Given a SYNC_MASTER and a hand-driven slave (node 5) in sync with it
    p = Pair(tmp_path, namesrv, slave=False)
    pairs.append(p)
    fake = FakeSlave(p.ha, node=5)
    assert isinstance(fake.next_frame(), P.Accept)
    wait_in_sync(p.master, 5)
    state = ha_state(p.master)
    log = store_ctx(p.master).require_open().log
    old = link_of(p.master, 5)
    old_ended = ended(old)
    break_on_report_past(old, log.write_offset, mode="raise")
    # When a send is pending, the slave gets its record and reports it, and the link's
    # handler fails on that report
    pending = send_async(p.client, "ACK", b"pending")
    end = fake.data_until(1)
    fake.report(end)
    assert isinstance(old_ended.get(timeout=T), InjectedFault)
    fake.sock.settimeout(T)
    assert fake.closed_by_master()
    # Then the send is stored but not PUT_OK: nobody counted that ack
    assert receive_reply(p.client, pending).code == ResponseCode.FLUSH_SLAVE_TIMEOUT
    assert 5 not in state.in_sync and state.slaves[5].acked < end
    # and with no slave in sync the next send is answered SLAVE_NOT_AVAILABLE at once
    assert send(p.client, "ACK", b"alone").code == ResponseCode.SLAVE_NOT_AVAILABLE
    fake.close()
    # When the same slave links again holding everything
    again = FakeSlave(p.ha, node=5, max_offset=log.write_offset)
    accept = again.next_frame()
    assert isinstance(accept, P.Accept) and accept.offset == log.write_offset
    wait_in_sync(p.master, 5)
    # Then it counts once, through its new link only
    assert set(state.slaves) == {5} and state.slaves[5].urn != old.actor_urn
    assert len(live_connections()) == 1
    # and a send it reports is PUT_OK
    start = log.write_offset
    request = send_async(p.client, "ACK", b"counted")
    at = again.data_until(start + 1)
    again.report(at)
    assert receive_reply(p.client, request).code == ResponseCode.SUCCESS
    again.close()


@pytest.mark.parametrize("discover", [False, True], ids=["configured", "from-namesrv"])
def test_an_ha_client_failing_in_a_handler_is_restarted_and_catches_up(
    tmp_path: pathlib.Path, namesrv: str, pairs: list[Pair], discover: bool
) -> None:
    # Given a SYNC_MASTER and its slave in sync (the slave told the master's HA address by
    # its config, or by the name server), 10 messages acknowledged
    p = Pair(tmp_path, namesrv, discover=discover)
    pairs.append(p)
    assert p.slave is not None
    wait_in_sync(p.master, 1)
    for i in range(10):
        assert send(p.client, "CLI", f"before-{i}".encode()).code == ResponseCode.SUCCESS
    state = ha_state(p.master)
    old_link = link_of(p.master, 1)
    slave_supervisor = broker_node(p.slave)
    client = p.directory_ref(p.slave, "ha-client")
    client_ended = ended(client)
    actor = actor_of(client)
    assert isinstance(actor, HAClient)
    original = actor.on_receive

    def on_receive(message: Any) -> Any:
        if isinstance(message, ClientTick):
            raise InjectedFault("HAClient handler bug")
        return original(message)

    # When the HAClient's handler raises (on its next tick)
    actor.on_receive = on_receive  # type: ignore[method-assign]
    assert isinstance(client_ended.get(timeout=T), InjectedFault)
    # Then sends meanwhile are stored (PUT_OK only once a slave holds them)
    codes = [send(p.client, "CLI", f"during-{i}".encode()).code for i in range(5)]
    assert set(codes) <= STORED_NOT_REPLICATED | {ResponseCode.SUCCESS}, codes
    # and the slave's supervisor restarted the HAClient (no escalation), which relinked
    assert broker_node(p.slave).actor_urn == slave_supervisor.actor_urn
    restarted = p.directory_ref(p.slave, "ha-client")
    assert restarted.actor_urn != client.actor_urn and restarted.is_alive()
    assert state.wait_until(
        lambda s: 1 in s.in_sync and s.slaves[1].urn != old_link.actor_urn, T
    ), state.slaves
    assert set(state.slaves) == {1}
    assert [r.actor_urn for r in live_connections()] == [state.slaves[1].urn]
    # and later sends are PUT_OK
    for i in range(5):
        assert send(p.client, "CLI", f"after-{i}".encode()).code == ResponseCode.SUCCESS
    # and the slave holds everything once, in order, byte-identical to the master
    slave_ctx = store_ctx(p.slave)
    wait_queue(slave_ctx, "CLI", 0, 20)
    want = [f"before-{i}".encode() for i in range(10)]
    want += [f"{stage}-{i}".encode() for stage in ("during", "after") for i in range(5)]
    assert [r.body for r in queue_records(slave_ctx, "CLI", 0, 32)] == want
    same_commit_log(store_ctx(p.master), slave_ctx)


# -- wire helpers: a send whose reply is read later -------------------------------------------


def send_async(client: WireClient, topic: str, body: bytes) -> int:
    """Send without waiting; returns the request's opaque for ``receive_reply``."""
    request = send_v2(topic, body, group="ha-pg")
    client.send(request)
    return request.opaque


def receive_reply(client: WireClient, opaque: int) -> Any:
    while True:
        reply = client.receive()
        if reply.is_response and reply.opaque == opaque:
            return reply
