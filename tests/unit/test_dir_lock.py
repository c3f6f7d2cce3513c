"""The data directory's process lock (``runtime.lockfile.DirLock``): one holder, and a directory
that cannot be used is a StoreError naming it, never a raw OSError."""

from __future__ import annotations

import pathlib

import pytest

from runtime.errors import StoreError
from runtime.lockfile import DirLock


def test_a_second_holder_is_refused_naming_the_directory(tmp_path: pathlib.Path) -> None:
    with (
        DirLock(tmp_path / "data"),
        pytest.raises(StoreError, match="in use by another process"),
    ):
        DirLock(tmp_path / "data").acquire()


def test_a_directory_that_cannot_be_created_is_a_store_error(tmp_path: pathlib.Path) -> None:
    # Given a data directory below a regular file
    blocker = tmp_path / "file"
    blocker.write_text("x")
    # When it is locked, Then a StoreError names it and says why
    with pytest.raises(StoreError, match="cannot use it as the data directory") as refused:
        DirLock(blocker / "store").acquire()
    assert refused.value.path == str(blocker / "store")
