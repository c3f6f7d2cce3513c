"""Slave reads and metadata sync: a slave serves pulls (slaveReadEnable, or while its master is
unreachable), a master suggests the slave to a consumer far behind, and SlaveSynchronize copies
topic config, consumer offsets, delay and timer progress from the master (21, 43, 45, 60)."""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import gevent
import gevent.event
import gevent.server
import pytest

from actors.broker.messages import WhenDispatched
from actors.broker.slave_synchronize import SlaveSynchronize, SyncNow
from runtime.actor import new_future
from runtime.node import Node
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import (
    broker_config,
    ha_state,
    label,
    send,
    start_broker,
    start_namesrv,
    stop_node,
    store_ctx,
    wait_in_sync,
    wait_queue,
)
from tests.client_support import wait_until
from tests.integration.test_broker_wire import pull, records
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


class Pair:
    def __init__(self, tmp: pathlib.Path, **extra: Any) -> None:
        self.ns = start_namesrv()
        namesrv = self.ns.addresses["namesrv"]
        self.master = start_broker(
            broker_config("broker-a", 0, "ASYNC_MASTER", namesrv, **extra), tmp / "m"
        )
        ha = self.master.ha_addresses[label(self.master)]
        self.slave: Node | None = start_broker(
            broker_config("broker-a", 1, "SLAVE", namesrv, ha_master_address=ha, **extra),
            tmp / "s",
        )
        wait_in_sync(self.master, 1)
        self.to_master = WireClient(self.master.addresses[label(self.master)])
        self.to_slave = WireClient(self.slave.addresses[label(self.slave)])

    def sync(self) -> bool:
        """One SlaveSynchronize round, now (needs the master's address from the name server)."""
        assert self.slave is not None
        state = ha_state(self.slave)
        assert state.wait_until(lambda s: s.master_addr is not None, 10)
        reply = new_future()
        self.slave.directory.require(f"{label(self.slave)}/slave-sync").tell(SyncNow(reply))
        return bool(reply.get(timeout=15))

    def close(self) -> None:
        self.to_master.close()
        self.to_slave.close()
        if self.slave is not None:
            stop_node(self.slave)
        stop_node(self.master)
        stop_node(self.ns)


@pytest.fixture
def pairs() -> Iterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for p in made:
        p.close()


def make(pairs: list[Pair], tmp: pathlib.Path, **extra: Any) -> Pair:
    p = Pair(tmp, **extra)
    pairs.append(p)
    return p


def filled(
    pairs: list[Pair], tmp: pathlib.Path, topic: str, bodies: list[bytes], **extra: Any
) -> Pair:
    """A pair whose slave holds ``bodies`` on ``topic`` queue 0 and learned the topic from its
    master (a SlaveSynchronize round)."""
    p = make(pairs, tmp, **extra)
    for body in bodies:
        assert send(p.to_master, topic, body).code == ResponseCode.SUCCESS
    wait_queue(store_ctx(p.slave), topic, 0, len(bodies))  # type: ignore[arg-type]
    assert p.sync()
    return p


