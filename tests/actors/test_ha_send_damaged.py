"""A master's sender meeting a damaged record in its commit log. Before: a record whose size
field the read refuses (``RawDamaged``) ended the link with a full traceback on every relink;
one whose magic byte flipped made every read answer empty ("not a record boundary") and the
link idled on heartbeats for ever, the slave never catching up and nobody told. Now both end the
link with one ERROR (no traceback, once a minute per slave) naming the offset."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import gevent.event
import pytest
from loguru import logger

from actors.broker import ha_connection, ha_hello
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
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def master(tmp_path: pathlib.Path) -> Iterator[Node]:
    node = start_broker(broker_config("broker-a", 0, "ASYNC_MASTER", ""), tmp_path / "m")
    yield node
    stop_node(node)


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    monkeypatch.setattr(ha_hello, "_logged_at", {})  # (once a minute: each test afresh)
    seen: list[Any] = []
    sink = logger.add(lambda m: seen.append(m.record), level="ERROR")
    try:
        yield seen
    finally:
        logger.remove(sink)


def three_records(node: Node) -> list[int]:
    """Three messages sent to the master; their commit-log offsets (and the write offset)."""
    client = WireClient(node.addresses[label(node)])
    try:
        for i in range(3):
            assert send(client, "T", b"m%d" % i).code == ResponseCode.SUCCESS
    finally:
        client.close()
    log = store_ctx(node).require_open().log
    offsets = [0]
    while len(offsets) < 4:
        size = int.from_bytes(log.segments.read(offsets[-1], 4), "big")
        offsets.append(offsets[-1] + size)
    assert offsets[-1] == log.write_offset
    return offsets


def damage(node: Node, offset: int, value: bytes) -> None:
    """Overwrite the commit log's bytes at ``offset`` (its first segment) on disk."""
    ctx = store_ctx(node)
    with open(os.path.join(ctx.settings.root, "commitlog", f"{0:020d}"), "r+b") as fh:
        fh.seek(offset)
        fh.write(value)
    ctx.require_open().log.segments.drop_tail_cache()


def link_ends(node: Node) -> tuple[FakeSlave, int]:
    """A slave from 0 linking to ``node``; where the stream it got ends once the master closes
    the link (a socket timeout if it never does)."""
    slave = FakeSlave(node.ha_addresses[label(node)], node=1)
    slave.sock.settimeout(5.0)
    at = 0
    while True:
        try:
            frame = slave.next_frame()
        except ConnectionError:
            return slave, at
        if isinstance(frame, P.Refused):
            return slave, at
        if isinstance(frame, P.Data) and frame.data:
            at = frame.offset + len(frame.data)


def test_a_flipped_magic_byte_ends_the_link_with_an_error_naming_the_offset(
    master: Node, errors: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ha_connection, "STALL_S", 0.3, raising=False)
    # Given a master whose second record's magic code has a flipped byte
    offsets = three_records(master)
    damage(master, offsets[1] + 4, b"\x00")
    # When a slave links from 0
    slave, at = link_ends(master)
    try:
        # Then it gets the first record, and the link ends at the second (it idled on
        # heartbeats for ever: the slave's read timed out)
        assert at == offsets[1]
        # And one ERROR names the offset, without a traceback
        named = [r for r in errors if f"offset {offsets[1]}" in r["message"]]
        assert len(named) == 1, [r["message"] for r in errors]
        assert "no record starts there" in named[0]["message"]
        assert named[0]["exception"] is None
    finally:
        slave.sock.close()


def test_a_damaged_size_is_logged_once_without_a_traceback_however_often_the_slave_relinks(
    master: Node, errors: list[Any]
) -> None:
    # Given a master whose second record's size runs past its segment
    offsets = three_records(master)
    damage(master, offsets[1], (1 << 30).to_bytes(4, "big"))
    for _ in range(3):
        # When a slave links from 0, three times
        slave, at = link_ends(master)
        slave.sock.close()
        # Then each time it gets the first record and the link ends at the second
        assert at == offsets[1]
    gevent.sleep(0)
    # And one ERROR (no traceback) names the offset, not one per link
    named = [r for r in errors if str(offsets[1]) in r["message"]]
    assert len(named) == 1, [r["message"] for r in errors]
    assert "repair the master's commit log" in named[0]["message"].lower()
    assert named[0]["exception"] is None
