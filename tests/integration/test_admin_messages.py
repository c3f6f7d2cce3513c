"""mqadmin's message and topic commands against a real process: sendMessage, consumeMessage,
queryMsgByOffset, printMsg, printMsgByQueue, updateTopicPerm, getBrokerConfig."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from actors.client import Admin, Message, Producer, SendFailedError
from runtime.remoting.codes import ResponseCode
from tests.harness import RuntimeProcess
from tests.integration.test_admin import mqadmin

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("admin-messages")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture(scope="module")
def admin(cluster: dict[str, str]) -> Iterator[Admin]:
    with Admin(cluster["namesrv"]) as a:
        yield a


def ok(namesrv: str, *args: str) -> list[str]:
    done = mqadmin(namesrv, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout.splitlines()


def printed(lines: list[str]) -> list[str]:
    """The MSGID lines of consumeMessage / printMsg output."""
    return [line for line in lines if line.startswith("MSGID: ")]


def test_a_sent_message_is_consumed_printed_and_found_by_offset_without_committing(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv = cluster["namesrv"]
    admin.create_topic("Notes", queues=2)
    # Given one message sent by the command line to queue 1, another one round robin
    sent = ok(
        namesrv, "sendMessage", "-t", "Notes", "-p", "paid 42", "-k", "order-42", "-c", "paid",
        "-b", "broker-a", "-i", "1",
    )  # fmt: skip
    assert sent[0].split() == ["#Broker", "Name", "#QID", "#Send", "Result", "#MsgId"]
    broker, qid, status, msg_id = sent[1].split()
    assert (broker, qid, status) == ("broker-a", "1", "SEND_OK")
    other = ok(namesrv, "sendMessage", "-t", "Notes", "-p", "refunded 7", "-c", "refunded")
    assert other[1].split()[2] == "SEND_OK"
    later = int(time.time() * 1000) + 1000
    # When queue 1 is consumed, Then the message shows with its id, keys, tags and body
    lines = ok(namesrv, "consumeMessage", "-t", "Notes", "-b", "broker-a", "-i", "1")
    [line] = printed(lines)
    assert line.startswith(f"MSGID: {msg_id} MessageExt [brokerName=broker-a, queueId=1, ")
    assert "queueOffset=0" in line and "KEYS=order-42" in line and "TAGS=paid" in line
    assert line.endswith(" BODY: paid 42") and lines[0] == "Consume ok"
    # And the whole topic has both, -c caps the count, and -s after the sends finds none
    assert len(printed(ok(namesrv, "consumeMessage", "-t", "Notes"))) == 2
    assert len(printed(ok(namesrv, "consumeMessage", "-t", "Notes", "-c", "1"))) == 1
    assert printed(ok(namesrv, "consumeMessage", "-t", "Notes", "-s", str(later))) == []
    # When asked by offset, Then it prints as queryMsgById does; past the end it is an error
    shown = ok(namesrv, "queryMsgByOffset", "-t", "Notes", "-b", "broker-a", "-i", "1", "-o", "0")
    assert f"Msg ID:              {msg_id}" in shown
    assert "Message Body:        paid 42" in shown and "Keys:                [order-42]" in shown
    past = mqadmin(
        namesrv, "queryMsgByOffset", "-t", "Notes", "-b", "broker-a", "-i", "1", "-o", "9"
    )
    assert past.returncode == 1 and "no message at offset 9" in past.stderr
    # When the topic is printed, Then every queue has its offsets line and separator
    lines = ok(namesrv, "printMsg", "-t", "Notes")
    assert [line for line in lines if line.startswith("minOffset=")] == [
        f"minOffset=0, maxOffset={admin.max_offset(mq)}, MessageQueue [topic=Notes, "
        f"brokerName=broker-a, queueId={mq.queue_id}]"
        for mq in admin.fetch_queues("Notes")
    ]
    assert sorted(line.rsplit(" BODY: ", 1)[1] for line in printed(lines)) == [
        "paid 42",
        "refunded 7",
    ]
    assert lines.count("-" * 56) == 2
    # And -s filters by tag, -d false leaves the bodies out
    [paid] = printed(ok(namesrv, "printMsg", "-t", "Notes", "-s", "paid", "-d", "false"))
    assert paid.startswith(f"MSGID: {msg_id} ") and paid.endswith(" BODY: NOT PRINT BODY")
    # When one queue is printed with its messages and tag counts
    lines = ok(
        namesrv, "printMsgByQueue", "-t", "Notes", "-a", "broker-a", "-i", "1",
        "-p", "true", "-d", "true", "-f", "true",
    )  # fmt: skip
    assert printed(lines) == [line] and lines[-1].split() == ["Tag:", "paid", "Count:", "1"]
    # Then nothing above committed an offset for the tools group
    assert "Notes" not in admin.consumer_topics("TOOLS_CONSUMER")


def test_read_only_perm_refuses_sends_and_read_write_takes_them_again(
    cluster: dict[str, str], admin: Admin
) -> None:
    namesrv, address = cluster["namesrv"], cluster["broker-a/0"]
    admin.create_topic("Perms", queues=3)
    with Producer("perm-producer", namesrv=namesrv) as producer:
        # Given a producer that routed the topic with a first send
        producer.send(Message("Perms", b"before"))
        # When the topic becomes read only on the broker
        lines = ok(namesrv, "updateTopicPerm", "-t", "Perms", "-p", "4", "-b", address)
        assert lines[0] == f"update topic perm from 6 to 4 in {address} success."
        assert "perm=R--" in lines[1] and "readQueueNums=3, writeQueueNums=3" in lines[1]
        # Then the broker refuses its next send with NO_PERMISSION
        with pytest.raises(SendFailedError) as refused:
            producer.send(Message("Perms", b"during"))
        assert refused.value.errors[0].code == ResponseCode.NO_PERMISSION
    # And a new producer finds no queue to write, the route says 4, reads still work
    assert mqadmin(namesrv, "sendMessage", "-t", "Perms", "-p", "x").returncode == 1
    # while one naming a queue is sent there and refused by the broker itself (as mqadmin's)
    named = mqadmin(namesrv, "sendMessage", "-t", "Perms", "-p", "x", "-b", "broker-a", "-i", "0")
    assert named.returncode == 1 and "16" in named.stderr, named.stderr
    assert [q.perm for q in admin.topic_route("Perms").queue_datas] == [4]
    [before] = printed(ok(namesrv, "consumeMessage", "-t", "Perms"))
    assert before.endswith(" BODY: before")
    # And asking for perm 4 again changes nothing
    assert ok(namesrv, "updateTopicPerm", "-t", "Perms", "-p", "4", "-b", address) == [
        "new perm equals to the old one!"
    ]
    # When the cluster's masters give it read-write back
    lines = ok(namesrv, "updateTopicPerm", "-t", "Perms", "-p", "6", "-c", "DefaultCluster")
    assert lines == [f"update topic perm from 4 to 6 in {address} success."]
    # Then sends work, and the queue counts are what they were
    assert ok(namesrv, "sendMessage", "-t", "Perms", "-p", "after")[1].split()[2] == "SEND_OK"
    route = admin.topic_route("Perms")
    assert [(q.perm, q.read_queue_nums, q.write_queue_nums) for q in route.queue_datas] == [
        (6, 3, 3)
    ]
    # And a topic no broker has is an error
    missing = mqadmin(
        namesrv, "updateTopicPerm", "-t", "NoSuchTopic", "-p", "4", "-c", "DefaultCluster"
    )
    assert missing.returncode == 1 and "NoSuchTopic" in missing.stderr


def test_broker_config_lists_the_brokers_settings(cluster: dict[str, str], admin: Admin) -> None:
    namesrv, address = cluster["namesrv"], cluster["broker-a/0"]
    # When one broker's config is asked for, Then it prints under its banner, key = value
    lines = ok(namesrv, "getBrokerConfig", "-b", address)
    assert lines[0] == f"============{address}============" and lines[-1] == ""
    assert [line.split() for line in lines if line.startswith("brokerName ")] == [
        ["brokerName", "=", "broker-a"]
    ]
    assert admin.broker_config(address)["brokerClusterName"] == "DefaultCluster"
    # And by cluster each master is named
    lines = ok(namesrv, "getBrokerConfig", "-c", "DefaultCluster")
    assert lines[0] == f"============Master: {address}============"
    # And an unknown cluster is an error
    assert mqadmin(namesrv, "getBrokerConfig", "-c", "NoSuchCluster").returncode == 1