def test_slave_serves_pulls_with_slave_read_enable(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    # Given the slave holds the records and learned the topic from its master
    p = filled(pairs, tmp_path, "SR", [f"m{i}".encode() for i in range(5)], slave_read_enable=True)
    # When a consumer pulls from the slave, Then it gets the records
    reply = pull(p.to_slave, "SR", 0, 0)
    assert reply.code == ResponseCode.SUCCESS
    assert [r.body for r in records(reply.body)] == [f"m{i}".encode() for i in range(5)]


def test_a_slave_redirects_to_a_live_master_and_serves_when_it_is_gone(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = filled(pairs, tmp_path, "RD", [b"x"])
    # While the master is up, a slave without slaveReadEnable sends consumers to it
    reply = pull(p.to_slave, "RD", 0, 0)
    assert reply.code == ResponseCode.PULL_RETRY_IMMEDIATELY
    assert reply.ext_fields["suggestWhichBrokerId"] == "0"
    # When the master stops, Then the slave serves what it has
    state = ha_state(p.slave)  # type: ignore[arg-type]
    stop_node(p.master)
    assert state.wait_until(lambda s: not s.master_link_up, 10)
    reply = pull(p.to_slave, "RD", 0, 0)
    assert reply.code == ResponseCode.SUCCESS
    assert [r.body for r in records(reply.body)] == [b"x"]
    p.master = start_broker(  # so close() has something to stop
        broker_config("broker-a", 0, "ASYNC_MASTER", p.ns.addresses["namesrv"]), tmp_path / "m"
    )


def test_only_the_master_moves_a_consumer_past_the_end_of_a_queue(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    # R15 seed 20 (session 13 soak): right after a failover a lite pull consumer at offset 862
    # of a queue was told "offset illegal, move to 0" and read the queue again from 0. A node
    # whose log lags the master's must not move consumers (RocketMQ: no correction on a slave)
    p = filled(pairs, tmp_path, "MV", [f"m{i}".encode() for i in range(3)], slave_read_enable=True)
    # When a consumer asks the slave for an offset past the end of its queue
    reply = pull(p.to_slave, "MV", 0, 10)
    # Then the slave keeps it there and sends it to the master
    assert reply.code == ResponseCode.PULL_RETRY_IMMEDIATELY, reply.remark
    assert reply.ext_fields["nextBeginOffset"] == "10"
    assert reply.ext_fields["suggestWhichBrokerId"] == "0"
    # while the master, which holds the log, moves it (RocketMQ: to 0 when the queue starts at 0)
    reply = pull(p.to_master, "MV", 0, 10)
    assert reply.code == ResponseCode.PULL_OFFSET_MOVED
    assert reply.ext_fields["nextBeginOffset"] == "0"


@pytest.mark.parametrize(
    ("extra", "suggested"),
    [
        ({"slave_read_enable": True, "access_message_in_memory_max_ratio": 0}, "1"),
        ({"slave_read_enable": True, "access_message_in_memory_max_ratio": 100}, "0"),
        ({"slave_read_enable": False, "access_message_in_memory_max_ratio": 0}, "0"),
    ],
)
def test_master_suggests_the_slave_to_a_consumer_far_behind(
    tmp_path: pathlib.Path, pairs: list[Pair], extra: dict[str, Any], suggested: str
) -> None:
    # Given a ratio of 0 % any lag is "far behind"; 100 % never is; without slaveReadEnable: 0
    p = make(pairs, tmp_path, **extra)
    for i in range(3):
        assert send(p.to_master, "SG", f"m{i}".encode()).code == ResponseCode.SUCCESS
    reply = pull(p.to_master, "SG", 0, 0, max_nums=1)
    assert reply.code == ResponseCode.SUCCESS
    assert reply.ext_fields["suggestWhichBrokerId"] == suggested


def test_slave_synchronize_copies_topics_groups_offsets_delay_timer_and_transactions(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)
    # Given a topic, a committed offset, delay and timer progress on the master
    assert send(p.to_master, "SYNC-T", b"x", queue_id=2).code == ResponseCode.SUCCESS
    update = {"consumerGroup": "G1", "topic": "SYNC-T", "queueId": 2, "commitOffset": 1}
    assert p.to_master.call(RequestCode.UPDATE_CONSUMER_OFFSET, update).code == 0
    master_cfg = store_ctx(p.master).settings.config_dir
    delay = json.dumps({"offsetTable": {"3": 41}}).encode()
    with open(os.path.join(master_cfg, "delayOffset.json"), "wb") as fh:
        fh.write(delay)
    timer = json.dumps({"watermark": 7, "delivered": [9]}).encode()
    with open(os.path.join(master_cfg, "timerProgress.json"), "wb") as fh:
        fh.write(timer)
    half = {
        "offset": 5,
        "group": "pg",
        "topic": "T",
        "msgId": "X",
        "transactionId": "U",
        "storedMs": 1,
    }
    txn = json.dumps({"half": [half]}).encode()
    with open(os.path.join(master_cfg, "transaction.json"), "wb") as fh:
        fh.write(txn)
    group = json.dumps({"groupName": "G1", "retryMaxTimes": 2, "consumeEnable": False}).encode()
    made = p.to_master.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=group)
    assert made.code == ResponseCode.SUCCESS
    # The master serves them (codes 43, 45 and 60)
    offsets = p.to_master.call(RequestCode.GET_ALL_CONSUMER_OFFSET)
    assert json.loads(offsets.body)["offsetTable"]["SYNC-T@G1"] == {"2": 1}
    assert p.to_master.call(RequestCode.GET_ALL_DELAY_OFFSET).body == delay
    assert p.to_master.call(60).body == timer  # GET_TIMER_CHECK_POINT
    # When the slave syncs, Then it has them all
    assert p.sync()
    slave = store_ctx(p.slave)  # type: ignore[arg-type]
    query = {"consumerGroup": "G1", "topic": "SYNC-T", "queueId": 2}
    got = p.to_slave.call(RequestCode.QUERY_CONSUMER_OFFSET, query)
    assert got.code == ResponseCode.SUCCESS and got.ext_fields["offset"] == "1"
    topics = json.loads(p.to_slave.call(RequestCode.GET_ALL_TOPIC_CONFIG).body)
    assert "SYNC-T" in topics["topicConfigTable"]
    groups = json.loads(p.to_slave.call(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG).body)
    synced = groups["subscriptionGroupTable"]["G1"]
    assert synced["retryMaxTimes"] == 2 and synced["consumeEnable"] is False
    with open(os.path.join(slave.settings.config_dir, "delayOffset.json"), "rb") as fh:
        assert fh.read() == delay
    with open(os.path.join(slave.settings.config_dir, "timerProgress.json"), "rb") as fh:
        assert fh.read() == timer
    with open(os.path.join(slave.settings.config_dir, "transaction.json"), "rb") as fh:
        assert fh.read() == txn  # the promoted slave's TransactionManager starts from it


def test_a_group_deleted_with_its_offsets_on_the_master_goes_from_the_slave(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)
    # Given a group with a config and a committed offset, copied to the slave
    group = json.dumps({"groupName": "G-gone", "retryMaxTimes": 3}).encode()
    made = p.to_master.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=group)
    assert made.code == ResponseCode.SUCCESS
    assert send(p.to_master, "GONE-T", b"x").code == ResponseCode.SUCCESS
    update = {"consumerGroup": "G-gone", "topic": "GONE-T", "queueId": 0, "commitOffset": 1}
    assert p.to_master.call(RequestCode.UPDATE_CONSUMER_OFFSET, update).code == 0
    assert p.sync()
    query = {"consumerGroup": "G-gone", "topic": "GONE-T", "queueId": 0}
    assert p.to_slave.call(RequestCode.QUERY_CONSUMER_OFFSET, query).ext_fields["offset"] == "1"
    # When the master deletes the group with its offsets (deleteSubGroup -r true)
    drop = {"groupName": "G-gone", "cleanOffset": "true"}
    assert p.to_master.call(RequestCode.DELETE_SUBSCRIPTIONGROUP, drop).code == 0
    # Then the slave's next round forgets both (a promoted slave brought them back)
    assert p.sync()
    groups = json.loads(p.to_slave.call(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG).body)
    assert "G-gone" not in groups["subscriptionGroupTable"]
    table = json.loads(p.to_slave.call(RequestCode.GET_ALL_CONSUMER_OFFSET).body)
    assert "GONE-T@G-gone" not in table["offsetTable"], table


def test_a_topic_or_group_created_on_the_master_reaches_the_slave_within_seconds(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)
    assert p.slave is not None
    state = ha_state(p.slave)
    assert state.wait_until(lambda s: s.metadata_synced, 10)  # the first round is done
    # Given a master and a slave that synced once (the next round is ~10 s away)
    # When a topic and a subscription group are created on the master
    created = time.monotonic()
    topic = {"topic": "FAST-SYNC", "readQueueNums": 2, "writeQueueNums": 2, "perm": 6}
    assert p.to_master.call(RequestCode.UPDATE_AND_CREATE_TOPIC, topic).code == 0
    group = json.dumps({"groupName": "FAST-G", "retryMaxTimes": 5}).encode()
    made = p.to_master.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=group)
    assert made.code == ResponseCode.SUCCESS

    # Then the slave holds both within a few seconds: its version poll (every second) saw the
    # master's data versions change and ran a round
    def slave_has_both() -> bool:
        topics = json.loads(p.to_slave.call(RequestCode.GET_ALL_TOPIC_CONFIG).body)
        groups = json.loads(p.to_slave.call(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG).body)
        return (
            "FAST-SYNC" in topics["topicConfigTable"]
            and "FAST-G" in groups["subscriptionGroupTable"]
        )

    wait_until(slave_has_both, 8, "the slave holds the new topic and group", interval=0.1)
    assert time.monotonic() - created < 5


