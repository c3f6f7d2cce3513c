"""A broker node rebuilt on its store (a restart, or a role change in controller mode) while a
long poll is parked on it: the hold ends with the old store, which starts no Queue actor again,
and nothing is logged as an error."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from runtime.node import Node
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from tests.actors.ha_support import (
    T,
    broker_config,
    broker_node,
    label,
    start_broker,
    stop_node,
    store_ctx,
    wait_rebuilt,
    wait_until,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

SUSPEND_MS = 30_000  # far longer than the test waits: the hold must end with the store


@pytest.fixture
def node(tmp_path: pathlib.Path) -> Iterator[Node]:
    cfg = broker_config("rb", 0, "ASYNC_MASTER", "127.0.0.1:1", auto_create_topic_enable=True)
    started = start_broker(cfg, tmp_path)
    yield started
    stop_node(started)


@pytest.fixture
def errors() -> Iterator[list[Any]]:
    seen: list[Any] = []
    sink = logger.add(seen.append, level="ERROR")
    yield seen
    logger.remove(sink)


def long_poll(topic: str) -> RemotingCommand:
    ext = {
        "consumerGroup": "rb-g",
        "topic": topic,
        "queueId": 0,
        "queueOffset": 0,
        "maxMsgNums": 32,
        "sysFlag": 2 | 4,  # SUSPEND | SUBSCRIPTION
        "commitOffset": 0,
        "suspendTimeoutMillis": SUSPEND_MS,
        "subscription": "*",
        "subVersion": 0,
        "expressionType": "TAG",
    }
    return RemotingCommand.request(RequestCode.PULL_MESSAGE, ext)


def test_a_rebuild_ends_the_parked_long_polls_of_the_old_store(
    node: Node, errors: list[Any]
) -> None:
    # Given a long poll parked on an empty queue of the broker
    client = WireClient(node.addresses[label(node)], timeout=T)
    created = client.call(
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        {"topic": "RB", "readQueueNums": 1, "writeQueueNums": 1, "perm": 6},
    )
    assert created.code == 0, created.remark
    old = store_ctx(node)
    client.send(long_poll("RB"))
    wait_until(lambda: ("RB", 0) in old.parked_queues, T, "the poll to park")
    # When the broker node is rebuilt on the same store
    before = broker_node(node)
    assert node._handles[0].restart()
    wait_rebuilt(node, before)
    started = time.monotonic()
    # Then the old store closes with no Queue actor running on it: the woken poll did not start
    # one again (it used to, and held it, parked, for the rest of its suspend time)
    wait_until(lambda: old.opened is None and not old.queues.refs(), 3.0, "the old store closed")
    assert time.monotonic() - started < SUSPEND_MS / 1000
    # and the new store serves the same queue
    assert store_ctx(node) is not old
    # and nothing was logged as an error
    assert not errors, [str(e) for e in errors]
    client.close()
