"""The HA port with an inner account (``innerClientAuthenticationCredentials``): a master
challenges every link and answers a HELLO only after a PROOF of the account's secret, so a
peer without it can neither replicate the log nor count as an in-sync slave."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import gevent.event
import gevent.socket
import pytest
from loguru import logger

from actors.broker.ha_connection import UNACCEPTED_PER_HOST
from runtime.actor import actor_of
from runtime.ha import protocol as P
from runtime.hostport import parse_address
from runtime.node import Node
from runtime.remoting.codes import ResponseCode
from tests.actors.ha_support import (
    FakeSlave,
    T,
    broker_config,
    ha_state,
    label,
    send,
    start_broker,
    stop_node,
    wait_in_sync,
    wait_until,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

INNER = '{"accessKey": "cluster-inner", "secretKey": "inner-secret"}'


@pytest.fixture
def master(tmp_path: pathlib.Path, namesrv: str) -> Iterator[Node]:
    """A SYNC_MASTER with the inner account."""
    cfg = broker_config(
        "broker-a", 0, "SYNC_MASTER", namesrv, inner_client_authentication_credentials=INNER
    )
    node = start_broker(cfg, tmp_path / "m")
    yield node
    stop_node(node)


def ha_address(node: Node) -> str:
    return node.ha_addresses[label(node)]


def answer_challenge(fake: FakeSlave, secret: str) -> None:
    """Read the master's CHALLENGE (the first frame it sends) and answer it from ``secret``."""
    challenge = fake.next_frame()
    assert isinstance(challenge, P.Challenge)
    fake.sock.sendall(P.proof_of(secret, challenge.nonce))


def test_a_peer_without_the_secret_is_refused(master: Node) -> None:
    # Given a peer that reaches the master's HA port and says HELLO as node 1
    fake = FakeSlave(ha_address(master), node=1)
    try:
        # Then the master challenges it before anything else; when it answers with a proof
        # made from a guessed secret
        answer_challenge(fake, "guessed")
        # Then it is refused as unauthenticated and the link closed, nothing sent
        refused = fake.next_frame()
        assert isinstance(refused, P.Refused)
        assert refused.reason is P.RefuseReason.UNAUTHENTICATED
        assert fake.closed_by_master()
        assert not any(isinstance(f, P.Accept | P.Data) for f in fake.frames)
        assert 1 not in ha_state(master).in_sync
    finally:
        fake.close()


def test_a_peer_with_the_secret_is_accepted(master: Node) -> None:
    fake = FakeSlave(ha_address(master), node=1)
    try:
        # When the answer is made from the inner account's secret
        answer_challenge(fake, "inner-secret")
        # Then the master accepts the HELLO
        assert isinstance(fake.next_frame(), P.Accept)
    finally:
        fake.close()


def test_a_slave_with_the_account_replicates_and_one_without_is_told_why(
    tmp_path: pathlib.Path, namesrv: str, master: Node
) -> None:
    told = gevent.event.Event()
    sink = logger.add(lambda m: told.set() if "asks slaves to prove" in m else None, level="ERROR")
    nodes: list[Node] = []
    try:
        # Given a slave without the inner account
        where = ha_address(master)
        bad_cfg = broker_config("broker-a", 2, "SLAVE", namesrv, ha_master_address=where)
        nodes.append(bad := start_broker(bad_cfg, tmp_path / "bad"))
        # Then it logs an ERROR naming the key
        assert told.wait(T)
        # Given a slave with the same inner account
        good_cfg = broker_config(
            "broker-a",
            1,
            "SLAVE",
            namesrv,
            ha_master_address=where,
            inner_client_authentication_credentials=INNER,
        )
        nodes.append(start_broker(good_cfg, tmp_path / "good"))
        # Then it links and joins the in-sync set, and the other does not
        wait_in_sync(master, 1)
        assert ha_state(bad).master_link_up is False
        assert 2 not in ha_state(master).in_sync
        # And a SYNC_MASTER send is acknowledged (the slave with the account holds it)
        client = WireClient(master.addresses[label(master)])
        try:
            assert send(client, "AuthTopic", b"x").code == ResponseCode.SUCCESS
        finally:
            client.close()
    finally:
        logger.remove(sink)
        for node in nodes:
            stop_node(node)


