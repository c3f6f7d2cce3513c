"""What the client benchmarks drive: the client package (imported when a benchmark starts, so
``python -m runtime bench`` patches first), message bodies, and threads run at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def _client() -> Any:
    import actors.client as client

    return client


def run_in_threads(count: int, target: Callable[[], None]) -> None:
    """``target()`` in ``count`` threads at once; returns when all returned."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _payload(size: int) -> bytes:
    return (b"actormq-bench-" * (size // 14 + 1))[:size]
