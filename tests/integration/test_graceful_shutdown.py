"""A broker process that gets SIGTERM while a client streams sends answers the sends it is
serving, refuses the rest unstored, and only then closes: afterwards the store holds exactly the
sends its client saw acknowledged (none stored whose client saw a failure)."""

from __future__ import annotations

import pathlib
import signal
import threading
from typing import Any

import pytest

from actors.client import Admin, Message, Producer
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(90)

TOPIC = "Graceful"


class Tally:
    def __init__(self) -> None:
        self.acked = 0
        self.failed = 0
        self.enough = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, _result: Any, error: BaseException | None) -> None:
        with self._lock:
            if error is None:
                self.acked += 1
                if self.acked >= 3000:
                    self.enough.set()
            else:
                self.failed += 1


def test_sigterm_answers_the_sends_in_service_and_stores_none_it_did_not_answer(
    tmp_path: pathlib.Path,
) -> None:
    args = ["--ephemeral-ports", "--data-dir", str(tmp_path)]
    tally = Tally()
    with RuntimeProcess(args) as node:
        namesrv = node.wait_ready()["namesrv"]
        # Given a producer keeping up to 1,024 async sends in flight on one connection
        with Producer("graceful", namesrv=namesrv, max_async_sends=1024) as producer:
            producer.send(Message(TOPIC, b"first"))
            # When the broker's process gets SIGTERM in the middle of the stream
            signalled = False
            while node.proc.poll() is None:
                producer.send_async(Message(TOPIC, b"x" * 1024), tally)
                if not signalled and tally.enough.is_set():
                    node.signal(signal.SIGTERM)
                    signalled = True
            assert producer.flush(30)
        assert signalled and node.wait() == 0, node.stderr_text()
    assert tally.acked >= 3000 and tally.failed > 0  # the stream really was cut
    # Then, restarted on the same store, it holds the first send and every acknowledged one,
    # and nothing else: each send whose client saw a failure was not stored
    with RuntimeProcess(args) as node, Admin(namesrv=node.wait_ready()["namesrv"]) as admin:
        stored = sum(row.max_offset - row.min_offset for row in admin.topic_stats(TOPIC))
        assert stored == 1 + tally.acked
