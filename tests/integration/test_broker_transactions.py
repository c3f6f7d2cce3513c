"""Transactional messages over the wire: half messages stay invisible until committed,
rollbacks never appear, and the broker asks a live producer about forgotten ones."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import encode_properties
from tests.harness import RuntimeProcess
from tests.integration.test_broker_wire import pull, records
from tests.profiles import one_broker
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(90)

PROFILE = one_broker(
    {"transactionTimeOut": 300, "transactionCheckInterval": 200, "transactionCheckMax": 3},
    description="transactions test: fast check-back",
)


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("tx")
    profile = root / "tx.toml"
    profile.write_text(PROFILE)
    args = [
        "cluster",
        "--profile",
        str(profile),
        "--ephemeral-ports",
        "--data-dir",
        str(root / "data"),
    ]
    with RuntimeProcess(args) as node:
        yield node.wait_ready()["broker-a/0"]
        assert node.terminate() == 0, node.stderr_text()


def producer(address: str, group: str) -> WireClient:
    client = WireClient(address)
    hb = {
        "clientID": f"{group}-client",
        "producerDataSet": [{"groupName": group}],
        "consumerDataSet": [],
    }
    assert client.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode()).code == 0
    return client


def send_half(client: WireClient, topic: str, group: str, body: bytes, uniq: str) -> int:
    props = encode_properties({"TRAN_MSG": "true", "PGROUP": group, "UNIQ_KEY": uniq})
    r = client.call(
        RequestCode.SEND_MESSAGE_V2,
        send_v2_header(topic, group=group, sys_flag=4, properties=props),
        body,
    )
    assert r.code == ResponseCode.SUCCESS, r.remark
    assert r.ext_fields["transactionId"] == uniq
    return int(r.ext_fields["msgId"][16:], 16)


def end(client: WireClient, group: str, offset: int, decision: int, *, check: bool = False) -> None:
    client.send(
        RemotingCommand.request(
            RequestCode.END_TRANSACTION,
            {
                "producerGroup": group,
                "tranStateTableOffset": offset,
                "commitLogOffset": offset,
                "commitOrRollback": decision,
                "fromTransactionCheck": check,
                "msgId": "x",
            },
            oneway=True,
        )
    )


def visible(client: WireClient, topic: str, *, wait_ms: int = 0) -> list[bytes]:
    got = pull(client, topic, 0, 0, suspend_ms=wait_ms)
    return [r.body for r in records(got.body)] if got.code == ResponseCode.SUCCESS else []


def test_commit_makes_visible_and_rollback_never_does(address: str) -> None:
    client = producer(address, "txg")
    # Given two half messages
    committed = send_half(client, "TxT", "txg", b"commit-me", "U-1")
    rolled = send_half(client, "TxT", "txg", b"roll-me-back", "U-2")
    # Then neither is visible
    assert visible(client, "TxT") == []
    # When one commits and the other rolls back
    end(client, "txg", committed, 8)
    end(client, "txg", rolled, 12)
    # Then only the committed one appears, once, even if the commit is repeated
    assert visible(client, "TxT", wait_ms=3000) == [b"commit-me"]
    end(client, "txg", committed, 8)
    assert visible(client, "TxT") == [b"commit-me"]


def test_broker_checks_back_with_a_live_producer(address: str) -> None:
    client = producer(address, "txc")
    offset = send_half(client, "TxCheck", "txc", b"decide-later", "U-3")
    # When the producer forgets to decide, Then the broker asks it on its connection
    check = wait_for_check(client, 10)
    assert int(check.ext_fields["commitLogOffset"]) == offset
    assert check.ext_fields["transactionId"] == "U-3"
    assert records(check.body)[0].body == b"decide-later"
    # When it answers commit, Then the message becomes visible
    end(client, "txc", offset, 8, check=True)
    assert visible(client, "TxCheck", wait_ms=3000) == [b"decide-later"]


def test_the_check_reaches_a_producer_before_its_first_heartbeat(address: str) -> None:
    # Given a producer whose first heartbeat ran before it knew this broker (RocketMQ's clients
    # send the next one 30 s later): it sends a half message without ever heartbeating here
    client = WireClient(address)
    offset = send_half(client, "TxEarly", "txe", b"asked-early", "U-5")
    # When it leaves the transaction open, Then the broker asks on the connection that sent it
    check = wait_for_check(client, 10)
    assert int(check.ext_fields["commitLogOffset"]) == offset
    assert check.ext_fields["transactionId"] == "U-5"
    end(client, "txe", offset, 8, check=True)
    assert visible(client, "TxEarly", wait_ms=3000) == [b"asked-early"]


def wait_for_check(client: WireClient, timeout: float) -> RemotingCommand:
    """The next CHECK_TRANSACTION_STATE the broker pushes to ``client`` (skipping responses)."""
    return client.wait_for_request(RequestCode.CHECK_TRANSACTION_STATE, timeout)


def test_unanswered_checks_stop_after_the_maximum(address: str, tmp_path: pathlib.Path) -> None:
    client = producer(address, "txm")
    offset = send_half(client, "TxMax", "txm", b"never-decided", "U-4")
    checks = 0
    deadline = time.monotonic() + 3  # checks come every 0.2 s after 0.3 s: 3 fit easily
    client.sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            cmd = client.receive()
        except TimeoutError:
            continue
        if cmd.code == RequestCode.CHECK_TRANSACTION_STATE:
            checks += 1
    assert checks == 3
    assert visible(client, "TxMax") == []
    # When the producer commits after all (its checks have run out), Then the message is
    # delivered, once, as RocketMQ delivers a late commit
    end(client, "txm", offset, 8)
    end(client, "txm", offset, 8)
    assert visible(client, "TxMax", wait_ms=3000) == [b"never-decided"]


def test_a_timer_on_a_half_message_applies_to_its_commit(address: str) -> None:
    client = producer(address, "txt")
    # Given a half message that asks to be delivered 500 ms later
    props = encode_properties(
        {"TRAN_MSG": "true", "PGROUP": "txt", "UNIQ_KEY": "U-5", "TIMER_DELAY_MS": "500"}
    )
    r = client.call(
        RequestCode.SEND_MESSAGE_V2,
        send_v2_header("TxTimer", group="txt", sys_flag=4, properties=props),
        b"later-commit",
    )
    assert r.code == ResponseCode.SUCCESS, r.remark
    offset = int(r.ext_fields["msgId"][16:], 16)
    # Then it is held as a half message (a check-back would find it) and is not visible
    assert visible(client, "TxTimer") == []
    committed_at = time.time() * 1000
    # When it commits, Then it arrives once its timer is due, not before
    end(client, "txt", offset, 8)
    deadline = time.monotonic() + 10
    got: list = []
    while not got and time.monotonic() < deadline:
        reply = pull(client, "TxTimer", 0, 0, suspend_ms=1000)
        got = records(reply.body) if reply.code == ResponseCode.SUCCESS else []
    assert [r.body for r in got] == [b"later-commit"]
    assert got[0].store_timestamp >= committed_at + 500 - 50
