"""Cross-check with real third-party clients (ali-ons, the C++ client): what our Producer sends
they consume intact, and what they send our PushConsumer consumes intact.

Reuses the interop harness (tests/interop): the clients are installed once into .interop/ and
the test is skipped only when their package registry is unreachable.
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from collections.abc import Callable

import pytest

from actors.client import ConsumeFrom, Message, Producer, PushConsumer, SendStatus
from tests.interop import admin
from tests.interop.install import (
    Client,
    InstallError,
    RegistryUnreachable,
    install_cpp,
    install_ons,
)
from tests.interop.scenarios import Driver, first_key, messages, running_cluster, wait_for_keys

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]


def _installed(install: Callable[[], Client], what: str) -> Client:
    try:
        return install()
    except RegistryUnreachable as exc:
        pytest.skip(f"{what}: package registry unreachable: {exc}")
    except InstallError as exc:
        pytest.fail(f"{what}: install failed (not a network problem): {exc}", pytrace=False)


def _make(**fields: object) -> Driver:
    """A Driver from the fields this version of the interop harness has."""
    fields.setdefault("name", fields["key"])
    known = {f.name for f in dataclasses.fields(Driver)}
    return Driver(**{k: v for k, v in fields.items() if k in known})  # type: ignore[arg-type]


def _driver(key: str, tmp_path: pathlib.Path) -> Driver:
    if key == "ons":
        client = _installed(install_ons, "ali-ons 3.12.0 (npm)")
        return _make(
            key="ons",
            client=client,
            workdir=tmp_path / "clients",
            sent_queue_known=True,
            reports_rebalance=True,
            creates_topics=True,
        )
    client = _installed(install_cpp, "rocketmq 0.4.4 (PyPI, C++ client)")
    return _make(
        key="cpp",
        client=client,
        workdir=tmp_path / "clients",
        sent_queue_known=False,
        reports_rebalance=True,
        creates_topics=False,
    )


@pytest.mark.parametrize("key", ["ons", "cpp"])
def test_our_producer_to_a_real_consumer(key: str, tmp_path: pathlib.Path) -> None:
    driver = _driver(key, tmp_path)
    topic, group = f"FromPythonTo{key.title()}", f"python_to_{key}"
    with running_cluster(tmp_path / "data") as cluster:
        # Given 10 messages from our producer, one of them large (zlib-compressed on the wire)
        sent = {}
        with Producer("python-producer", namesrv=cluster.namesrv) as producer:
            for i in range(10):
                body = f"ours body {i}" + (" lorem ipsum" * 600 if i == 9 else "")
                msg = Message(
                    topic,
                    body,
                    tags="TagA" if i % 2 else "TagB",
                    keys=[f"ours-key-{i}", f"ours-extra-{i}"],
                    properties={"origin": "python"},
                )
                assert producer.send(msg).status is SendStatus.SEND_OK
                sent[f"ours-key-{i}"] = msg
        admin.wait_route(cluster.namesrv, topic, cluster.masters)
        # When the real client consumes the topic
        with driver.consumer(cluster, topic, group, "*", "consumer") as process:
            wait_for_keys(driver, [process], set(sent), 60, "our messages")
            received = messages(process, "ours")
        # Then body, tags and keys are intact (and the user property, where the client shows it)
        assert {first_key(e) for e in received} == set(sent)
        for event in received:
            msg = sent[first_key(event)]
            assert event["body"] == msg.body
            assert event["tags"] == msg.tags
            assert event["keys"] == " ".join(msg.keys)
            if event.get("properties") is not None:
                assert event["properties"].get("origin") == "python"


@pytest.mark.parametrize("key", ["ons", "cpp"])
def test_a_real_producer_to_our_push_consumer(key: str, tmp_path: pathlib.Path) -> None:
    driver = _driver(key, tmp_path)
    topic, group = f"From{key.title()}ToPython", f"{key}_to_python"
    with running_cluster(tmp_path / "data") as cluster:
        # Given messages sent by the real client
        driver.prepare_topic(cluster, topic)
        sent = driver.produce(cluster, topic, 12, ["TagA", "TagB"], "theirs", body_size=6000)
        admin.wait_route(cluster.namesrv, topic, cluster.masters)
        # When our push consumer reads the topic
        got: dict[str, object] = {}
        done = threading.Event()
        lock = threading.Lock()

        def listener(msg) -> None:
            with lock:
                got[msg.keys[0]] = msg
                if len(got) >= len(sent):
                    done.set()

        consumer = PushConsumer(group, namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST)
        consumer.subscribe(topic, "*", listener)
        with consumer:
            assert done.wait(60), f"got {len(got)} of {len(sent)}"
        # Then every message arrived with body, tags and keys intact
        for event in sent:
            msg = got[first_key(event)]
            assert msg.body.decode() == event["body"]
            assert msg.tags == event["tags"]
            assert " ".join(msg.keys) == event["keys"]
