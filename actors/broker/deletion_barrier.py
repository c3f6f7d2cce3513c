"""The Dispatcher's topic-deletion barrier work, run in a helper greenlet (it blocks).

A batch holding deletion markers stops dispatch (``Dispatcher._begin_deletion``) while
``run_barrier``: waits for an fsync covering the markers (``AwaitFlush`` to the Flusher), saves
the raised fences (``runtime.store.fences``), stops the topics' Queue actors and deletes their
files, and on a slave also removes each topic's config and every group's offsets of it,
durably (``forget_on_slave``). The Dispatcher then applies the held batch (``DeletionDone``).
Once the Dispatcher ended (``ended()``), the helper stops where it is: a restarted Dispatcher,
or the next start's recovery, reads the markers back from the log and does it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent.event

from actors.broker.messages import AwaitFlush, DeleteTopic, RemoveTopicOffsets
from actors.broker.store_results import FlushStatus
from runtime.actor import offload
from runtime.errors import StoreError
from runtime.store import fences as fence_table
from runtime.store.context import StoreContext
from runtime.store.dispatch import DispatchBatch

SYNC_TIMEOUT_S = 10.0
FLUSH_WAIT_S = 30.0


class _FlushWait:
    """An AwaitFlush completion that a greenlet can wait for."""

    def __init__(self) -> None:
        self.result: gevent.event.AsyncResult = gevent.event.AsyncResult()

    def flush_done(self, status: FlushStatus) -> None:
        self.result.set(status)


def run_barrier(
    ctx: StoreContext, log: Any, queues: Any, batch: DispatchBatch, ended: Callable[[], bool]
) -> bool:
    """The barrier's work: True once done (the Dispatcher applies the batch), False when the
    Dispatcher ended meanwhile (nothing to report). Raises what went wrong."""
    settings = ctx.settings
    await_flush(ctx, log, batch.end)
    if ended():
        return False
    fences = fence_table.raised(ctx.topic_fences, batch.deleted)
    offload(fence_table.save, settings.root, fences)
    ctx.topic_fences = fences
    for topic, _fence in batch.deleted:
        if ended():
            return False
        queues.drop_topic(topic)
        if settings.read_only:
            forget_on_slave(ctx, topic)
    return True


def forget_on_slave(ctx: StoreContext, topic: str) -> None:
    """A slave applies a replicated deletion where it stands in the log: the topic's config
    and every group's offsets of it go now (durably), as they went on the master before
    the marker was written. Its metadata sync then copies whatever the master has since
    (a topic created again, its new offsets)."""
    for name, message in (
        (ctx.names.topics, DeleteTopic(topic)),
        (ctx.names.offsets, RemoveTopicOffsets(topic)),
    ):
        ref = ctx.directory.get(name)
        if ref is None:
            raise StoreError(ctx.settings.root, f"{name} is not running")
        durable = ref.ask(message, block=False).get(timeout=SYNC_TIMEOUT_S)
        if not durable.wait(SYNC_TIMEOUT_S):
            raise StoreError(ctx.settings.root, f"{name} could not persist {message}")


def await_flush(ctx: StoreContext, log: Any, offset: int) -> None:
    """Block this greenlet until the log is fsynced up to ``offset``."""
    segments = log.segments
    while segments.flushed_offset < offset:
        if ctx.failed is not None:
            raise StoreError(ctx.settings.root, f"store failed: {ctx.failed}")
        flusher = ctx.directory.get(ctx.names.flusher)
        if flusher is None:
            raise StoreError(ctx.settings.root, "no flusher to make the marker durable")
        wait = _FlushWait()
        flusher.tell(AwaitFlush(offset, [wait]))
        if wait.result.wait(FLUSH_WAIT_S) is FlushStatus.FLUSH_FAILED:
            raise StoreError(ctx.settings.root, "fsync of a deletion marker failed")
