"""actors.broker.stats_windows: per-item counts over the last minute, hour and day."""

from __future__ import annotations

import pytest

from actors.broker.stats_windows import LEVELS, KeyedWindows

pytestmark = pytest.mark.timeout(10)


def test_windows_count_from_the_newest_snapshot_old_enough() -> None:
    # Given a topic putting 100 messages every 10 s tick for 2 minutes
    w = KeyedWindows()
    w.sample(0.0, {})  # the broker's first tick: nothing yet
    total = 0
    for tick in range(1, 13):
        total += 100
        w.sample(tick * 10.0, {"TOPIC_PUT_NUMS": {"Orders": total}})
    # When asked at the last tick
    minute, hour, day = w.windows("TOPIC_PUT_NUMS", "Orders", 120.0, total)  # type: ignore[misc]
    # Then the minute counts its 6 ticks; the hour and the day reach back to the topic's first
    # sight, when it is taken to have been 0 at the tick before (so nothing is lost)
    assert minute == (600, 60.0)
    assert hour == day == (1200, 120.0)


def test_an_item_new_since_the_last_tick_and_an_unknown_one() -> None:
    w = KeyedWindows()
    assert w.windows("GROUP_GET_NUMS", "Orders@billing", 0.0, 5) is None  # before any tick
    w.sample(10.0, {"GROUP_GET_NUMS": {}})
    # An item with traffic since the last tick counts all of it over the time since then
    assert w.windows("GROUP_GET_NUMS", "Orders@billing", 14.0, 5) == [(5, 4.0)] * 3


def test_snapshots_are_bounded_per_window() -> None:
    w = KeyedWindows()
    last = 2 * 8640
    for tick in range(1, last + 1):  # two days of 10 s ticks, one message each
        w.sample(tick * 10.0, {"TOPIC_PUT_NUMS": {"Orders": tick}})
    minute, hour, day = w._series[("TOPIC_PUT_NUMS", "Orders")]
    assert (len(minute), len(hour), len(day)) == (7, 7, 25)
    counts = w.windows("TOPIC_PUT_NUMS", "Orders", last * 10.0, last)
    assert counts is not None
    # each window covers at least its length and less than one more snapshot spacing, and
    # counts what came in over what it covers (the rate is right: one message per 10 s)
    for (count, seconds), (window, spacing, _kept) in zip(counts, LEVELS, strict=True):
        assert window <= seconds < window + spacing and count == seconds / 10
