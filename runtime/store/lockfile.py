"""The store's process lock (``<root>/lock``) and unclean-shutdown marker (``<root>/abort``).

The lock is ``fcntl.flock`` on an open descriptor: the kernel drops it when the process dies,
so a crashed broker never leaves a stale lock, while a second live process on the same store
gets a StoreError naming the path and the holder's pid. ``abort`` exists while a store is open;
finding it at start means the last run did not shut down cleanly.
"""

from __future__ import annotations

import contextlib
import os

from runtime.lockfile import lock_exclusive, unlock
from runtime.store.storage import fsync_dir


class StoreLock:
    """An exclusive lock on a store root, held until ``release``."""

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self.path = os.path.join(root, "lock")
        self._fd: int | None = lock_exclusive(
            self.path, "store is locked by another process (pid {pid})"
        )

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            unlock(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def abort_path(root: str) -> str:
    return os.path.join(root, "abort")


def abort_exists(root: str) -> bool:
    return os.path.exists(abort_path(root))


def create_abort(root: str) -> None:
    with open(abort_path(root), "wb"):
        pass
    fsync_dir(root)


def remove_abort(root: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(abort_path(root))
    fsync_dir(root)
