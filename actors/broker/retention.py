"""Retention: deletes old commit-log segments and keeps the disk from filling up.

Messages accepted:
- ``CleanTick`` (timer, every ``clean_resource_interval_ms``; tests tell it directly).

Each tick measures the store partition's used ratio and:
- above ``disk_space_warning_level_ratio`` (90 %) tells the writer ``DiskSpace(full=True)``, so
  it answers SERVICE_NOT_AVAILABLE until a later tick finds the ratio below again;
- at a ``delete_when`` hour ("04", or "04;16"), or at once above ``disk_max_used_space_ratio``
  (75 %), asks the writer to delete segments older than ``file_reserved_hours``;
- above ``disk_space_clean_forcibly_ratio`` (85 %) deletes the oldest segments even unexpired.
Never beyond what is dispatched and fsynced, never the segment being written, at most
``MAX_FILES_PER_TICK`` per tick. Then consume queues (each Queue actor) and the index (the
Dispatcher) drop files that only point below the new commit-log minimum (``TrimBelow``).

Owned state: the last disk verdict. Durability point: none (deletion is what it does).
Injectable ``disk_usage(path) -> ratio`` and ``clock()`` make it testable.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from actors.broker.messages import CleanTick, DeleteSegments, DiskSpace, SegmentsDeleted, TrimBelow
from runtime.actor import GeventActor
from runtime.store.context import StoreContext

MAX_FILES_PER_TICK = 10
ASK_TIMEOUT_S = 30.0


def disk_used_ratio(path: str) -> float:
    """Used fraction of the partition holding ``path`` (as RocketMQ: 1 - free/total)."""
    st = os.statvfs(path)
    if st.f_blocks == 0:
        return 0.0
    return 1.0 - st.f_bfree / st.f_blocks


class Retention(GeventActor):
    """See the module docstring."""

    def __init__(
        self,
        ctx: StoreContext,
        *,
        disk_usage: Callable[[str], float] = disk_used_ratio,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.settings = ctx.settings
        self.disk_usage = disk_usage
        self.clock = clock
        self.full = False
        hours = {h.strip() for h in self.settings.delete_when.split(";") if h.strip()}
        self.delete_hours = {int(h) for h in hours if h.isdigit()}

    def on_start(self) -> None:
        self.send_every(self.settings.clean_resource_interval_ms / 1000.0, CleanTick())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CleanTick):
            return self._clean()
        return super().on_receive(message)

    def _clean(self) -> SegmentsDeleted | None:
        s = self.settings
        ratio = self.disk_usage(s.commitlog_dir)  # the commit log's disk (storePathCommitLog)
        pct = ratio * 100
        full = pct > s.disk_space_warning_level_ratio
        if full or full != self.full:
            self._tell(self.ctx.names.writer, DiskSpace(full, ratio))
        self.full = full
        now = self.clock()
        at_hour = time.localtime(now).tm_hour in self.delete_hours
        force = pct > s.disk_space_clean_forcibly_ratio
        if not (at_hour or pct > s.disk_max_used_space_ratio or force):
            return None
        writer = self.ctx.directory.get(self.ctx.names.writer)
        if writer is None:
            return None
        request = DeleteSegments(
            older_than=now - s.file_reserved_hours * 3600,
            force=force,
            max_files=MAX_FILES_PER_TICK,
            limit_offset=self.ctx.dispatched,
        )
        try:
            done: SegmentsDeleted = writer.ask(request, timeout=ASK_TIMEOUT_S)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            logger.warning("retention: writer did not answer: {}", exc)
            return None
        if done.paths:
            logger.info(
                "retention: disk {:.0%} used{}: deleted {} segments, log starts at {}",
                ratio,
                " (forced)" if force else "",
                len(done.paths),
                done.min_offset,
            )
            self._trim(done.min_offset)
        return done

    def _trim(self, log_min: int) -> None:
        self._tell(self.ctx.names.dispatcher, TrimBelow(log_min))
        table = self.ctx.queues
        if table is not None:
            table.trim_below(log_min)  # (an idle queue's here: no actor started for it)

    def _tell(self, name: str, message: Any) -> None:
        ref = self.ctx.directory.get(name)
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(message)
