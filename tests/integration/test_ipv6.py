"""A cluster on ``::1``: name server, master and slave of broker-a listening on IPv6 loopback in
one ``python -m runtime cluster`` process; our Producer, PushConsumer, lite PullConsumer and
Admin talk to it over IPv6 and the slave replicates over the IPv6 HA link. Records carry
RocketMQ's BORNHOST_V6 / STOREHOST_V6 sysFlag bits and the offset message ids are 56 hex digits.
Skipped where this host cannot bind ``::1``."""

from __future__ import annotations

import pathlib
import socket
import time
from collections.abc import Iterator

import pytest

from actors.client import Admin, ConsumeFrom, Message, Producer, PullConsumer, PushConsumer
from runtime.hostport import parse_address
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.store import record as R
from runtime.store.msg_id import decode_offset_msg_id
from tests import forked_cli
from tests.client_support import Collector, wait_until
from tests.harness import RuntimeProcess
from tests.wire import WireClient


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not _ipv6_loopback(), reason="IPv6 is unavailable: cannot bind ::1"),
]

TOPIC = "V6Topic"
PROFILE = """
[[namesrv]]
listenHost = "::1"
listenPort = 9876

[[broker]]
brokerName = "broker-a"
brokerId = 0
brokerRole = "ASYNC_MASTER"
listenHost = "::1"
brokerIP1 = "::1"
listenPort = 10911
haListenPort = 10912

[[broker]]
brokerName = "broker-a"
brokerId = 1
brokerRole = "SLAVE"
listenHost = "::1"
brokerIP1 = "::1"
listenPort = 10921
haListenPort = 10922
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root: pathlib.Path = tmp_path_factory.mktemp("ipv6")
    (root / "p.toml").write_text(PROFILE)
    args = ["cluster", "--profile", str(root / "p.toml"), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


def test_produce_consume_view_and_replicate_over_ipv6(cluster: dict[str, str]) -> None:
    namesrv, master, slave = cluster["namesrv"], cluster["broker-a/0"], cluster["broker-a/1"]
    # Given a cluster whose ready line names unbracketed IPv6 addresses, RocketMQ style
    assert parse_address(namesrv)[0] == parse_address(master)[0] == "::1"
    assert not namesrv.startswith("[")
    bodies = [f"v6 message {i} ".encode() * (i + 1) for i in range(8)]
    # When our producer sends through the name server at [::1] (the bracketed form)
    with Producer("v6-producer", namesrv=f"[::1]:{parse_address(namesrv)[1]}") as producer:
        results = [producer.send(Message(TOPIC, b, keys=[f"k{i}"])) for i, b in enumerate(bodies)]
    # Then every send result has RocketMQ's 56-digit offset message id of an IPv6 store host
    assert all(len(r.offset_msg_id) == 56 for r in results)
    assert {decode_offset_msg_id(r.offset_msg_id).ip for r in results} == {"::1"}
    # And Admin's view-by-id reaches the broker the id names and gets the message back
    with Admin(namesrv) as admin:
        viewed = admin.view_message(results[3].offset_msg_id)
    assert viewed.body == bodies[3]
    assert viewed.sys_flag & (R.BORNHOST_V6_FLAG | R.STOREHOST_V6_FLAG) == 0x30
    assert viewed.born_host.startswith("::1:") and viewed.store_host == master
    # And so does the admin CLI (mqadmin queryMsgById), given the name server unbracketed
    cli = forked_cli.run(["admin", "queryMsgById", "-n", namesrv, "-i", results[5].offset_msg_id])
    assert cli.returncode == 0, cli.stderr
    assert results[5].offset_msg_id in cli.stdout and "::1:" in cli.stdout
    # And a push consumer and the lite pull consumer get every body intact
    by_id = {r.msg_id: b for r, b in zip(results, bodies, strict=True)}
    for consumed in (_consume_push(namesrv, len(bodies)), _consume_pull(namesrv, len(bodies))):
        assert {m.msg_id: m.body for m in consumed} == by_id
        assert {m.offset_msg_id for m in consumed} == {r.offset_msg_id for r in results}
    # And the slave replicated every record over the IPv6 HA link: it finds each one by the
    # commit-log offset in the id (VIEW_MESSAGE_BY_ID), stored with its IPv6 hosts
    client = WireClient(slave)
    try:
        for result, body in zip(results, bodies, strict=True):
            offset = decode_offset_msg_id(result.offset_msg_id).physical_offset
            record = _replicated(client, offset)
            assert (record.body, record.msg_id) == (body, result.offset_msg_id)
    finally:
        client.close()


def _replicated(client: WireClient, offset: int) -> R.StoredRecord:
    """The record at ``offset`` once the slave has it (AssertionError after 30 s)."""
    got: list[R.StoredRecord] = []

    def present() -> bool:
        reply = client.call(RequestCode.VIEW_MESSAGE_BY_ID, {"offset": str(offset)})
        if reply.code == ResponseCode.SUCCESS:
            got.append(R.decode_record(reply.body))
        return bool(got)

    wait_until(present, timeout=30, what=f"the slave to hold offset {offset}", interval=0.05)
    return got[0]


def _consume_push(namesrv: str, expect: int) -> list:
    got = Collector(expect)
    consumer = PushConsumer("v6-push", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe(TOPIC, "*", got)
    consumer.start()
    try:
        assert got.done.wait(30), f"push consumer got {len(got.messages)} of {expect}"
    finally:
        consumer.shutdown()
    return got.messages


def _consume_pull(namesrv: str, expect: int) -> list:
    consumer = PullConsumer("v6-pull", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe(TOPIC, "*")
    consumer.start()
    polled: list = []
    try:
        deadline = time.monotonic() + 30
        while len(polled) < expect and time.monotonic() < deadline:
            polled += consumer.poll(0.5)
    finally:
        consumer.shutdown()
    return polled