def test_a_committed_offset_reaches_the_slave_within_seconds(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)
    assert p.slave is not None
    state = ha_state(p.slave)
    assert state.wait_until(lambda s: s.metadata_synced, 10)  # the first round is done

    def commit(queue_id: int, offset: int) -> None:
        update = {"consumerGroup": "OG", "topic": "OFF-SYNC", "queueId": queue_id}
        update["commitOffset"] = offset
        assert p.to_master.call(RequestCode.UPDATE_CONSUMER_OFFSET, update).code == 0

    def slave_has(queue_id: int, offset: int) -> bool:
        query = {"consumerGroup": "OG", "topic": "OFF-SYNC", "queueId": queue_id}
        got = p.to_slave.call(RequestCode.QUERY_CONSUMER_OFFSET, query)
        return got.code == ResponseCode.SUCCESS and got.ext_fields.get("offset") == str(offset)

    # Given a master and a slave that copied a new topic and a group's offset on it (the round
    # the topic's creation started: the next comes when the master's topics or groups change,
    # or in ~10 s)
    assert send(p.to_master, "OFF-SYNC", b"x", queue_id=1).code == ResponseCode.SUCCESS
    assert send(p.to_master, "OFF-SYNC", b"y", queue_id=1).code == ResponseCode.SUCCESS
    commit(0, 1)
    wait_until(lambda: slave_has(0, 1), 8, "the slave holds the first offset", interval=0.1)
    # When the consumer commits more on the master (its topics and groups stay as they are)
    committed = time.monotonic()
    commit(1, 2)

    # Then the slave holds it within a few seconds (its poll copies the offsets every second):
    # promoted soon after, it does not hand consumers back an offset from before its start
    wait_until(lambda: slave_has(1, 2), 8, "the slave holds the committed offset", interval=0.1)
    assert time.monotonic() - committed < 5


