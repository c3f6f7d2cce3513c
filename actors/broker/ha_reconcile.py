"""Reconciliation: a classic master back from a power loss takes no write until it holds what
its slaves hold of its log (RELIABILITY.md §5, ASYNC_FLUSH + SYNC_MASTER: "it must reconcile
from the slave before serving"); an ASYNC_MASTER waits for them a bounded time.

    suspect_power_cut(state, root, sync_flush)   in the node's start, before its store opens
    Reconciliation(ha)           one per broker node (``HAContext.reconciliation``)
      .begin(new_epoch)          from the HAService's start (classic master)
      .joined(node)              a slave was accepted (its link fetched what it held past the end)
      .tick()                    the HAService's tick: re-read the wait list, warn, finish
      .persist(in_sync)          a master's in-sync set changed (before its acks count)

Under ASYNC_FLUSH a power loss takes what the master had written and not fsync'd; a
SYNC_MASTER acknowledged some of it once a slave held it, an ASYNC_MASTER acknowledged it
alone, and its slaves hold most of it. On its first start after such a loss
(``runtime.ha.boot``: the store stopped uncleanly on an earlier boot of the machine) the master
waits for every slave that was in sync (``runtime.ha.in_sync_file``, written before a joining
slave's acks count). Meanwhile ``HAState.reconciling``: sends get SERVICE_NOT_AVAILABLE, the
master registers with its topics read-only (producers go elsewhere; its slaves still find its
HA address), and a slave that holds more of the master's term is sent FETCH: the master
appends what it sends (``HAConnection``) before answering its HELLO. Once every listed slave
is back (or taken off the list by hand), the master saves the in-sync set, lowers consumer
offsets past its (now final) queue ends (``ClampOffsets``), starts a new epoch (so a slave whose
log differs past the loss is cut back to it by the epoch rules instead of silently disagreeing
at the same offsets), clears the power-loss marker and registers as writable again.

A SYNC_MASTER waits however long it takes (its acks relied on those slaves). An ASYNC_MASTER
waits at most ``haReconcileWaitMillis`` (``HAContext.reconcile_wait_s``; 0: not at all): its
acks never waited for a slave, but fetching their copy keeps its acknowledged tail and keeps
the queue offsets of that tail from going to new messages (a consumer that had read past them
would skip those); after the wait it starts the new epoch without the missing slaves, which are
cut back to it when they return (a power loss's documented tail loss). A master whose list is
empty starts the new epoch at once. A master writes the (empty) file at a clean start when it
has none, so a missing file after a power loss means the store last ran an older version (an
upgrade): the master then waits, SYNC or ASYNC, at most ``haReconcileWaitMillis`` for the
first slave back. A slave's log is taken as the master's own (one term in
classic mode): nothing checks the records beyond their CRC.

State owned: the node ids still waited for, the set last saved. Durability point: the in-sync
file (atomic rewrite, fsync'd) before a joining slave's acks count; the epoch file before the
first write after the loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from loguru import logger

from actors.broker.ha_messages import NewEpoch
from actors.broker.messages import ClampOffsets
from runtime.actor import offload
from runtime.ha import boot, in_sync_file
from runtime.ha.state import HAState, Role
from runtime.store.lockfile import abort_exists

if TYPE_CHECKING:
    from actors.broker.ha_service import HAContext

WARN_EVERY_S = 60.0
RELOAD_EVERY_S = 1.0


def suspect_power_cut(state: HAState, root: str, sync_flush: bool) -> None:
    """A classic master whose store stopped uncleanly on an earlier boot of the machine
    (``runtime.ha.boot``) reconciles before its first write (``HAState.reconciling``). Called
    before the store opens (its abort marker is the last run's) and before any request is
    served, so no write lands before the HAService decides; it fsyncs (run it off the hub)."""
    if state.controller_mode or state.role is not Role.MASTER or state.power_cut is not None:
        return
    state.power_cut = boot.power_cut_suspected(root, abort_exists(root), None, sync_flush)
    state.reconciling = state.power_cut


class Reconciliation:
    """See the module docstring."""

    def __init__(self, ha: HAContext) -> None:
        self.ha = ha
        self.waiting: set[int] = set()
        self._saved: frozenset[int] | None = None
        self._current: frozenset[int] = frozenset()
        self._leaving: dict[int, int] = {}
        """Slaves that left the in-sync set -> the log's end then: kept in the file until the
        master's log is fsync'd that far (records only they and the page cache held)."""
        self._begun = False
        self._any_slave = False
        """No in-sync file (an upgrade): the first slave back ends the wait."""
        self._deadline: float | None = None
        """When waiting ends anyway (an ASYNC_MASTER, or no in-sync file; None: a SYNC_MASTER
        waits for its listed slaves for good)."""
        self._new_epoch: Callable[[NewEpoch], None] | None = None
        self._warned_at = float("-inf")
        self._loaded_at = float("-inf")
        self._save_failed_at = float("-inf")

    @property
    def _root(self) -> str:
        return self.ha.store.require_open().settings.root

    def begin(self, new_epoch: Callable[[NewEpoch], None]) -> None:
        """The HAService started (``new_epoch``: its way to start a term). A master that
        ``suspect_power_cut`` set reconciling waits for its listed slaves, or, with none
        listed, starts a new epoch at once."""
        self._new_epoch = new_epoch
        state = self.ha.state
        root = self._root
        if not state.reconciling:
            if not state.controller_mode and not offload(in_sync_file.exists, root):
                self._save(frozenset())  # (from now on a missing file means an older version)
            return
        if self._begun:
            # a restart of the HAService: one that failed while finishing (its new epoch or
            # the marker could not be written) left nothing to wait for and would never finish
            if not self.waiting and not self._any_slave:
                self._finish("the HAService restarted while it finished")
            return
        self._begun = True
        wait_s = None if state.sync else self.ha.reconcile_wait_s
        if wait_s != 0 and not offload(in_sync_file.exists, root):
            self._wait_for_any_slave(root)
            return
        listed = offload(in_sync_file.read, root) if wait_s != 0 else frozenset()
        if listed is None:
            logger.error(
                "{}: cannot read {}: which slaves its acks counted is unknown; waiting for the "
                "first slave back, as without the file",
                self.ha.service,
                in_sync_file.path_of(root),
            )
            self._wait_for_any_slave(root)
            return
        self.waiting = set(listed - {state.node_id})
        if not self.waiting:
            self._finish("no slave was in sync before it (or haReconcileWaitMillis is 0)")
            return
        now = time.monotonic()
        self._deadline = None if wait_s is None else now + wait_s
        logger.warning(
            "{}: the store stopped uncleanly before the machine restarted (a power loss?): it "
            "may lack records its slaves hold. No write is taken until slaves {} are back and "
            "it holds what they hold of its log{} (edit {} to stop waiting for one: what only "
            "it holds is then lost)",
            self.ha.service,
            sorted(self.waiting),
            "" if wait_s is None else f", for at most {wait_s:g}s (haReconcileWaitMillis)",
            in_sync_file.path_of(root),
        )
        self._warned_at = now

    def _wait_for_any_slave(self, root: str) -> None:
        """No in-sync file: the store last ran a version that kept none (the first power loss
        after an upgrade). Which slaves its acks counted is unknown: the first slave back is
        reconciled from, waiting at most ``haReconcileWaitMillis`` (a SYNC_MASTER too)."""
        self._any_slave = True
        wait_s = self.ha.reconcile_wait_s
        now = time.monotonic()
        self._deadline = now + wait_s
        logger.warning(
            "{}: the store stopped uncleanly before the machine restarted (a power loss?) and "
            "has no {} file (its last run kept none: an upgrade): no write is taken until a "
            "slave is back and it holds what that slave holds of its log, for at most {:g}s "
            "(haReconcileWaitMillis)",
            self.ha.service,
            in_sync_file.path_of(root),
            wait_s,
        )
        self._warned_at = now

    def joined(self, node: int) -> None:
        """Slave ``node`` was accepted: it holds nothing of this master's log past its end."""
        if self._any_slave and self.ha.state.reconciling:
            self._finish(f"slave {node} is back (no in-sync file: the first slave back)")
            return
        if not self.ha.state.reconciling or node not in self.waiting:
            return
        self.waiting.discard(node)
        logger.info("{}: slave {} is back; waiting for {}", self.ha.service, node, self.waiting)
        if not self.waiting:
            self._finish("every slave in sync before the loss is back")

    def tick(self) -> None:
        """Forget slaves that left once the log is fsync'd past their leaving; while
        reconciling: follow the file's list (edited by hand), warn once a minute."""
        if self._leaving:
            flushed = self.ha.store.require_open().log.segments.flushed_offset
            self._leaving = {n: end for n, end in self._leaving.items() if end > flushed}
            self._save(self._current | self._leaving.keys())
        if not self.ha.state.reconciling:
            return
        now = time.monotonic()
        if self._deadline is not None and now >= self._deadline:
            missing = "no slave" if self._any_slave else f"slaves {sorted(self.waiting)}"
            logger.warning(
                "{}: {} came back within haReconcileWaitMillis: taking writes without them; "
                "what only they held of this master's log is lost (they are cut back to it "
                "when they return)",
                self.ha.service,
                missing,
            )
            self.waiting.clear()
            self._finish("its wait for its slaves ran out")
            return
        if now - self._loaded_at >= RELOAD_EVERY_S:
            self._loaded_at = now
            listed = offload(in_sync_file.read, self._root)
            # (unreadable now: keep waiting for those listed before, not for nobody)
            dropped = self.waiting - listed if listed is not None else set()
            if dropped:
                logger.warning(
                    "{}: no longer waiting for slaves {} (taken off {}): what only they held "
                    "is lost",
                    self.ha.service,
                    sorted(dropped),
                    in_sync_file.FILE,
                )
                self.waiting -= dropped
                if not self.waiting:
                    self._finish("the slaves left to wait for were taken off the list")
                    return
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            logger.warning(
                "{}: still reconciling after a power loss: waiting for slaves {}; no write is "
                "taken (edit {} to stop waiting for one)",
                self.ha.service,
                sorted(self.waiting),
                in_sync_file.path_of(self._root),
            )

    def persist(self, in_sync: Iterable[int]) -> bool:
        """A master's in-sync set is now ``in_sync``: saved before its acks count (not while
        reconciling: the list is then what the master waits for). A slave that left
        stays listed until the log is fsync'd past the end it may have acknowledged. False:
        the file could not be saved (the caller keeps slaves it does not name out of the set)."""
        state = self.ha.state
        if state.controller_mode or state.reconciling:
            return True
        nodes = frozenset(in_sync)
        end = self.ha.store.require_open().log.write_offset
        leaving = {n: at for n, at in self._leaving.items() if n not in nodes}
        leaving.update((n, end) for n in self._current - nodes)
        if not self._save(nodes | leaving.keys()):
            return False
        self._current, self._leaving = nodes, leaving
        return True

    def _save(self, nodes: frozenset[int]) -> bool:
        if nodes == self._saved:
            return True
        try:
            offload(in_sync_file.save, self._root, nodes)
        except OSError as exc:
            now = time.monotonic()
            if now - self._save_failed_at >= WARN_EVERY_S:
                self._save_failed_at = now
                logger.error(
                    "{}: cannot save the in-sync slaves {} ({}): slaves it does not name do not "
                    "count for acknowledgements (logged once a minute)",
                    self.ha.service,
                    sorted(nodes),
                    exc,
                )
            return False
        self._saved = nodes
        return True

    def _finish(self, why: str) -> None:
        """Take writes again: a new epoch first, then the marker cleared, then registered."""
        ha, state = self.ha, self.ha.state
        # (slaves that joined meanwhile count for acks from now on)
        if self._save(frozenset(state.in_sync)):
            self._current = frozenset(state.in_sync)
        else:  # (none counts until the HAService's next recompute saves them)
            state.in_sync = frozenset()
        # (the log's end is final now: consumer offsets past it go down to it before a new
        # message can take those queue offsets)
        ha.tell(ha.store.names.offsets, ClampOffsets())
        if self._new_epoch is not None:
            self._new_epoch(NewEpoch(ha.epochs.last_epoch + 1))
        ha.clear_power_cut()
        state.reconciling = False
        logger.warning(
            "{}: reconciled after a power loss ({}); epoch {} begins at {}: taking writes",
            ha.service,
            why,
            ha.epochs.last_epoch,
            ha.store.require_open().log.write_offset,
        )
        if ha.on_writable is not None:
            ha.on_writable()
