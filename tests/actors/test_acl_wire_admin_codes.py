"""The broker's plain ACL over real sockets, for the requests that needed only a valid signature
after 91809f3: reading every group's and topic's configs and offsets (what a slave copies),
cleaning queues and topics, resuming a half message's checks, and handing a stored message to
a consumer (CONSUME_MESSAGE_DIRECTLY). The first ones need an admin account now (a slave signs
with the inner account or is white-listed: its sync goes on); the last SUB on its group and
topic, then on the topic the message is stored in."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.acl.signature import SessionCredentials
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.actors.test_ha_slave import Pair
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(60)

BROAD = SessionCredentials("broad-account", "broad-secret")
"""PUB|SUB on every topic, SUB on every group; not an admin."""
CONSUMER = SessionCredentials("orders-consumer", "consumer-secret")
"""SUB on AclOrders and group billing only."""
OPERATOR = SessionCredentials("operator-key", "operator-secret")
INNER = '{"accessKey": "cluster-inner", "secretKey": "inner-secret"}'
ACL = """
accounts:
  - accessKey: broad-account
    secretKey: broad-secret
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: SUB
  - accessKey: orders-consumer
    secretKey: consumer-secret
    topicPerms: [AclOrders=SUB]
    groupPerms: [billing=SUB]
  - accessKey: operator-key
    secretKey: operator-secret
    admin: true
"""
ADMIN_READS = {
    RequestCode.GET_ALL_TOPIC_CONFIG: {},
    RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: {},
    RequestCode.GET_ALL_CONSUMER_OFFSET: {},
    RequestCode.GET_ALL_DELAY_OFFSET: {},
    60: {},  # GET_TIMER_CHECK_POINT
    3011: {},  # GET_TRANSACTION_TABLE (actormq's)
    3012: {},  # GET_METADATA_VERSION (actormq's)
    3013: {},  # GET_TAIL_LOSS_GUARD (actormq's)
}
ADMIN_OPERATIONS = {
    RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE: {},
    RequestCode.CLEAN_UNUSED_TOPIC: {},
    RequestCode.RESUME_CHECK_HALF_MESSAGE: {"msgId": "7F00000100002A9F0000000000000000"},
}


def acl_file(tmp_path: pathlib.Path, text: str = ACL) -> str:
    path = tmp_path / "plain_acl.yml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def client(tmp_path: pathlib.Path) -> Iterator[WireClient]:
    with lone_broker(tmp_path / "data", acl_enable=True, acl_file=acl_file(tmp_path)) as client:
        for topic in ("AclOrders", "AclAudit"):
            ext = {"topic": topic, "readQueueNums": 1, "writeQueueNums": 1, "perm": 6}
            created = client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext, credentials=OPERATOR)
            assert created.code == ResponseCode.SUCCESS, created.remark
        yield client


def acl_refused(got: Any) -> bool:
    return got.code == ResponseCode.SYSTEM_ERROR and (got.remark or "").startswith("AclException: ")


def test_reading_every_groups_offsets_and_configs_needs_an_admin_account(
    client: WireClient,
) -> None:
    # Given a group's committed offset on AclOrders
    commit = {"consumerGroup": "billing", "topic": "AclOrders", "queueId": 0, "commitOffset": 3}
    got = client.call(RequestCode.UPDATE_CONSUMER_OFFSET, commit, b"", OPERATOR)
    assert got.code == ResponseCode.SUCCESS, got.remark
    with no_errors_logged() as errors:
        for code, ext in ADMIN_READS.items():
            # When an account with PUB|SUB on every topic and SUB on every group, not an
            # admin, asks for the whole table
            got = client.call(code, ext, b"", BROAD)
            # Then it is refused as an admin code, nothing of the table answered
            want = f"Need admin permission for request code={code}, but accessKey=broad-account"
            assert acl_refused(got) and want in got.remark, (code, got.code, got.remark)
            assert not got.body
            # And an admin account is served
            got = client.call(code, ext, b"", OPERATOR)
            assert not acl_refused(got), (code, got.remark)
        offsets = client.call(RequestCode.GET_ALL_CONSUMER_OFFSET, {}, b"", OPERATOR)
        assert json.loads(offsets.body)["offsetTable"]["AclOrders@billing"] == {"0": 3}
    assert errors == []


def test_cleaning_queues_and_topics_and_resuming_checks_need_an_admin_account(
    client: WireClient,
) -> None:
    with no_errors_logged() as errors:
        for code, ext in ADMIN_OPERATIONS.items():
            # When a valid account that is not an admin asks for an admin operation
            got = client.call(code, ext, b"", BROAD)
            # Then it is refused; an admin's is served (323's id names no half message here)
            assert acl_refused(got) and "Need admin permission" in got.remark, (code, got.remark)
            got = client.call(code, ext, b"", OPERATOR)
            assert not acl_refused(got), (code, got.remark)
    assert errors == []


def publish(client: WireClient, topic: str) -> str:
    """Sends one message to ``topic``; its offset message id."""
    sent = client.call(RequestCode.SEND_MESSAGE_V2, send_v2_header(topic), b"secret", OPERATOR)
    assert sent.code == ResponseCode.SUCCESS, sent.remark
    return str(sent.ext_fields["msgId"])


def consume_directly(
    client: WireClient, msg_id: str, topic: str, credentials: SessionCredentials
) -> Any:
    ext = {"consumerGroup": "billing", "clientId": "nobody@1", "msgId": msg_id, "topic": topic}
    return client.call(RequestCode.CONSUME_MESSAGE_DIRECTLY, ext, b"", credentials)


def test_handing_a_message_to_a_consumer_needs_sub_on_its_group_and_stored_topic(
    client: WireClient,
) -> None:
    # Given a message in AclAudit and one in AclOrders, and a consumer of AclOrders (group
    # billing) only
    audit, orders = publish(client, "AclAudit"), publish(client, "AclOrders")
    with no_errors_logged() as errors:
        # When it hands the AclAudit message to a consumer of billing, naming its own topic
        got = consume_directly(client, audit, "AclOrders", CONSUMER)
        # Then the message's own topic decides: refused
        assert got.remark == "AclException: No permission for topic:AclAudit", got.remark
        # And naming a topic it may not read is refused before the message is read
        got = consume_directly(client, orders, "AclAudit", CONSUMER)
        assert got.remark == "AclException: No permission for topic:AclAudit", got.remark
        # And another group's consumer is refused for the group
        ext = {"consumerGroup": "payroll", "clientId": "c@1", "msgId": orders}
        got = client.call(RequestCode.CONSUME_MESSAGE_DIRECTLY, ext, b"", CONSUMER)
        assert got.remark == "AclException: No permission for group:payroll", got.remark
        # And its own message goes on to the consumer (not online here)
        got = consume_directly(client, orders, "AclOrders", CONSUMER)
        assert got.remark == "The Consumer <nobody@1> not online", got.remark
    assert errors == []


def synced_pair(pairs: list[Pair], tmp_path: pathlib.Path, acl: str, **extra: Any) -> Pair:
    """A master and its slave under the ACL file ``acl``; the master holds topic SYNC-ACL and
    billing's offset on it, and the slave ran one SlaveSynchronize round."""
    p = Pair(tmp_path, acl_enable=True, acl_file=acl_file(tmp_path, acl), **extra)
    pairs.append(p)
    ext = {"topic": "SYNC-ACL", "readQueueNums": 1, "writeQueueNums": 1, "perm": 6}
    made = p.to_master.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext, b"", OPERATOR)
    assert made.code == ResponseCode.SUCCESS, made.remark
    commit = {"consumerGroup": "billing", "topic": "SYNC-ACL", "queueId": 0, "commitOffset": 5}
    got = p.to_master.call(RequestCode.UPDATE_CONSUMER_OFFSET, commit, b"", OPERATOR)
    assert got.code == ResponseCode.SUCCESS, got.remark
    assert p.sync()
    return p