def test_the_master_answers_the_offsets_changed_since_a_version(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)

    def commit(topic: str, offset: int) -> None:
        update = {"consumerGroup": "VG", "topic": topic, "queueId": 0, "commitOffset": offset}
        assert p.to_master.call(RequestCode.UPDATE_CONSUMER_OFFSET, update).code == 0

    def offsets(since: str) -> tuple[dict[str, Any], dict[str, Any]]:
        got = p.to_master.call(RequestCode.GET_ALL_CONSUMER_OFFSET, {"actormqSince": since})
        assert got.code == ResponseCode.SUCCESS
        return got.ext_fields, json.loads(got.body)["offsetTable"]

    # Given two groups' offsets on the master (of topics it has: it refuses others' offsets)
    for topic in ("V-A", "V-B"):
        assert send(p.to_master, topic, b"m").code == ResponseCode.SUCCESS
    commit("V-A", 1)
    commit("V-B", 1)
    # When a slave asks without a version, Then it gets the whole table and a version
    ext, table = offsets("")
    assert ext["actormqDelta"] == "false" and {"V-A@VG", "V-B@VG"} <= set(table)
    # When one offset moves and the slave asks with that version, Then only it comes back
    commit("V-A", 7)
    ext2, table2 = offsets(ext["actormqVersion"])
    assert ext2["actormqDelta"] == "true" and table2 == {"V-A@VG": {"0": 7}}
    # And nothing, when nothing moved since
    assert offsets(ext2["actormqVersion"])[1] == {}
    # And a version from another incarnation (a restarted master) gets the whole table again
    ext3, table3 = offsets("0123456789abcdef:1")
    assert ext3["actormqDelta"] == "false" and table3["V-A@VG"] == {"0": 7}
    # And RocketMQ's request (no version field) gets the whole table, without version fields
    plain = p.to_master.call(RequestCode.GET_ALL_CONSUMER_OFFSET)
    assert "actormqVersion" not in plain.ext_fields
    assert json.loads(plain.body)["offsetTable"]["V-B@VG"] == {"0": 1}


