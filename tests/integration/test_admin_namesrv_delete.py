"""DELETE_TOPIC_IN_NAMESRV (216) against a real process, through ``Admin.delete_topic_in_namesrv``:
the route goes at once and comes back with the broker's next full registration, since the
broker still has the topic (deleting it there is DELETE_TOPIC_IN_BROKER, ``Admin.delete_topic``).

The broker of this profile registers every 10 minutes, so nothing but the test's own topic
changes registers it during the test: a created topic alone, a deleted one the whole table."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from actors.client import Admin, BrokerError
from runtime.remoting.codes import ResponseCode
from tests.harness import RuntimeProcess
from tests.profiles import one_broker

pytestmark = pytest.mark.timeout(60)

PROFILE = one_broker({"registerNameServerPeriod": 600000})


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    root = tmp_path_factory.mktemp("namesrv-delete")
    profile = root / "p.toml"
    profile.write_text(PROFILE)
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(root / "data")]) as node:
        namesrv = node.wait_ready()["namesrv"]
        with Admin(namesrv) as a:
            yield a
        assert node.terminate() == 0, node.stderr_text()


def routed(admin: Admin, topic: str) -> bool:
    try:
        admin.topic_route(topic)
    except BrokerError as exc:
        assert exc.code == ResponseCode.TOPIC_NOT_EXIST
        return False
    return True


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """The broker registers in a greenlet of its own after a topic change: poll its outcome."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_delete_topic_in_namesrv_drops_the_route_until_the_broker_registers_again(
    admin: Admin,
) -> None:
    # Given a topic the broker created and registered
    wait_until(lambda: bool(admin.masters()), "the broker's first registration")
    admin.create_topic("Doomed", queues=2)
    wait_until(lambda: routed(admin, "Doomed"), "the route of Doomed")
    # When another cluster's share of it is deleted, Then nothing changes
    admin.delete_topic_in_namesrv("Doomed", cluster="OtherCluster")
    assert routed(admin, "Doomed")
    # When it is deleted in the name server
    assert admin.delete_topic_in_namesrv("Doomed") == list(admin.config.namesrv)
    # Then the name server answers TOPIC_NOT_EXIST and no longer lists it
    assert not routed(admin, "Doomed")
    assert "Doomed" not in admin.topic_list()
    # And deleting it again is no error
    admin.delete_topic_in_namesrv("Doomed", cluster="DefaultCluster")
    # When the broker registers only a topic created meanwhile (an incremental registration,
    # as RocketMQ's registerIncrementBrokerData), Then that does not bring it back
    admin.create_topic("Bystander", queues=1)
    wait_until(lambda: routed(admin, "Bystander"), "the route of Bystander")
    assert not routed(admin, "Doomed")
    # When the broker registers its whole table again (a topic deleted on it does, as does its
    # registerNameServerPeriod timer), Then the route is back: the broker still has the topic
    admin.delete_topic("Bystander")
    wait_until(lambda: routed(admin, "Doomed"), "the route of Doomed back")
    assert not routed(admin, "Bystander")
