"""The epoch file ``<store>/epoch`` and the last common point of two logs.

Each line is ``epoch startOffset nodeId``: master term ``epoch`` began writing at commit-log
offset ``startOffset`` under the broker whose node id (its configured brokerId) is ``nodeId``.
A new master appends its entry before it accepts its first write; a slave mirrors its master's
entries. The file is rewritten atomically (tmp + fsync + rename + directory fsync), so a reader
sees the old list or the new one. Data written before the first entry belongs to epoch 0.

``consistent_point`` finds where two logs stop agreeing: the end of the newest epoch both hold
with the same start offset, clipped to both logs' ends (RocketMQ 5's EpochFileCache idea).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence

from runtime.errors import StoreError
from runtime.ha.protocol import Epoch
from runtime.store.configfile import write_atomic

FILE_NAME = "epoch"


class EpochFile:
    """The epoch entries of one store, in memory and on disk (see the module docstring)."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, FILE_NAME)
        self.entries: list[Epoch] = _load(self.path)

    @property
    def last(self) -> Epoch | None:
        return self.entries[-1] if self.entries else None

    @property
    def last_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else 0

    def append(self, epoch: int, start: int, node: int) -> None:
        """A new master's term: ``epoch`` must exceed the last one, ``start`` not go back."""
        last = self.last
        if last is not None and (epoch <= last.epoch or start < last.start):
            raise ValueError(f"epoch ({epoch}, {start}) does not follow {last}")
        self._write([*self.entries, Epoch(epoch, start, node)])

    def replace(self, entries: Iterable[Epoch]) -> None:
        """Mirror a master's entries (a slave after ACCEPT)."""
        new = list(entries)
        _check(new, self.path)
        if new != self.entries:
            self._write(new)

    def truncate(self, offset: int) -> None:
        """Drop entries that start after ``offset`` (the log was cut there)."""
        kept = [e for e in self.entries if e.start <= offset]
        if kept != self.entries:
            self._write(kept)

    def _write(self, entries: list[Epoch]) -> None:
        text = "".join(f"{e.epoch} {e.start} {e.node}\n" for e in entries)
        write_atomic(self.path, text.encode())
        self.entries = entries


def _load(path: str) -> list[Epoch]:
    try:
        with open(path, encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(path, f"cannot read the epoch file: {exc}") from exc
    entries = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise StoreError(path, f"line {number}: not integers: {line!r}") from None
        if len(values) == 2:
            values.append(-1)
        if len(values) != 3 or values[0] < 0 or values[1] < 0:
            raise StoreError(path, f"line {number}: want 'epoch startOffset nodeId': {line!r}")
        entries.append(Epoch(*values))
    _check(entries, path)
    return entries


def _check(entries: Sequence[Epoch], path: str) -> None:
    for prev, cur in itertools.pairwise(entries):
        if cur.epoch <= prev.epoch or cur.start < prev.start:
            raise StoreError(path, f"epoch entries out of order: {prev} then {cur}")


def _ranges(entries: Sequence[Epoch], end: int) -> dict[int, tuple[int, int]]:
    """epoch -> [start, stop) of its data in a log ending at ``end`` (epoch 0 implicit)."""
    full = list(entries)
    if not full or full[0].epoch != 0:
        full.insert(0, Epoch(0, 0))
    out = {}
    for i, e in enumerate(full):
        stop = full[i + 1].start if i + 1 < len(full) else end
        out[e.epoch] = (e.start, min(max(stop, e.start), max(end, e.start)))
    return out


def consistent_point(
    master: Sequence[Epoch], master_end: int, slave: Sequence[Epoch], slave_end: int
) -> int:
    """The largest offset up to which the slave's log is the master's (see the module doc)."""
    if slave_end <= 0:
        return 0
    mine = _ranges(master, master_end)
    theirs = _ranges(slave, slave_end)
    for epoch in sorted(theirs, reverse=True):
        s_start, s_stop = theirs[epoch]
        m = mine.get(epoch)
        if m is None or m[0] != s_start or s_start >= slave_end:
            continue
        return min(s_stop, m[1])
    return 0
