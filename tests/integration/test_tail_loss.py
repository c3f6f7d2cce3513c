"""A consumer still running across its master's power loss does not skip the new messages that
take the offsets of the lost tail (``runtime.store.tail_guard``), against a real process: the
default profile's ASYNC_MASTER under ASYNC_FLUSH, killed, its log's tail cut and its reboot faked
as after a power loss, then started again on the same store, and once more (a clean restart:
the guard is raised again from its record, ``runtime.store.tail_record``)."""

from __future__ import annotations

import os
import pathlib
import time

import pytest

from runtime.ha import boot
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.store.msg_id import decode_offset_msg_id
from tests.harness import RuntimeProcess
from tests.integration.test_broker_wire import pull, records, send
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(120)

TOPIC = "TailLoss"
KEPT = 4  # messages the power loss leaves of the 10 the consumer read


def start(data: pathlib.Path) -> RuntimeProcess:
    return RuntimeProcess(["--ephemeral-ports", "--data-dir", str(data)])


def store_root(data: pathlib.Path) -> pathlib.Path:
    (log,) = data.rglob("commitlog")
    return log.parent


def power_loss(root: pathlib.Path, physical_offset: int) -> None:
    """Cut the commit log at ``physical_offset`` (what the disk held; the process is dead) and
    make the store's record of the boot it ran on an earlier one (``runtime.ha.boot``)."""
    for segment in sorted((root / "commitlog").iterdir()):
        start_offset = int(segment.name)
        size = segment.stat().st_size
        if start_offset + size > physical_offset:
            os.truncate(segment, max(0, physical_offset - start_offset))
    (root / boot.FILE).write_text("a-boot-before-the-power-loss\n")


def on_disk(data: pathlib.Path, key: str) -> bool:
    """Whether the store's offsets file holds ``key`` (``topic@group``)."""
    return any(key in path.read_text() for path in data.rglob("consumerOffset.json"))


def offset_of(client: WireClient, group: str) -> int:
    q = {"consumerGroup": group, "topic": TOPIC, "queueId": 0}
    return int(client.call(RequestCode.QUERY_CONSUMER_OFFSET, q).ext_fields["offset"])


def commit(client: WireClient, group: str, offset: int) -> None:
    q = {"consumerGroup": group, "topic": TOPIC, "queueId": 0, "commitOffset": offset}
    assert client.call(RequestCode.UPDATE_CONSUMER_OFFSET, q).code == ResponseCode.SUCCESS


def send_when_writable(client: WireClient, body: bytes, deadline: float) -> None:
    """Send once the master takes writes again (it may still be reconciling its log)."""
    while True:
        reply = send(client, TOPIC, body)
        if reply.code == ResponseCode.SUCCESS:
            return
        assert time.monotonic() < deadline, (reply.code, reply.remark)
        assert reply.code == ResponseCode.SERVICE_NOT_AVAILABLE, (reply.code, reply.remark)


def test_a_consumer_past_a_lost_tail_reads_the_new_messages_at_those_offsets(
    tmp_path: pathlib.Path,
) -> None:
    data = tmp_path / "node"
    with start(data) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        try:
            # Given ten messages in TailLoss/0 that group g read and committed (offset 10),
            # its committed offset on disk
            sent = [send(client, TOPIC, f"old-{i}".encode()) for i in range(10)]
            assert all(r.code == ResponseCode.SUCCESS for r in sent), sent[0].remark
            cut_at = decode_offset_msg_id(sent[KEPT].ext_fields["msgId"]).physical_offset
            reply = pull(client, TOPIC, 0, 0, group="g", commit_offset=0)
            assert [r.body for r in records(reply.body)][-1] == b"old-9"
            commit(client, "g", 10)
            deadline = time.monotonic() + 15
            while not on_disk(data, f"{TOPIC}@g"):
                assert time.monotonic() < deadline, "the committed offset never reached disk"
                time.sleep(0.05)
        finally:
            client.close()
        # When the machine loses power: the process dies, its log keeps only 4 of the 10
        node.kill()
    power_loss(store_root(data), cut_at)

    with start(data) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        try:
            # ... and after the restart ten new messages arrive (they take offsets 4 .. 13)
            deadline = time.monotonic() + 30
            for i in range(10):
                send_when_writable(client, f"new-{i}".encode(), deadline)
            # Then g's committed offset was lowered to the end that was left, and g's stale
            # position (a consumer that kept running commits it again) is stored as that end
            assert offset_of(client, "g") == KEPT
            commit(client, "g", 10)
            assert offset_of(client, "g") == KEPT
            # And a pull from its stale position is moved back to that end ...
            moved = pull(client, TOPIC, 0, 10, group="g")
            assert moved.code == ResponseCode.PULL_OFFSET_MOVED, (moved.code, moved.remark)
            assert int(moved.ext_fields["nextBeginOffset"]) == KEPT
            # ... from where it reads every new message, none skipped
            got = pull(client, TOPIC, 0, KEPT, group="g")
            assert got.code == ResponseCode.SUCCESS, (got.code, got.remark)
            assert [r.body for r in records(got.body)] == [f"new-{i}".encode() for i in range(10)]
            # And once it has read them, its position and commits are its own again
            assert pull(client, TOPIC, 0, 14, group="g").code == ResponseCode.PULL_NOT_FOUND
            commit(client, "g", 14)
            assert offset_of(client, "g") == 14
            # And a group with no committed offset is guarded too (its first commits may have
            # been lost with the tail): moved back to the end that was left
            fresh = pull(client, TOPIC, 0, 10, group="h")
            assert fresh.code == ResponseCode.PULL_OFFSET_MOVED, (fresh.code, fresh.remark)
            assert int(fresh.ext_fields["nextBeginOffset"]) == KEPT
            assert node.terminate() == 0, node.stderr_text()
        finally:
            client.close()

    # When the master is restarted (no new loss) while h's consumer still holds its position
    # from the old log
    with start(data) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        try:
            # Then the guard is raised again: h's pull from 10 (now inside the new messages)
            # is moved back to the end that was left, not answered new-6 onwards
            again = pull(client, TOPIC, 0, 10, group="h")
            assert again.code == ResponseCode.PULL_OFFSET_MOVED, (again.code, again.remark)
            assert int(again.ext_fields["nextBeginOffset"]) == KEPT
            # And g's committed offset, stored within the guard's bound, is its own: no move
            assert offset_of(client, "g") == 14
            assert pull(client, TOPIC, 0, 14, group="g").code == ResponseCode.PULL_NOT_FOUND
            assert node.terminate() == 0, node.stderr_text()
        finally:
            client.close()
