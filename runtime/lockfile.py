"""An exclusive, process-level lock on a data directory (``<dir>/process.lock``, fcntl.flock).

Each store also locks its own root (``runtime.store.lockfile.StoreLock``, ``<root>/lock``);
this one guards the whole ``--data-dir`` of a process, so a second process is refused before
it binds or opens anything.

The lock dies with the process, so a kill -9 never leaves a stale lock behind; the pid written
into the file is only there to name the holder in the error message. ``lock_exclusive`` /
``unlock`` are the primitive both locks use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib

from runtime.errors import StoreError


def lock_exclusive(path: str, problem: str) -> int:
    """Open ``path`` and take an exclusive ``flock`` on it without waiting; write our pid into
    it. Returns the descriptor (the lock lives as long as it is open, and dies with the
    process). Held by another process: StoreError(path, ``problem`` + the holder's pid)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StoreError(path, problem.format(pid=holder)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def unlock(fd: int) -> None:
    """Release a lock taken by ``lock_exclusive`` and close its descriptor."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class DirLock:
    """Holds ``<directory>/process.lock`` until ``release()``; a second holder gets StoreError."""

    def __init__(self, directory: pathlib.Path | str, *, what: str = "data directory") -> None:
        self.directory = pathlib.Path(directory)
        self.path = self.directory / "process.lock"
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> DirLock:
        """Create the directory if needed and lock it. StoreError when another process holds
        it, or when it cannot be created or locked (a bad storePathRootDir / --data-dir)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = lock_exclusive(
                str(self.path),
                f"{self.what} {self.directory} is in use by another process (pid {{pid}}); "
                "stop it or choose another --data-dir",
            )
        except OSError as exc:
            raise StoreError(
                str(self.directory), f"cannot use it as the {self.what}: {exc.strerror or exc}"
            ) from None
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            unlock(fd)

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()
