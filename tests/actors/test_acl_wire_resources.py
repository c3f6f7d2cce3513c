"""The broker's plain ACL over real sockets: requests that used to need only a valid signature
(any account could read, copy or settle another's messages, rewrite another group's offsets,
lock its queues) and now need what RocketMQ 5's ACL 2.0 maps them to; those naming a message by
its commit-log offset are checked against the topic the message is stored in."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.acl.signature import SessionCredentials
from runtime.remoting.bodies import (
    LockBatchRequestBody,
    LockBatchResponseBody,
    MessageQueue,
    UnlockBatchRequestBody,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import encode_properties
from runtime.store.msg_id import decode_offset_msg_id
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(60)

ORDERS_PRODUCER = SessionCredentials("orders-producer", "producer-secret")
AUDIT_PRODUCER = SessionCredentials("audit-producer", "auditor-secret")
CONSUMER = SessionCredentials("orders-consumer", "consumer-secret")
"""A consumer of AclOrders in group billing: SUB on both, nothing else."""
ORDERS_APP = SessionCredentials("orders-app-key", "orders-app-secret")
"""Publishes to and consumes AclOrders in group billing."""
OPERATOR = SessionCredentials("operator-key", "operator-secret")
ACL = """
accounts:
  - accessKey: orders-producer
    secretKey: producer-secret
    topicPerms: [AclOrders=PUB]
  - accessKey: audit-producer
    secretKey: auditor-secret
    topicPerms: [AclAudit=PUB]
  - accessKey: orders-consumer
    secretKey: consumer-secret
    topicPerms: [AclOrders=SUB]
    groupPerms: [billing=SUB]
  - accessKey: orders-app-key
    secretKey: orders-app-secret
    topicPerms: [AclOrders=PUB|SUB]
    groupPerms: [billing=SUB]
  - accessKey: operator-key
    secretKey: operator-secret
    admin: true