def test_a_slave_with_the_account_links_to_a_master_without_it(
    tmp_path: pathlib.Path, namesrv: str
) -> None:
    # Given a SYNC_MASTER without the inner account (docs/deploy.md's rollout: slaves first)
    plain = start_broker(broker_config("broker-a", 0, "SYNC_MASTER", namesrv), tmp_path / "m")
    nodes = [plain]
    try:
        # When a slave with the account links to it
        cfg = broker_config(
            "broker-a",
            1,
            "SLAVE",
            namesrv,
            ha_master_address=ha_address(plain),
            inner_client_authentication_credentials=INNER,
        )
        nodes.append(start_broker(cfg, tmp_path / "s"))
        # Then it is in sync (no CHALLENGE came, no PROOF was sent) and acknowledges sends
        wait_in_sync(plain, 1)
        client = WireClient(plain.addresses[label(plain)])
        try:
            assert send(client, "RolloutTopic", b"x").code == ResponseCode.SUCCESS
        finally:
            client.close()
    finally:
        for node in nodes:
            stop_node(node)


def test_a_host_may_hold_only_a_few_links_before_their_accept(master: Node) -> None:
    # Given peers of one host holding links open without ever proving the secret
    address = parse_address(ha_address(master))
    silent = [
        gevent.socket.create_connection(address, timeout=T) for _ in range(UNACCEPTED_PER_HOST)
    ]
    try:
        for sock in silent:
            assert sock.recv(64)[:1] == bytes([P.CHALLENGE])  # each counted, challenged
        # When one more link comes from that host, Then it is closed at once, unchallenged
        extra = gevent.socket.create_connection(address, timeout=T)
        try:
            assert extra.recv(64) == b""
        finally:
            extra.close()
    finally:
        for sock in silent:
            sock.close()
    # And once those links are gone a slave with the secret links again
    service = actor_of(master.directory.require(f"{label(master)}/ha-service"))
    wait_until(lambda: not service.ha.unaccepted, what="the silent links closed")
    fake = FakeSlave(ha_address(master), node=1)
    try:
        answer_challenge(fake, "inner-secret")
        assert isinstance(fake.next_frame(), P.Accept)
        assert not service.ha.unaccepted  # an accepted link no longer counts
    finally:
        fake.close()


def test_a_slave_with_another_secret_is_told_why(
    tmp_path: pathlib.Path, namesrv: str, master: Node
) -> None:
    told = gevent.event.Event()
    sink = logger.add(lambda m: told.set() if "refused this broker's proof" in m else None)
    try:
        # Given a slave whose inner account has another secret
        other = '{"accessKey": "cluster-inner", "secretKey": "another-secret"}'
        cfg = broker_config(
            "broker-a",
            1,
            "SLAVE",
            namesrv,
            ha_master_address=ha_address(master),
            inner_client_authentication_credentials=other,
        )
        node = start_broker(cfg, tmp_path / "other")
        try:
            # Then the master refuses its proof and the slave logs why, and never links
            assert told.wait(T)
            assert 1 not in ha_state(master).in_sync
        finally:
            stop_node(node)
    finally:
        logger.remove(sink)


def test_links_that_end_before_their_accept_are_no_longer_counted(
    master: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (review of the per-host count: every way a link ends before its ACCEPT gives its
    # place back, so a host is never locked out for good)
    import actors.broker.ha_hello as ha_hello

    service = actor_of(master.directory.require(f"{label(master)}/ha-service"))
    # Given links refused for a bad proof, closed by the peer after the challenge, and one
    # whose HELLO makes the HAConnection raise (the actor fails)
    for _ in range(UNACCEPTED_PER_HOST + 2):
        fake = FakeSlave(ha_address(master), node=1)
        try:
            answer_challenge(fake, "guessed")
            assert isinstance(fake.next_frame(), P.Refused)
        finally:
            fake.close()
    for _ in range(UNACCEPTED_PER_HOST + 2):
        gevent.socket.create_connection(parse_address(ha_address(master)), timeout=T).close()

    def broken(*_args: object) -> int:
        raise RuntimeError("injected")

    monkeypatch.setattr(ha_hello, "consistent_point", broken)
    for _ in range(UNACCEPTED_PER_HOST + 2):
        fake = FakeSlave(ha_address(master), node=1)
        try:
            answer_challenge(fake, "inner-secret")
            assert fake.closed_by_master()
        finally:
            fake.close()
    monkeypatch.undo()
    # Then none of them still counts, and a slave with the secret is accepted
    wait_until(lambda: not service.ha.unaccepted, what="no link waiting")
    fake = FakeSlave(ha_address(master), node=1)
    try:
        answer_challenge(fake, "inner-secret")
        assert isinstance(fake.next_frame(), P.Accept)
    finally:
        fake.close()
