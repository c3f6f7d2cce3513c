"""Smoke test: every example runs against a real ``python -m runtime`` and exits 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from runtime.remoting.codes import RequestCode
from tests.harness import REPO, RuntimeProcess
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(180)

TOPIC = "ExampleSmoke"


@pytest.fixture(scope="module")
def namesrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("examples")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()["namesrv"]
        assert node.terminate() == 0, node.stderr_text()


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m runtime cluster --profile examples/features.toml`` (SQL92 on, fast checks)."""
    data = tmp_path_factory.mktemp("examples-features")
    profile = str(REPO / "examples" / "features.toml")
    args = ["cluster", "--profile", profile, "--ephemeral-ports", "--data-dir", str(data)]
    with RuntimeProcess(args) as node:
        namesrv = node.wait_ready()["namesrv"]
        wait_for_tbw102(namesrv)
        yield namesrv
        assert node.terminate() == 0, node.stderr_text()


def wait_for_tbw102(namesrv: str, timeout: float = 20.0) -> None:
    """The broker registers TBW102 (what new topics are created from) just after the ready
    line; sends with a selector are tried once, so wait for it."""
    deadline = time.monotonic() + timeout
    client = WireClient(namesrv)
    try:
        while client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "TBW102"}).code != 0:
            assert time.monotonic() < deadline, "TBW102 never routed"
            time.sleep(0.05)
    finally:
        client.close()


