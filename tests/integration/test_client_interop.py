"""Cross-check with real third-party clients (ali-ons, the C++ client): what our Producer sends
they consume intact, and what they send our PushConsumer consumes intact; the C++ client's
orderly sends through our orderly consumer; our transactions as a real consumer sees them;
namespaces agreed with ali-ons' ``namespace`` option.

Reuses the interop harness (tests/interop): the clients are installed once into .interop/ and
the test is skipped only when their package registry is unreachable.
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from actors.client import (
    ConsumeFrom,
    LocalTransactionState,
    Message,
    Producer,
    PushConsumer,
    SendStatus,
    TransactionProducer,
)
from tests.interop import admin
from tests.interop.install import (
    Client,
    InstallError,
    RegistryUnreachable,
    install_cpp,
    install_ons,
)
from tests.interop.scenarios import (
    FAST_TRANSACTION_CHECKS,
    Cluster,
    Driver,
    first_key,
    messages,
    one_test,
    running_cluster,
    wait_for_keys,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def default_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One default cluster for the tests below that need no special profile: each has its own
    topic and group (named after the direction and the client), none needs a fresh server."""
    with running_cluster(tmp_path_factory.mktemp("default-cluster") / "data") as cluster:
        yield cluster


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
def test_our_producer_to_a_real_consumer(
    key: str, tmp_path: pathlib.Path, default_cluster: Cluster
) -> None:
    driver = _driver(key, tmp_path)
    topic, group = f"FromPythonTo{key.title()}", f"python_to_{key}"
    with one_test(default_cluster) as cluster:
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
def test_a_real_producer_to_our_push_consumer(
    key: str, tmp_path: pathlib.Path, default_cluster: Cluster
) -> None:
    driver = _driver(key, tmp_path)
    topic, group = f"From{key.title()}ToPython", f"{key}_to_python"
    with one_test(default_cluster) as cluster:
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


def test_a_real_orderly_producer_to_our_orderly_consumer(
    tmp_path: pathlib.Path, default_cluster: Cluster
) -> None:
    driver = _driver("cpp", tmp_path)
    topic, group = "FromCppOrderlyToPython", "cpp_orderly_to_python"
    with one_test(default_cluster) as cluster:
        # Given 24 messages the C++ client sent with send_orderly (a selector: queue i % 4)
        sent = driver.produce(cluster, topic, 24, ["TagO"], "ordered", select_queue=True)
        admin.wait_route(cluster.namesrv, topic, cluster.masters)
        # When our orderly push consumer reads the topic
        got: list[tuple[int, int, str]] = []
        busy: set[int] = set()
        overlap: list[int] = []
        lock = threading.Lock()
        done = threading.Event()

        def listener(msg) -> None:
            with lock:
                if msg.queue_id in busy:
                    overlap.append(msg.queue_id)
                busy.add(msg.queue_id)
            time.sleep(0.002)  # a little work: a second task of the queue would overlap it
            with lock:
                busy.discard(msg.queue_id)
                got.append((msg.queue_id, msg.queue_offset, msg.keys[0]))
                if len(got) >= len(sent):
                    done.set()

        consumer = PushConsumer(
            group, namesrv=cluster.namesrv, consume_from=ConsumeFrom.FIRST, orderly=True
        )
        consumer.subscribe(topic, "*", listener)
        with consumer:
            assert done.wait(60), f"got {len(got)} of {len(sent)}"
        # Then each queue's messages came one at a time, in offset order = the order sent
        assert not overlap
        for queue in range(4):
            mine = [(offset, key) for q, offset, key in got if q == queue]
            assert [offset for offset, _ in mine] == list(range(6)), mine
            order = [int(key.rsplit("-", 1)[1]) for _, key in mine]
            assert order == sorted(order) and all(i % 4 == queue for i in order), order


def test_our_transactions_to_a_real_consumer(tmp_path: pathlib.Path) -> None:
    driver = _driver("cpp", tmp_path)
    topic, group = "FromPythonTxToCpp", "python_tx_to_cpp"
    profile = tmp_path / "fast-checks.toml"
    profile.write_text(FAST_TRANSACTION_CHECKS)
    with running_cluster(tmp_path / "data", profile=str(profile)) as cluster:
        # Given our transaction producer: one commit, one rollback, one left UNKNOW that its
        # check then commits
        decisions = {
            "ours-key-commit": LocalTransactionState.COMMIT_MESSAGE,
            "ours-key-rollback": LocalTransactionState.ROLLBACK_MESSAGE,
            "ours-key-unknown": LocalTransactionState.UNKNOW,
        }
        checked = threading.Event()

        def check(msg) -> LocalTransactionState:
            checked.set()
            return LocalTransactionState.COMMIT_MESSAGE

        with TransactionProducer(
            "python-tx-producer",
            cluster.namesrv,
            execute=lambda msg, arg: decisions[arg],
            check=check,
        ) as producer:
            for key in decisions:
                producer.send_message_in_transaction(
                    Message(topic, f"body of {key}", tags="TagX", keys=[key]), key
                )
            assert checked.wait(30), "the broker never asked about the open transaction"
            admin.wait_route(cluster.namesrv, topic, cluster.masters)
            # When the real client consumes the topic
            with driver.consumer(cluster, topic, group, "*", "consumer") as process:
                want = {"ours-key-commit", "ours-key-unknown"}
                wait_for_keys(driver, [process], want, 45, "the committed messages")
                # And sentinels then arrive on every queue (each queue delivers in order)
                with Producer("python-sentinel", namesrv=cluster.namesrv) as plain:
                    queues = plain.queues(topic)
                    for n, mq in enumerate(queues):
                        plain.send(Message(topic, "s", keys=[f"ours-key-s{n}"]), queue=mq)
                sentinels = {f"ours-key-s{n}" for n in range(len(queues))}
                wait_for_keys(driver, [process], sentinels, 30, "the sentinels")
                received = messages(process, "ours")
        # Then it saw exactly the committed ones (and the sentinels), intact; never the rollback
        assert sorted(first_key(e) for e in received) == sorted(want | sentinels)
        for event in received:
            if first_key(event) in want:
                assert event["body"] == f"body of {first_key(event)}"
                assert event["tags"] == "TagX"


