"""Small JSON files persisted atomically: write ``<name>.tmp``, fsync, rename, fsync the directory.

Used for topics, consumer offsets, the checkpoint and anything else under ``config/``. A reader
never sees a half-written file: it sees the old version or the new one.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import msgspec

from runtime.errors import ProtocolError, StoreError
from runtime.store.storage import fsync_dir


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably (the new file gets ``mode``)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    # One temporary name per writer thread: two threads saving the same file (a background
    # checkpoint and the final one at shutdown) must not rename each other's half-written file.
    tmp = f"{path}.tmp{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def write_json(path: str, obj: Any) -> None:
    write_atomic(path, msgspec.json.format(msgspec.json.encode(obj), indent=2))


def read_bytes(path: str) -> bytes | None:
    """The file as stored, or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def replace_checked(path: str, body: bytes, shape: Any) -> None:
    """``body`` (another node's copy of the file: a slave's of its master's) over the file at
    ``path`` when it differs, atomically. ProtocolError when it does not decode as ``shape``."""
    try:
        msgspec.json.decode(body, type=shape)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
        raise ProtocolError(f"{os.path.basename(path)} body: {exc}") from None
    if read_bytes(path) != body:
        write_atomic(path, body)


def read_json(path: str, type_: Any = Any) -> Any:
    """The decoded file, or None when it does not exist. A file that exists but cannot be
    decoded is corruption: StoreError names it (atomic writes never leave one behind)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    try:
        return msgspec.json.decode(raw, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
        raise StoreError(path, f"cannot decode: {exc}") from exc
