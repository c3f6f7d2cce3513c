"""Send latency fault tolerance against real processes: a name server and two brokers, one of
which stops answering (SIGSTOP). With ``send_latency_fault_enable`` the producer keeps off the
frozen broker after its first timeout; without it, round robin keeps sending it every other
message, and each of those times out."""

from __future__ import annotations

import pathlib
import signal
from collections.abc import Iterator

import pytest

from actors.client import Admin, ClientError, Message, Producer
from tests.client_support import wait_until
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def two_brokers(tmp_path: pathlib.Path) -> Iterator[tuple[str, dict[str, RuntimeProcess]]]:
    with RuntimeProcess(["namesrv", "--ephemeral-ports"]) as namesrv:
        ns = namesrv.wait_ready()["namesrv"]
        brokers: dict[str, RuntimeProcess] = {}
        try:
            for name in ("broker-a", "broker-b"):
                conf = tmp_path / f"{name}.properties"
                conf.write_text(
                    f"brokerClusterName=DefaultCluster\nbrokerName={name}\nbrokerId=0\n"
                )
                args = ["broker", "-c", str(conf), "--namesrv-addr", ns, "--ephemeral-ports"]
                brokers[name] = RuntimeProcess([*args, "--data-dir", str(tmp_path / name)])
                brokers[name].wait_ready()
            yield ns, brokers
        finally:
            for node in brokers.values():
                node.signal(signal.SIGCONT)
                node.terminate()
        namesrv.terminate()


def brokers_serving(admin: Admin, topic: str) -> int:
    try:
        return len(admin.topic_route(topic).queue_datas)
    except ClientError:  # no route yet
        return 0


def failures_while_b_is_frozen(ns: str, brokers: dict[str, RuntimeProcess], fault: bool) -> int:
    """Send 8 messages while broker-b is stopped; how many failed."""
    with Producer(
        f"latency-{fault}", namesrv=ns, send_timeout=1.0, send_latency_fault_enable=fault
    ) as producer:
        for i in range(4):  # route and both connections known
            producer.send(Message("Faults", b"warm-up %d" % i))
        brokers["broker-b"].signal(signal.SIGSTOP)
        try:
            failed = 0
            for i in range(8):
                try:
                    r = producer.send(Message("Faults", b"m%d" % i))
                    assert r.queue.broker_name == "broker-a"
                except ClientError:
                    failed += 1
            return failed
        finally:
            brokers["broker-b"].signal(signal.SIGCONT)


def test_a_frozen_broker_costs_one_timeout_with_fault_tolerance(
    two_brokers: tuple[str, dict[str, RuntimeProcess]],
) -> None:
    ns, brokers = two_brokers
    # Given a topic on two brokers
    with Admin(ns) as admin:
        wait_until(lambda: len(admin.masters()) == 2, what="both brokers registered")
        admin.create_topic("Faults", cluster="DefaultCluster", queues=2)
        # (the producers of one process share a route cache: it must know both brokers)
        wait_until(lambda: brokers_serving(admin, "Faults") == 2, what="both in the route")
    # When broker-b freezes under a producer with send latency fault tolerance
    # Then at most the first send given to it fails (a timeout spends the whole send timeout);
    # the rest go to broker-a
    assert failures_while_b_is_frozen(ns, brokers, fault=True) <= 1
    # And without it, every other send goes to the frozen broker and times out
    assert failures_while_b_is_frozen(ns, brokers, fault=False) >= 3