SQL92_PROFILE = """
description = "one broker with SQL92 property filters"
[[namesrv]]
listenPort = 9876
[[broker]]
brokerName = "broker-a"
brokerId = 0
listenPort = 10911
haListenPort = 10912
enablePropertyFilter = true
"""


def test_our_properties_through_a_real_sql92_subscription(tmp_path: pathlib.Path) -> None:
    driver = _driver("ons", tmp_path)
    topic, group = "FromPythonToOnsSql", "python_to_ons_sql"
    profile = tmp_path / "sql92.toml"
    profile.write_text(SQL92_PROFILE)
    with running_cluster(tmp_path / "data", profile=str(profile)) as cluster:
        driver.prepare_topic(cluster, topic)
        # Given an ali-ons consumer subscribed with a SQL92 expression (expressionType SQL92)
        sql = "amount > 50 AND region = 'eu'"
        with driver.consumer(cluster, topic, group, "*", "consumer", sql=sql) as process:
            # When our producer sends messages with user properties amount and region
            with Producer("python-sql-producer", namesrv=cluster.namesrv) as producer:
                for i in range(12):
                    props = {"amount": str(i * 10), "region": "eu" if i % 2 == 0 else "us"}
                    producer.send(
                        Message(topic, f"order {i}", keys=[f"ours-key-{i}"], properties=props)
                    )
                # And then a matching sentinel on every queue
                queues = producer.queues(topic)
                for n, mq in enumerate(queues):
                    sentinel = Message(
                        topic,
                        "s",
                        keys=[f"ours-key-s{n}"],
                        properties={"amount": "99", "region": "eu"},
                    )
                    producer.send(sentinel, queue=mq)
            sentinels = {f"ours-key-s{n}" for n in range(len(queues))}
            wait_for_keys(driver, [process], sentinels, 45, "the sentinels")
            received = messages(process, "ours")
        # Then the real client received exactly the matching messages (sentinels came last)
        matching = {f"ours-key-{i}" for i in range(12) if i * 10 > 50 and i % 2 == 0}
        assert {first_key(e) for e in received} == matching | sentinels, received
        for event in received:
            assert event["properties"]["region"] == "eu"


def test_namespaces_agree_with_ali_ons(tmp_path: pathlib.Path, default_cluster: Cluster) -> None:
    driver = _driver("ons", tmp_path)
    ns = "tenantX"
    with one_test(default_cluster) as cluster:
        # Given our producer in namespace tenantX sending 6 messages to "NsOrders"
        sent = {}
        with Producer("ns-producer", namesrv=cluster.namesrv, namespace=ns) as producer:
            for i in range(6):
                msg = Message("NsOrders", f"ns body {i}", tags="TagB" if i % 2 else "TagA")
                msg.keys = [f"ns-key-{i}"]
                result = producer.send(msg)
                assert result.queue.topic == "NsOrders"
                sent[f"ns-key-{i}"] = msg
        admin.wait_route(cluster.namesrv, f"{ns}%NsOrders", cluster.masters)
        # When ali-ons consumes "NsOrders" in the same namespace
        with driver.consumer(
            cluster, "NsOrders", "ns_ons", "*", "consumer", namespace=ns
        ) as process:
            got = wait_for_keys(driver, [process], set(sent), 60, "our namespaced messages")
        # Then it got each with its body, in the wrapped topic (ali-ons keeps the stored name)
        assert {(k, got[k][0][1]["body"]) for k in sent} == {(k, m.body) for k, m in sent.items()}
        assert {e["topic"] for _, e in (x for v in got.values() for x in v)} == {f"{ns}%NsOrders"}
        # And ali-ons' producer in the namespace reaches our namespaced consumer's plain topic
        driver.prepare_topic(cluster, f"{ns}%NsBack")
        theirs = driver.produce(cluster, "NsBack", 4, ["TagA"], "back", namespace=ns)
        admin.wait_route(cluster.namesrv, f"{ns}%NsBack", cluster.masters)
        seen: dict[str, str] = {}
        done = threading.Event()
        lock = threading.Lock()

        def listener(msg) -> None:
            with lock:
                seen[msg.keys[0]] = msg.topic
                if len(seen) >= len(theirs):
                    done.set()

        consumer = PushConsumer(
            "ns_python", namesrv=cluster.namesrv, namespace=ns, consume_from=ConsumeFrom.FIRST
        )
        consumer.subscribe("NsBack", "*", listener)
        with consumer:
            assert done.wait(60), f"got {len(seen)} of {len(theirs)}"
        assert seen == {first_key(e): "NsBack" for e in theirs}
