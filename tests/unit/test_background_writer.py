"""BackgroundWriter: coalesced JSON rewrites off the actor's path, at most one per interval."""

from __future__ import annotations

import json
import pathlib

import gevent
import gevent.event
import pytest

from runtime.store.background import BackgroundWriter

pytestmark = pytest.mark.timeout(20)


def test_changes_made_faster_than_the_interval_are_written_a_few_times_the_last_one_whole(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "topics.json"
    writer = BackgroundWriter(str(path), min_interval=0.2)
    # Given 200 changes made back to back, each waiting for the write that covers it
    done = [gevent.event.AsyncResult() for _ in range(200)]
    for i, result in enumerate(done):
        writer.request({"n": i}, result)
        if i % 20 == 0:
            gevent.idle()  # let the writer start one meanwhile
    # When they are all reported written
    assert all(r.get(timeout=10) is True for r in done)
    # Then the file holds the last one, and far fewer writes were made than changes
    assert json.loads(path.read_bytes()) == {"n": 199}
    assert 1 <= writer.writes <= 3, writer.writes
    writer.close()


def test_close_writes_what_waits_for_the_interval_at_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.json"
    writer = BackgroundWriter(str(path), min_interval=60.0)
    first = gevent.event.AsyncResult()
    writer.request({"v": 1}, first)
    assert first.get(timeout=5) is True
    # Given a change that must wait a minute for its write
    second = gevent.event.AsyncResult()
    writer.request({"v": 2}, second)
    gevent.idle()
    assert not second.ready() and writer.busy
    # When the writer closes (an actor stopping), Then it is written now, not in a minute
    with gevent.Timeout(5):
        writer.close()
    assert second.get(timeout=0) is True
    assert json.loads(path.read_bytes()) == {"v": 2}
    assert writer.writes == 2


def test_a_change_waiting_for_its_write_is_not_kept_waiting_for_the_interval(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "t.json"
    writer = BackgroundWriter(str(path), min_interval=60.0)
    writer.request({"v": 1})
    gevent.idle()
    # Given a write made just now and changes since (the writer waits a minute for the next)
    writer.request({"v": 2})
    gevent.idle()
    assert writer.busy
    # When a change comes whose caller waits for it to be on disk (a topic deleted)
    deleted = gevent.event.AsyncResult()
    writer.request({"v": 3}, deleted)
    # Then it is written now, not in a minute
    assert deleted.get(timeout=5) is True
    assert json.loads(path.read_bytes()) == {"v": 3}
    writer.close()
