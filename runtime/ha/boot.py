"""Did the machine restart since a store was last used? (A power loss's sign.)

    power_cut_suspected(store_root, unclean) -> bool    (once per node start)
    clear(store_root)

A store whose last run stopped uncleanly (its abort marker) on an earlier boot of the machine
may have lost what was not fsync'd (ASYNC_FLUSH): a process killed with the machine up loses
nothing, since its writes are in the page cache. Each start records the boot it ran on in the
store's ``bootid`` file (Linux: ``/proc/sys/kernel/random/boot_id``; elsewhere, and when the
file cannot be read, every unclean stop counts as a power loss).
"""

from __future__ import annotations

import contextlib
import os

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
FILE = "bootid"
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


def power_cut_suspected(store_root: str, unclean: bool, boot: str | None = None) -> bool:
    """Whether the store at ``store_root`` may have lost unsynced writes: its last run stopped
    uncleanly on another boot than this one (``boot``, default the current). Records this
    boot in the store (replacing the file atomically) for the next start."""
    boot = boot if boot is not None else current_boot()
    path = os.path.join(store_root, FILE)
    try:
        with open(path, encoding="ascii") as fh:
            previous: str | None = fh.read().strip() or None
    except OSError:
        previous = None
    if boot is not None:
        tmp = path + ".tmp"
        try:
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write(boot + "\n")
            os.replace(tmp, path)
        except OSError:
            pass  # (the next start then counts an unclean stop as a power loss: safe)
    marker = os.path.join(store_root, MARKER)
    if unclean and (boot is None or previous is None or previous != boot):
        try:
            with open(marker, "w", encoding="ascii") as fh:
                fh.write("the store stopped uncleanly before the machine restarted\n")
        except OSError:
            return True
    return os.path.exists(marker)


def clear(store_root: str) -> None:
    """The node's log is the group's again (a master accepted it, or it won a new term)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(store_root, MARKER))
