"""What the controller remembers across its restarts: per broker group the term (epoch), its
master, the last master, the in-sync set and the members' ids and addresses
(``<controllerStorePath>/controller.json``, RocketMQ's ``controllerStorePath``).

A controller that forgot them could not elect anyone after a restart: it only adopts a broker
that still runs as master, so a group whose master died while the controller was down (or
restarted, configured as a slave) kept no master at all (chaos R27). With them it elects from
the in-sync set it acknowledged, or the last master, as before the restart.

Durability point: ``ControllerStore.save`` returns once the file is replaced and fsync'd; the
controller saves a change before its reply carries it (an in-sync set, a term), so a restarted
controller never knows less than its brokers were told.

    store = ControllerStore(path)        (path None: nothing kept)
    store.load() -> {group: GroupRecord}
    store.save({group: GroupRecord})     (writes only when something changed)
"""

from __future__ import annotations

import os

import msgspec

from runtime.actor import offload
from runtime.store.configfile import read_json, write_json

FILE_NAME = "controller.json"


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


class _File(msgspec.Struct, frozen=True):
    groups: dict[str, GroupRecord] = {}


class ControllerStore:
    """See the module docstring."""

    def __init__(self, directory: str | None) -> None:
        self.path = None if directory is None else os.path.join(directory, FILE_NAME)
        self._saved: dict[str, GroupRecord] = {}

    def load(self) -> dict[str, GroupRecord]:
        """The groups the file holds ({} without one); a file that cannot be read raises
        StoreError naming it (the controller must not start forgetting what it decided)."""
        if self.path is None:
            return {}
        loaded = read_json(self.path, _File)
        self._saved = dict(loaded.groups) if loaded is not None else {}
        return dict(self._saved)

    def save(self, groups: dict[str, GroupRecord]) -> bool:
        """Write ``groups`` when they differ from what was saved last; True when written."""
        if self.path is None or groups == self._saved:
            return False
        offload(write_json, self.path, _File(groups))
        self._saved = dict(groups)
        return True
