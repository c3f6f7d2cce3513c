"""``AppendRaw`` for the CommitLogWriter: a slave appends bytes replicated from its master
(and a classic master, reconciling after a power loss, what its slave holds past its end).

Kept beside the writer (it runs inside the writer actor, on its state) so the writer module
stays about appending client records. Steps: refuse unless this store is a slave's (read-only)
and healthy; check and write the records (``runtime.store.raw.append_raw``: whole records,
CRC, physical offsets, nothing written on refusal); advance the writer's next queue offsets
from the records (so a promoted slave assigns the right ones); hand the dispatch batch to the
Dispatcher (the slave builds its own consume queues and index); reply ``RawAppended`` once the
slave's flush mode holds (SYNC_FLUSH: after the Flusher's fsync; a reconciling master's
append: always after the fsync).

Durability point: the slave's flush mode, as for client appends. A failed write is undone as
for any append (``_write_failed``); one that cannot be undone fail-stops the writer.
"""

from __future__ import annotations

import contextlib
from typing import Any

from actors.broker.delete_marker import forget_topic
from actors.broker.messages import AppendRaw, AwaitFlush, Dispatch, RawAppended
from actors.broker.store_results import FlushStatus
from runtime.store import raw


class RawCompletion:
    """The flush half of a raw append (the Flusher calls ``flush_done``); replies once."""

    __slots__ = ("_end", "_reply")

    def __init__(self, reply: Any, end: int) -> None:
        self._reply = reply
        self._end = end

    def flush_done(self, status: FlushStatus) -> None:
        ok = status is FlushStatus.FLUSH_OK
        self._set(RawAppended(ok, self._end, None if ok else f"not fsynced: {status.value}"))

    def refuse(self, reason: str) -> None:
        self._set(RawAppended(False, self._end, reason))

    def _set(self, result: RawAppended) -> None:
        reply, self._reply = self._reply, None
        if reply is None:
            return
        with contextlib.suppress(Exception):  # already set by a timed-out caller: harmless
            reply.set(result)


def handle(writer: Any, msg: AppendRaw) -> None:
    """Run ``msg`` on ``writer`` (a CommitLogWriter). See the module docstring."""
    log = writer.log
    failed = writer._failed or writer.ctx.failed
    why = None
    if failed is not None:
        why = f"store failed: {failed}"
    elif not writer.settings.read_only and not msg.reconcile:
        why = "not a slave: replicated bytes are refused"
    if why is None:
        try:
            w = raw.append_raw(log, msg.offset, msg.data, writer.settings.delay_levels)
        except raw.RawRefused as exc:
            why = str(exc)
        except OSError as exc:
            RawCompletion(msg.reply, msg.offset).refuse(f"write failed: {exc}")
            writer._write_failed(exc, msg.offset, [])
            return
    if why is not None:
        RawCompletion(msg.reply, log.write_offset).refuse(why)
        return
    for topic, _fence in w.batch.deleted:  # a deletion marker: the topic starts again at 0
        forget_topic(writer.next_offsets, topic)
    writer.next_offsets.update(w.next_offsets)
    writer._tell_dispatcher(Dispatch(w.begin, w.end, w.batch))
    done = RawCompletion(msg.reply, w.end)
    # A master's reconciling append waits for its fsync in either flush mode: the new epoch
    # its reconciliation ends with begins past these bytes, and a second power loss must not
    # leave that entry beyond the log's end (the slaves holding the tail would be cut back)
    if not writer._sync_flush and not msg.reconcile:
        done.flush_done(FlushStatus.FLUSH_OK)
    elif not writer._tell_flusher(AwaitFlush(w.end, [done])):
        done.flush_done(FlushStatus.FLUSH_FAILED)
