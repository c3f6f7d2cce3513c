"""What the controller remembers across its restarts: per broker group the term (epoch), its
master, the last master, the in-sync set and the members' ids and addresses (RocketMQ's
``controllerStorePath``).

A controller that forgot them could not elect anyone after a restart: it only adopts a broker
that still runs as master, so a group whose master died while the controller was down (or
restarted, configured as a slave) kept no master at all (chaos R27). With them it elects from
the in-sync set it acknowledged, or the last master, as before the restart.

Files, in the directory given (locked while a controller uses it: ``controller.lock``; two
controllers sharing one would restore each other's groups): ``controller.json`` (a snapshot:
every group's record and the sequence number of the last change it holds) and ``controller.log``
(one JSON line per change since: a group's whole record, or its removal, with the next sequence
number). A change costs one short line, not a rewrite of every group: a flood of heartbeats
naming new groups wrote the whole table per group (22 GB for 20,000, the controller's heartbeats
timed out meanwhile). Once the log holds more lines than ``COMPACT_MIN`` and twice the groups,
the snapshot is rewritten (atomically) and the log emptied; lines a snapshot already holds are
skipped when the log is replayed (a crash between the two writes), and a torn last line (a crash
during an append) is ignored.

Durability point: ``flush`` returns once every staged line is appended and fsync'd. The
controller answers a message that changed something (or that came while a change was being
written) only after the flush that holds it, so a restarted controller never knows less than
its brokers were told; one flush covers every change staged meanwhile (group commit).

    store = ControllerStore(directory)   (None: nothing kept)
    store.load() -> {group: GroupRecord}
    store.stage(group, record | None)    (None: the group was forgotten; unchanged: nothing)
    store.staged -> bool; store.flush()  (blocking: call it from a greenlet of its own)
"""

from __future__ import annotations

import os

import msgspec
from gevent.threadpool import ThreadPool

from runtime.actor import offload
from runtime.errors import StoreError
from runtime.lockfile import lock_exclusive, unlock
from runtime.store.configfile import read_json, write_atomic, write_json
from runtime.store.storage import fsync_dir

SNAPSHOT = "controller.json"
LOG = "controller.log"
LOCK = "controller.lock"
COMPACT_MIN = 1000


class MemberRecord(msgspec.Struct, frozen=True):
    addr: str = ""
    ha_addr: str = ""


class GroupRecord(msgspec.Struct, frozen=True):
    cluster: str = ""
    epoch: int = 0
    master: int | None = None
    last_master: int | None = None
    """The master of ``epoch`` (kept when its lease is lost: it holds everything it
    acknowledged, so it may be elected again)."""
    isr: tuple[int, ...] = ()
    isr_epoch: int = 0
    isr_known: bool = False
    sync: bool = False
    members: dict[int, MemberRecord] = {}
    claimed: bool = True
    """The master of ``epoch`` ran it (heartbeated claiming it). Until then the term may never
    have begun, and the previous term's in-sync set and master stay electable."""
    prev_epoch: int = 0
    prev_isr: tuple[int, ...] = ()
    prev_master: int | None = None
    confirmed: int = 0
    """The highest offset a master of the group reported acknowledged (saved at most every
    ``election.CONFIRMED_SAVE_S``): nobody whose log ends before it is elected."""


class _Snapshot(msgspec.Struct, frozen=True):
    seq: int = 0
    groups: dict[str, GroupRecord] = {}


class _Line(msgspec.Struct, frozen=True):
    seq: int
    group: str
    record: GroupRecord | None = None


_encode_line = msgspec.json.Encoder().encode
_decode_line = msgspec.json.Decoder(_Line).decode


class ControllerStore:
    """See the module docstring."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._known: dict[str, GroupRecord] = {}
        self._staged: list[bytes] = []
        self._seq = 0
        self._log_lines = 0
        self._lock: int | None = None
        self._pool: ThreadPool | None = None
        """Its own thread for the writes: in the hub's pool they queued behind other work (ten
        compressed registrations being decoded held every thread for 20 s, and the
        controller's heartbeats timed out meanwhile)."""

    @property
    def staged(self) -> bool:
        return bool(self._staged)

    def load(self, *, lock: bool = True) -> dict[str, GroupRecord]:
        """The groups the files hold ({} without them); a file that cannot be read raises
        StoreError naming it (the controller must not start forgetting what it decided).
        ``lock``: take the directory (a controller; tools reading it pass False)."""
        if self.directory is None:
            return {}
        if lock and self._lock is None:
            os.makedirs(self.directory, exist_ok=True)
            self._lock = lock_exclusive(
                os.path.join(self.directory, LOCK),
                "another controller (pid {pid}) keeps its decisions here: give each its own "
                "controllerStorePath",
            )
        try:
            return self._read(self.directory)
        except BaseException:
            self.close()
            raise

    def _read(self, directory: str) -> dict[str, GroupRecord]:
        snap = read_json(os.path.join(directory, SNAPSHOT), _Snapshot) or _Snapshot()
        groups, self._seq = dict(snap.groups), snap.seq
        path = os.path.join(directory, LOG)
        try:
            with open(path, "rb") as fh:
                lines = fh.read().split(b"\n")
        except FileNotFoundError:
            lines = []
        last = max((i for i, raw in enumerate(lines) if raw.strip()), default=-1)
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                line = _decode_line(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
                if i != last:
                    raise StoreError(path, f"line {i + 1} cannot be decoded: {exc}") from exc
                # torn by a crash during its append (never acknowledged): cut it off, or the
                # next append would be glued to it
                write_atomic(path, b"".join(raw + b"\n" for raw in lines[:i] if raw.strip()))
                break
            self._log_lines += 1
            if line.seq <= self._seq:
                continue  # (the snapshot holds it)
            self._seq = line.seq
            if line.record is None:
                groups.pop(line.group, None)
            else:
                groups[line.group] = line.record
        self._known = dict(groups)
        return groups

    def close(self) -> None:
        """Release the directory (another controller may use it then) and the write thread."""
        if self._pool is not None:
            self._pool.kill()
            self._pool = None
        if self._lock is not None:
            unlock(self._lock)
            self._lock = None

    def stage(self, group: str, record: GroupRecord | None) -> None:
        """Stage ``group``'s new record (None: forgotten) when it differs from the last one."""
        if self.directory is None or self._known.get(group) == record:
            return
        if record is None:
            self._known.pop(group, None)
        else:
            self._known[group] = record
        self._seq += 1
        self._staged.append(_encode_line(_Line(self._seq, group, record)) + b"\n")

    def flush(self) -> None:
        """Append and fsync every staged line (then compact when the log is long)."""
        lines, self._staged = self._staged, []
        if not lines or self.directory is None:
            return
        if self._pool is None:
            self._pool = ThreadPool(1)
        pool = self._pool
        offload(_append, os.path.join(self.directory, LOG), b"".join(lines), pool=pool)
        self._log_lines += len(lines)
        if self._log_lines > max(COMPACT_MIN, 2 * len(self._known)):
            snapshot = _Snapshot(self._seq, dict(self._known))
            offload(write_json, os.path.join(self.directory, SNAPSHOT), snapshot, pool=pool)
            offload(write_atomic, os.path.join(self.directory, LOG), b"", pool=pool)
            self._log_lines = 0


def _append(path: str, data: bytes) -> None:
    """Append ``data`` and fsync (the directory too when the file is new)."""
    new = not os.path.exists(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(os.path.dirname(path) or ".")
