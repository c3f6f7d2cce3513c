"""The queue-count limit of a topic (actors/broker/queue_limits.py, ``maxTopicQueueNums``)."""

from __future__ import annotations

import pytest

from actors.broker.queue_limits import capped, queue_nums_problem
from config.schema import BrokerConfig
from runtime.errors import ConfigError


def test_queue_counts_must_be_within_1_and_the_limit() -> None:
    assert queue_nums_problem(1, 1024, 1024) is None
    assert "must be > 0" in (queue_nums_problem(0, 4, 1024) or "")
    assert "at most 1024" in (queue_nums_problem(4, 2**31 - 1, 1024) or "")
    assert [capped(n, 8) for n in (-3, 0, 1, 8, 1000)] == [1, 1, 1, 8, 8]


def test_a_default_topic_queue_count_above_the_limit_is_a_config_error() -> None:
    assert BrokerConfig().max_topic_queue_nums == 1024
    with pytest.raises(ConfigError, match="maxTopicQueueNums"):
        BrokerConfig(default_topic_queue_nums=16, max_topic_queue_nums=8)
