"""The GET_CONSUMER_RUNNING_INFO body: RocketMQ's field names, queue objects as ``mqTable`` keys
(fastjson's shape), a round trip, a Java-written body read back, and only ProtocolError on bad
input."""

from __future__ import annotations

import json

import pytest

from runtime.errors import ProtocolError
from runtime.remoting.bodies import MessageQueue, SubscriptionData
from runtime.remoting.running_info import (
    PROP_CONSUME_ORDERLY,
    ConsumerRunningInfo,
    ConsumeStatus,
    ProcessQueueInfo,
    decode_running_info,
    encode_running_info,
)


def mq(queue_id: int, topic: str = "Orders") -> MessageQueue:
    return MessageQueue(topic=topic, broker_name="broker-a", queue_id=queue_id)


def test_round_trip_with_queue_keys_and_rocketmq_names() -> None:
    # Given a consumer's info with two held queues
    info = ConsumerRunningInfo(
        properties={PROP_CONSUME_ORDERLY: "false", "consumerGroup": "billing"},
        subscription_set=[SubscriptionData(topic="Orders", sub_string="paid || refunded")],
        mq_table={
            mq(1): ProcessQueueInfo(commit_offset=7, cached_msg_count=2, cached_msg_size_in_mib=1),
            mq(0): ProcessQueueInfo(commit_offset=3, locked=True, last_pull_timestamp=17),
        },
        status_table={"Orders": ConsumeStatus(pull_rt=1.5, consume_failed_msgs=4)},
    )
    # When it is encoded
    data = encode_running_info(info)
    # Then the queues are object keys, as fastjson writes a TreeMap<MessageQueue, ...>
    assert data.startswith(b'{"mqTable":{{"topic":"Orders","brokerName":"broker-a","queueId":0}:')
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)
    # And the field names are RocketMQ's, its odd spellings included
    for name in (
        b'"commitOffset":7',
        b'"cachedMsgSizeInMiB":1',
        b'"droped":false',
        b'"tryUnlockTimes":0',
        b'"lastLockTimestamp":0',
        b'"transactionMsgCount":0',
        b'"pullRT":1.5',
        b'"consumeOKTPS":0.0',
        b'"consumeFailedMsgs":4',
        b'"PROP_CONSUMEORDERLY":"false"',
        b'"subString":"paid || refunded"',
    ):
        assert name in data, name
    assert b"jstack" not in data  # only when asked for
    # And it reads back equal
    assert decode_running_info(data) == info


def test_reads_a_body_as_a_java_client_writes_it() -> None:
    data = (
        b'{"jstack":"main thread","mqTable":{{"brokerName":"broker-b","queueId":2,'
        b'"topic":"%RETRY%billing"}:{"cachedMsgCount":0,"cachedMsgMaxOffset":0,'
        b'"cachedMsgMinOffset":0,"cachedMsgSizeInMiB":0,"commitOffset":12,"droped":false,'
        b'"lastConsumeTimestamp":1700000000001,"lastLockTimestamp":0,'
        b'"lastPullTimestamp":1700000000000,"locked":false,"transactionMsgCount":0,'
        b'"transactionMsgMaxOffset":0,"transactionMsgMinOffset":0,"tryUnlockTimes":0}},'
        b'"properties":{"PROP_CONSUME_TYPE":"CONSUME_PASSIVELY","pullBatchSize":"32"},'
        b'"statusTable":{"%RETRY%billing":{"consumeFailedMsgs":0,"consumeFailedTPS":0.0,'
        b'"consumeOKTPS":2.5,"consumeRT":0.4,"pullRT":1.0,"pullTPS":3.0}},'
        b'"subscriptionSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG",'
        b'"subString":"*","subVersion":1700000000000,"tagsSet":[],'
        b'"topic":"%RETRY%billing"}]}'
    )
    info = decode_running_info(data)
    queue = MessageQueue(topic="%RETRY%billing", broker_name="broker-b", queue_id=2)
    assert info.mq_table[queue].commit_offset == 12
    assert info.mq_table[queue].last_consume_timestamp == 1700000000001
    assert info.properties["PROP_CONSUME_TYPE"] == "CONSUME_PASSIVELY"
    assert info.status_table["%RETRY%billing"].consume_ok_tps == 2.5
    assert [s.topic for s in info.subscription_set] == ["%RETRY%billing"]
    assert info.jstack == "main thread"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"mqTable":{{"topic":"T"}:{}}}',
        b'{"mqTable":{},"subscriptionSet":{"topic":1}}',
        b'{"mqTable":{},"statusTable":[1]}',
        b'{"mqTable":{},"properties":[1]}',
    ],
)
def test_bad_bodies_raise_protocol_error_only(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_running_info(data)