@pytest.fixture
def pairs() -> Iterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for p in made:
        p.close()


def slave_holds_the_masters_metadata(p: Pair) -> None:
    got = p.to_slave.call(RequestCode.GET_ALL_TOPIC_CONFIG, {}, b"", OPERATOR)
    assert "SYNC-ACL" in json.loads(got.body)["topicConfigTable"]
    query = {"consumerGroup": "billing", "topic": "SYNC-ACL", "queueId": 0}
    got = p.to_slave.call(RequestCode.QUERY_CONSUMER_OFFSET, query, b"", OPERATOR)
    assert (got.code, got.ext_fields.get("offset")) == (ResponseCode.SUCCESS, "5"), got.remark


def test_a_slave_signing_with_the_inner_account_still_copies_its_masters_metadata(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    # Given a master and slave with the inner account, under a file where it is no admin
    # When the slave syncs, Then it holds the master's topic and offset
    p = synced_pair(pairs, tmp_path, ACL, inner_client_authentication_credentials=INNER)
    slave_holds_the_masters_metadata(p)


def test_a_white_listed_slave_still_copies_its_masters_metadata(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    # Given a master and slave without an inner account, their host white-listed
    # When the slave syncs, Then it holds the master's topic and offset
    white = "globalWhiteRemoteAddresses: [127.0.0.1]\n" + ACL
    p = synced_pair(pairs, tmp_path, white)
    slave_holds_the_masters_metadata(p)
