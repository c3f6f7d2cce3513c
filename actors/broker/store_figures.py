"""The store's part of GET_BROKER_RUNTIME_INFO (``mqadmin brokerStatus``), read by the
``StatsSampler`` at each request: commit-log offsets, how far dispatch and flushing lag the
writes, disk use, the store time of the oldest message. The metrics read them from there.
"""

from __future__ import annotations

import shutil

from actors.broker.store_service import BrokerStore


def store_figures(store: BrokerStore) -> dict[str, str]:
    """RocketMQ's keys: ``commitLogMinOffset``, ``commitLogMaxOffset`` (the end of what is
    dispatched, so consumable), ``dispatchBehindBytes`` (written, not yet dispatched),
    ``remainHowManyDataToFlush`` (written, not yet fsynced, as RocketMQ prints it: ``N B``, ``KiB``,
    ...), ``commitLogDiskRatio``, ``earliestMessageTimeStamp``; plus actormq's
    ``commitLogUnflushedBytes`` (the same as a number)."""
    try:
        usage = shutil.disk_usage(store.ctx.settings.commitlog_dir)
        ratio = f"{usage.used / usage.total:.4f}" if usage.total else "0"
    except OSError:
        ratio = "0"
    low, high = store.commit_log_min_offset, store.commit_log_max_offset
    opened = store.ctx.opened
    written = opened.log.write_offset if opened is not None else high
    flushed = opened.log.segments.flushed_offset if opened is not None else written
    unflushed = max(written - flushed, 0)
    first = store.look_message_by_offset(low) if high > low else None
    figures = {
        "commitLogMinOffset": str(low),
        "commitLogMaxOffset": str(high),
        "dispatchBehindBytes": str(max(written - high, 0)),
        "remainHowManyDataToFlush": _human(unflushed),
        "commitLogUnflushedBytes": str(unflushed),
        "commitLogDiskRatio": ratio,
    }
    if first is not None:  # mqadmin clusterList's "#Hour": how far back the log reaches
        figures["earliestMessageTimeStamp"] = str(first.store_timestamp)
    return figures


def _human(size: int) -> str:
    """Bytes as RocketMQ's ``humanReadableByteCount(bytes, false)``: ``512 B``, ``1.5 KiB``."""
    if size < 1024:
        return f"{size} B"
    exponent = 0
    value = float(size)
    while value >= 1024 and exponent < 6:
        value /= 1024
        exponent += 1
    return f"{value:.1f} {'KMGTPE'[exponent - 1]}iB"
