"""The store's per-topic put figures (VIEW_BROKER_STATS_DATA's TOPIC_PUT_NUMS, the metrics'
throughput) stay bounded: a lite topic's queue counts as its parent topic (thousands of lite
topics were a key each, for ever), and a deleted topic's figures go with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.store import record as R
from tests.actors.test_ha_store import T, build

pytestmark = pytest.mark.timeout(30)


def test_lite_topics_count_as_their_parent_and_a_deleted_topic_goes(tmp_path: Path) -> None:
    store = build(tmp_path / "s")
    try:
        # Given messages of two lite topics of one parent, and of an ordinary topic
        for topic in ("%LMQ%$Orders$lite-1", "%LMQ%$Orders$lite-2", "T"):
            assert store.put([R.PutRecord(topic, 0, b"x", "")]).get(timeout=T).ok
        # Then the figures hold the parent once, and the ordinary topic
        assert store.ctx.put_counts == {"Orders": 2, "T": 1}
        assert set(store.ctx.put_bytes) == {"Orders", "T"}
        # When the ordinary topic is deleted, Then its figures go
        assert store.delete_topic_data("T").get(timeout=T).error is None
        assert store.ctx.put_counts == {"Orders": 2}
        assert set(store.ctx.put_bytes) == {"Orders"}
    finally:
        store.stop()
