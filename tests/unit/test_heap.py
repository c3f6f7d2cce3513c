"""runtime.heap: the server process's collector settings after start-up."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runtime import heap

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def restored() -> Iterator[None]:
    """This test process's collector as it was, afterwards."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored")
def test_settle_collects_start_up_garbage_and_raises_the_young_threshold() -> None:
    # Given a process with start-up garbage: a reference cycle nobody holds
    class Node:
        def __init__(self) -> None:
            self.other: object = self

    garbage = weakref.ref(Node())
    assert garbage() is not None
    # When the process settles
    heap.settle()
    # Then the cycle was collected, nothing was frozen, and the young generation collects
    # once YOUNG_THRESHOLD more objects are alive
    assert garbage() is None
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
