"""The client's shutdown paths in a monkey-patched program (the test process is not patched, so
this runs a patched child against a real ``python -m runtime``): leaving a producer's block
right after a ``send_async`` loop, ``flush`` with auto batching, a send callback, a request
callback and push listeners that shut their own client down, and a ``poll`` waiting while its
consumer stops."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.harness import REPO, RuntimeProcess

pytestmark = pytest.mark.timeout(90)

SCRIPT = r"""
from gevent import monkey; monkey.patch_all()
import collections, json, sys, threading, time
from actors.client import ConsumeFrom, ConsumeResult, Message, Producer, PullConsumer, PushConsumer

ns = sys.argv[1]
out = {}
outcomes = collections.Counter()

def count(_result, error):
    outcomes["ok" if error is None else type(error).__name__] += 1

with Producer("patched-block", namesrv=ns) as producer:
    producer.send(Message("Patched", b"first"))
    for _ in range(2000):
        producer.send_async(Message("Patched", b"x" * 512), count)
out["block"] = dict(outcomes)

outcomes.clear()
with Producer("patched-flush", namesrv=ns, auto_batch=True, batch_max_delay=20) as producer:
    for _ in range(300):
        producer.send_async(Message("Patched", b"s"), count)
    out["flush"] = [producer.flush(10), dict(outcomes)]

producer = Producer("patched-callback", namesrv=ns).start()
took = []
def closing(_result, _error):
    started = time.monotonic()
    producer.shutdown()
    took.append(time.monotonic() - started)
producer.send_async(Message("Patched", b"c"), closing).result(5)
deadline = time.monotonic() + 15
while not took and time.monotonic() < deadline:
    time.sleep(0.01)
out["callback"] = took

requester = Producer("patched-requester", namesrv=ns).start()
request_took = []
def closing_requester(_reply, _error):  # nobody replies: RequestTimeoutError after 0.2 s
    started = time.monotonic()
    try:
        requester.flush(5)
    except Exception as exc:
        request_took.append(type(exc).__name__)
    requester.shutdown()
    request_took.append(time.monotonic() - started)
requester.request_async(Message("Patched", b"anyone?"), closing_requester, timeout=0.2)
deadline = time.monotonic() + 15
while len(request_took) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
out["request_callback"] = request_took

consumer = PushConsumer("patched-listeners", namesrv=ns, consume_from=ConsumeFrom.FIRST)
listener_took = []
@consumer.subscribe("Patched", "*")
def listener(_msg):
    started = time.monotonic()
    consumer.shutdown()
    listener_took.append(time.monotonic() - started)
    return ConsumeResult.CONSUME_SUCCESS
consumer.start()
deadline = time.monotonic() + 15
while len(listener_took) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
out["listeners"] = listener_took

lite = PullConsumer("patched-poll", namesrv=ns, consume_from=ConsumeFrom.LAST)
lite.subscribe("Patched", "*")
lite.start()
polled = {}
def poller():
    started = time.monotonic()
    polled["messages"] = len(lite.poll(20))
    polled["took"] = time.monotonic() - started
thread = threading.Thread(target=poller)
thread.start()
deadline = time.monotonic() + 10
while not lite.buffer._cond._waiters and time.monotonic() < deadline:  # the poll waits
    time.sleep(0.01)
lite.shutdown()
thread.join(25)
out["poll"] = polled
print("RESULT " + json.dumps(out), flush=True)
"""


def test_a_patched_program_s_shutdowns_complete_and_never_wait_for_themselves(
    tmp_path: pathlib.Path,
) -> None:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path)]) as node:
        namesrv = node.wait_ready()["namesrv"]
        # When a monkey-patched program runs each shutdown path against the broker
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, namesrv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=80,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    # Then every async send in flight when the block ended was answered before it ended
    assert out["block"] == {"ok": 2000}
    # And a flush sent the held batches and waited for their callbacks
    assert out["flush"] == [True, {"ok": 300}]
    # And a callback's shutdown, and listeners' shutdowns, returned without waiting for
    # themselves (well below the 10 s they used to wait)
    assert len(out["callback"]) == 1 and out["callback"][0] < 2.0
    # And a request callback's flush was refused, its shutdown returned as promptly
    assert out["request_callback"][0] == "ClientError" and out["request_callback"][1] < 2.0
    assert len(out["listeners"]) >= 2 and max(out["listeners"]) < 3.0
    # And a poll waiting when its consumer shut down returned at once, empty
    assert out["poll"]["messages"] == 0 and out["poll"]["took"] < 3.0
