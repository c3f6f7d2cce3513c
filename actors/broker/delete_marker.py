"""``DeleteTopicData`` for the CommitLogWriter: append a topic's deletion marker.

Kept beside the writer (it runs inside the writer actor, on its state), as ``raw_append`` is,
so the writer module stays about appending client records. Steps: refuse when the store
failed, is a slave's or is a master's without its lease (``may_append``: the log end it
reported is final); append one record of the reserved topic ``TOPIC_DELETED_MARKER`` whose
body is the topic's name (``runtime.store.fences``); forget the topic's next queue offsets
(created again, it starts at 0); hand the marker to the Dispatcher (a barrier there: the
topic's queues go once an fsync covers the marker) and ask the Flusher for that fsync. Replies
``TopicDataDeleted(fence)``: the offset just past the marker.

Durability point: none of its own; the Dispatcher waits for the marker's fsync before it
removes anything.
"""

from __future__ import annotations

import time
from typing import Any

from loguru import logger

from actors.broker.messages import AwaitFlush, Dispatch, TopicDataDeleted
from runtime.store.commitlog import AppendedBatch
from runtime.store.dispatch import DispatchBatch
from runtime.store.record import PutRecord
from runtime.store.topic_names import TOPIC_DELETED_MARKER


def forget_topic(next_offsets: dict[tuple[str, int], int], topic: str) -> None:
    """Drop ``topic``'s next queue offsets (a deletion: created again, it starts at 0)."""
    for key in [k for k in next_offsets if k[0] == topic]:
        del next_offsets[key]


def handle(writer: Any, topic: str) -> TopicDataDeleted:
    """Run a ``DeleteTopicData(topic)`` on ``writer`` (a CommitLogWriter)."""
    log = writer.log
    begin = log.write_offset
    failed = writer._failed or writer.ctx.failed
    if failed is not None:
        return TopicDataDeleted(begin, f"store failed: {failed}")
    if writer.settings.read_only:
        return TopicDataDeleted(begin, "store is read-only (slave): delete on the master")
    if not writer.ctx.replication.may_append():
        # (as for client records: the log end a master without its lease reported is final)
        return TopicDataDeleted(
            begin, "this master holds no lease from the controller (a failover may be under way)"
        )
    store_ts = int(time.time() * 1000)
    marker = PutRecord(
        topic=TOPIC_DELETED_MARKER, queue_id=0, body=topic.encode(), born_timestamp=store_ts
    )
    log.begin_group()
    try:
        out = log.append_batch((marker,), {}, store_ts, writer._max_size, {})
        end = log.commit_group()
    except OSError as exc:
        log.abort_group()
        writer._write_failed(exc, begin, [])
        return TopicDataDeleted(begin, f"write failed: {exc}")
    except BaseException:
        log.abort_group()
        raise
    if not isinstance(out, AppendedBatch):
        return TopicDataDeleted(begin, out.reason)
    forget_topic(writer.next_offsets, topic)
    writer.ctx.put_counts.pop(topic, None)  # (a topic's figures go with it)
    writer.ctx.put_bytes.pop(topic, None)
    writer._tell_dispatcher(Dispatch(begin, end, DispatchBatch({}, [], end, ((topic, end),))))
    writer._tell_flusher(AwaitFlush(end, []))
    logger.info(
        "store {}: topic {} deleted at commit-log offset {}", writer.settings.root, topic, begin
    )
    return TopicDataDeleted(end)
