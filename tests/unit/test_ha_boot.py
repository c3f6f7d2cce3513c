"""``runtime.ha.boot``: an unclean stop counts as a power loss only when the machine restarted
since the store last ran."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

from runtime.ha.boot import FILE, MARKER, clear, power_cut_suspected


def test_a_crash_with_the_machine_up_loses_nothing(tmp_path: pathlib.Path) -> None:
    root = str(tmp_path)
    assert not power_cut_suspected(root, unclean=False, boot="boot-a")  # first start
    # a process killed and restarted on the same boot: its writes were in the page cache
    assert not power_cut_suspected(root, unclean=True, boot="boot-a")


def test_an_unclean_stop_on_an_earlier_boot_is_a_power_loss(tmp_path: pathlib.Path) -> None:
    root = str(tmp_path)
    power_cut_suspected(root, unclean=False, boot="boot-a")
    assert power_cut_suspected(root, unclean=True, boot="boot-b")
    # and the file now names this boot: once the node caught up, a crash on it loses nothing
    assert (tmp_path / FILE).read_text().strip() == "boot-b"
    clear(root)
    assert not power_cut_suspected(root, unclean=True, boot="boot-b")
    # a clean stop before the reboot: nothing was lost
    assert not power_cut_suspected(root, unclean=False, boot="boot-c")


def test_without_a_record_an_unclean_stop_counts(tmp_path: pathlib.Path) -> None:
    assert power_cut_suspected(str(tmp_path), unclean=True, boot="boot-a") is True
    assert power_cut_suspected(str(tmp_path / "gone"), unclean=True, boot="boot-a") is True


def test_the_suspicion_outlives_a_restart_until_cleared(tmp_path: pathlib.Path) -> None:
    root = str(tmp_path)
    power_cut_suspected(root, unclean=False, boot="boot-a")
    assert power_cut_suspected(root, unclean=True, boot="boot-b")
    # the node rebuilt (its store closed cleanly) or restarted before it caught up: still
    assert power_cut_suspected(root, unclean=False, boot="boot-b")
    clear(root)  # a master accepted its log
    assert not power_cut_suspected(root, unclean=False, boot="boot-b")


def test_a_sync_flush_run_is_not_suspected(tmp_path: pathlib.Path) -> None:
    # A SYNC_FLUSH run acknowledges (master or slave) only what is on disk: a power loss
    # takes nothing it acknowledged
    root = str(tmp_path)
    power_cut_suspected(root, unclean=False, boot="boot-a", sync_flush=True)
    assert not power_cut_suspected(root, unclean=True, boot="boot-b", sync_flush=True)
    # the run that stopped counts, not this one's mode: an ASYNC_FLUSH run is suspected
    assert not power_cut_suspected(root, unclean=True, boot="boot-b", sync_flush=False)
    assert power_cut_suspected(root, unclean=True, boot="boot-c", sync_flush=True)


def test_a_stop_before_the_marker_is_written_does_not_forget_the_power_loss(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path)
    power_cut_suspected(root, unclean=False, boot="boot-a")
    # When writing the marker fails (or the process dies there) after a power loss
    real_open = open

    def failing_open(path: Any, *args: Any, **kw: Any) -> Any:
        if str(path).startswith(os.path.join(root, MARKER)):
            raise OSError("disk full")
        return real_open(path, *args, **kw)

    monkeypatch.setattr("builtins.open", failing_open)
    assert power_cut_suspected(root, unclean=True, boot="boot-b")
    monkeypatch.undo()
    # Then the next start on the same boot (the store again stopped uncleanly) still suspects
    assert power_cut_suspected(root, unclean=True, boot="boot-b")
