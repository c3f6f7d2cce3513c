"""brokerPermission against a real process: UPDATE_BROKER_CONFIG (mqadmin updateBrokerConfig)
drains a broker (read-only: sends refused, pulls served, routes read-only) and gives it back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.client import Admin
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.integration.test_admin import mqadmin
from tests.integration.test_broker_wire import pull, send
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("perm")
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)]) as node:
        yield node.wait_ready()
        assert node.terminate() == 0, node.stderr_text()


def set_config(client: WireClient, text: str) -> object:
    return client.call(RequestCode.UPDATE_BROKER_CONFIG, {}, text.encode())


def route_perms(admin: Admin, topic: str) -> list[int]:
    return [q.perm for q in admin.topic_route(topic).queue_datas]


def test_a_read_only_broker_refuses_sends_serves_pulls_and_leaves_the_routes(
    cluster: dict[str, str],
) -> None:
    client = WireClient(cluster["broker-a/0"])
    try:
        with Admin(cluster["namesrv"]) as admin:
            # Given a topic with one message, writable in its route
            assert send(client, "PermT", b"before").code == ResponseCode.SUCCESS
            wait_until(lambda: route_perms(admin, "PermT") == [6], what="route of PermT")
            # When the broker is made read-only
            done = set_config(client, "brokerPermission=4\n")
            assert done.code == ResponseCode.SUCCESS, done.remark
            # Then sends are refused, pulls still served, and the route says read-only
            assert send(client, "PermT", b"during").code == ResponseCode.NO_PERMISSION
            assert pull(client, "PermT", 0, 0).code == ResponseCode.SUCCESS
            wait_until(lambda: route_perms(admin, "PermT") == [4], what="read-only route")
            shown = client.call(RequestCode.GET_BROKER_CONFIG).body.decode()
            assert "brokerPermission=4" in shown
            # And a key the broker reads only at start is refused, naming it
            refused = set_config(client, "flushDiskType=SYNC_FLUSH\n")
            assert refused.code == ResponseCode.SYSTEM_ERROR
            assert "flushDiskType" in refused.remark
            # When the command line gives the permission back (mqadmin updateBrokerConfig)
            # Then sends work and the route is writable
            back = mqadmin(
                cluster["namesrv"], "updateBrokerConfig", "-c", "DefaultCluster",
                "-k", "brokerPermission", "-v", "6",
            )  # fmt: skip
            assert back.returncode == 0, back.stderr
            assert back.stdout.startswith("update broker config success, ")
            assert send(client, "PermT", b"after").code == ResponseCode.SUCCESS
            wait_until(lambda: route_perms(admin, "PermT") == [6], what="writable route")
    finally:
        client.close()
