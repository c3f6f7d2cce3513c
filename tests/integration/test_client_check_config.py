"""Consumers check their SQL92 subscriptions with the broker at start (CHECK_CLIENT_CONFIG),
against a real ``python -m runtime`` with and without ``enablePropertyFilter``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.client import (
    BrokerError,
    ConsumeFrom,
    Message,
    Producer,
    PullConsumer,
    PushConsumer,
    SendStatus,
)
from runtime.remoting.codes import ResponseCode
from tests.client_support import Collector
from tests.harness import RuntimeProcess
from tests.profiles import one_broker

pytestmark = pytest.mark.timeout(90)

TOPIC = "CheckCfgT"


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A cluster process whose broker has ``enablePropertyFilter`` = the test's parameter, with
    ``TOPIC`` created by a send (a message with ``amount=10``); yields the name server address."""
    root = tmp_path_factory.mktemp("check-config")
    profile = root / "p.toml"
    profile.write_text(one_broker({"enablePropertyFilter": bool(request.param)}))
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as node:
        namesrv = node.wait_ready()["namesrv"]
        with Producer("check-config-producer", namesrv=namesrv) as producer:
            sent = producer.send(Message(TOPIC, b"ten", properties={"amount": "10"}))
            assert sent.status is SendStatus.SEND_OK
        yield namesrv
        assert node.terminate() == 0, node.stderr_text()


def push(namesrv: str, group: str) -> tuple[PushConsumer, Collector]:
    got = Collector(1)
    consumer = PushConsumer(group, namesrv=namesrv, consume_from=ConsumeFrom.FIRST, listener=got)
    return consumer, got


@pytest.mark.parametrize("cluster", [False], indirect=True)
def test_sql92_consumers_fail_at_start_when_the_broker_cannot_filter(cluster: str) -> None:
    # Given a broker with enablePropertyFilter=false and an existing topic
    # When a push consumer subscribes with SQL92 and starts
    consumer, _ = push(cluster, "check-sql-push")
    consumer.subscribe(TOPIC, sql="amount > 5")
    # Then start raises the broker's refusal, and the consumer is not running
    with pytest.raises(BrokerError) as refused:
        consumer.start()
    assert refused.value.code == ResponseCode.SYSTEM_ERROR
    assert "SQL92" in (refused.value.remark or "")
    assert TOPIC in str(refused.value)
    consumer.shutdown()
    # And the lite pull consumer is refused the same way
    lite = PullConsumer("check-sql-lite", namesrv=cluster)
    lite.subscribe(TOPIC, sql="amount > 5")
    with pytest.raises(BrokerError) as lite_refused:
        lite.start()
    assert lite_refused.value.code == ResponseCode.SYSTEM_ERROR
    lite.shutdown()
    # While a TAG subscription of the same topic starts and consumes
    tagged, got = push(cluster, "check-tag-push")
    tagged.subscribe(TOPIC, "*")
    with tagged.start():
        assert got.done.wait(30), "the TAG consumer got nothing"
    assert got.bodies() == [b"ten"]


@pytest.mark.parametrize("cluster", [True], indirect=True)
def test_sql92_consumer_starts_when_the_broker_filters(cluster: str) -> None:
    # Given a broker with enablePropertyFilter=true
    # When a push consumer with a SQL92 subscription starts
    consumer, got = push(cluster, "check-sql-ok")
    consumer.subscribe(TOPIC, sql="amount > 5")
    # Then it starts and receives the matching message
    with consumer.start():
        assert got.done.wait(30), "the SQL92 consumer got nothing"
    assert got.bodies() == [b"ten"]
