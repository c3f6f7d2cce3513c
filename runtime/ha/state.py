"""``HAState``: what one broker node's HA actors share (the master's replication condition,
``actors.broker.ha_service.HACondition``, reads it too).

One ``HAState`` per broker node, created by the node's start function and read or updated by
the HA actors (HAService, HAConnection, HAClient, ControllerClient) and the request handlers.
All of a process's actors share one hub thread, so plain attributes need no lock (as for the
StoreContext); only the actor that owns a field writes it:

- ``role``, ``epoch``, ``lease_until``, ``fenced``, ``isr_acknowledged``: ControllerClient (or
  fixed in classic mode, where the lease never expires);
- ``slaves``, ``in_sync``: HAService (master);
- ``master_link_up``, ``master_ha_addr``: HAClient (slave).

The lease: in controller mode a master accepts writes only while ``lease_valid()`` — a lease is
granted by the controller for ``lease_s`` seconds measured on this node's monotonic clock from
the moment the heartbeat that earned it was *sent*, so it always ends before the controller's
own view of it does. Classic mode (no controller) has no lease: ``lease_until`` is infinite.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

import gevent.event

INFINITE = float("inf")


class Role(enum.Enum):
    MASTER = "MASTER"
    SLAVE = "SLAVE"


class SlaveLink:
    """The master's view of one slave (by node id)."""

    __slots__ = ("acked", "connected", "urn")

    def __init__(self, urn: str, acked: int) -> None:
        self.urn = urn
        self.acked = acked
        self.connected = True


class HAState:
    """See the module docstring."""

    def __init__(
        self,
        *,
        node_id: int,
        role: Role,
        sync: bool,
        controller_mode: bool = False,
        fallbehind_max: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.role = role
        self.sync = sync
        self.controller_mode = controller_mode
        self.fallbehind_max = fallbehind_max
        self.clock = clock
        self.epoch = 0
        self.lease_until = 0.0 if controller_mode else INFINITE
        self.fenced = False
        self.slaves: dict[int, SlaveLink] = {}
        self.in_sync: frozenset[int] = frozenset()
        self.isr_acknowledged: frozenset[int] = frozenset()
        self.master_link_up = False
        self.master_addr: str | None = None
        self.master_ha_addr: str | None = None
        self._grew = gevent.event.Event()
        self._changed = gevent.event.Event()

    # -- writes ---------------------------------------------------------------------------

    def lease_valid(self) -> bool:
        return self.clock() < self.lease_until

    def accepting_writes(self) -> bool:
        """A master that may append now (classic: always; controller mode: holds a lease)."""
        return self.role is Role.MASTER and not self.fenced and self.lease_valid()

    # -- in-sync slaves (master) ------------------------------------------------------------

    def electable_acks(self) -> frozenset[int]:
        """Slaves whose acks count for SYNC_MASTER: in sync now and, in controller mode, known
        to the controller as in sync (so a PUT_OK is always on a slave it may elect)."""
        if self.controller_mode:
            return self.in_sync & self.isr_acknowledged
        return self.in_sync

    def confirm_set(self) -> frozenset[int]:
        """Slaves that must hold a record before consumers may see it: every slave in sync now
        and every slave the controller still believes in sync."""
        if self.controller_mode:
            return (self.in_sync | self.isr_acknowledged) - {self.node_id}
        return self.in_sync

    # -- log growth (wakes the HA senders) -----------------------------------------------------

    def wake(self) -> None:
        grew, self._grew = self._grew, gevent.event.Event()
        grew.set()

    def wait_grew(self, timeout: float) -> None:
        self._grew.wait(timeout)

    # -- changes of role, lease, links, in-sync set (for waiters: tests, tools) -------------

    def notify(self) -> None:
        """Something observable changed (called by the field's owner)."""
        changed, self._changed = self._changed, gevent.event.Event()
        changed.set()

    def wait_until(self, predicate: Callable[[HAState], bool], timeout: float) -> bool:
        """Block this greenlet until ``predicate(self)`` holds (True) or ``timeout`` (False)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.wait(remaining)
        return True
