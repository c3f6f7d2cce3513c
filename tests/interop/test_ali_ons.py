"""ali-ons 3.12.0 (npm, pure JavaScript) against a real ``python -m runtime``.

The client runs as ``node tests/interop/ons/*.js`` with its own HOME; the scenarios (and their
Given/When/Then) live in ``scenarios.py``, shared with the C++ client.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.interop import scenarios
from tests.interop.scenarios import Cluster, Driver, running_cluster

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


def test_produce_with_keys_and_tags_then_push_consume_all_intact(
    ons: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.produce_then_consume_all(ons, cluster)


def test_tag_filtered_subscription_receives_only_its_tags(
    ons: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.tag_filtered_subscription(ons, cluster)


def test_second_consumer_joining_the_group_takes_half_the_queues(
    ons: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.second_consumer_takes_half(ons, cluster, then_leaves=False)


def test_first_consumer_takes_all_queues_back_when_the_second_leaves(
    ons: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.second_consumer_takes_half(ons, cluster, then_leaves=True)


def test_two_master_cluster_spreads_messages_over_both_brokers(
    ons: Driver, tmp_path: pathlib.Path
) -> None:
    with running_cluster(tmp_path / "data", profile="2m-noslave") as cluster:
        scenarios.spread_over_two_brokers(ons, cluster)


def test_consumer_restart_resumes_from_committed_offsets(
    ons: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.consumer_restart_resumes_from_committed_offset(ons, cluster)


def test_broadcasting_consumers_of_one_group_each_receive_every_message(
    ons: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.broadcasting_consumers_each_get_every_message(ons, cluster)


def test_large_compressed_bodies_arrive_intact(ons: Driver, default_cluster: Cluster) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.large_bodies_arrive_intact(ons, cluster)


def test_failed_message_is_redelivered_through_the_retry_topic(
    ons: Driver, delay_cluster: Cluster
) -> None:
    # ali-ons also sends a message back when its handler throws (TagT)
    with scenarios.one_test(delay_cluster) as cluster:
        scenarios.failed_message_is_redelivered_through_retry_topic(ons, cluster, throw=True)


def test_delayed_messages_wait_their_delay_level(ons: Driver, delay_cluster: Cluster) -> None:
    with scenarios.one_test(delay_cluster) as cluster:
        scenarios.delayed_messages_wait_their_level(ons, cluster, level_2_s=2.0)
