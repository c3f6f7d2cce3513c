"""Which producer's completions the running greenlet is working through: its async sends'
futures and callbacks, its ``request_async`` replies' futures and callbacks.

A ``flush`` or a waiting ``shutdown`` there would wait for the very completion that calls it,
or for the ones queued behind it on the same callback thread. The mark is gevent's local, not
``threading``'s: per greenlet whether or not the program was patched before this module was
imported (in a patched program the completions run on worker greenlets, one each).
"""

from __future__ import annotations

import gevent.local

_local = gevent.local.local()


def enter(owner: object) -> object:
    """Mark this greenlet as completing for ``owner``; returns what ``leave`` restores."""
    previous = getattr(_local, "owner", None)
    _local.owner = owner
    return previous


def leave(previous: object) -> None:
    _local.owner = previous


def running_for(owner: object) -> bool:
    """Whether this greenlet is inside one of ``owner``'s completions."""
    return getattr(_local, "owner", None) is owner
