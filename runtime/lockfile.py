"""An exclusive, process-level lock on a data directory (``<dir>/process.lock``, fcntl.flock).

Each store also locks its own root (``runtime.store.lockfile.StoreLock``, ``<root>/lock``);
this one guards the whole ``--data-dir`` of a process, so a second process is refused before
it binds or opens anything.

The lock dies with the process, so a kill -9 never leaves a stale lock behind; the pid written
into the file is only there to name the holder in the error message.
"""

from __future__ import annotations

import fcntl
import os
import pathlib

from runtime.errors import StoreError


class DirLock:
    """Holds ``<directory>/lock`` until ``release()``; a second holder gets StoreError."""

    def __init__(self, directory: pathlib.Path | str, *, what: str = "data directory") -> None:
        self.directory = pathlib.Path(directory)
        self.path = self.directory / "process.lock"
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> DirLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                str(self.path),
                f"{self.what} {self.directory} is in use by another process (pid {holder}); "
                "stop it or choose another --data-dir",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()
