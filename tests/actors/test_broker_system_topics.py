"""Topics only the broker writes: a client's send to one is refused (RocketMQ's
``TopicValidator.isNotAllowedSendTopic``, NO_PERMISSION), and a parked record that names no
topic it may be put back into is dropped by the schedulers, never re-put (a hostile-input
probe's 1,000 messages sent to SCHEDULE_TOPIC_XXXX without REAL_TOPIC were put back into it
every second, forever)."""

from __future__ import annotations

import contextlib
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from loguru import logger

from actors.broker.delay import TIMER_OUT_MS
from runtime.actor import actor_of
from runtime.remoting.batch import BatchEntry, encode_batch
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import DELAY, REAL_QID, REAL_TOPIC, encode_properties
from runtime.store.record import PutRecord
from runtime.store.topic_names import SCHEDULE_TOPIC, SEND_FORBIDDEN_TOPICS, TIMER_TOPIC
from tests.actors.ha_support import broker_config, label, start_broker, stop_node
from tests.wire import WireClient, send_v2, send_v2_header

pytestmark = pytest.mark.timeout(60)

PLAIN = "Plain"


@contextlib.contextmanager
def broker(data: pathlib.Path) -> Iterator[tuple[WireClient, Any]]:
    """A master broker, a client connected to it, and the node (for its store)."""
    node = start_broker(broker_config("broker-t", 0, "ASYNC_MASTER", ""), data)
    client = WireClient(node.addresses[label(node)])
    try:
        assert create_topic(client, PLAIN).code == ResponseCode.SUCCESS
        yield client, node
    finally:
        client.close()
        stop_node(node)


@contextlib.contextmanager
def warnings_logged() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING")
    try:
        yield seen
    finally:
        logger.remove(sink)


def create_topic(client: WireClient, topic: str) -> Any:
    ext = {"topic": topic, "readQueueNums": 1, "writeQueueNums": 1, "perm": 6}
    return client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext)


