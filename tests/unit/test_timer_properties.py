"""A timer message's due time is read as RocketMQ 5 reads it (HookUtils.transformTimerMessage):
TIMER_DELAY_SEC first, then TIMER_DELAY_MS, then TIMER_DELIVER_MS; the relative ones as Java
ints, the absolute one as a Java long, anything else MESSAGE_ILLEGAL. We read TIMER_DELIVER_MS
first (a message carrying two of them was due at another time than on RocketMQ) and took what
Python's int() takes (" 5", "1_0", "-99999999999": a past due time, delivered at once where
RocketMQ refuses it). A delay level wins over timer properties, which RocketMQ drops: we kept
them on the message its consumers got."""

from __future__ import annotations

import pytest

from actors.broker.delay import TimerError, schedule, timer_due_ms
from runtime.remoting.properties import (
    DELAY,
    TIMER_DELAY_MS,
    TIMER_DELAY_SEC,
    TIMER_DELIVER_MS,
    decode_properties,
    encode_properties,
)
from runtime.store.record import PutRecord
from runtime.store.topic_names import SCHEDULE_TOPIC

NOW = 1_700_000_000_000


def record(**props: str) -> PutRecord:
    return PutRecord("T", 0, b"m", encode_properties(props))


def test_relative_timer_properties_win_as_on_rocketmq() -> None:
    # Given messages carrying two timer properties each
    sec_and_deliver = record(**{TIMER_DELAY_SEC: "5", TIMER_DELIVER_MS: str(NOW + 60_000)})
    ms_and_deliver = record(**{TIMER_DELAY_MS: "7", TIMER_DELIVER_MS: str(NOW + 60_000)})
    sec_and_ms = record(**{TIMER_DELAY_SEC: "5", TIMER_DELAY_MS: "7"})
    # When their due times are read
    # Then TIMER_DELAY_SEC wins, then TIMER_DELAY_MS, then TIMER_DELIVER_MS
    assert timer_due_ms(sec_and_deliver, NOW) == NOW + 5_000
    assert timer_due_ms(ms_and_deliver, NOW) == NOW + 7
    assert timer_due_ms(sec_and_ms, NOW) == NOW + 5_000


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (TIMER_DELAY_SEC, " 5"),
        (TIMER_DELAY_SEC, "1_0"),
        (TIMER_DELAY_SEC, "\u0665"),  # an Arabic-Indic five
        (TIMER_DELAY_SEC, str(-(2**31) - 1)),  # below a Java int
        (TIMER_DELAY_MS, str(-(2**31) - 1)),
        (TIMER_DELIVER_MS, str(2**63)),  # past a Java long
        (TIMER_DELIVER_MS, "9" * 5000),
        (TIMER_DELIVER_MS, ""),
    ],
)
def test_values_java_cannot_parse_are_illegal(key: str, value: str) -> None:
    # Given a timer property Java's Integer/Long.parseLong refuses
    # When its due time is read, Then it is MESSAGE_ILLEGAL (TimerError), not a due time
    with pytest.raises(TimerError):
        timer_due_ms(record(**{key: value}), NOW)


def test_java_integers_are_read() -> None:
    # Given timer properties Java reads (a sign, the extremes of an int)
    # When their due times are read, Then they are the times RocketMQ computes
    assert timer_due_ms(record(**{TIMER_DELAY_MS: "+250"}), NOW) == NOW + 250
    assert timer_due_ms(record(**{TIMER_DELAY_SEC: str(-(2**31))}), NOW) == NOW - 2**31 * 1000
    assert timer_due_ms(record(**{TIMER_DELIVER_MS: "-1"}), NOW) == -1


def test_a_delay_level_wins_and_the_timer_properties_are_dropped() -> None:
    # Given a message with a delay level and a timer property
    both = record(**{DELAY: "2", TIMER_DELAY_SEC: "60", "k": "v"})
    # When it is scheduled
    parked = schedule(both, 18, NOW)
    # Then it waits for its level, without the timer property (RocketMQ's checkIfTimerMessage)
    props = decode_properties(parked.properties)
    assert parked.topic == SCHEDULE_TOPIC and parked.queue_id == 1
    assert TIMER_DELAY_SEC not in props and props["k"] == "v"
