"""The garbage collector of a server process, set once it has started (``settle``).

CPython collects its youngest generation each time 700 more tracked objects are alive than at
the last collection, and its oldest when a quarter as many objects as it holds have been
promoted into it since. A broker serving pipelined requests keeps each one's objects
(greenlets, turns, futures, frames) alive across a few young collections: they are promoted,
die there by reference counting, and bring the oldest generation's collection every ~0.4 s,
walking every object of the process for 20 to 50 ms on this machine while every connection
waits. Those collections found almost nothing to free (20 objects in a 5 s run): the
broker's objects do not form cycles.

``settle`` collects what start-up left and raises the young threshold, so that the objects of
requests in flight die before a collection promotes them. It does not ``gc.freeze()``: objects
frozen at start-up that later became cyclic garbage (a recovered queue's actor that retires,
a replaced role's subtree) would never be freed, and the threshold alone removed the
collections. Measured in docs/benchmarks.md, "Session 19".
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Tracked objects alive beyond the last collection that start the next young collection
(CPython: 700). A young collection walks only the young objects still alive, so it costs no
more for being rarer; cyclic garbage waits longer, at most this many objects."""


def settle() -> None:
    """Collect once, then raise the young threshold (after start-up)."""
    gc.collect()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
