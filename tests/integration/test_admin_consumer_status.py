"""getConsumerStatus, queryCq and the consume-queue cleanups end to end: ``Admin`` and
``python -m runtime admin`` ask a real broker, which asks a running actormq PushConsumer
(GET_CONSUMER_STATUS_FROM_CLIENT, 221)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.client import Admin, ConsumeFrom, ConsumeResult, Message, Producer, PushConsumer
from actors.client import MessageQueue as Queue
from tests.harness import RuntimeProcess
from tests.integration.test_admin import mqadmin
from tests.integration.test_admin_running_info import wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("consumer-status")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


def test_our_consumers_report_their_offsets_to_admin_tools(cluster: dict[str, str]) -> None:
    namesrv = cluster["namesrv"]
    with Admin(namesrv) as admin:
        wait_until(lambda: bool(admin.masters()), "the broker's registration")
        # Given a two-queue topic with 2 and 1 messages, all consumed by an actormq consumer
        admin.create_topic("OwnStatus", queues=2)
        wait_until(lambda: "OwnStatus" in admin.topic_list(), "the topic's route")
        counts = {0: 2, 1: 1}
        with Producer("own-status-producer", namesrv=namesrv) as producer:
            queues = {q.queue_id: q for q in producer.queues("OwnStatus")}
            for qid, n in counts.items():
                for i in range(n):
                    message = Message("OwnStatus", f"q{qid}-{i}".encode(), tags="A")
                    producer.send(message, queue=queues[qid])
        seen: list[bytes] = []
        consumer = PushConsumer("own-status", namesrv=namesrv, consume_from=ConsumeFrom.FIRST)

        @consumer.subscribe("OwnStatus", "A")
        def listener(msg: Any) -> ConsumeResult:
            seen.append(msg.body)
            return ConsumeResult.CONSUME_SUCCESS

        consumer.start()
        try:
            mqs = {q: Queue(topic="OwnStatus", broker_name="broker-a", queue_id=q) for q in counts}
            wait_until(
                lambda: {q: consumer.committed(mq) for q, mq in mqs.items()} == counts,
                "the consumer's offsets",
            )
            # When an admin asks for the group's status, Then the consumer reports its offsets
            table = admin.consumer_status("own-status", "OwnStatus")
            assert table == {consumer.client_id: {mqs[q]: n for q, n in counts.items()}}
            # And mqadmin getConsumerStatus prints them, a line per queue
            shown = mqadmin(namesrv, "getConsumerStatus", "-g", "own-status", "-t", "OwnStatus")
            assert shown.returncode == 0, shown.stderr
            rows = [line.split() for line in shown.stdout.splitlines()[2:]]
            assert rows == [
                [consumer.client_id, "broker-a", str(q), str(n)] for q, n in counts.items()
            ]
            # And mqadmin queryCq prints queue 0's entries, both selected by the subscription
            shown = mqadmin(
                namesrv, "queryCq", "-t", "OwnStatus", "-q", "0", "-i", "0", "-g", "own-status"
            )
            assert shown.returncode == 0, shown.stderr
            out = shown.stdout.splitlines()
            assert "max: 2, min: 0" in out
            entries = [line for line in out if line.startswith("ConsumeQueueData{")]
            assert len(entries) == 2 and all("eval=true" in line for line in entries)
            assert out.count("idx: 1") == 1 and "Filter data: " in out
        finally:
            consumer.shutdown()
        # And once it persisted its offsets (at shutdown), the group is caught up in time
        spans = admin.consume_time_span("own-status", "OwnStatus")
        assert [(s.message_queue.queue_id, s.delay_time) for s in spans] == [(0, 0), (1, 0)]
        # And the broker-wide cleanups run from the command line
        for command in ("cleanExpiredCQ", "cleanUnusedTopic"):
            shown = mqadmin(namesrv, command)
            assert (shown.returncode, shown.stdout.strip()) == (0, "success"), shown.stderr
        assert sorted(seen) == [b"q0-0", b"q0-1", b"q1-0"]
