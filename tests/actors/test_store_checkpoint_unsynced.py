"""A failed fsync of a consume queue (or the index) stops checkpoints for the rest of that
opening of the store: the kernel may have dropped the pages it could not write, and a later
fsync succeeds without them, so a checkpoint past that point would make the next start trust
consume-queue entries that are not on disk. The next start re-dispatches from the last good
checkpoint instead (store reviewer's note: "fsyncgate")."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import gevent
import pytest

from actors.broker.messages import CheckpointTick
from runtime.actor import actor_of
from runtime.store import checkpoint as ckpt
from runtime.store import record as R
from runtime.store.faults import FaultyFileSystem
from runtime.store.lockfile import abort_exists
from tests.actors.test_store_actors import open_store

pytestmark = pytest.mark.timeout(30)
T = 5.0


class QueueFsyncFails(FaultyFileSystem):
    """While ``armed``, the next fsync of a consume-queue file fails with EIO."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.failed = False

    def _before_fsync(self, path: str) -> None:
        if self.armed and f"{os.sep}consumequeue{os.sep}" in path:
            self.armed = False
            self.failed = True
            raise OSError(errno.EIO, "Input/output error", path)
        super()._before_fsync(path)


def wait_for(predicate: object, timeout: float = T) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.02)
    return True


def test_no_checkpoint_after_a_consume_queue_fsync_failed(tmp_path: Path) -> None:
    fs = QueueFsyncFails()
    store = open_store(tmp_path, fs=fs)
    try:
        # Given a store whose checkpoint covers a first message
        assert store.put([R.PutRecord("T", 0, b"a", "")]).get(timeout=T).ok
        end = store.ctx.require_open().log.write_offset
        assert wait_for(lambda: (ckpt.load(str(tmp_path)) or ckpt.Checkpoint(0)).safe_offset >= end)
        # When a consume queue's fsync fails (a second message's entry)
        fs.armed = True
        assert store.put([R.PutRecord("T", 0, b"b", "")]).get(timeout=T).ok
        assert wait_for(lambda: fs.failed and store.ctx.unsynced is not None)
        good = ckpt.load(str(tmp_path))
        # Then a later checkpoint tick (the log flushed past the last one) writes none
        assert store.put([R.PutRecord("T", 0, b"c", "")]).get(timeout=T).ok
        end = store.ctx.require_open().log.write_offset
        assert wait_for(lambda: store.ctx.require_open().log.segments.flushed_offset >= end)
        dispatcher = store.ctx.directory.require(store.names.dispatcher)
        dispatcher.tell(CheckpointTick())
        assert store.when_dispatched(end).get(timeout=T) >= end  # (after the tick)
        assert not actor_of(dispatcher)._checkpointing  # type: ignore[union-attr]
        assert ckpt.load(str(tmp_path)) == good
        # nor does the clean stop
    finally:
        store.stop()
    assert ckpt.load(str(tmp_path)) == good
    # and the next start re-dispatches everything after it, finding all three messages
    assert abort_exists(str(tmp_path))
    again = open_store(tmp_path)
    try:
        report = again.ctx.require_open().report
        assert report.reput_records >= 2
        got = again.get_messages("g", "T", 0, 0, 10).get(timeout=T)
        assert len(got.messages) == 3
    finally:
        again.stop()
