"""The inner account (``innerClientAuthenticationCredentials``) against real processes: a
controller-mode group (SYNC_MASTER + slave, ACL on, no white addresses) whose name server takes
writes only signed with the account. The brokers sign their registrations, controller
heartbeats and the slave's copy of the master's metadata with it, so the group elects, links
and acknowledges; a forged heartbeat or registration gets RocketMQ's AclException answer; the
admin's name-server writes need the account too; config answers mask the secret."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from actors.client import Admin, BrokerError, Message, Producer, SendStatus, SessionCredentials
from runtime.acl.signature import sign
from runtime.ha.control import CONTROLLER_HEARTBEAT, ControllerHeartbeat, encode
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)

INNER = SessionCredentials("cluster-inner", "inner-secret")
APP = SessionCredentials("app-account", "app-secret")
ACL = """
accounts:
  - accessKey: app-account
    secretKey: app-secret
    admin: true
"""


def _creds(c: SessionCredentials) -> str:
    return json.dumps({"accessKey": c.access_key, "secretKey": c.secret_key})


def profile(root: pathlib.Path) -> pathlib.Path:
    acl_file = root / "plain_acl.yml"
    acl_file.write_text(ACL)
    inner = "innerClientAuthenticationCredentials = '" + _creds(INNER) + "'"
    brokers = []
    for broker_id, role in ((0, "SYNC_MASTER"), (1, "SLAVE")):
        brokers += [
            "[[broker]]",
            'brokerName = "broker-a"',
            f"brokerId = {broker_id}",
            f'brokerRole = "{role}"',
            "enableControllerMode = true",
            f"listenPort = {10911 + 10 * broker_id}",
            f"haListenPort = {10912 + 10 * broker_id}",
            "aclEnable = true",
            f'aclFile = "{acl_file}"',
            inner,
        ]
    path = root / "inner.toml"
    path.write_text("\n".join(["[[namesrv]]", "listenPort = 9876", inner, *brokers]) + "\n")
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("inner")
    args = ["cluster", "--profile", str(profile(root)), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


def heartbeat(group: str) -> RemotingCommand:
    hb = ControllerHeartbeat(
        cluster="DefaultCluster",
        group=group,
        node=0,
        addr="127.0.0.1:1",
        ha_addr="127.0.0.1:2",
        claim_master=True,
        epoch=1,
        max_offset=0,
    )
    return RemotingCommand.request(CONTROLLER_HEARTBEAT, body=encode(hb))


def register(group: str) -> RemotingCommand:
    header = {
        "brokerName": group,
        "brokerAddr": "127.0.0.1:1",
        "clusterName": "DefaultCluster",
        "haServerAddr": "127.0.0.1:2",
        "brokerId": "0",
        "compressed": "false",
    }
    body = b'{"topicConfigSerializeWrapper":{"topicConfigTable":{}},"filterServerList":[]}'
    return RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body)


def test_a_signed_group_elects_links_and_acknowledges(cluster: dict[str, str]) -> None:
    # Given the group's brokers signing with the name server's inner account, and a master
    # whose ACL knows only the application's account (no white addresses)
    namesrv = cluster["namesrv"]
    with Admin(namesrv) as admin:  # (a read: unsigned)
        # Then the slave links and joins the in-sync set: it copied the master's metadata
        # first, requests the master's ACL took from the inner account
        wait_until(lambda: _in_sync(admin, namesrv) == [1], timeout=20, what="the slave in sync")
    # When an application sends to its SYNC_MASTER
    with Producer("inner-pg", cluster["namesrv"], credentials=APP) as producer:
        sent = producer.send(Message("InnerOrders", b"paid-1"))
    # Then the master was elected and routed (heartbeats and registration taken), and the
    # slave acknowledged the record
    assert sent.status is SendStatus.SEND_OK


def _in_sync(admin: Admin, controller: str) -> list[int]:
    info = admin.sync_state_set(controller, ["broker-a"]).replicas_info_table["broker-a"]
    return [m.broker_id for m in info.in_sync_replicas if m.broker_id != info.master_broker_id]


@pytest.mark.parametrize("request_of", [heartbeat, register], ids=["heartbeat", "register"])
@pytest.mark.parametrize(
    "signer",
    [None, APP, SessionCredentials(INNER.access_key, "guessed")],
    ids=["unsigned", "other-account", "wrong-secret"],
)
def test_forged_writes_are_refused(
    cluster: dict[str, str], request_of, signer: SessionCredentials | None
) -> None:
    # Given a client reaching the name server's port without the inner account's secret
    client = WireClient(cluster["namesrv"])
    try:
        request = request_of("broker-forged")
        if signer is not None:
            request = sign(request, signer)
        # When it sends a controller heartbeat or a broker registration
        reply = client.call_command(request)
        # Then the name server refuses it with RocketMQ's AclException answer
        assert reply.code == ResponseCode.SYSTEM_ERROR
        assert (reply.remark or "").startswith("AclException: ")
        # and still serves reads: the forged broker holds no route
        route = client.call_command(
            RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO, {})
        )
        assert route.code == ResponseCode.SUCCESS
        assert b"broker-forged" not in route.body
        assert b"broker-a" in route.body
    finally:
        client.close()


def test_a_heartbeat_signed_with_the_inner_account_is_taken(cluster: dict[str, str]) -> None:
    client = WireClient(cluster["namesrv"])
    try:
        # When a heartbeat for a new group comes signed with the inner account
        reply = client.call_command(sign(heartbeat("broker-signed"), INNER))
        # Then the controller answers it
        assert reply.code == ResponseCode.SUCCESS, reply.remark
        assert json.loads(reply.body)["role"] in ("MASTER", "WAIT")
    finally:
        client.close()


def test_admin_writes_to_the_name_server_need_the_inner_account(
    cluster: dict[str, str],
) -> None:
    namesrv = cluster["namesrv"]
    # Given the application's account (a broker admin, not the inner account)
    # When it changes the KV config, Then the name server refuses
    with Admin(namesrv, credentials=APP) as admin, pytest.raises(BrokerError, match="Acl"):
        admin.put_kv_config("ORDER_TOPIC_CONFIG", "InnerOrders", "broker-a:4")
    # When the admin signs with the inner account (its tools.yml), Then it is served
    with Admin(namesrv, credentials=INNER) as admin:
        assert admin.put_kv_config("ORDER_TOPIC_CONFIG", "InnerOrders", "broker-a:4")
        assert admin.kv_config("ORDER_TOPIC_CONFIG", "InnerOrders") == "broker-a:4"


def test_config_answers_mask_the_secret(cluster: dict[str, str]) -> None:
    # When anyone reads the name server's config, or an admin the broker's
    client = WireClient(cluster["namesrv"])
    try:
        reply = client.call_command(RemotingCommand.request(RequestCode.GET_NAMESRV_CONFIG, {}))
    finally:
        client.close()
    broker = WireClient(cluster["broker-a/0"])
    try:
        request = RemotingCommand.request(RequestCode.GET_BROKER_CONFIG, {})
        broker_reply = broker.call_command(sign(request, APP))
    finally:
        broker.close()
    # Then the key is there, its value masked
    for answer in (reply, broker_reply):
        assert answer.code == ResponseCode.SUCCESS, answer.remark
        text = answer.body.decode()
        assert "innerClientAuthenticationCredentials=******" in text
        assert INNER.secret_key not in text