@pytest.mark.parametrize(
    ("ratio", "suggested"),
    [(0, "2"), (100, "1")],  # far behind: whichBrokerWhenConsumeSlowly, else brokerId
)
def test_a_groups_config_chooses_the_suggested_broker(
    tmp_path: pathlib.Path, pairs: list[Pair], ratio: int, suggested: str
) -> None:
    # Given slave reads on and a group configured to read from broker 1, or 2 when slow
    p = make(pairs, tmp_path, slave_read_enable=True, access_message_in_memory_max_ratio=ratio)
    body = json.dumps({"groupName": "g", "brokerId": 1, "whichBrokerWhenConsumeSlowly": 2})
    made = p.to_master.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body.encode())
    assert made.code == ResponseCode.SUCCESS
    assert send(p.to_master, "SGG", b"m").code == ResponseCode.SUCCESS
    # When it pulls, Then the master suggests the broker the group's config names
    reply = pull(p.to_master, "SGG", 0, 0, max_nums=1, group="g")
    assert reply.code == ResponseCode.SUCCESS
    assert reply.ext_fields["suggestWhichBrokerId"] == suggested


def test_slave_synchronize_retries_every_second_until_a_first_round_succeeds() -> None:
    # Given a SlaveSynchronize with a 30 s interval whose master accepts connections and closes
    # them at once (every round fails)
    attempts: list[float] = []
    second_attempt = gevent.event.Event()

    def refuse(sock: Any, _addr: Any) -> None:
        attempts.append(time.monotonic())
        if len(attempts) >= 2:
            second_attempt.set()
        sock.close()

    server = gevent.server.StreamServer(("127.0.0.1", 0), refuse)
    server.start()
    state = SimpleNamespace(master_addr=f"127.0.0.1:{server.server_port}")
    ref = SlaveSynchronize.start(SimpleNamespace(), state, label="test", interval_s=30.0)
    try:
        # When the first round (1 s after start) fails
        # Then the next comes about a second later, not after the 30 s interval
        assert second_attempt.wait(8)
        assert attempts[1] - attempts[0] < 5
    finally:
        ref.stop()
        server.stop()


