"""One real client produces, the other consumes: the stored message is the same for both."""

from __future__ import annotations

import pytest

from tests.interop import scenarios
from tests.interop.scenarios import Cluster, Driver

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


def test_cpp_producer_to_ali_ons_consumer(
    cpp: Driver, ons: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.cross_client(cpp, ons, cluster)


def test_ali_ons_producer_to_cpp_consumer(
    ons: Driver, cpp: Driver, default_cluster: Cluster
) -> None:
    with scenarios.one_test(default_cluster) as cluster:
        scenarios.cross_client(ons, cpp, cluster)
