"""Third-party clients, which speak no TLS (none of the three installed has it), against a
cluster whose listeners are in ``permissive`` TLS mode: served in plain, as before, while our
own client may connect over TLS to the same ports (docs/deploy.md, "TLS")."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from actors.client import Message, Producer
from tests.interop import scenarios
from tests.interop.scenarios import Cluster, Driver, running_cluster
from tests.tls_support import needs_openssl, self_signed

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150), needs_openssl]


@pytest.fixture(scope="module")
def permissive_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("permissive")
    cert, key = self_signed(directory, "actormq-interop")
    config = directory / "tls.properties"
    config.write_text(
        f"tls.server.mode=permissive\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
    )
    with running_cluster(directory / "data", extra=["--tls-config", str(config)]) as cluster:
        yield cluster


@pytest.fixture(params=["ons", "cpp", "cpp21"], ids=["ali-ons", "engine1.x", "engine2.1"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return request.getfixturevalue(request.param)


def test_a_plain_client_works_against_a_permissive_cluster(
    driver: Driver, permissive_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with scenarios.one_test(permissive_cluster) as cluster:
        # Given a TLS client of ours storing on the same cluster meanwhile
        with Producer("tls-neighbour", namesrv=cluster.namesrv, tls=True) as producer:
            producer.send(Message("TlsNeighbour", b"over tls"))
        # When a third-party client produces and consumes in plain, Then all arrives intact
        scenarios.produce_then_consume_all(driver, cluster)
