"""Batch listeners (``consume_batch_size``, RocketMQ's consumeMessageBatchMaxSize) against a
real ``python -m runtime``: concurrent and orderly consumers get every message in lists of at
most K messages of one queue, and the group's offsets end at the queues' ends."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

import pytest

from actors.client import (
    Admin,
    ConsumeContext,
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageExt,
    Producer,
    PushConsumer,
)
from tests import client_support
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(120)

wait_until = functools.partial(client_support.wait_until, timeout=30.0)

N = 120
K = 8


@pytest.fixture(scope="module")
def namesrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("client-batch")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()["namesrv"]
        assert node.terminate() == 0, node.stderr_text()


@pytest.mark.parametrize("orderly", [False, True], ids=["concurrently", "orderly"])
def test_a_batch_consumer_gets_every_message_in_lists_of_at_most_k(
    namesrv: str, orderly: bool
) -> None:
    topic = f"BatchE2E{'Orderly' if orderly else ''}"
    group = f"batch-e2e-{'orderly' if orderly else 'concurrent'}"
    # Given N messages spread over the topic's queues, each with its sequence number in its key
    with Producer(f"{group}-producer", namesrv=namesrv) as producer:
        for i in range(N):
            producer.send(Message(topic, b"%d" % i), sharding_key=f"k{i % 4}")
    calls: list[list[MessageExt]] = []
    lock = threading.Lock()
    consumer = PushConsumer(
        group,
        namesrv=namesrv,
        consume_from=ConsumeFrom.FIRST,
        consume_batch_size=K,
        orderly=orderly,
    )

    @consumer.subscribe(topic, "*", batch=True)
    def on_batch(msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
        assert context.mq is not None and {m.queue_id for m in msgs} == {context.mq.queue_id}
        with lock:
            calls.append(list(msgs))
        return ConsumeResult.CONSUME_SUCCESS

    # When a push consumer with consume_batch_size=K reads the topic
    consumer.start()
    try:
        wait_until(lambda: sum(len(c) for c in list(calls)) >= N, what=f"{N} messages")
    finally:
        consumer.shutdown()
    # Then every message came exactly once, in lists of 1..K messages of one queue in offset
    # order, and some lists were full
    assert sorted(int(m.body) for call in calls for m in call) == list(range(N))
    for call in calls:
        assert 1 <= len(call) <= K
        assert len({m.queue_id for m in call}) == 1
        offsets = [m.queue_offset for m in call]
        assert offsets == list(range(offsets[0], offsets[0] + len(call)))
    assert max(len(call) for call in calls) == K
    if orderly:
        # And each queue's messages came in queue order across the lists
        for q in {m.queue_id for call in calls for m in call}:
            seen = [m.queue_offset for call in calls for m in call if m.queue_id == q]
            assert seen == sorted(seen)
    # And the group's committed offsets are at the end of every queue
    with Admin(namesrv) as admin:
        progress = admin.consume_stats(group, topic)
    assert progress and all(p.diff == 0 for p in progress), progress
    assert sum(p.consumer_offset for p in progress) == N