def test_a_deleted_topic_goes_from_the_slave_with_its_marker(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)
    # Given topic DEL-T with a message and a group's offset, synced to the slave
    assert send(p.to_master, "DEL-T", b"old").code == ResponseCode.SUCCESS
    update = {"consumerGroup": "G1", "topic": "DEL-T", "queueId": 0, "commitOffset": 1}
    assert p.to_master.call(RequestCode.UPDATE_CONSUMER_OFFSET, update).code == 0
    assert p.sync()
    # When the master deletes the topic (a slave refuses to)
    refused = p.to_slave.call(RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": "DEL-T"})
    assert refused.code == ResponseCode.SERVICE_NOT_AVAILABLE
    done = p.to_master.call(RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": "DEL-T"})
    assert done.code == ResponseCode.SUCCESS, done.remark
    # Then the slave applies the replicated marker, and its next sync drops config and offsets
    master, slave = store_ctx(p.master), store_ctx(p.slave)  # type: ignore[arg-type]
    reply = new_future()
    end = master.require_open().log.write_offset
    slave.directory.require(slave.names.dispatcher).tell(WhenDispatched(end, reply))
    assert reply.get(timeout=10) >= end
    assert "DEL-T" in slave.topic_fences and not slave.queues.exists("DEL-T", 0)
    assert p.sync()
    topics = json.loads(p.to_slave.call(RequestCode.GET_ALL_TOPIC_CONFIG).body)
    assert "DEL-T" not in topics["topicConfigTable"]
    query = {"consumerGroup": "G1", "topic": "DEL-T", "queueId": 0, "setZeroIfNotFound": "false"}
    got = p.to_slave.call(RequestCode.QUERY_CONSUMER_OFFSET, query)
    assert got.code == ResponseCode.QUERY_NOT_FOUND


def test_slave_synchronize_copies_the_tail_loss_guard_record(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)
    master_cfg = store_ctx(p.master).settings.config_dir
    slave_cfg = store_ctx(p.slave).settings.config_dir  # type: ignore[arg-type]
    # Given a master whose tail-loss guard was raised (its record on disk)
    record = json.dumps({"raisedMs": int(time.time() * 1000), "ends": {"T": {"0": 4}}}).encode()
    with open(os.path.join(master_cfg, "tailLossGuard.json"), "wb") as fh:
        fh.write(record)
    # When the slave syncs, Then it holds the record (a promoted slave raises the guard from it)
    assert p.sync()
    with open(os.path.join(slave_cfg, "tailLossGuard.json"), "rb") as fh:
        assert fh.read() == record
    # And once the master's record is gone (expired), the slave's goes at the next round
    os.unlink(os.path.join(master_cfg, "tailLossGuard.json"))
    assert p.sync()
    assert not os.path.exists(os.path.join(slave_cfg, "tailLossGuard.json"))


def test_a_tail_loss_guard_raised_on_the_master_reaches_the_slave_within_seconds(
    tmp_path: pathlib.Path, pairs: list[Pair]
) -> None:
    p = make(pairs, tmp_path)
    assert p.slave is not None
    assert ha_state(p.slave).wait_until(lambda s: s.metadata_synced, 10)
    slave_record = os.path.join(store_ctx(p.slave).settings.config_dir, "tailLossGuard.json")
    # Given a master and a slave that synced once (the next round is ~10 s away)
    # When the master's guard record appears (a term begun on a short log)
    record = json.dumps({"raisedMs": int(time.time() * 1000), "ends": {"T": {"0": 4}}}).encode()
    master_cfg = store_ctx(p.master).settings.config_dir
    created = time.monotonic()
    with open(os.path.join(master_cfg, "tailLossGuard.json"), "wb") as fh:
        fh.write(record)

    # Then the slave holds it within a few seconds (its version poll saw it change), so a
    # failover soon after still guards the consumers
    def slave_has_it() -> bool:
        try:
            with open(slave_record, "rb") as fh:
                return fh.read() == record
        except FileNotFoundError:
            return False

    deadline = created + 8
    while not slave_has_it():  # (polled on this hub: the slave's actors run meanwhile)
        assert time.monotonic() < deadline, "the slave never held the master's guard record"
        gevent.sleep(0.05)
    assert time.monotonic() - created < 5