"""
DLQ = "%DLQ%billing"


@pytest.fixture
def client(tmp_path: pathlib.Path) -> Iterator[WireClient]:
    acl_file = tmp_path / "plain_acl.yml"
    acl_file.write_text(ACL)
    with lone_broker(tmp_path / "data", acl_enable=True, acl_file=str(acl_file)) as client:
        for topic in ("AclOrders", "AclAudit"):
            ext = {"topic": topic, "readQueueNums": 1, "writeQueueNums": 1, "perm": 6}
            created = client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext, credentials=OPERATOR)
            assert created.code == ResponseCode.SUCCESS, created.remark
        yield client


def publish(client: WireClient, topic: str, credentials: SessionCredentials, **header: Any) -> int:
    """Sends one message to ``topic``; its commit-log offset."""
    sent = client.call(
        RequestCode.SEND_MESSAGE_V2, send_v2_header(topic, **header), b"secret", credentials
    )
    assert sent.code == ResponseCode.SUCCESS, sent.remark
    return decode_offset_msg_id(sent.ext_fields["msgId"]).physical_offset


def stored(client: WireClient, topic: str) -> int:
    got = client.call(RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": 0}, b"", OPERATOR)
    return int(got.ext_fields["offset"]) if got.code == ResponseCode.SUCCESS else 0


def refused(got: Any, reason: str) -> bool:
    return (got.code, got.remark) == (ResponseCode.SYSTEM_ERROR, f"AclException: {reason}")


def test_a_message_viewed_by_id_needs_sub_on_the_topic_it_is_stored_in(
    client: WireClient,
) -> None:
    # Given a message in AclAudit and one in AclOrders, and a consumer of AclOrders only
    audit = publish(client, "AclAudit", AUDIT_PRODUCER)
    orders = publish(client, "AclOrders", ORDERS_PRODUCER)
    with no_errors_logged() as errors:
        # When the consumer views the AclAudit message by its offset, naming its own topic
        ext = {"offset": audit, "topic": "AclOrders"}
        got = client.call(RequestCode.VIEW_MESSAGE_BY_ID, ext, b"", CONSUMER)
        # Then the message's own topic decides: refused, nothing of it answered
        assert refused(got, "No permission for topic:AclAudit"), (got.code, got.remark)
        assert b"secret" not in (got.body or b"")
        # And its own topic's message is served
        ext = {"offset": orders, "topic": "AclOrders"}
        got = client.call(RequestCode.VIEW_MESSAGE_BY_ID, ext, b"", CONSUMER)
        assert got.code == ResponseCode.SUCCESS, got.remark
        assert b"secret" in got.body
    assert errors == []


def send_back(
    client: WireClient, offset: int, credentials: SessionCredentials, origin_topic: str
) -> Any:
    ext = {
        "offset": offset,
        "group": "billing",
        "delayLevel": -1,  # straight to %DLQ%billing
        "originMsgId": "",
        "originTopic": origin_topic,
        "unitMode": False,
    }
    return client.call(RequestCode.CONSUMER_SEND_MSG_BACK, ext, b"", credentials)


def test_a_send_back_needs_sub_on_the_topic_the_message_is_stored_in(
    client: WireClient,
) -> None:
    # Given a message in AclAudit, and an account of group billing that may publish to
    # AclOrders but has nothing on AclAudit
    audit = publish(client, "AclAudit", AUDIT_PRODUCER)
    with no_errors_logged() as errors:
        # When it sends the AclAudit message back by offset, saying it came from AclOrders
        got = send_back(client, audit, ORDERS_APP, "AclOrders")
    # Then it is refused for the message's own topic, and no copy is stored for the group
    assert refused(got, "No permission for topic:AclAudit"), (got.code, got.remark)
    assert stored(client, DLQ) == 0
    assert errors == []


def test_a_consumer_with_sub_on_its_topic_and_group_sends_back(client: WireClient) -> None:
    # Given a message in AclOrders and its consumer, with SUB on the topic and the group and
    # no PUB (RocketMQ 4's ACL wanted PUB on the originTopic; ACL 2.0 SUB on the group)
    orders = publish(client, "AclOrders", ORDERS_PRODUCER)
    # When the consumer sends it back
    got = send_back(client, orders, CONSUMER, "AclOrders")
    # Then the copy is stored for the group
    assert got.code == ResponseCode.SUCCESS, got.remark
    assert stored(client, DLQ) == 1


@pytest.mark.parametrize(
    ("code", "ext"),
    [
        (
            RequestCode.CLONE_GROUP_OFFSET,
            {"srcGroup": "billing", "destGroup": "other", "topic": "AclOrders", "offline": True},
        ),
        (
            RequestCode.INVOKE_BROKER_TO_RESET_OFFSET,
            {"topic": "AclOrders", "group": "billing", "timestamp": -1, "isForce": True},
        ),
    ],
    ids=["clone-group-offset", "reset-offset"],
)
def test_rewriting_a_groups_offsets_needs_an_admin_account(
    client: WireClient, code: int, ext: dict[str, Any]
) -> None:
    # Given group billing's consumer, an account without admin
    # When it asks the broker to clone or reset the group's offsets
    got = client.call(code, ext, b"", CONSUMER)
    # Then it is refused as the other admin codes are
    reason = f"Need admin permission for request code={code}, but accessKey=orders-consumer is not"
    assert refused(got, reason), (got.code, got.remark)
    # And the operator's request passes the ACL (a reset then wants the group online)
    served = client.call(code, ext, b"", OPERATOR)
    assert not (served.remark or "").startswith("AclException"), served.remark


def end_transaction(
    client: WireClient, offset: int, credentials: SessionCredentials, topic: str
) -> Any:
    ext = {
        "producerGroup": "pg",
        "tranStateTableOffset": 0,
        "commitLogOffset": offset,
        "commitOrRollback": 8,  # commit
        "fromTransactionCheck": False,
        "msgId": "x",
        "topic": topic,
    }
    return client.call(RequestCode.END_TRANSACTION, ext, b"", credentials)


def test_ending_a_transaction_needs_pub_on_the_half_messages_topic(client: WireClient) -> None:
    # Given a half message of AclOrders' producer
    props = encode_properties({"TRAN_MSG": "true", "PGROUP": "pg", "UNIQ_KEY": "u1"})
    half = publish(client, "AclOrders", ORDERS_PRODUCER, sys_flag=4, properties=props)
    with no_errors_logged() as errors:
        # When AclAudit's producer commits it, naming its own topic
        got = end_transaction(client, half, AUDIT_PRODUCER, "AclAudit")
        # Then it is refused for the half message's topic, and the message stays unseen
        assert refused(got, "No permission for topic:AclOrders"), (got.code, got.remark)
        assert stored(client, "AclOrders") == 0
        # And its own producer commits it
        got = end_transaction(client, half, ORDERS_PRODUCER, "AclOrders")
        assert got.code == ResponseCode.SUCCESS, got.remark
        assert stored(client, "AclOrders") == 1
    assert errors == []


def lock_body(topic: str, unlock: bool = False) -> bytes:
    mq = MessageQueue(topic=topic, broker_name="broker-t", queue_id=0)
    kind = UnlockBatchRequestBody if unlock else LockBatchRequestBody
    return encode_body(kind(consumer_group="billing", client_id="10.0.0.9@1", mq_set=[mq]))


def query_offset(client: WireClient, credentials: SessionCredentials) -> Any:
    ext = {"consumerGroup": "billing", "topic": "AclOrders", "queueId": 0}
    return client.call(RequestCode.QUERY_CONSUMER_OFFSET, ext, b"", credentials)


def test_locks_and_offset_queries_need_sub_on_the_group_and_topic(client: WireClient) -> None:
    # Given group billing's consumer has committed an offset
    ext = {"consumerGroup": "billing", "topic": "AclOrders", "queueId": 0, "commitOffset": 0}
    committed = client.call(RequestCode.UPDATE_CONSUMER_OFFSET, ext, b"", CONSUMER)
    assert committed.code == ResponseCode.SUCCESS, committed.remark
    with no_errors_logged() as errors:
        # When an account with nothing on the group locks, unlocks or queries its queue
        lock, unlock = RequestCode.LOCK_BATCH_MQ, RequestCode.UNLOCK_BATCH_MQ
        got = [
            client.call(lock, {}, lock_body("AclOrders"), AUDIT_PRODUCER),
            client.call(unlock, {}, lock_body("AclOrders", unlock=True), AUDIT_PRODUCER),
            query_offset(client, AUDIT_PRODUCER),
        ]
        # Then each is refused for the group
        for answer in got:
            assert refused(answer, "No permission for group:billing"), (answer.code, answer.remark)
        # And the group's consumer may not lock a queue of a topic it may not read
        got_other = client.call(lock, {}, lock_body("AclAudit"), CONSUMER)
        assert refused(got_other, "No permission for topic:AclAudit")
        # And it locks, queries and unlocks its own
        locked = client.call(lock, {}, lock_body("AclOrders"), CONSUMER)
        assert locked.code == ResponseCode.SUCCESS, locked.remark
        assert len(decode_body(LockBatchResponseBody, locked.body).lock_ok_mq_set) == 1
        offset = query_offset(client, CONSUMER)
        assert (offset.code, offset.ext_fields.get("offset")) == (ResponseCode.SUCCESS, "0")
        unlocked = client.call(unlock, {}, lock_body("AclOrders", unlock=True), CONSUMER)
        assert unlocked.code == ResponseCode.SUCCESS, unlocked.remark
    assert errors == []
