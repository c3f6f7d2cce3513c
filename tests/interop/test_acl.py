"""The real clients against RocketMQ's plain ACL (``aclEnable=true``): ali-ons 3.12.0 and both C++
engines sign their requests with their own code (ali-ons: ``accessKeyId``/``accessKeySecret``,
C++: ``set_session_credentials``), each adding an ``OnsChannel`` field to what it signs.

One ACL cluster for the module; each client has its own topics and group (``acl_names``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop import scenarios
from tests.interop.scenarios import Cluster, Driver, acl_cluster

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

CLIENTS = ["ons", "cpp", "cpp21"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with acl_cluster(tmp_path_factory.mktemp("acl-cluster"), CLIENTS) as cluster:
        yield cluster


@pytest.fixture(params=CLIENTS, ids=["ali-ons", "cpp-engine1.x", "cpp-engine2.1"])
def client(request: pytest.FixtureRequest) -> Driver:
    return request.getfixturevalue(request.param)


def test_signed_client_produces_and_consumes_intact(client: Driver, cluster: Cluster) -> None:
    with scenarios.one_test(cluster):
        scenarios.signed_clients_produce_and_consume(client, cluster)


def test_sends_signed_with_a_wrong_secret_are_refused(client: Driver, cluster: Cluster) -> None:
    with scenarios.one_test(cluster):
        scenarios.wrong_secret_is_refused(client, cluster)
