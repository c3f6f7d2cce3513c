"""Administration against a real process: ``actors.client.Admin`` and ``python -m runtime admin``
(topic creation, routes, topic status and a group's progress over GET_TOPIC_STATS_INFO and
GET_CONSUME_STATS)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import (
    Admin,
    BrokerError,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageQueue,
    OffsetReset,
    Producer,
    PullConsumer,
    PushConsumer,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from tests import forked_cli
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.integration.test_broker_wire import pull, records, send
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("admin")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture(scope="module")
def admin(cluster: dict[str, str]) -> Iterator[Admin]:
    with Admin(cluster["namesrv"]) as a:
        yield a


def mqadmin(namesrv: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m runtime admin <command> -n <namesrv> <args>``, forked from a process that
    already imported the CLI (``tests.forked_cli``: the same exit code and output, ~0.35 s less
    a command)."""
    return forked_cli.run(["admin", args[0], "-n", namesrv, *args[1:]], timeout=60)


def commit(broker: str, group: str, topic: str, queue_id: int, offset: int) -> None:
    client = WireClient(broker)
    try:
        q: dict[str, Any] = {"consumerGroup": group, "topic": topic, "queueId": queue_id}
        assert (
            client.call(RequestCode.UPDATE_CONSUMER_OFFSET, {**q, "commitOffset": offset}).code == 0
        )
    finally:
        client.close()


