"""The consume-queue and consumer-progress admin bodies are written with RocketMQ's field names
and fastjson's quirks (getters as fields, MessageQueue objects as map keys)."""

from __future__ import annotations

import json
import time

import pytest

from runtime.remoting.admin_bodies import (
    ConsumeQueueData,
    QueryConsumeQueueResponseBody,
    QueryConsumeTimeSpanBody,
    QuerySubscriptionResponseBody,
    QueueTimeSpan,
    encode_consumer_status,
    format_timestamp,
)
from runtime.remoting.bodies import MessageQueue, SubscriptionData, encode_body
from runtime.remoting.queue_maps import decode_queue_map, parse_fastjson

pytestmark = pytest.mark.timeout(10)


def test_consume_queue_body_has_rocketmqs_field_names() -> None:
    # Given one entry and a TAG subscription
    entry = ConsumeQueueData(physic_offset=4096, physic_size=120, tags_code=65, eval=True)
    body = QueryConsumeQueueResponseBody(
        subscription_data=SubscriptionData(topic="T", sub_string="A"),
        filter_data="null",
        queue_data=[entry],
        max_queue_index=3,
        min_queue_index=1,
    )
    # When it is encoded, Then a Java reader finds every field by its name
    doc = json.loads(encode_body(body))
    assert doc["queueData"] == [
        {
            "physicOffset": 4096,
            "physicSize": 120,
            "tagsCode": 65,
            "extendDataJson": None,
            "bitMap": None,
            "eval": True,
            "msg": None,
        }
    ]
    assert (doc["maxQueueIndex"], doc["minQueueIndex"], doc["filterData"]) == (3, 1, "null")
    assert doc["subscriptionData"]["codeSet"] == [65]


def test_time_span_writes_the_getters_strings_in_rocketmqs_format() -> None:
    # Given a span whose times are known
    ms = int(time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1)) * 1000) + 42
    mq = MessageQueue(topic="T", broker_name="b", queue_id=1)
    span = QueueTimeSpan.of(mq, min_ms=ms, max_ms=ms + 1000, consume_ms=0, delay_ms=7)
    # When it is encoded
    doc = json.loads(encode_body(QueryConsumeTimeSpanBody(consume_time_span_set=[span])))
    [one] = doc["consumeTimeSpanSet"]
    # Then the numbers and fastjson's getter strings (yyyy-MM-dd#HH:mm:ss:SSS) are there
    assert one["minTimeStamp"] == ms and one["minTimeStampStr"] == "2024-05-06#07:08:09:042"
    assert one["maxTimeStampStr"] == "2024-05-06#07:08:10:042"
    assert one["consumeTimeStampStr"] == format_timestamp(0)
    assert one["delayTime"] == 7
    assert one["messageQueue"] == {"brokerName": "b", "queueId": 1, "topic": "T"}
    # And fields are in fastjson's (alphabetical) order
    assert list(one) == sorted(one)


def test_consumer_status_uses_queue_objects_as_keys_per_client() -> None:
    # Given two clients' offsets
    a0 = MessageQueue(topic="T", broker_name="b", queue_id=0)
    a1 = MessageQueue(topic="T", broker_name="b", queue_id=1)
    body = encode_consumer_status({"c2": [(a1, 9)], "c1": [(a1, 4), (a0, 3)]})
    # Then each client's table has the queues as object keys (as fastjson writes them), sorted
    assert body.startswith(b'{"consumerTable":{"c1":{{"topic":"T","brokerName":"b","queueId":0}:3,')
    doc = parse_fastjson(body)
    assert doc["messageQueueTable"] == {}
    assert [(k["queueId"], v) for k, v in doc["consumerTable"]["c1"]] == [(0, 3), (1, 4)]
    assert [(k["queueId"], v) for k, v in doc["consumerTable"]["c2"]] == [(1, 9)]
    # And no client at all is an empty table
    assert encode_consumer_status({}) == b'{"consumerTable":{},"messageQueueTable":{}}'


def test_a_clients_status_answer_is_read_as_written_by_fastjson() -> None:
    # A Java client's GetConsumerStatusBody for GET_CONSUMER_STATUS_FROM_CLIENT
    body = (
        b'{"consumerTable":{},"messageQueueTable":{{"brokerName":"b","queueId":2,"topic":"T"}:11}}'
    )
    offsets, rest = decode_queue_map(body, "messageQueueTable", int)
    assert offsets == [(MessageQueue(topic="T", broker_name="b", queue_id=2), 11)]
    assert rest == {"consumerTable": {}}


def test_subscription_response_body() -> None:
    body = QuerySubscriptionResponseBody(group="g", topic="T")
    assert json.loads(encode_body(body)) == {"group": "g", "subscriptionData": None, "topic": "T"}
