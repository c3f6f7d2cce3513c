"""A broker node whose subtree fails to start once the process runs: after a rebuild (a role
change or a truncation: ``BrokerHandle.replace``) or after its subtree failed (the root's
ordinary restart). The root starts it again with backoff until it runs (each failure an ERROR
with the reason); one that never starts ends the process with status 1 after a bounded time.
Before, a rebuild's failed start left the process running with no broker in it for good."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

import actors.broker.node as broker_node_module
import runtime.node as node_module
from actors.broker.node import BrokerHandle
from runtime.node import Node
from runtime.remoting.codes import RequestCode
from runtime.supervisor import ChildSpec, Supervisor
from tests.actors.ha_support import (
    T,
    broker_config,
    broker_node,
    label,
    start_broker,
    start_namesrv,
    stop_node,
    wait_until,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


class FlakyTruncation:
    """Stands in for the start's first step (applying a pending ``ha-truncate``, which writes
    and fsyncs): raises EIO the first ``failures`` times (every time with None), then does the
    real work."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.calls = 0
        self.real = broker_node_module._apply_truncation

    def __call__(self, settings: Any) -> None:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise OSError(5, f"Input/output error (attempt {self.calls})")
        self.real(settings)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root retries a failed start 3 times, 0.05 s apart doubling (1 s up to 16 s, 5
    times, in production)."""
    monkeypatch.setattr(node_module, "START_RETRIES", 3)
    monkeypatch.setattr(node_module, "START_BACKOFF_S", 0.05)
    monkeypatch.setattr(node_module, "START_BACKOFF_MAX_S", 0.2)


@pytest.fixture
def errors() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="ERROR")
    yield seen
    logger.remove(sink)


@pytest.fixture
def node(tmp_path: pathlib.Path) -> Iterator[Node]:
    cfg = broker_config("sf", 0, "ASYNC_MASTER", "127.0.0.1:1")
    started = start_broker(cfg, tmp_path)
    yield started
    stop_node(started)


def serves(node: Node) -> bool:
    """The broker answers on its port (a topic created, then read back)."""
    client = WireClient(node.addresses[label(node)], timeout=T)
    try:
        created = client.call(
            RequestCode.UPDATE_AND_CREATE_TOPIC,
            {"topic": "SF", "readQueueNums": 1, "writeQueueNums": 1, "perm": 6},
        )
        return created.code == 0
    finally:
        client.close()


def test_a_rebuild_whose_start_fails_twice_comes_back_by_itself(
    node: Node, errors: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running broker node whose next two starts fail (EIO on the start's first step)
    before = broker_node(node)
    flaky = FlakyTruncation(failures=2)
    monkeypatch.setattr(broker_node_module, "_apply_truncation", flaky)
    handle = node._handles[0]
    # When it is rebuilt (as for a role change or a truncation)
    assert handle.restart()
    # Then the root starts it again until it runs: a new subtree, serving its port
    wait_until(
        lambda: (
            (ref := node.directory.get(label(node))) is not None
            and ref.actor_urn != before.actor_urn
        ),
        T,
        "the node to come back",
    )
    assert flaky.calls == 3
    assert serves(node)
    # and the rebuild is over (the next one's old registrar unregisters as usual)
    assert not handle.rebuilding
    # and each failed start was logged as an ERROR naming the node and the reason
    failed = [e for e in errors if f"child {label(node)} failed to start" in e]
    assert len(failed) == 2, errors
    assert "Input/output error (attempt 1)" in failed[0]
    assert "Input/output error (attempt 2)" in failed[1]
    # and the process goes on
    assert node._root is not None and node._root.is_alive()


def test_a_rebuild_that_never_starts_ends_the_process_with_status_1(
    node: Node, errors: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running broker node that cannot be started again
    flaky = FlakyTruncation(failures=None)
    monkeypatch.setattr(broker_node_module, "_apply_truncation", flaky)
    handle = node._handles[0]
    started = time.monotonic()
    # When it is rebuilt
    assert handle.restart()
    # Then after the first start and 3 retries the process's run ends with status 1 (for its
    # service manager to restart it), in bounded time, instead of living on serving nothing
    assert node.run() == 1
    assert time.monotonic() - started < T
    assert flaky.calls == 4
    assert not handle.rebuilding
    assert any(f"child {label(node)} failed to start 4 times in a row" in e for e in errors)


def test_a_failed_broker_whose_restart_fails_twice_comes_back(
    node: Node, errors: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running broker node whose next two starts fail
    before = broker_node(node)
    flaky = FlakyTruncation(failures=2)
    monkeypatch.setattr(broker_node_module, "_apply_truncation", flaky)
    # When its fail-stop commit-log writer fails (a handler of it raises: a call without its
    # argument here), which fails the broker's subtree
    writer = node.directory.require(f"{label(node)}/store/commitlog")
    with pytest.raises(TypeError):
        writer.proxy().on_receive().get(timeout=T)
    # Then the root restarts it, retrying its failed starts, and it serves again; the process
    # goes on (the first failed start used to fail the root: exit 1 at once)
    wait_until(
        lambda: (
            (ref := node.directory.get(label(node))) is not None
            and ref.actor_urn != before.actor_urn
        ),
        T,
        "the node to come back",
    )
    assert flaky.calls == 3
    assert serves(node)
    assert node._root is not None and node._root.is_alive()
    assert sum(f"child {label(node)} failed to start" in e for e in errors) == 2


def cluster_brokers(namesrv: str) -> dict[str, Any]:
    client = WireClient(namesrv, timeout=T)
    try:
        return dict(
            json.loads(client.call(RequestCode.GET_BROKER_CLUSTER_INFO).body)["brokerAddrTable"]
        )
    finally:
        client.close()


def test_a_node_that_fails_to_start_is_dropped_from_the_name_server_meanwhile(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broker registered with a name server, whose next starts fail until allowed
    monkeypatch.setattr(node_module, "START_RETRIES", 30)
    namesrv = start_namesrv()
    ns_addr = namesrv.addresses["namesrv"]
    node = start_broker(broker_config("sfn", 0, "ASYNC_MASTER", ns_addr), tmp_path)
    try:
        wait_until(lambda: "sfn" in cluster_brokers(ns_addr), T, "the registration")
        flaky = FlakyTruncation(failures=10_000)
        monkeypatch.setattr(broker_node_module, "_apply_truncation", flaky)
        # When it is rebuilt and its start fails (the old registrar kept the registration for
        # the new one)
        assert node._handles[0].restart()
        # Then the name server drops it (its connections closed), rather than route clients
        # to a port nobody serves
        wait_until(lambda: "sfn" not in cluster_brokers(ns_addr), T, "the routes dropped")
        assert flaky.calls >= 1
        # and once a start succeeds it registers again
        flaky.failures = flaky.calls
        wait_until(lambda: "sfn" in cluster_brokers(ns_addr), T, "the registration again")
        assert serves(node)
    finally:
        stop_node(node)
        stop_node(namesrv)


def test_a_rebuild_the_parent_refuses_ends_the_rebuilding_state(errors: list[str]) -> None:
    # Given a broker handle whose parent supervisor has no such child (it was stopped for good)
    parent = Supervisor.start("root", [])
    handle = BrokerHandle("gone/0")
    handle.make_spec = lambda _cfg: ChildSpec(name="gone/0", start=lambda: parent)
    handle.attach(parent)
    # When a rebuild is asked for
    assert handle.replace(broker_config("gone", 0, "ASYNC_MASTER", "127.0.0.1:1"))
    # Then the refusal ends the rebuild (an old registrar would otherwise keep a registration
    # for a node that never comes), and says why
    wait_until(lambda: not handle.rebuilding, T, "rebuilding cleared")
    assert any("gone/0: rebuilding the node failed" in e and "no such child" in e for e in errors)
    parent.stop()