def test_update_topic_from_the_command_line_then_status_and_progress_show_the_lag(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given a topic created with the command line on every master of the cluster
    made = mqadmin(
        namesrv, "updateTopic", "-t", "Ledger", "-c", "DefaultCluster", "-w", "3", "-r", "3"
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"create topic to {broker} success."
    # Then the name server lists it at once, with three queues
    assert "Ledger" in admin.topic_list()
    route = admin.topic_route("Ledger")
    assert [(q.read_queue_nums, q.write_queue_nums) for q in route.queue_datas] == [(3, 3)]
    # When five messages go to queue 1 and a group commits offset 2 there
    before = int(time.time() * 1000)
    with Producer("admin-test-producer", namesrv=namesrv) as producer:
        queue = next(q for q in producer.queues("Ledger") if q.queue_id == 1)
        for i in range(5):
            producer.send(Message("Ledger", f"entry-{i}".encode()), queue=queue)
    commit(broker, "ledger-audit", "Ledger", 1, 2)
    # Then topic status shows queue 1 at offset 5, stored just now, and the others empty
    stats = admin.topic_stats("Ledger")
    assert [(r.queue.queue_id, r.min_offset, r.max_offset) for r in stats] == [
        (0, 0, 0),
        (1, 0, 5),
        (2, 0, 0),
    ]
    assert stats[1].last_update_ms >= before - 1000 and stats[0].last_update_ms == 0
    # And the group's progress shows 3 messages behind on queue 1, all of them by default
    progress = admin.consume_stats("ledger-audit")
    assert [(r.queue.queue_id, r.broker_offset, r.consumer_offset, r.diff) for r in progress] == [
        (0, 0, 0, 0),
        (1, 5, 2, 3),
        (2, 0, 0, 0),
    ]
    assert progress[1].last_consumed_ms >= before - 1000  # the store time of entry-1
    assert admin.consume_stats("ledger-audit", "Ledger") == progress
    # And the command line prints the same with the total
    shown = mqadmin(namesrv, "consumerProgress", "-g", "ledger-audit")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == [
        "#Topic",
        "#Broker",
        "Name",
        "#QID",
        "#Broker",
        "Offset",
        "#Consumer",
        "Offset",
        "#Diff",
        "#LastTime",
    ]
    assert lines[2].split()[:6] == ["Ledger", "broker-a", "1", "5", "2", "3"]
    assert lines[-1] == "Diff Total: 3"


def test_unknown_topics_and_groups_answer_plainly(cluster: dict[str, str], admin: Admin) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # A topic nobody created: TOPIC_NOT_EXIST from the name server (exit status 1 on the CLI)
    with pytest.raises(BrokerError) as raised:
        admin.topic_stats("NoSuchTopic")
    assert raised.value.code == ResponseCode.TOPIC_NOT_EXIST
    shown = mqadmin(namesrv, "topicStatus", "-t", "NoSuchTopic")
    assert shown.returncode == 1 and "code 17" in shown.stderr
    # The broker itself says the same for a topic it does not have
    client = WireClient(broker)
    try:
        direct = client.call(RequestCode.GET_TOPIC_STATS_INFO, {"topic": "NoSuchTopic"})
        assert direct.code == ResponseCode.TOPIC_NOT_EXIST
    finally:
        client.close()
    # A group that never committed anything has no progress rows, and no members
    assert admin.consume_stats("nobody-here") == []
    with pytest.raises(BrokerError) as offline:
        admin.consumer_connections("nobody-here")
    assert offline.value.code == ResponseCode.CONSUMER_NOT_ONLINE


def test_cluster_list_names_the_master(cluster: dict[str, str], admin: Admin) -> None:
    assert admin.masters() == {"broker-a": cluster["broker-a/0"]}
    assert admin.masters("DefaultCluster") == {"broker-a": cluster["broker-a/0"]}
    shown = mqadmin(cluster["namesrv"], "clusterList")
    assert shown.returncode == 0, shown.stderr
    row = shown.stdout.splitlines()[1].split()
    assert row[:5] == ["DefaultCluster", "broker-a", "0", cluster["broker-a/0"], "actormq-0.1.0"]
    assert len(row) == 9  # in / out TPS and today's totals follow


def test_broker_status_counts_what_was_stored_and_pulled(
    cluster: dict[str, str], admin: Admin
) -> None:
    broker = cluster["broker-a/0"]
    before = admin.broker_runtime_info(broker)
    # When three messages are stored and one pull hands out up to two of them
    client = WireClient(broker)
    try:
        for i in range(3):
            assert send(client, "Counted", f"c{i}".encode()).code == ResponseCode.SUCCESS
        got = pull(client, "Counted", 0, 0, max_nums=2, suspend_ms=5000)
        assert got.code == ResponseCode.SUCCESS
        handed_out = len(records(got.body))
    finally:
        client.close()
    # Then the broker's totals moved by exactly that much, and its figures are all there
    after = admin.broker_runtime_info(broker)
    for key, moved in (("msgPutTotalTodayNow", 3), ("msgGetTotalTodayNow", handed_out)):
        assert int(after[key]) - int(before[key]) == moved
    assert len(after["putTps"].split()) == 3 and int(after["commitLogMaxOffset"]) > 0
    assert 0 < float(after["commitLogDiskRatio"]) < 1
    assert 0 < int(after["earliestMessageTimeStamp"]) <= int(time.time() * 1000)
    shown = mqadmin(cluster["namesrv"], "brokerStatus", "-b", broker)
    assert shown.returncode == 0, shown.stderr
    assert f"msgPutTotalTodayNow             : {after['msgPutTotalTodayNow']}" in shown.stdout


def test_command_line_usage_errors_exit_2_and_an_unreachable_cluster_1(
    tmp_path: pathlib.Path,
) -> None:
    # updateTopic needs a cluster or a broker: argparse refuses before anything is sent
    shown = mqadmin("127.0.0.1:1", "updateTopic", "-t", "T")
    assert shown.returncode == 2 and "-c/--cluster" in shown.stderr
    # A name server nobody answers at: exit 1, and the reason
    down = mqadmin("127.0.0.1:1", "topicList")
    assert down.returncode == 1 and "Connection refused" in down.stderr


def test_reset_offset_by_time_commits_for_a_stopped_group_and_replays_a_running_one(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given a one-queue topic with four messages, all consumed by a group that is not running
    admin.create_topic("Replay", queues=1)
    with Producer("replay-producer", namesrv=namesrv) as producer:
        for i in range(4):
            producer.send(Message("Replay", f"r{i}".encode()))
    commit(broker, "replayer", "Replay", 0, 4)
    queue = MessageQueue(topic="Replay", broker_name="broker-a", queue_id=0)
    # When its offsets are reset to the beginning of time, Then all four are due again
    assert admin.reset_offset("replayer", "Replay", 0) == [OffsetReset(queue, 4, 0)]
    assert [(r.consumer_offset, r.diff) for r in admin.consume_stats("replayer")] == [(0, 4)]
    # And without force a later time does not move it forward; with force (the default) it does
    assert admin.reset_offset("replayer", "Replay", -1, force=False) == [OffsetReset(queue, 0, 0)]
    later = str(int(time.time() * 1000) + 60_000)
    shown = mqadmin(namesrv, "resetOffsetByTime", "-g", "replayer", "-t", "Replay", "-s", later)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].split() == ["broker-a", "0", "0", "4", "admin"]
    # A group nobody committed for shows N/A as its old offset
    assert admin.reset_offset("fresh-group", "Replay", 0) == [OffsetReset(queue, -1, 0)]
    # And skipAccumulatedMessage moves a group behind to the end: its backlog skipped
    shown = mqadmin(namesrv, "skipAccumulatedMessage", "-g", "fresh-group", "-t", "Replay")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].split() == ["broker-a", "0", "0", "4", "admin"]
    assert [r.diff for r in admin.consume_stats("fresh-group")] == [0]
    # Given the group's consumer running at the end of the queue
    seen: list[bytes] = []
    replayed = threading.Event()

    def listener(msg: Any) -> ConsumeResult:
        seen.append(msg.body)
        if len(seen) >= 4:
            replayed.set()
        return ConsumeResult.CONSUME_SUCCESS

    consumer = PushConsumer("replayer", namesrv=namesrv)
    consumer.subscribe("Replay", "*")(listener)
    consumer.start()
    try:
        # When the offsets are reset to the beginning, Then the broker tells the consumer,
        # which reads all four again
        rows = admin.reset_offset("replayer", "Replay", 0)
        assert rows == [OffsetReset(queue, 4, 0, True)]
        assert replayed.wait(20), seen
        assert sorted(seen) == [b"r0", b"r1", b"r2", b"r3"]
        # And the group's connection list names the member, its language and subscription
        found = admin.consumer_connections("replayer")
        assert [(c.client_id, c.language) for c in found.connection_set] == [
            (consumer.client_id, "PYTHON")
        ]
        assert found.connection_set[0].client_addr.startswith("127.0.0.1:")
        assert {t: s.sub_string for t, s in found.subscription_table.items()} == {
            "Replay": "*",
            "%RETRY%replayer": "*",
        }
        assert (found.message_model, found.consume_type) == ("CLUSTERING", "CONSUME_PASSIVELY")
        shown = mqadmin(namesrv, "consumerConnection", "-g", "replayer")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[1].split()[:1] == [consumer.client_id]
        assert "MessageModel: CLUSTERING" in shown.stdout
    finally:
        consumer.shutdown()
    # And a time the command line cannot read is a usage error
    bad = mqadmin(namesrv, "resetOffsetByTime", "-g", "g", "-t", "Replay", "-s", "yesterday")
    assert bad.returncode == 2 and "yyyy-MM-dd#HH:mm:ss:SSS" in bad.stderr


def test_messages_are_found_by_offset_id_key_and_unique_key(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv = cluster["namesrv"]
    # Given a message with tags, keys and a property, and another with other keys
    with Producer("lookup-producer", namesrv=namesrv) as producer:
        sent = producer.send(
            Message("Lookup", b"hello", tags="paid", keys=["order-42"], properties={"region": "eu"})
        )
        producer.send(Message("Lookup", b"other", keys=["order-43"]))
    # Then its offset id leads to it, whole
    found = admin.view_message(sent.offset_msg_id)
    assert (found.topic, found.body, found.tags, found.keys) == (
        "Lookup",
        b"hello",
        "paid",
        ["order-42"],
    )
    assert found.msg_id == sent.msg_id and found.properties == {"region": "eu"}
    assert found.queue_offset == sent.queue_offset
    # And its key and its producer-side msg id find it, and only it
    assert [m.body for m in admin.query_messages("Lookup", "order-42")] == [b"hello"]
    assert [m.body for m in admin.query_messages("Lookup", sent.msg_id)] == [b"hello"]
    assert admin.query_messages("Lookup", "order-99") == []
    # And the command line prints it
    shown = mqadmin(namesrv, "queryMsgByUniqueKey", "-t", "Lookup", "-i", sent.msg_id)
    assert shown.returncode == 0, shown.stderr
    assert "Message Body:        hello" in shown.stdout and "Keys:                [order-42]" in (
        shown.stdout
    )
    listed = mqadmin(namesrv, "queryMsgByKey", "-t", "Lookup", "-k", "order-43")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 2
    # And -e before it was stored leaves it out (mqadmin 5's endTimestamp)
    early = mqadmin(namesrv, "queryMsgByKey", "-t", "Lookup", "-k", "order-43", "-e", "1000")
    assert early.returncode == 0 and len(early.stdout.splitlines()) == 1, early.stdout
    # And an id that is not one is refused plainly
    bad = mqadmin(namesrv, "queryMsgById", "-i", "not-an-id")
    assert bad.returncode == 1 and "not an offset message id" in bad.stderr


def test_producer_connections_list_the_groups_heartbeating_producers(
    cluster: dict[str, str], admin: Admin
) -> None:
    broker = cluster["broker-a/0"]
    assert admin.producer_connections("quiet-producers") == []
    # Given a producer of group "pg-conn" that heartbeats the broker on its own connection
    client = WireClient(broker)
    try:
        body = json.dumps(
            {"clientID": "10.0.0.9@77", "producerDataSet": [{"groupName": "pg-conn"}]}
        ).encode()
        assert client.call(RequestCode.HEART_BEAT, body=body).code == ResponseCode.SUCCESS
        # Then the group lists it, with the language its requests carry
        found = admin.producer_connections("pg-conn")
        assert [(c.client_id, c.language) for c in found] == [("10.0.0.9@77", "JAVA")]
        shown = mqadmin(cluster["namesrv"], "producerConnection", "-g", "pg-conn")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[1].split()[0] == "10.0.0.9@77"
    finally:
        client.close()


def test_subscription_group_configs_are_set_read_and_deleted(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given a group configured from the command line with 3 retries, consumption off, orderly
    args = ["-g", "billing-cfg", "-c", "DefaultCluster", "-r", "3", "-s", "false", "-o", "true"]
    made = mqadmin(namesrv, "updateSubGroup", *args)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"create subscription group to {broker} success."
    # Then the broker holds exactly that, broadcasting and consumeFromMin off as mqadmin's
    # defaults
    config = admin.subscription_group("billing-cfg", broker)
    assert (config.retry_max_times, config.consume_enable, config.consume_broadcast_enable) == (
        3,
        False,
        False,
    )
    assert config.consume_from_min_enable is False
    assert config.consume_message_orderly is True
    # When it is deleted, Then the broker no longer has it
    assert mqadmin(namesrv, "deleteSubGroup", "-g", "billing-cfg", "-b", broker).returncode == 0
    with pytest.raises(BrokerError) as gone:
        admin.subscription_group("billing-cfg", broker)
    assert gone.value.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
    # And a flag that is neither true nor false is a usage error
    bad = mqadmin(namesrv, "updateSubGroup", "-g", "x", "-b", broker, "-s", "maybe")
    assert bad.returncode == 2 and "not true or false" in bad.stderr


def test_delete_sub_group_on_a_cluster_also_drops_its_offsets_and_retry_topics(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given two groups with a config, a committed offset and their %RETRY% / %DLQ% topics
    admin.create_topic("DropGroups", queues=1)
    mq = MessageQueue(topic="DropGroups", broker_name="broker-a", queue_id=0)
    for group in ("drop-kept", "drop-all"):
        made = mqadmin(namesrv, "updateSubGroup", "-g", group, "-c", "DefaultCluster")
        assert made.returncode == 0, made.stderr
        commit(broker, group, "DropGroups", 0, 5)
        for prefix in ("%RETRY%", "%DLQ%"):
            admin.create_topic(prefix + group, queues=1)
    # When one is deleted from a broker alone (RocketMQ's -b: the config only)
    kept = mqadmin(namesrv, "deleteSubGroup", "-g", "drop-kept", "-b", broker)
    assert kept.returncode == 0, kept.stderr
    # Then its offsets and topics stay
    assert admin.committed_offset("drop-kept", mq) == 5
    # When the other is deleted from the cluster with -r true
    dropped = mqadmin(
        namesrv, "deleteSubGroup", "-g", "drop-all", "-c", "DefaultCluster", "-r", "true"
    )
    assert dropped.returncode == 0, dropped.stderr
    assert "%RETRY%drop-all" in dropped.stdout
    # Then its config, its committed offsets and its %RETRY% / %DLQ% topics are gone
    with pytest.raises(BrokerError) as gone:
        admin.subscription_group("drop-all", broker)
    assert gone.value.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
    assert admin.committed_offset("drop-all", mq) == -1
    listed = admin.topic_list()
    assert "%RETRY%drop-all" not in listed and "%DLQ%drop-all" not in listed
    assert "%RETRY%drop-kept" in listed and "%DLQ%drop-kept" in listed
    with pytest.raises(BrokerError) as no_route:  # (a %RETRY% route is served on demand)
        admin.topic_route("%DLQ%drop-all")
    assert no_route.value.code == ResponseCode.TOPIC_NOT_EXIST


def test_reset_offset_reaches_a_running_lite_pull_consumer(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv = cluster["namesrv"]
    # Given a lite pull consumer that polled and committed all three messages of its topic
    admin.create_topic("ReplayLite", queues=1)
    with Producer("replay-lite-producer", namesrv=namesrv) as producer:
        for i in range(3):
            producer.send(Message("ReplayLite", f"l{i}".encode()))
    consumer = PullConsumer("lite-replayer", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe("ReplayLite", "*")
    with consumer:
        first: list[bytes] = []
        while len(first) < 3:
            polled = consumer.poll(timeout=10.0)
            assert polled, first
            first.extend(m.body for m in polled)
        consumer.commit()
        # When the group is reset to the beginning while it runs
        rows = admin.reset_offset("lite-replayer", "ReplayLite", 0)
        assert [(r.old_offset, r.new_offset, r.online) for r in rows] == [(3, 0, True)]
        # Then its next polls return the three messages again
        again: list[bytes] = []
        while len(again) < 3:
            polled = consumer.poll(timeout=10.0)
            assert polled, again
            again.extend(m.body for m in polled)
        assert sorted(again) == [b"l0", b"l1", b"l2"]


@pytest.mark.parametrize(
    "code",
    [
        RequestCode.GET_BROKER_RUNTIME_INFO,
        RequestCode.GET_TOPIC_STATS_INFO,
        RequestCode.GET_CONSUMER_CONNECTION_LIST,
        RequestCode.GET_PRODUCER_CONNECTION_LIST,
        RequestCode.GET_CONSUME_STATS,
        RequestCode.INVOKE_BROKER_TO_RESET_OFFSET,
    ],
)
def test_admin_requests_without_their_header_fields_get_a_plain_error(
    cluster: dict[str, str], code: int
) -> None:
    client = WireClient(cluster["broker-a/0"])
    try:
        # Given a request with none of its header fields (or junk in them)
        bare = client.call(code, {})
        junk = client.call(code, {"topic": "../x", "timestamp": "soon", "consumerGroup": ""})
        # Then each gets an answer (an error with a reason where something was needed)...
        for answer in (bare, junk):
            assert answer.code == ResponseCode.SUCCESS or answer.remark, answer
        # ...and the connection keeps serving
        assert client.call(RequestCode.GET_BROKER_RUNTIME_INFO).code == ResponseCode.SUCCESS
    finally:
        client.close()


def test_who_consumes_a_topic_and_cloning_a_groups_offsets(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given topic Ledger2 with a group that committed offsets and another one online
    admin.create_topic("Ledger2", queues=2)
    with Producer("admin-test-producer-2", namesrv=namesrv) as producer:
        for i in range(4):
            producer.send(Message("Ledger2", f"l-{i}".encode()))
    commit(broker, "ledger2-audit", "Ledger2", 0, 1)
    commit(broker, "ledger2-audit", "Ledger2", 1, 2)
    online = PushConsumer("ledger2-live", namesrv=namesrv)
    online.subscribe("Ledger2", "*")(lambda _msg: ConsumeResult.CONSUME_SUCCESS)
    online.start()
    try:
        # When an admin asks who consumes the topic, Then both groups are named
        assert {"ledger2-audit", "ledger2-live"} <= set(admin.topic_consumers("Ledger2"))
        assert "Ledger2" in admin.consumer_topics("ledger2-audit")
        # And the command line's summary of every group lists the online one with its member
        # (groups are found by their retry topics, which the broker registers as it creates)
        wait_until(lambda: "%RETRY%ledger2-live" in admin.topic_list(), what="retry topic")
        summary = mqadmin(namesrv, "consumerProgress")
        assert summary.returncode == 0, summary.stderr
        lines = summary.stdout.splitlines()
        header = "#Group #Count #Version #Type #Model #TPS #Diff Total"
        assert lines[0].split() == header.split()
        [live] = [line.split() for line in lines if line.startswith("ledger2-live ")]
        assert live[1] == "1" and live[3:5] == ["PUSH", "CLUSTERING"]
        # And topicList -c names the topic's cluster and both groups, no retry topic
        listed = mqadmin(namesrv, "topicList", "-c")
        assert listed.returncode == 0, listed.stderr
        rows = [line.split() for line in listed.stdout.splitlines()[1:]]
        assert ["DefaultCluster", "Ledger2", "ledger2-audit"] in rows
        assert ["DefaultCluster", "Ledger2", "ledger2-live"] in rows
        assert not any(r[1].startswith("%RETRY%") for r in rows if len(r) > 1)
    finally:
        online.shutdown()
    # When the command line clones the audit group's offsets into a new group
    cloned = mqadmin(
        namesrv, "cloneGroupOffset", "-s", "ledger2-audit", "-d", "ledger2-copy", "-t", "Ledger2"
    )
    assert cloned.returncode == 0, cloned.stderr
    assert "clone group offset success." in cloned.stdout
    # Then the new group's progress is the audit group's
    copied = [(r.queue.queue_id, r.consumer_offset) for r in admin.consume_stats("ledger2-copy")]
    assert copied == [(0, 1), (1, 2)]


def test_a_consumer_consumes_a_message_directly_on_an_admins_request(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv = cluster["namesrv"]
    # Given a running push consumer that took one message, and can be told to fail
    admin.create_topic("Direct", queues=1)
    got: list[bytes] = []
    fail = threading.Event()
    first = threading.Event()

    def listener(msg: Any) -> ConsumeResult:
        if fail.is_set():
            raise RuntimeError("listener says no")
        got.append(msg.body)
        first.set()
        return ConsumeResult.CONSUME_SUCCESS

    consumer = PushConsumer("direct-group", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe("Direct", "*")(listener)
    consumer.start()
    try:
        with Producer("direct-producer", namesrv=namesrv) as producer:
            sent = producer.send(Message("Direct", b"resend me"))
        assert first.wait(20)
        # When the command line asks that member to consume it directly
        shown = mqadmin(
            namesrv, "queryMsgById", "-i", sent.offset_msg_id, "-g", "direct-group",
            "-d", consumer.client_id,
        )  # fmt: skip
        # Then its listener took it once more, and the outcome is printed
        assert shown.returncode == 0, shown.stderr
        assert "consumeResult=CR_SUCCESS" in shown.stdout and "order=false" in shown.stdout
        assert got == [b"resend me", b"resend me"]
        # And a listener that raises is reported with the reason
        fail.set()
        result = admin.consume_message_directly(
            "direct-group", consumer.client_id, sent.offset_msg_id
        )
        assert result.consume_result == "CR_THROW_EXCEPTION"
        assert "listener says no" in (result.remark or "")
        # And a member the group does not have is refused by the broker
        with pytest.raises(BrokerError):
            admin.consume_message_directly("direct-group", "nobody@1", sent.offset_msg_id)
    finally:
        consumer.shutdown()
    # -g without -d is a usage error
    assert mqadmin(namesrv, "queryMsgById", "-i", sent.offset_msg_id, "-g", "x").returncode == 2


def test_stats_all_shows_each_topics_traffic_and_each_groups_backlog(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given one-queue topics: four messages read by a group that committed offset 1, two
    # messages nobody consumes, and one topic without traffic
    for topic in ("StatsOrders", "StatsQuiet", "StatsIdle"):
        admin.create_topic(topic, cluster="DefaultCluster", queues=1)
    client = WireClient(broker)
    try:
        for topic, count in (("StatsOrders", 4), ("StatsQuiet", 2)):
            for i in range(count):
                assert send(client, topic, f"{topic}-{i}".encode()).code == 0
        read = pull(client, "StatsOrders", 0, 0, group="stats-billing")
        assert len(records(read.body)) == 4
    finally:
        client.close()
    commit(broker, "stats-billing", "StatsOrders", 0, 1)
    # When statsAll runs for one topic, and for the active ones
    one = mqadmin(namesrv, "statsAll", "-t", "StatsOrders")
    active = mqadmin(namesrv, "statsAll", "-a")
    # Then the group's row has its backlog, the counts in and out of the day and the rates
    assert one.returncode == 0, one.stderr
    lines = [line.split() for line in one.stdout.splitlines()]
    assert lines[0][:3] == ["#Topic", "#Consumer", "Group"]
    topic, group, backlog, in_tps, out_tps, in_day, out_day = lines[1]
    assert (topic, group, backlog) == ("StatsOrders", "stats-billing", "3")
    assert (in_day, out_day) == ("4", "4")
    assert float(in_tps) > 0 and float(out_tps) > 0  # all sent and read within the minute
    # And -a lists the topic nobody consumes (NO_CONSUMER), not the one without traffic
    assert active.returncode == 0, active.stderr
    rows = {line.split()[0]: line.split() for line in active.stdout.splitlines()[1:]}
    assert rows["StatsQuiet"][-2:] == ["2", "NO_CONSUMER"]
    assert "StatsIdle" not in rows and "StatsOrders" in rows


def test_broker_consume_stats_shows_every_groups_lag_on_one_broker(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given a two-queue topic with three messages in queue 0 and two in queue 1, one group that
    # committed 1 of queue 0 and 2 of queue 1, another that committed 3 of queue 0 only
    admin.create_topic("BcsLedger", cluster="DefaultCluster", queues=2)
    client = WireClient(broker)
    try:
        for queue_id, count in ((0, 3), (1, 2)):
            for i in range(count):
                assert send(client, "BcsLedger", f"{i}".encode(), queue_id=queue_id).code == 0
    finally:
        client.close()
    commit(broker, "bcs-billing", "BcsLedger", 0, 1)
    commit(broker, "bcs-billing", "BcsLedger", 1, 2)
    commit(broker, "bcs-audit", "BcsLedger", 0, 3)
    # When the broker's consume stats are read
    found = admin.broker_consume_stats(broker)
    # Then each group has its queues with their offsets, and the total diff counts every group
    assert found.broker_addr == broker
    lag = {
        group: [(r.queue.queue_id, r.broker_offset, r.consumer_offset, r.diff) for r in rows]
        for group, rows in found.groups.items()
        if group.startswith("bcs-")
    }
    assert lag == {
        "bcs-audit": [(0, 3, 3, 0), (1, 2, 0, 2)],
        "bcs-billing": [(0, 3, 1, 2), (1, 2, 2, 0)],
    }
    assert found.total_diff >= 4
    assert found.groups["bcs-billing"][0].last_consumed_ms > 0  # the store time of message 0
    # And orderly topics only: the plain topic is left out
    ordered = admin.broker_consume_stats(broker, order_only=True)
    assert all(r.queue.topic != "BcsLedger" for rows in ordered.groups.values() for r in rows)
    # And the command line prints the rows mqadmin prints: a queue consumed from (a last time)
    # at least -l behind, and the total
    shown = mqadmin(namesrv, "brokerConsumeStats", "-b", broker, "-l", "1")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:3] == ["#Topic", "#Group", "#Broker"]
    rows = [line.split() for line in lines[1:-2] if "BcsLedger" in line]
    assert [row[:7] for row in rows] == [
        ["BcsLedger", "bcs-billing", "broker-a", "0", "3", "1", "2"]
    ]
    assert lines[-1] == f"Diff Total: {admin.broker_consume_stats(broker).total_diff}"
    # And -b is required
    assert mqadmin(namesrv, "brokerConsumeStats").returncode == 2


def test_topic_attributes_are_set_kept_and_survive_a_restart(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    args = ["--ephemeral-ports", "--data-dir", str(data)]
    with RuntimeProcess(args) as node:
        ready = node.wait_ready()
        namesrv, broker = ready["namesrv"], ready["broker-a/0"]
        # Given a topic made LITE from the command line (RocketMQ 5's attribute form)
        made = mqadmin(
            namesrv, "updateTopic", "-t", "Chats", "-b", broker, "-a", "+message.type=LITE"
        )
        assert made.returncode == 0, made.stderr
        with Admin(namesrv) as admin:
            assert admin.topic_config("Chats", broker).attributes == {"message.type": "LITE"}
            # When it is updated without attributes, then with an expiration
            admin.create_topic("Chats", broker_addr=broker, queues=2)
            admin.create_topic(
                "Chats", broker_addr=broker, queues=2, attributes="+lite.topic.expiration=60"
            )
            # Then its attributes are kept and added to
            config = admin.topic_config("Chats", broker)
            assert config.attributes == {"message.type": "LITE", "lite.topic.expiration": "60"}
            assert config.write_queue_nums == 2
            # And an attribute RocketMQ does not know is refused, naming it, nothing changed
            with pytest.raises(BrokerError) as refused:
                admin.create_topic("Chats", broker_addr=broker, attributes="+queue.type=X")
            assert refused.value.code == ResponseCode.INVALID_PARAMETER
            assert "queue.type" in str(refused.value)
            shown = mqadmin(
                namesrv, "updateTopic", "-t", "Chats", "-b", broker, "-a", "+message.type=NOPE"
            )
            assert shown.returncode == 1 and "message.type" in shown.stderr
        assert node.terminate() == 0, node.stderr_text()
    # When the broker restarts on the same data
    with RuntimeProcess(args) as node:
        ready = node.wait_ready()
        with Admin(ready["namesrv"]) as admin:
            # Then the attributes are still there
            config = admin.topic_config("Chats", ready["broker-a/0"])
            assert config.attributes == {"message.type": "LITE", "lite.topic.expiration": "60"}


def test_update_topic_order_true_sets_the_order_conf_as_mqadmin(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, broker = cluster["namesrv"], cluster["broker-a/0"]
    # Given a topic created ordered on the cluster with mqadmin's -o true
    made = mqadmin(
        namesrv, "updateTopic", "-t", "Sequenced", "-c", "DefaultCluster", "-w", "2", "-o", "true"
    )
    # Then the command succeeds and the name servers hold its order conf
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [
        f"create topic to {broker} success.",
        "set cluster orderConf. isOrder=true, orderConf=[broker-a:2]",
    ]
    assert admin.order_conf("Sequenced") == "broker-a:2"
    # When it is updated on the broker with 3 write queues, Then its entry changes
    on_broker = ["-t", "Sequenced", "-b", broker, "-w", "3", "-o", "true"]
    again = mqadmin(namesrv, "updateTopic", *on_broker)
    assert again.returncode == 0, again.stderr
    assert admin.order_conf("Sequenced") == "broker-a:3"
    # And -o false leaves the order conf alone
    plain = mqadmin(namesrv, "updateTopic", "-t", "Sequenced", "-b", broker, "-o", "false")
    assert plain.returncode == 0 and len(plain.stdout.splitlines()) == 1, plain.stdout
    assert admin.order_conf("Sequenced") == "broker-a:3"


def test_consumer_progress_of_a_group_without_offsets_or_members_fails(
    cluster: dict[str, str],
) -> None:
    # Given a group that never committed an offset and has no member online
    # When its progress is asked for
    shown = mqadmin(cluster["namesrv"], "consumerProgress", "-g", "no-such-group")
    # Then it fails as mqadmin's does (not a "Diff Total: 0" a script reads as caught up)
    assert shown.returncode == 1 and shown.stdout == ""
    assert "Not found the consumer group consume stats of no-such-group" in shown.stderr
    assert "Traceback" not in shown.stderr
