"""A record whose properties are damaged outside what the body CRC covers (bytes that are no
UTF-8) neither stops the store from opening nor fails lookups of the records around it, as in
RocketMQ (whose decoder replaces what it cannot read)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.broker.store_results import GetStatus
from runtime.store import record as R
from tests.actors.test_store_actors import T, consumable, get, open_store, put, rec

pytestmark = pytest.mark.timeout(60)


def test_a_store_opens_and_serves_around_a_record_with_undecodable_properties(
    tmp_path: Path,
) -> None:
    # Given three records with the key K, stopped cleanly
    store = open_store(tmp_path)
    for i in range(3):
        put(store, rec(b"m%d" % i, KEYS="K", other="abc"))
    consumable(store, 3)
    first_size = len(store.ctx.require_open().log.read_record_bytes(0) or b"")
    store.stop()
    # When a byte of the second record's properties turns into 0xFF (no UTF-8; the body CRC
    # does not cover it), and the checkpoint is gone (recovery reads every record again)
    segment = tmp_path / "commitlog" / ("0" * 20)
    at = segment.read_bytes().index(b"abc", first_size)
    with open(segment, "r+b") as f:
        f.seek(at)
        f.write(b"\xff")
    os.remove(tmp_path / "checkpoint")
    # Then the store opens, and every record is still served by its queue offset
    store = open_store(tmp_path)
    try:
        got = get(store, 0)
        assert got.status is GetStatus.FOUND
        assert [R.decode_record(m).body for m in got.messages[::2]] == [b"m0", b"m2"]
        assert len(got.messages) == 3
        # and a lookup by key answers the records it can decode
        found = store.query_by_key("T", "K", 10).get(timeout=T).messages
        assert sorted(R.decode_record(m).body for m in found) == [b"m0", b"m2"]
    finally:
        store.stop()
