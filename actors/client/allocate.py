"""Queue allocation for clustering consumers: RocketMQ's AllocateMessageQueueAveragely.

Every member of a group computes the same answer from the same inputs (sorted queues, sorted
client ids), so no coordination is needed: with ``q`` queues and ``c`` clients, client ``i``
(by sorted id) gets a contiguous block of ``q // c`` queues, the first ``q % c`` clients one
more; with more clients than queues, the last ``c - q`` clients get nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

Q = TypeVar("Q")


def allocate_averagely(client_id: str, queues: Sequence[Q], client_ids: Sequence[str]) -> list[Q]:
    """The queues ``client_id`` consumes; [] when it is not (yet) in ``client_ids``."""
    mqs = sorted(queues)  # type: ignore[type-var]
    cids = sorted(set(client_ids))
    if not mqs or client_id not in cids:
        return []
    index = cids.index(client_id)
    q, c = len(mqs), len(cids)
    mod = q % c
    if q <= c:
        size = 1
    elif mod > 0 and index < mod:
        size = q // c + 1
    else:
        size = q // c
    start = index * size if mod > 0 and index < mod else index * size + mod
    count = min(size, q - start)
    return [mqs[(start + i) % q] for i in range(max(count, 0))]
