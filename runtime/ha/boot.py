"""Did the machine restart since a store was last used? (A power loss's sign.)

    power_cut_suspected(store_root, unclean, sync_flush=...) -> bool    (once per node start)
    power_cut_pending(store_root, unclean) -> bool    (the same, read only)
    clear(store_root)

A store whose last run stopped uncleanly (its abort marker) on an earlier boot of the machine
may have lost what was not fsync'd (ASYNC_FLUSH: a SYNC_FLUSH run fsyncs before it acknowledges,
as a master and as a slave, and is not suspected): a process killed with the machine up loses
nothing, since its writes are in the page cache. Each start records the boot it ran on in the
store's ``bootid`` file (Linux: ``/proc/sys/kernel/random/boot_id``; elsewhere, and when the
file cannot be read, every unclean stop counts as a power loss).
"""

from __future__ import annotations

import contextlib
import os

from runtime.store.configfile import write_atomic

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
FILE = "bootid"
SYNC_FLUSH = "sync_flush"
"""Said in ``FILE`` after the boot id by a run under SYNC_FLUSH."""
MARKER = "powercut"
"""Kept in the store from a suspected power loss until the node holds a log a master
accepted, or was elected for a new term (``clear``): a restart or a rebuild of the node
meanwhile (its store then stops cleanly) must not forget it."""


def current_boot() -> str | None:
    """This boot's id (None where there is none)."""
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _read(path: str) -> tuple[str | None, bool]:
    """The boot id a start recorded and whether that run acknowledged only fsync'd records."""
    try:
        with open(path, encoding="ascii") as fh:
            lines = fh.read().split()
    except (OSError, ValueError):
        return None, False
    return (lines[0] if lines else None), SYNC_FLUSH in lines[1:]


def power_cut_suspected(
    store_root: str, unclean: bool, boot: str | None = None, sync_flush: bool = False
) -> bool:
    """Whether the store at ``store_root`` may have lost what it acknowledged: its last run
    stopped uncleanly on another boot than this one (``boot``, default the current) and
    acknowledged records before they were fsync'd (ASYNC_FLUSH: a SYNC_FLUSH run acks, as a
    master and as a slave, only what is on disk). Records this boot and ``sync_flush`` (this
    run's mode) in the store for the next start, only once the marker, if due, is on disk: a
    stop in between must not forget the suspicion."""
    boot = boot if boot is not None else current_boot()
    path = os.path.join(store_root, FILE)
    marker = os.path.join(store_root, MARKER)
    if _lost_since(store_root, unclean, boot):
        try:
            write_atomic(marker, b"the store stopped uncleanly before the machine restarted\n")
        except OSError:
            return True  # (the boot is not recorded either: the next start suspects again)
    if boot is not None:  # (if this fails, the next start counts an unclean stop: safe)
        with contextlib.suppress(OSError):
            write_atomic(path, (boot + "\n" + (SYNC_FLUSH + "\n" if sync_flush else "")).encode())
    return os.path.exists(marker)


def power_cut_pending(store_root: str, unclean: bool, boot: str | None = None) -> bool:
    """What ``power_cut_suspected`` says (or said) of this start, without recording anything:
    the marker is there, or the store stopped uncleanly (``unclean``) on another boot than this
    one (``boot``, default the current) after a run that acknowledged unsynced records. For
    readers that may run before or after the node records its boot."""
    if os.path.exists(os.path.join(store_root, MARKER)):
        return True
    return _lost_since(store_root, unclean, boot if boot is not None else current_boot())


def _lost_since(store_root: str, unclean: bool, boot: str | None) -> bool:
    """The last run stopped uncleanly on another boot than ``boot`` (or either is unknown)
    and acknowledged records before they were fsync'd (its ``FILE`` says no SYNC_FLUSH)."""
    previous, durable = _read(os.path.join(store_root, FILE))
    return unclean and not durable and (boot is None or previous is None or previous != boot)


def clear(store_root: str) -> None:
    """The node's log is the group's again (a master accepted it, or it won a new term)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(store_root, MARKER))