def run_example(namesrv: str, script: str, *args: str, timeout: float = 90, code: int = 0) -> str:
    env = dict(os.environ, NAMESRV_ADDR=namesrv, HOME=os.environ.get("HOME", "/tmp"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == code, (
        f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout + proc.stderr if code else proc.stdout


def received(out: str) -> int:
    match = re.search(r"received (\d+) message", out)
    assert match, out
    return int(match.group(1))


def test_producer_then_consumers(namesrv: str, tmp_path) -> None:
    # Given the producer example sent 5 messages each way (sync, async, oneway, batch)
    out = run_example(namesrv, "producer.py", "--topic", TOPIC, "--count", "5")
    assert out.count("sync ") == 5 and "async: 5/5 stored" in out
    assert "oneway: 5 written" in out and "batch: SEND_OK 5 messages" in out
    # Then the push consumer example receives them (20 in all), filtering works by tag
    out = run_example(namesrv, "push_consumer.py", "--topic", TOPIC, "--count", "20")
    assert received(out) == 20
    out = run_example(
        namesrv,
        "push_consumer.py",
        "--topic",
        TOPIC,
        "--count",
        "5",
        "--tags",
        "batch",
        "--group",
        "example-batch-only",
    )
    assert "tags=batch" in out and "tags=sync" not in out
    # And the lite pull consumer polls, commits, seeks back
    out = run_example(namesrv, "pull_consumer.py", "--topic", TOPIC, "--count", "20")
    assert re.search(r"polled 2\d message", out) and "after seek:" in out
    # And two broadcast consumers each get everything
    for name in ("a", "b"):
        out = run_example(
            namesrv,
            "broadcast_consumer.py",
            "--topic",
            TOPIC,
            "--count",
            "20",
            "--instance",
            name,
            "--offset-dir",
            str(tmp_path),
        )
        assert received(out) >= 20
    assert sorted(p.parent.parent.name.split("@")[1] for p in tmp_path.rglob("offsets.json")) == [
        "a",
        "b",
    ]


def test_batch_consumer_gets_lists_of_at_most_the_batch_size(namesrv: str) -> None:
    # When the example sends 40 messages and reads them with consume_batch_size 6
    out = run_example(namesrv, "batch_consumer.py", "--count", "40", "--batch-size", "6")
    # Then all 40 arrived, in lists of at most 6 messages of one queue
    assert "received 40 message(s) in " in out and "batch(es) of at most 6" in out, out


def test_ordered_producer_keeps_each_order_on_one_queue(namesrv: str) -> None:
    out = run_example(namesrv, "ordered_producer.py", "--topic", "ExampleOrders", "--count", "4")
    assert out.count("4 steps on") == 4


def test_retry_consumer_retries_through_the_broker_and_dead_letters_poison(features: str) -> None:
    # Given 3 messages, one poison; When the example fails each first delivery
    out = run_example(features, "retry_consumer.py", "--count", "3")
    # Then the two good ones came back once (reconsume_times 1) on their own topic
    assert "received 2 message(s) after one retry each" in out
    assert "ExampleRetry 'message 1' reconsume_times=1" in out
    # And the poison one, after max_reconsume_times (1), sits in the dead-letter queue
    assert "poison message tried 2 times (reconsume_times [0, 1])" in out
    assert "dead letter in %DLQ%example-retry-consumer: 'poison' (from topic ExampleRetry)" in out


def test_orderly_consumer_gets_every_order_in_step_order(features: str) -> None:
    # Given 4 orders of 4 steps, each order on one queue
    run_example(features, "ordered_producer.py", "--count", "4", "--prefix", "smoke")
    # When the orderly consumer fails each "paid" step once
    out = run_example(
        features, "orderly_consumer.py", "--count", "4", "--prefix", "smoke", "--fail-step", "paid"
    )
    # Then every order's steps still arrive in order
    assert out.count("created paid shipped delivered") == 4, out
    assert out.count("failing once") == 4 and "OUT OF ORDER" not in out


def test_transaction_producer_commits_rolls_back_and_answers_the_check(features: str) -> None:
    # Given a broker that checks open transactions every second
    # When the example commits one order, rolls one back and leaves one UNKNOW
    out = run_example(features, "transaction_producer.py")
    # Then the broker asked about the unknown one, the check committed it, and the consumer
    # saw exactly the committed two
    assert "order-unknown: half message" in out and ": UNKNOW" in out
    assert "/order-unknown (transaction " in out and "): COMMIT_MESSAGE" in out
    assert "visible: ['order-commit', 'order-unknown']" in out


def test_delayed_producer_is_never_early(features: str) -> None:
    # When the example sends with a delay level, deliver_at_ms, delay_ms and no delay
    out = run_example(features, "delayed_producer.py")
    # Then all four arrive, none before its time
    assert "received 4 message(s)" in out and "EARLY" not in out
    for name in ("no-delay", "level-2", "at+3s", "delay-1.5s"):
        assert f"{name}: delivered" in out


def test_sql_filter_consumer_gets_only_matching_messages(features: str, namesrv: str) -> None:
    # Given a broker with enablePropertyFilter, Then only the matching messages arrive
    out = run_example(features, "sql_filter_consumer.py", "--sql", "amount >= 50 AND region = 'eu'")
    assert "2 match" in out and "received 2 message(s)" in out
    assert "'order 6'" in out and "'order 8'" in out and "'order 7'" not in out
    # And against the default broker (filter off) the consumer does not start, saying why
    out = run_example(namesrv, "sql_filter_consumer.py", "--timeout", "2", code=1)
    assert "does not support consumer to filter message by SQL92" in out
    assert "enablePropertyFilter=true?" in out


def test_admin_example_creates_measures_replays_and_finds(namesrv: str) -> None:
    out = run_example(namesrv, "admin.py", "--topic", "ExampleAdmin", "--count", "6")
    assert "created ExampleAdmin on" in out
    assert "consumed 6, lag 0" in out and "after reset: lag 6" in out
    assert "by id: b'm0'" in out


def test_request_reply_example_gets_every_price(namesrv: str) -> None:
    # Given the price service and client of the example; When the client asks for three prices
    out = run_example(namesrv, "request_reply.py", "--timeout", "20")
    # Then each request got its reply, from the service's price list
    assert "price of apple: 0.40" in out and "price of plum: 0.25" in out
    assert "received 3 replies" in out
