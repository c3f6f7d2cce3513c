"""The plain ACL against a real process (``aclEnable=true``, ``aclFile``): signed clients with
the permissions they need are served, everyone else gets RocketMQ's AclException answer."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from actors.client import (
    Admin,
    BrokerError,
    ConsumeFrom,
    Message,
    Producer,
    PushConsumer,
    SendFailedError,
    SendStatus,
    SessionCredentials,
)
from tests.client_support import Collector
from tests.harness import RuntimeProcess
from tests.profiles import one_broker

pytestmark = pytest.mark.timeout(90)

REPO = pathlib.Path(__file__).resolve().parents[2]
PRODUCER = SessionCredentials("orders-producer", "producer-secret")
CONSUMER = SessionCredentials("orders-billing", "consumer-secret")
OPERATOR = SessionCredentials("operator-key", "operator-secret")
ACL = """
accounts:
  - accessKey: orders-producer
    secretKey: producer-secret
    defaultTopicPerm: DENY
    topicPerms: [AclOrders=PUB]
  - accessKey: orders-billing
    secretKey: consumer-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [AclOrders=SUB]
    groupPerms: [billing=SUB]
  - accessKey: operator-key
    secretKey: operator-secret
    admin: true
"""


def profile(root: pathlib.Path, acl_file: pathlib.Path) -> pathlib.Path:
    path = root / "acl.toml"
    path.write_text(one_broker({"aclEnable": True, "aclFile": str(acl_file)}))
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("acl")
    acl_file = root / "plain_acl.yml"
    acl_file.write_text(ACL)
    args = ["cluster", "--profile", str(profile(root, acl_file)), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


def test_signed_clients_with_permissions_produce_and_consume(cluster: dict[str, str]) -> None:
    namesrv = cluster["namesrv"]
    # Given a producer allowed to publish to AclOrders and a consumer allowed to read it
    with Producer("acl-pg", namesrv, credentials=PRODUCER) as producer:
        # When it sends, Then the broker stores the message
        sent = producer.send(Message("AclOrders", b"paid-42", tags="paid"))
        assert sent.status is SendStatus.SEND_OK
    got = Collector(1)
    consumer = PushConsumer(
        "billing", namesrv, consume_from=ConsumeFrom.FIRST, credentials=CONSUMER
    )
    consumer.subscribe("AclOrders", "*", got)
    consumer.start()
    try:
        # Then the consumer (heartbeat, pulls, offsets: all signed) receives it
        assert got.done.wait(30), "the consumer received nothing"
        assert got.bodies() == [b"paid-42"]
    finally:
        consumer.shutdown()


def test_requests_without_keys_or_permission_get_the_acl_answer(cluster: dict[str, str]) -> None:
    namesrv = cluster["namesrv"]
    # Given a producer without keys, When it sends, Then every attempt is refused
    with (
        Producer("acl-anon", namesrv, send_timeout=5.0) as anonymous,
        pytest.raises(SendFailedError) as err,
    ):
        anonymous.send(Message("AclOrders", b"x"))
    assert "AclException: No accessKey is configured" in str(err.value)
    # Given the producer's keys, When it sends to a topic it may not publish to, Then refused
    with (
        Producer("acl-pg", namesrv, credentials=PRODUCER, send_timeout=5.0) as producer,
        pytest.raises(SendFailedError) as err,
    ):
        producer.send(Message("AclAudit", b"x"))
    assert "No permission for topic:AclAudit" in str(err.value)
    # Given wrong secret, Then the signature check fails
    forged = SessionCredentials(PRODUCER.access_key, "not-the-secret")
    with (
        Producer("acl-pg", namesrv, credentials=forged, send_timeout=5.0) as producer,
        pytest.raises(SendFailedError) as err,
    ):
        producer.send(Message("AclOrders", b"x"))
    assert "Check signature failed for accessKey=orders-producer" in str(err.value)


def test_admin_codes_need_an_admin_account(cluster: dict[str, str]) -> None:
    namesrv = cluster["namesrv"]
    # Given a non-admin account, When it creates a topic, Then refused
    with Admin(namesrv, credentials=PRODUCER) as admin, pytest.raises(BrokerError) as err:
        admin.create_topic("AclNew", broker_addr=cluster["broker-a/0"])
    assert "Need admin permission for request code=17" in str(err.value)
    # Given the operator's admin account, Then it may
    with Admin(namesrv, credentials=OPERATOR) as admin:
        assert admin.create_topic("AclNew", broker_addr=cluster["broker-a/0"])


def test_a_missing_acl_file_stops_the_start_naming_it(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nowhere" / "plain_acl.yml"
    args = ["cluster", "--profile", str(profile(tmp_path, missing)), "--ephemeral-ports"]
    node = RuntimeProcess([*args, "--data-dir", str(tmp_path / "data")])
    assert node.wait() == 2
    err = node.stderr_text()
    assert str(missing) in err and "cannot read the ACL file" in err


def admin_cli(
    cluster: dict[str, str], home: pathlib.Path | None, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ROCKETMQ_HOME"}
    if home is not None:
        env["ROCKETMQ_HOME"] = str(home)
    command = [sys.executable, "-m", "runtime", "admin", *args, "-n", cluster["namesrv"]]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_the_admin_command_signs_with_the_keys_of_tools_yml(
    cluster: dict[str, str], tmp_path: pathlib.Path
) -> None:
    create = ("updateTopic", "-t", "AclCli", "-b", cluster["broker-a/0"])
    # Given no tools.yml, When the admin command creates a topic, Then the broker refuses
    refused = admin_cli(cluster, None, *create)
    assert refused.returncode == 1 and "No accessKey is configured" in refused.stderr
    # Given $ROCKETMQ_HOME/conf/tools.yml with the operator's keys, Then it is served
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "tools.yml").write_text(
        f"accessKey: {OPERATOR.access_key}\nsecretKey: {OPERATOR.secret_key}\n"
    )
    done = admin_cli(cluster, tmp_path, *create)
    assert done.returncode == 0, done.stderr
    # Given a tools.yml without a secret, Then the command stops, naming file and key
    (tmp_path / "conf" / "tools.yml").write_text(f"accessKey: {OPERATOR.access_key}\n")
    wrong = admin_cli(cluster, tmp_path, *create)
    assert wrong.returncode == 2 and "tools.yml: secretKey: missing" in wrong.stderr


def test_accounts_are_managed_through_the_broker(
    cluster: dict[str, str], tmp_path: pathlib.Path
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    auditor = SessionCredentials("audit-writer", "audit-secret")
    with Admin(namesrv, credentials=OPERATOR) as admin:
        before = admin.acl_config_versions(broker_addr=broker)[0].counter
        # Given the operator creates an account allowed to publish to AclAudit
        applied = admin.update_acl_config(
            auditor.access_key,
            secret_key=auditor.secret_key,
            default_topic_perm="DENY",
            topic_perms=["AclAudit=PUB"],
            cluster="DefaultCluster",
        )
        assert applied == [broker]
        # Then the broker's file version moved, and the account may publish at once
        assert admin.acl_config_versions(broker_addr=broker)[0].counter == before + 1
        with Producer("acl-audit", namesrv, credentials=auditor) as producer:
            assert producer.send(Message("AclAudit", b"x")).status is SendStatus.SEND_OK
        # When a non-admin account tries to change the ACL, Then it is refused
        with Admin(namesrv, credentials=PRODUCER) as other, pytest.raises(BrokerError) as err:
            other.delete_acl_config(auditor.access_key, broker_addr=broker)
        assert "Need admin permission for request code=51" in str(err.value)
    # When the operator deletes it with the admin command, Then its sends are refused
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "tools.yml").write_text(
        f"accessKey: {OPERATOR.access_key}\nsecretKey: {OPERATOR.secret_key}\n"
    )
    done = admin_cli(cluster, tmp_path, "deleteAclConfig", "-a", auditor.access_key, "-b", broker)
    assert done.returncode == 0 and "success" in done.stdout, done.stderr
    with (
        Producer("acl-audit", namesrv, credentials=auditor, send_timeout=5.0) as producer,
        pytest.raises(SendFailedError) as refused,
    ):
        producer.send(Message("AclAudit", b"y"))
    assert "No acl config for audit-writer" in str(refused.value)
    versions = admin_cli(cluster, tmp_path, "clusterAclConfigVersion", "-c", "DefaultCluster")
    assert versions.returncode == 0 and f"{before + 2}" in versions.stdout, versions.stdout
