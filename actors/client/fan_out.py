"""``fan_out``: one blocking lookup per item, many at once when there are many.

A rebalancer that looks at thousands of topics (a proxy's lite group) or starts thousands of
queues asks the brokers something for each: one at a time, both processes mostly wait for each
other. The caller still waits for all of them, so rebalances stay serialised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import gevent.pool

K = TypeVar("K")
V = TypeVar("V")

IN_FLIGHT = 32
"""Lookups at once, when there are more than ``ONE_BY_ONE``."""

ONE_BY_ONE = 16
"""Up to this many items are looked up one at a time, in order (a usual rebalance: a few)."""


def fan_out(items: Iterable[K], lookup: Callable[[K], V]) -> dict[K, V]:
    """``{item: lookup(item)}``: one by one up to ``ONE_BY_ONE`` items, else ``IN_FLIGHT`` at
    once in greenlets of the caller's hub. ``lookup`` handles the failures it expects; anything
    it raises is raised here once all have ended (the first one)."""
    todo = list(items)
    found: dict[K, V] = {}
    failures: list[Exception] = []

    def one(item: K) -> None:
        try:
            found[item] = lookup(item)
        except Exception as exc:  # raised below, in the caller
            failures.append(exc)

    if len(todo) <= ONE_BY_ONE:
        for item in todo:
            one(item)
    else:
        pool = gevent.pool.Pool(IN_FLIGHT)
        try:
            for item in todo:
                pool.spawn(one, item)
            pool.join()
        finally:
            pool.kill()  # (the caller stopped waiting: the lookups stop with it)
    if failures:
        raise failures[0]
    return found
