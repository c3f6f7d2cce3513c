"""Deleting a topic against a real process: ``python -m runtime admin deleteTopic`` removes the
topic's route, config, messages and offsets; the topic created again starts empty at queue
offset 0, and a killed and restarted broker does not bring the old messages back."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from actors.client import Admin, BrokerError
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.harness import RuntimeProcess
from tests.integration.test_admin import commit, mqadmin
from tests.integration.test_broker_wire import pull, records, send
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(120)


def start(data: pathlib.Path) -> RuntimeProcess:
    return RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)])


def bodies(broker: str, topic: str, queue_id: int) -> list[bytes]:
    client = WireClient(broker)
    try:
        reply = pull(client, topic, queue_id, 0)
        if reply.code == ResponseCode.PULL_NOT_FOUND:
            return []
        assert reply.code == ResponseCode.SUCCESS, (reply.code, reply.remark)
        return [r.body for r in records(reply.body)]
    finally:
        client.close()


def call(broker: str, code: int, ext: dict[str, str]) -> int:
    client = WireClient(broker)
    try:
        return int(client.call(code, ext).code)
    finally:
        client.close()


def send_all(broker: str, topic: str, *payloads: bytes) -> None:
    client = WireClient(broker)
    try:
        for i, body in enumerate(payloads):
            reply = send(client, topic, body, queue_id=i % 2)
            assert reply.code == ResponseCode.SUCCESS, reply.remark
    finally:
        client.close()


@pytest.fixture
def data(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    yield tmp_path / "node"


def test_delete_topic_then_create_it_again_survives_a_kill(data: pathlib.Path) -> None:
    with start(data) as node:
        addresses = node.wait_ready()
        namesrv, broker = addresses["namesrv"], addresses["broker-a/0"]
        # Given topic Doomed (two queues) with six messages and a group's committed offset
        made = mqadmin(namesrv, "updateTopic", "-t", "Doomed", "-c", "DefaultCluster", "-w", "2")
        assert made.returncode == 0, made.stderr
        send_all(broker, "Doomed", *(f"old-{i}".encode() for i in range(6)))
        commit(broker, "doomed-readers", "Doomed", 0, 2)
        assert bodies(broker, "Doomed", 0) == [b"old-0", b"old-2", b"old-4"]
        # When the command line deletes it from the cluster
        gone = mqadmin(namesrv, "deleteTopic", "-t", "Doomed", "-c", "DefaultCluster")
        assert gone.returncode == 0, gone.stderr
        assert "delete topic [Doomed] from cluster [DefaultCluster] success." in gone.stdout
        assert "delete topic [Doomed] from NameServer success." in gone.stdout
        # Then the name server has no route for it, the broker no config, data or offsets
        with Admin(namesrv) as admin:
            assert "Doomed" not in admin.topic_list()
            with pytest.raises(BrokerError) as missing:
                admin.topic_route("Doomed")
            assert missing.value.code == ResponseCode.TOPIC_NOT_EXIST
            assert all(r.queue.topic != "Doomed" for r in admin.consume_stats("doomed-readers"))
        client = WireClient(broker)
        try:
            reply = pull(client, "Doomed", 0, 0)
            assert reply.code == ResponseCode.TOPIC_NOT_EXIST, reply.remark
        finally:
            client.close()
        # And system topics cannot be deleted
        refused = call(broker, RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": "TBW102"})
        assert refused == ResponseCode.SYSTEM_ERROR
        # When the topic is created again and gets two new messages
        again = mqadmin(namesrv, "updateTopic", "-t", "Doomed", "-c", "DefaultCluster", "-w", "2")
        assert again.returncode == 0, again.stderr
        send_all(broker, "Doomed", b"new-0", b"new-1")
        # Then it holds only them, from queue offset 0
        assert bodies(broker, "Doomed", 0) == [b"new-0"]
        assert bodies(broker, "Doomed", 1) == [b"new-1"]
        # When the broker is killed
        node.kill()
    # Then after a restart on the same data the old incarnation is still gone
    with start(data) as node:
        broker = node.wait_ready()["broker-a/0"]
        assert bodies(broker, "Doomed", 0) == [b"new-0"]
        assert bodies(broker, "Doomed", 1) == [b"new-1"]
        assert node.terminate() == 0, node.stderr_text()
