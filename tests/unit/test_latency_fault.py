"""Send latency fault tolerance (RocketMQ's sendLatencyFaultEnable): the tables, the per-broker
state and the round robin that skips brokers at fault."""

from __future__ import annotations

import pytest

from actors.client.latency_fault import LatencyFault, not_available_ms
from actors.client.message import MessageQueue
from actors.client.selectors import RoundRobin

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("latency_ms", "out_ms"),
    [
        (0, 0),
        (99, 0),
        (549, 0),
        (550, 2000),
        (1800, 5000),
        (3000, 6000),
        (5000, 10000),
        (15000, 30000),
        (60000, 30000),
    ],
)
def test_latency_maps_to_rocketmq_5s_unavailable_durations(latency_ms: int, out_ms: int) -> None:
    assert not_available_ms(latency_ms) == out_ms


def test_a_slow_or_failed_broker_is_out_for_a_while() -> None:
    now = [100.0]
    fault = LatencyFault(clock=lambda: now[0])
    # Given a fast answer from a, a slow one (600 ms) from b and a failure on c
    fault.update("a", 3.0)
    fault.update("b", 600.0)
    fault.update("c", 1.0, isolation=True)
    # Then a is available, b is out for 2 s, c for 10 s
    assert [fault.available(x) for x in "abc"] == [True, False, False]
    assert fault.unavailable() == {"b": pytest.approx(2.0), "c": pytest.approx(10.0)}
    now[0] += 2.0
    assert [fault.available(x) for x in "abc"] == [True, True, False]
    # When c answers fast after its time out, Then it stays available
    now[0] += 8.0
    fault.update("c", 2.0)
    assert fault.available("c") and fault.unavailable() == {}


def queues() -> list[MessageQueue]:
    return [
        MessageQueue(topic="T", broker_name=b, queue_id=q)
        for b in ("broker-a", "broker-b")
        for q in range(2)
    ]


def test_round_robin_skips_brokers_at_fault_while_another_is_available() -> None:
    rr = RoundRobin()
    down = {"broker-a"}
    # Given broker-a at fault, When queues are picked, Then only broker-b's come
    picked = [rr.select(queues(), None, lambda b: b not in down) for _ in range(4)]
    assert {mq.broker_name for mq in picked} == {"broker-b"}
    assert {mq.queue_id for mq in picked} == {0, 1}
    # Given every broker at fault, Then the plain round robin goes on (avoiding the last one)
    down.add("broker-b")
    picked = [rr.select(queues(), "broker-b", lambda b: b not in down) for _ in range(2)]
    assert {mq.broker_name for mq in picked} == {"broker-a"}
    # Without fault tolerance, Then every queue comes in turn
    plain = RoundRobin()
    assert len({plain.select(queues()) for _ in range(4)}) == 4
