"""Fixtures shared by actor-level tests: both pykka runtimes, registry hygiene, and the client
tests' FakeCluster and ClientInstance, the name-server tests' own name server and WARNING log
(a module that needs others defines its own)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gevent.event
import pykka
import pytest

from actors.client.config import ClientConfig
from actors.client.instance import ClientInstance
from actors.client.testing import FakeCluster
from runtime.actor import GeventActor
from tests.actors.ha_support import start_namesrv, stop_node
from tests.actors.namesrv_support import logged, running_namesrv


@dataclass(frozen=True)
class Runtime:
    name: str
    actor_class: type[pykka.Actor]
    event_factory: Callable[[], Any]
    future_factory: Callable[[], pykka.Future[Any]]


THREADING = Runtime("threading", pykka.ThreadingActor, threading.Event, pykka.ThreadingFuture)
GEVENT = Runtime("gevent", GeventActor, gevent.event.Event, GeventActor._create_future)


@pytest.fixture(params=[THREADING, GEVENT], ids=lambda r: r.name)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    return request.param


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=5)
    assert pykka.ActorRegistry.get_all() == [], "an actor outlived its test"


@pytest.fixture
def namesrv() -> Iterator[str]:
    """A name server node (the HA tests' brokers register with it); its address. Files with
    a name server of another shape define their own ``namesrv``."""
    node = start_namesrv()
    yield node.addresses["namesrv"]
    stop_node(node)


@pytest.fixture
def lone_namesrv() -> Iterator[str]:
    """A name server alone (``namesrv_spec`` with the default NamesrvConfig); its address."""
    with running_namesrv() as (address, _directory):
        yield address


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The WARNING (and worse) lines logged during the test, as formatted."""
    with logged("WARNING") as seen:
        yield seen


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    """A FakeCluster of broker-a with topic Orders, on its own thread."""
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc


@pytest.fixture
def instance(cluster: FakeCluster) -> Iterator[ClientInstance]:
    """A started ClientInstance against ``cluster`` (no periodic route refresh)."""
    inst = ClientInstance(ClientConfig.make(cluster.namesrv, route_refresh_interval=0))
    inst.start()
    yield inst
    inst.stop()
