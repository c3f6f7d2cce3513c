"""A broker with more consume queues than it may open files serves and recovers every one.

Consume-queue segments share a bounded set of descriptors (``runtime.store.fd_cache``); the
broker raises its soft open-files limit to the hard one at start (``runtime.fdlimit``)."""

from __future__ import annotations

import os
import pathlib
import resource
import time

import pytest

from actors.client import Admin, ConsumeFrom, Message, Producer, PullConsumer, SendStatus
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(120)

LIMIT = 256
TOPICS = [f"OpenFiles{i}" for i in range(4)]
QUEUES = 200  # 800 queues: over three times the descriptors the process may hold


def _low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, LIMIT))


def _start(data: pathlib.Path) -> tuple[RuntimeProcess, str]:
    node = RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)], preexec_fn=_low_limit)
    return node, node.wait_ready()["namesrv"]


def test_800_queues_under_a_256_file_limit_take_sends_and_come_back_after_a_restart(
    tmp_path: pathlib.Path,
) -> None:
    # Given a cluster process started with a soft open-files limit of 64 (hard 256)
    node, namesrv = _start(tmp_path / "data")
    with node:
        # Then it raised the soft limit to the hard one
        assert "open-files limit raised from 64 to 256" in node.stderr_text()
        # When 4 topics of 200 queues each get one message per queue
        with Admin(namesrv=namesrv) as admin:
            for topic in TOPICS:
                admin.create_topic(topic, queues=QUEUES)
        sent: dict[tuple[str, int], bytes] = {}
        with Producer("open-files-producer", namesrv=namesrv) as producer:
            for topic in TOPICS:
                for q in range(QUEUES):
                    body = f"{topic}/{q}".encode()
                    r = producer.send(Message(topic, body), selector=lambda qs, _m, q=q: qs[q])
                    assert r.status is SendStatus.SEND_OK, r
                    assert r.queue.queue_id == q
                    sent[(topic, q)] = body
        # Then every queue took its message, with the process under its limit
        assert len(sent) == len(TOPICS) * QUEUES
        assert len(os.listdir(f"/proc/{node.proc.pid}/fd")) < LIMIT
        assert node.terminate() == 0, node.stderr_text()
    # When the process starts again on the same data (recovery opens every queue)
    node, namesrv = _start(tmp_path / "data")
    with node:
        # Then a consumer reads every message back from the first offset
        consumer = PullConsumer(
            "open-files-reader", namesrv=namesrv, consume_from=ConsumeFrom.FIRST
        )
        for topic in TOPICS:
            consumer.subscribe(topic)
        consumer.start()
        try:
            got: dict[tuple[str, int], bytes] = {}
            deadline = time.monotonic() + 60
            while len(got) < len(sent) and time.monotonic() < deadline:
                for m in consumer.poll(0.5):
                    got[(m.topic, m.queue_id)] = m.body
        finally:
            consumer.shutdown()
        assert got == sent
        assert "Too many open files" not in node.stderr_text()
        assert node.terminate() == 0, node.stderr_text()
