"""The epoch file (atomic, ordered, survives reopening) and the last common point of two logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import StoreError
from runtime.ha.epoch import EpochFile, consistent_point
from runtime.ha.protocol import Epoch

pytestmark = pytest.mark.timeout(30)


def test_entries_survive_reopening_and_stay_ordered(tmp_path: Path) -> None:
    # Given a new store's epoch file
    f = EpochFile(str(tmp_path))
    assert f.entries == [] and f.last_epoch == 0
    # When two masters' terms are appended
    f.append(1, 0, 0)
    f.append(3, 5000, 1)
    # Then a reopened file holds them, and going backwards is refused
    again = EpochFile(str(tmp_path))
    assert again.entries == [Epoch(1, 0, 0), Epoch(3, 5000, 1)]
    assert again.last_epoch == 3
    with pytest.raises(ValueError):
        again.append(3, 6000, 0)
    with pytest.raises(ValueError):
        again.append(4, 4000, 0)


def test_truncate_and_replace(tmp_path: Path) -> None:
    f = EpochFile(str(tmp_path))
    f.replace([Epoch(1, 0, 0), Epoch(2, 100, 1), Epoch(4, 900, 0)])
    # When the log is cut at 500, Then the term that started after it goes
    f.truncate(500)
    assert EpochFile(str(tmp_path)).entries == [Epoch(1, 0, 0), Epoch(2, 100, 1)]


@pytest.mark.parametrize(
    "text", ["1 0 0\nx y z\n", "2 0 0\n1 10 0\n", "1 0\n2 -5 0\n", "1 2 3 4\n"]
)
def test_a_damaged_file_is_a_store_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "epoch").write_text(text)
    with pytest.raises(StoreError, match="epoch"):
        EpochFile(str(tmp_path))


def test_two_column_lines_are_read(tmp_path: Path) -> None:
    (tmp_path / "epoch").write_text("1 0\n2 64\n")
    assert EpochFile(str(tmp_path)).entries == [Epoch(1, 0, -1), Epoch(2, 64, -1)]


E = Epoch


@pytest.mark.parametrize(
    ("master", "m_end", "slave", "s_end", "point"),
    [
        # an empty slave starts at 0
        ([E(1, 0)], 1000, [], 0, 0),
        # classic: no epochs anywhere; the slave is behind -> its own end
        ([], 1000, [], 400, 400),
        # classic: the slave is ahead of the master (master lost its tail) -> master's end
        ([], 300, [], 400, 300),
        # same single term: the slave is a prefix
        ([E(1, 0)], 1000, [E(1, 0)], 700, 700),
        # the slave was the old master and wrote past where the new term began
        ([E(1, 0), E(2, 500)], 900, [E(1, 0)], 800, 500),
        # the slave has the new term too, behind the master
        ([E(1, 0), E(2, 500)], 900, [E(1, 0), E(2, 500)], 600, 600),
        # the slave ran a term the master never saw (a zombie's) -> back to the shared term
        ([E(1, 0), E(3, 500)], 900, [E(1, 0), E(2, 450)], 800, 450),
        # pre-epoch data on the slave, the master's first term started at 200
        ([E(1, 200)], 900, [], 800, 200),
        # the same epoch number with a different start is not common
        ([E(1, 0), E(2, 300)], 900, [E(1, 0), E(2, 350)], 800, 300),
    ],
)
def test_consistent_point(
    master: list[Epoch], m_end: int, slave: list[Epoch], s_end: int, point: int
) -> None:
    assert consistent_point(master, m_end, slave, s_end) == point
