"""What the brokers' and the controller's logs say about replication membership (R15).

The runtime has no admin request for a master's in-sync set or the controller's elections, so
R15 reads them from the processes' stderr (``runtime.logs`` format: local wall time with
milliseconds, level, logger, message):

- a master's HAService: ``<node>/ha-service: in-sync slaves now [1, 3]`` whenever its in-sync
  set changes, and ``slave 3 linked from offset 0`` when a slave's link is accepted;
- a master's ControllerClient: ``master of epoch 2, lease held`` at the first lease of a term
  (slaves cannot link before it, so every in-sync line of a term follows it);
- the controller: ``controller: broker-a elects 1 (offset 123) as master for epoch 2`` and
  ``controller: broker-a in-sync set now [1] (master 0, epoch 1)``.

Pure functions over lines, so the parsing is tested without processes.
"""

from __future__ import annotations

import datetime
import pathlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) +\S+ +\S+ (.*)$")
_IN_SYNC = re.compile(r"in-sync slaves now \[([\d, ]*)\]")
_LINKED = re.compile(r"slave (\d+) linked from offset (\d+)")
_LEASE = re.compile(r"master of epoch (\d+), lease held")
_ELECTS = re.compile(r"controller: (\S+) elects (\d+) \(offset (\d+)\) as master for epoch (\d+)")
_CONTROLLER_ISR = re.compile(
    r"controller: (\S+) in-sync set now \[([\d, ]*)\] \(master (\d+), epoch (\d+)\)"
)


@dataclass(frozen=True)
class Line:
    wall: float  # seconds since the epoch (the log's local time, as time.time())
    source: str  # which log (e.g. "broker-a-0.1")
    text: str  # the message


def _ids(text: str) -> frozenset[int]:
    return frozenset(int(t) for t in text.replace(" ", "").split(",") if t)


def parse(lines: Iterable[str], source: str = "") -> list[Line]:
    """The timestamped lines (continuation lines, e.g. tracebacks, are skipped)."""
    out = []
    for raw in lines:
        m = _LINE.match(raw)
        if m is None:
            continue
        stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
        out.append(Line(stamp.timestamp(), source, m.group(2)))
    return out


def read_dir(logs: pathlib.Path, prefix: str) -> list[Line]:
    """Every saved incarnation log ``<prefix>*.log`` under ``logs``, in time order."""
    out: list[Line] = []
    for path in sorted(logs.glob(f"{prefix}*.log")):
        out += parse(path.read_text(errors="replace").splitlines(), path.stem)
    return sorted(out, key=lambda line: line.wall)


def current_in_sync(lines: Sequence[str]) -> frozenset[int] | None:
    """The in-sync set of the master term a process runs now, from its stderr so far: the last
    ``in-sync slaves now`` line after the last ``lease held`` line (none yet: empty); None
    when the process never held a lease (it is not a master)."""
    for raw in reversed(lines):
        m = _IN_SYNC.search(raw)
        if m is not None:
            return _ids(m.group(1))
        if _LEASE.search(raw) is not None:
            return frozenset()
    return None


@dataclass(frozen=True)
class Join:
    node: int
    linked_wall: float | None  # the master accepted its link
    linked_from: int | None  # at this commit-log offset (its log's end then)
    joined_wall: float | None  # first in-sync line of a master holding it


def join_of(lines: Sequence[Line], node: int, since: float) -> Join:
    """When ``node`` (started at wall time ``since``) was first linked and first in a
    master's in-sync set, from the broker logs' lines."""
    linked_wall: float | None = None
    linked_from: int | None = None
    for line in lines:
        if line.wall < since:
            continue
        m = _LINKED.search(line.text)
        if m is not None and int(m.group(1)) == node and linked_wall is None:
            linked_wall, linked_from = line.wall, int(m.group(2))
        m = _IN_SYNC.search(line.text)
        if m is not None and node in _ids(m.group(1)):
            return Join(node, linked_wall, linked_from, line.wall)
    return Join(node, linked_wall, linked_from, None)


@dataclass(frozen=True)
class Election:
    wall: float
    group: str
    node: int
    offset: int
    epoch: int


def elections(lines: Iterable[Line]) -> list[Election]:
    out = []
    for line in lines:
        m = _ELECTS.search(line.text)
        if m is not None:
            out.append(
                Election(line.wall, m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)))
            )
    return out


def controller_isr_joins(lines: Iterable[Line], node: int, since: float) -> float | None:
    """When the controller first listed ``node`` in a group's in-sync set after ``since``."""
    for line in lines:
        m = _CONTROLLER_ISR.search(line.text)
        if m is not None and line.wall >= since and node in _ids(m.group(2)):
            return line.wall
    return None
