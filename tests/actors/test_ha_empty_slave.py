"""An empty slave and a master whose commit log no longer starts at 0 (retention deleted its
first segments, as on a master that ran past ``fileReservedTime``)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from actors.broker.messages import CleanTick
from runtime.ha import protocol as P
from runtime.node import Node
from runtime.remoting.codes import ResponseCode
from tests.actors.ha_support import (
    FakeSlave,
    broker_config,
    label,
    send,
    start_broker,
    stop_node,
    store_ctx,
    wait_until,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

EVERY_HOUR = ";".join(f"{h:02d}" for h in range(24))
RETAINED = {
    # every segment expires at once, and only the test's CleanTick deletes them
    "file_reserved_time": 0,
    "delete_when": EVERY_HOUR,
    "clean_resource_interval": 3_600_000,
}


@pytest.fixture
def master(tmp_path: pathlib.Path, namesrv: str) -> Iterator[Node]:
    cfg = broker_config("broker-a", 0, "ASYNC_MASTER", namesrv, **RETAINED)
    node = start_broker(cfg, tmp_path / "m")
    yield node
    stop_node(node)


def fill_and_expire(master: Node, count: int = 300) -> int:
    """Send ``count`` messages of ~700 bytes (several 64 KiB segments), then let retention
    delete all but the last segment; the master's log start (> 0)."""
    client = WireClient(master.addresses[label(master)])
    try:
        for i in range(count):
            reply = send(client, "HA", f"{i:05d}".encode() * 140, queue_id=i % 2)
            assert reply.code == ResponseCode.SUCCESS, reply.remark
    finally:
        client.close()
    ctx = store_ctx(master)
    log = ctx.require_open().log
    retention = ctx.directory.require(ctx.names.retention)

    def expired() -> bool:  # (a segment goes once flushed: ASYNC_FLUSH's flusher runs on)
        retention.ask(CleanTick(), timeout=10.0)
        return len(log.segments.segments) == 1

    wait_until(expired, what="retention to delete the first segments")
    assert log.min_offset > 0
    return log.min_offset


def test_an_empty_slave_of_a_master_whose_log_starts_past_0_is_told_the_offset_is_gone(
    master: Node,
) -> None:
    # Given a master whose first segments retention deleted
    start = fill_and_expire(master)
    # When an empty slave says HELLO
    fake = FakeSlave(master.ha_addresses[label(master)], node=1, max_offset=0)
    try:
        frame = fake.next_frame()
    finally:
        fake.close()
    # Then it is refused OFFSET_GONE saying what to do (not DIVERGED: "rebuild the slave")
    assert isinstance(frame, P.Refused), frame
    assert frame.reason is P.RefuseReason.OFFSET_GONE, frame
    assert f"starts at {start}" in frame.text and "copy the master's store" in frame.text
