"""Interop fixtures: install each real client once per session, skip only when the registry is
unreachable (any other install failure is an error), one Driver per test, and the default and
quick-delay clusters once per test module.

The clusters are shared because no scenario depends on a fresh server: each one names its
topics and groups after the client and the scenario (``Interop<Client><Scenario>``,
``interop_<client>_<scenario>``), so tests of one module never read each other's messages,
offsets or group members; a fresh server per test cost ~0.6 s each (start and clean stop). The
clean stop (exit 0) is still asserted, at the end of the module."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest

from tests.interop.install import (
    Client,
    InstallError,
    RegistryUnreachable,
    install_cpp,
    install_cvs,
    install_grpc5,
    install_node5,
    install_ons,
)
from tests.interop.scenarios import Cluster, Driver, quick_delay_cluster, running_cluster


def _installed(install: Callable[[], Client], what: str) -> Client:
    try:
        return install()
    except RegistryUnreachable as exc:
        pytest.skip(f"{what}: package registry unreachable, cannot install: {exc}")
    except InstallError as exc:
        pytest.fail(f"{what}: install failed (not a network problem): {exc}", pytrace=False)


@pytest.fixture(scope="session")
def ons_client() -> Client:
    """ali-ons 3.12.0 in .interop/ons (npm ci)."""
    return _installed(install_ons, "ali-ons 3.12.0 (npm)")


@pytest.fixture(scope="session")
def cpp_client() -> Client:
    """rocketmq 0.4.4 (C++ 1.x client wheel) in the virtualenv .interop/cpp."""
    return _installed(install_cpp, "rocketmq 0.4.4 (PyPI, C++ client)")


@pytest.fixture(scope="session")
def cvs_client() -> Client:
    """rocketmq-python-cvs 2.1.0.3 (C++ 2.1 engine, same binding) in .interop/cvs."""
    return _installed(install_cvs, "rocketmq-python-cvs 2.1.0.3 (PyPI, C++ 2.1 client)")


@pytest.fixture(scope="session")
def grpc5_client() -> Client:
    """rocketmq-python-client 5.1.2 (RocketMQ 5's gRPC client) in .interop/grpc5."""
    return _installed(install_grpc5, "rocketmq-python-client 5.1.2 (PyPI, gRPC)")


@pytest.fixture(scope="session")
def node5_client() -> Client:
    """rocketmq-client-nodejs 1.0.8 (RocketMQ 5's gRPC client) in .interop/node5."""
    return _installed(install_node5, "rocketmq-client-nodejs 1.0.8 (npm, gRPC)")


@pytest.fixture(scope="module")
def default_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """``python -m runtime`` (default profile) for every test of a module; see the docstring."""
    with running_cluster(tmp_path_factory.mktemp("default-cluster") / "data") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def delay_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """``quick_delay_cluster`` (examples/features.toml) for every test of a module."""
    with quick_delay_cluster(tmp_path_factory.mktemp("delay-cluster")) as cluster:
        yield cluster


@pytest.fixture
def ons(ons_client: Client, tmp_path: pathlib.Path) -> Driver:
    return Driver(
        key="ons",
        name="ons",
        client=ons_client,
        workdir=tmp_path / "clients",
        sent_queue_known=True,
        reports_rebalance=True,
        creates_topics=True,
    )


@pytest.fixture
def cpp(cpp_client: Client, tmp_path: pathlib.Path) -> Driver:
    return Driver(
        key="cpp",
        name="cpp",
        client=cpp_client,
        workdir=tmp_path / "clients",
        sent_queue_known=False,
        reports_rebalance=True,  # from its log file, see cpp/consumer.py
        creates_topics=False,
    )


@pytest.fixture
def cpp21(cvs_client: Client, tmp_path: pathlib.Path) -> Driver:
    """The C++ 2.1 engine through the same scripts as ``cpp``."""
    return Driver(
        key="cpp",
        name="cpp21",
        client=cvs_client,
        workdir=tmp_path / "clients",
        sent_queue_known=False,
        reports_rebalance=True,
        creates_topics=False,
    )
