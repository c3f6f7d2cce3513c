"""Bodies keyed by MessageQueue objects (GET_TOPIC_STATS_INFO, GET_CONSUME_STATS,
GET_BROKER_CONSUME_STATS): written as RocketMQ's fastjson writes them, read back from that form
and from plain JSON, and decoders that raise only ProtocolError."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import ProtocolError
from runtime.remoting.bodies import MessageQueue
from runtime.remoting.queue_maps import (
    OffsetWrapper,
    TopicOffset,
    decode_consume_stats_list,
    decode_queue_map,
    encode_queue_map,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mq(queue_id: int, topic: str = "T", broker: str = "broker-a") -> MessageQueue:
    return MessageQueue(topic=topic, broker_name=broker, queue_id=queue_id)


def test_keys_are_written_as_objects_and_read_back_sorted() -> None:
    entries = [
        (mq(1), OffsetWrapper(broker_offset=5, consumer_offset=2, last_timestamp=7)),
        (mq(0), OffsetWrapper(broker_offset=1, consumer_offset=1)),
    ]
    data = encode_queue_map("offsetTable", entries, consumeTps=1.5)
    # fastjson's shape: an object where a key should be a string
    assert data.startswith(b'{"offsetTable":{{"topic":"T","brokerName":"broker-a","queueId":1}:')
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)
    pairs, rest = decode_queue_map(data, "offsetTable", OffsetWrapper)
    assert pairs == sorted(entries)
    assert pairs[1][1].diff == 3
    assert rest == {"consumeTps": 1.5}


def test_reads_a_body_as_rocketmq_writes_it() -> None:
    # Given the text a Java broker sends (sorted keys, no spaces; here with blanks added)
    data = (
        b'{"offsetTable":{ {"brokerName":"broker-b","queueId":3,"topic":"Orders"} : '
        b'{"lastUpdateTimestamp":1700000000000,"maxOffset":42,"minOffset":7},\n'
        b'{"brokerName":"broker-a","queueId":0,"topic":"Orders"}:'
        b'{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}}}'
    )
    pairs, rest = decode_queue_map(data, "offsetTable", TopicOffset)
    assert [(q.broker_name, q.queue_id, v.min_offset, v.max_offset) for q, v in pairs] == [
        ("broker-a", 0, 0, 0),
        ("broker-b", 3, 7, 42),
    ]
    assert pairs[1][1].last_update_timestamp == 1700000000000 and rest == {}


def test_plain_json_with_stringified_keys_and_empty_tables() -> None:
    key = json.dumps({"topic": "T", "brokerName": "b", "queueId": 2})
    data = json.dumps({"offsetTable": {key: {"maxOffset": 9}}}).encode()
    pairs, _ = decode_queue_map(data, "offsetTable", TopicOffset)
    assert pairs == [(mq(2, broker="b"), TopicOffset(max_offset=9))]
    assert decode_queue_map(b'{"offsetTable":{}}', "offsetTable", TopicOffset) == ([], {})
    assert (
        decode_queue_map(encode_queue_map("offsetTable", []), "offsetTable", TopicOffset)[0] == []
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"offsetTable":{{"topic":"T"}:{}}}',  # a key that is not a queue
        b'{"offsetTable":{{"topic":"T","brokerName":"b","queueId":0}:{"maxOffset":"x"}}}',
        b'{"offsetTable":{"not json":{}}}',
        b'{"offsetTable":{1:{}}}',
        b"{" * 100 + b"}" * 100,
        b'{"a":1} trailing',
        b"\xff\xfe",
    ],
)
def test_malformed_bodies_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode_queue_map(data, "offsetTable", TopicOffset, opaque=7)
    assert raised.value.fatal is False and raised.value.opaque == 7


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_queue_map(data, "offsetTable", OffsetWrapper)


@FAST
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**31 - 1), st.integers(0, 2**62), st.integers(0, 2**62), st.text()
        ),
        max_size=8,
    ),
    st.data(),
)
def test_encoded_tables_round_trip_and_every_truncation_fails_cleanly(
    rows: list[tuple[int, int, int, str]], data: st.DataObject
) -> None:
    entries = {
        mq(qid, topic=topic or "T"): OffsetWrapper(broker_offset=b, consumer_offset=c)
        for qid, b, c, topic in rows
    }
    body = encode_queue_map("offsetTable", entries.items(), consumeTps=0.0)
    pairs, _ = decode_queue_map(body, "offsetTable", OffsetWrapper)
    assert pairs == sorted(entries.items())
    cut = data.draw(st.integers(0, len(body) - 1))
    with pytest.raises(ProtocolError):
        decode_queue_map(body[:cut], "offsetTable", OffsetWrapper)


def test_a_consume_stats_list_reads_every_group_with_its_stats_merged() -> None:
    # Given a broker's ConsumeStatsList: one group with two topics' ConsumeStats, one with none
    orders = encode_queue_map(
        "offsetTable",
        [(mq(1, "Orders"), OffsetWrapper(broker_offset=9, consumer_offset=4, last_timestamp=5))],
        consumeTps=0.0,
    )
    audit = encode_queue_map(
        "offsetTable", [(mq(0, "Audit"), OffsetWrapper(broker_offset=3))], consumeTps=0.0
    )
    body = (
        b'{"brokerAddr":"10.0.0.1:10911","consumeStatsList":[{"billing":['
        + orders
        + b","
        + audit
        + b']},{"idle":[]}],"totalDiff":8}'
    )
    # Then each group has its queues, sorted, and the broker's figures are read
    address, total, groups = decode_consume_stats_list(body)
    assert (address, total) == ("10.0.0.1:10911", 8)
    assert [(g, [(q.topic, q.queue_id, w.diff) for q, w in pairs]) for g, pairs in groups] == [
        ("billing", [("Audit", 0, 3), ("Orders", 1, 5)]),
        ("idle", []),
    ]
    assert decode_consume_stats_list(b"{}") == ("", 0, [])


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'{"consumeStatsList":[1]}',
        b'{"consumeStatsList":[{"g":[1]}]}',
        b'{"consumeStatsList":[{"g":[{"offsetTable":{{"topic":"T"}:{}}}]}]}',
        b'{"consumeStatsList":[{"g":3}]}',
        b'{"consumeStatsList":{}}',
        b'{"totalDiff":"many"}',
        b"\xff",
    ],
)
def test_malformed_consume_stats_lists_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode_consume_stats_list(data)
    assert raised.value.fatal is False


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_as_a_consume_stats_list_decode_or_raise_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_consume_stats_list(data)
