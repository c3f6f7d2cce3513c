"""GET_CONSUMER_RUNNING_INFO (307) end to end: ``Admin.consumer_running_info`` and ``python -m
runtime admin consumerStatus`` ask a real broker, which asks a running PushConsumer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors.client import (
    Admin,
    BrokerError,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageQueue,
    Producer,
    PushConsumer,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.running_info import (
    PROP_CLIENT_VERSION,
    PROP_CONSUME_ORDERLY,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    PROP_NAMESERVER_ADDR,
    PROP_THREADPOOL_CORE_SIZE,
)
from tests.harness import RuntimeProcess
from tests.integration.test_admin import mqadmin

pytestmark = pytest.mark.timeout(90)

GROUP = "status-readers"
TOPIC = "Status"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("running-info")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll an outcome nothing signals (a consumer's offsets, a broker's registration)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_running_consumer_describes_its_queues_through_the_broker(
    cluster: dict[str, str],
) -> None:
    namesrv = cluster["namesrv"]
    with Admin(namesrv) as admin:
        wait_until(lambda: bool(admin.masters()), "the broker's registration")
        # Given a four-queue topic with 2, 0, 3 and 1 messages
        admin.create_topic(TOPIC, queues=4)
        wait_until(lambda: TOPIC in admin.topic_list(), "the topic's route")
        counts = {0: 2, 1: 0, 2: 3, 3: 1}
        with Producer("status-producer", namesrv=namesrv) as producer:
            queues = {q.queue_id: q for q in producer.queues(TOPIC)}
            for qid, n in counts.items():
                for i in range(n):
                    producer.send(Message(TOPIC, f"q{qid}-{i}".encode()), queue=queues[qid])
        # And a push consumer of the group that consumed them all
        seen: list[bytes] = []
        done = threading.Event()

        def listener(msg: Any) -> ConsumeResult:
            seen.append(msg.body)
            if len(seen) >= sum(counts.values()):
                done.set()
            return ConsumeResult.CONSUME_SUCCESS

        consumer = PushConsumer(GROUP, namesrv=namesrv, consume_from=ConsumeFrom.FIRST)
        consumer.subscribe(TOPIC, "*")(listener)
        consumer.start()
        try:
            assert done.wait(20), seen
            mqs = [MessageQueue(topic=TOPIC, broker_name="broker-a", queue_id=q) for q in counts]
            wait_until(
                lambda: [consumer.committed(mq) for mq in mqs] == list(counts.values()),
                "the consumer's offsets",
            )
            # When an admin asks the broker for the consumer's running info
            info = admin.consumer_running_info(GROUP, consumer.client_id)
            # Then it lists the subscriptions, the retry topic's included
            assert {(s.topic, s.sub_string) for s in info.subscription_set} == {
                (TOPIC, "*"),
                (f"%RETRY%{GROUP}", "*"),
            }
            # And every queue it holds, with the offset it commits
            held = {mq: pq for mq, pq in info.mq_table.items() if mq.topic == TOPIC}
            assert {mq.queue_id: pq.commit_offset for mq, pq in held.items()} == counts
            assert any(mq.topic == f"%RETRY%{GROUP}" for mq in info.mq_table)
            assert all(pq.cached_msg_count == 0 and not pq.droped for pq in held.values())
            assert all(pq.last_pull_timestamp > 0 for pq in held.values())
            assert held[mqs[2]].last_consume_timestamp >= held[mqs[2]].last_pull_timestamp - 60_000
            assert held[mqs[1]].last_consume_timestamp == 0  # nothing was sent there
            # And its properties, under RocketMQ's keys
            props = info.properties
            assert props[PROP_CONSUME_TYPE] == "CONSUME_PASSIVELY"
            assert props[PROP_CONSUME_ORDERLY] == "false"
            assert props[PROP_THREADPOOL_CORE_SIZE] == "20"
            assert props[PROP_NAMESERVER_ADDR] == namesrv
            assert props[PROP_CLIENT_VERSION].startswith("actormq-")
            assert 0 < int(props[PROP_CONSUMER_START_TIMESTAMP]) <= int(time.time() * 1000)
            assert (props["consumerGroup"], props["messageModel"]) == (GROUP, "CLUSTERING")
            assert set(info.status_table) == {TOPIC, f"%RETRY%{GROUP}"}
            assert info.jstack is None
            # And with jstack, the stacks of its threads (the client's hub thread among them)
            dumped = admin.consumer_running_info(GROUP, consumer.client_id, jstack=True)
            assert dumped.jstack and "actormq-client-hub" in dumped.jstack
            # And the command line shows the member, then the whole of it
            shown = mqadmin(namesrv, "consumerStatus", "-g", GROUP)
            assert shown.returncode == 0, shown.stderr
            lines = shown.stdout.splitlines()
            assert lines[1].split()[:2] == ["001", consumer.client_id]
            assert "Same subscription in the same group of consumer" in lines
            assert "Rebalance OK" in lines
            shown = mqadmin(namesrv, "consumerStatus", "-g", GROUP, "-i", consumer.client_id)
            assert shown.returncode == 0, shown.stderr
            assert "#Consumer MQ Detail#" in shown.stdout
            row = next(ln.split() for ln in shown.stdout.splitlines() if ln.startswith(TOPIC))
            assert row[:4] == [TOPIC, "broker-a", "0", "2"]
            # And a group this consumer is not answers as RocketMQ's clients do
            other = RemotingCommand.request(
                RequestCode.GET_CONSUMER_RUNNING_INFO,
                {"consumerGroup": "other", "clientId": consumer.client_id},
            )
            refused = consumer._running_info(None, other)  # type: ignore[arg-type]
            assert refused.code == ResponseCode.SYSTEM_ERROR
            assert refused.remark == "The Consumer Group <other> not exist in this consumer"
        finally:
            consumer.shutdown()
        # When the client is not (or no longer) online, Then the broker says so
        with pytest.raises(BrokerError) as offline:
            admin.consumer_running_info(GROUP, consumer.client_id)
        assert offline.value.code == ResponseCode.SYSTEM_ERROR
        assert offline.value.remark == f"The Consumer <{consumer.client_id}> not online"
        shown = mqadmin(namesrv, "consumerStatus", "-g", GROUP, "-i", "10.0.0.1@nobody")
        assert shown.returncode == 1
        assert "The Consumer <10.0.0.1@nobody> not online" in shown.stderr