def max_offset(client: WireClient, topic: str, queue_id: int = 0) -> int:
    got = client.call(RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": queue_id})
    return int(got.ext_fields.get("offset", 0)) if got.code == ResponseCode.SUCCESS else 0


def stored_in(client: WireClient, topic: str, queues: int = 1) -> int:
    return sum(max_offset(client, topic, q) for q in range(queues))


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(0.05)
    return False


def put_direct(node: Any, records: list[PutRecord]) -> None:
    """Store ``records`` as they are, past the send path (a store written before the send
    path refused such messages holds them)."""
    scheduler = actor_of(node.directory.require(f"{label(node)}/scheduler"))
    result = scheduler.store.put(records).get(timeout=10)  # type: ignore[union-attr]
    assert result.status.value == "PUT_OK", result


def sends_to(topic: str) -> list[RemotingCommand]:
    """The client send paths of a message to ``topic``: SEND_MESSAGE, V2, batch, reply."""
    v1 = {
        "producerGroup": "pg",
        "topic": topic,
        "defaultTopic": "TBW102",
        "defaultTopicQueueNums": 4,
        "queueId": 0,
        "sysFlag": 0,
        "bornTimestamp": 0,
        "flag": 0,
        "properties": "",
        "reconsumeTimes": 0,
    }
    batch = encode_batch([BatchEntry(0, b"one"), BatchEntry(0, b"two")])
    reply_props = encode_properties({"REPLY_TO_CLIENT": "nobody", "MSG_TYPE": "reply"})
    return [
        RemotingCommand.request(RequestCode.SEND_MESSAGE, v1, b"loop"),
        send_v2(topic, b"loop"),
        RemotingCommand.request(RequestCode.SEND_BATCH_MESSAGE, send_v2_header(topic), batch),
        send_v2(topic, b"loop", m=True),  # a batch flag under 310 (the C++ 2.1 client)
        RemotingCommand.request(
            RequestCode.SEND_REPLY_MESSAGE_V2,
            send_v2_header(topic, properties=reply_props),
            b"reply",
        ),
    ]


def test_a_clients_send_to_a_topic_only_the_broker_writes_is_refused(
    tmp_path: pathlib.Path,
) -> None:
    with broker(tmp_path / "b") as (client, _node):
        for topic in sorted(SEND_FORBIDDEN_TOPICS):
            for request in sends_to(topic):
                # When a client sends to it by any send path
                got = client.call_command(request)
                # Then it is refused as RocketMQ's broker refuses it
                assert got.code == ResponseCode.NO_PERMISSION, (topic, request.code, got.remark)
                assert got.remark == f"Sending message to topic[{topic}] is forbidden."
        # And nothing was stored in any of them
        assert stored_in(client, SCHEDULE_TOPIC, 18) == 0
        assert stored_in(client, TIMER_TOPIC) == 0
        assert stored_in(client, "RMQ_SYS_TRANS_HALF_TOPIC") == 0
        # And the topics RocketMQ's broker lets clients send to are still taken
        for topic in ("TBW102", "RMQ_SYS_TRACE_TOPIC", "%RETRY%grp", PLAIN):
            got = client.call_command(send_v2(topic, b"fine"))
            assert got.code == ResponseCode.SUCCESS, (topic, got.remark)


def test_delay_levels_and_timers_still_park_and_deliver(tmp_path: pathlib.Path) -> None:
    with broker(tmp_path / "b") as (client, _node):
        # When a client sends a message of delay level 1 (1 s) and one timed 300 ms ahead
        delayed = encode_properties({DELAY: "1"})
        assert client.call_command(send_v2(PLAIN, b"d", properties=delayed)).code == 0
        timed = encode_properties({"TIMER_DELAY_MS": "300"})
        assert client.call_command(send_v2(PLAIN, b"t", properties=timed)).code == 0
        # Then they are parked in the broker's own topics, put there by the broker
        assert max_offset(client, SCHEDULE_TOPIC, 0) == 1
        assert max_offset(client, TIMER_TOPIC, 0) == 1
        # And both are put back into their topic when due
        assert wait_for(lambda: max_offset(client, PLAIN) == 2)


def test_a_scheduled_record_without_a_real_topic_is_dropped_not_put_back(
    tmp_path: pathlib.Path,
) -> None:
    with broker(tmp_path / "b") as (client, node), warnings_logged() as warned:
        # Given records of delay level 1 the store already holds: a good one, then one naming
        # no REAL_TOPIC, ones naming the schedule or timer topic itself, one with a REAL_QID
        # that is no queue id
        bad = [
            {DELAY: "1"},
            {DELAY: "1", REAL_TOPIC: SCHEDULE_TOPIC, REAL_QID: "0"},
            {DELAY: "1", REAL_TOPIC: TIMER_TOPIC, REAL_QID: "0"},
            {DELAY: "1", REAL_TOPIC: PLAIN, REAL_QID: "zero"},
        ]
        good = {DELAY: "1", REAL_TOPIC: PLAIN, REAL_QID: "0"}
        put_direct(
            node,
            [PutRecord(SCHEDULE_TOPIC, 0, b"good", encode_properties(good))]
            + [PutRecord(SCHEDULE_TOPIC, 0, b"bad", encode_properties(p)) for p in bad],
        )
        # When their delay passes (and two more rounds of the level's worker)
        assert wait_for(lambda: max_offset(client, PLAIN) == 1)
        gevent.sleep(2.5)
        # Then nothing was put back into the schedule topic (each bad one was, every second)
        assert max_offset(client, SCHEDULE_TOPIC, 0) == 5
        assert max_offset(client, TIMER_TOPIC, 0) == 0
        # And only the good one was put back, into its topic
        assert max_offset(client, PLAIN) == 1
        # And the drops were logged once, counted in the next warning
        drops = [w for w in warned if "cannot be put back" in w]
        assert len(drops) == 1 and "REAL_TOPIC" in drops[0], warned


def test_a_timer_record_without_a_real_topic_is_dropped_not_put_back(
    tmp_path: pathlib.Path,
) -> None:
    with broker(tmp_path / "b") as (client, node), warnings_logged() as warned:
        now = str(int(time.time() * 1000))
        # Given due timer records the store already holds: a good one, then one naming no
        # REAL_TOPIC, one naming the timer topic itself, one whose due time is no number
        bad = [
            {TIMER_OUT_MS: now},
            {TIMER_OUT_MS: now, REAL_TOPIC: TIMER_TOPIC, REAL_QID: "0"},
            {TIMER_OUT_MS: "soon", REAL_TOPIC: PLAIN, REAL_QID: "0"},
        ]
        good = {TIMER_OUT_MS: now, REAL_TOPIC: PLAIN, REAL_QID: "0"}
        put_direct(
            node,
            [PutRecord(TIMER_TOPIC, 0, b"good", encode_properties(good))]
            + [PutRecord(TIMER_TOPIC, 0, b"bad", encode_properties(p)) for p in bad],
        )
        # When the timer reads them: the good one is put back into its topic
        assert wait_for(lambda: max_offset(client, PLAIN) == 1)
        gevent.sleep(1.0)
        assert max_offset(client, PLAIN) == 1
        # And nothing was put back into the timer topic (a loop without pause before)
        assert max_offset(client, TIMER_TOPIC, 0) == 4
        timer = actor_of(node.directory.require(f"{label(node)}/timer"))
        assert timer.pending_count() == 0  # type: ignore[union-attr]
        drops = [w for w in warned if "cannot be put back" in w]
        assert len(drops) == 1, warned
