"""One real client produces, the other consumes: the stored message is the same for both."""

from __future__ import annotations

import pathlib

import pytest

from tests.interop import scenarios
from tests.interop.scenarios import Driver, running_cluster

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


def test_cpp_producer_to_ali_ons_consumer(cpp: Driver, ons: Driver, tmp_path: pathlib.Path) -> None:
    with running_cluster(tmp_path / "data") as cluster:
        scenarios.cross_client(cpp, ons, cluster)


def test_ali_ons_producer_to_cpp_consumer(ons: Driver, cpp: Driver, tmp_path: pathlib.Path) -> None:
    with running_cluster(tmp_path / "data") as cluster:
        scenarios.cross_client(ons, cpp, cluster)
