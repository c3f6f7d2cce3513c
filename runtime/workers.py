"""Reusable greenlets for short jobs: ``submit(fn, *args)`` runs ``fn(*args)`` in a greenlet of its
own.

The same contract as ``gevent.spawn(fn, *args)`` (the job may block; the caller goes on at once;
the job starts on the hub's next turn), minus the cost of a new greenlet per job. That cost is
not only the greenlet object: on Python 3.11+ every new greenlet gets a fresh 16 KiB frame stack
from ``mmap`` and returns it with ``munmap`` when it dies, and on a multi-threaded process (the
hub's thread pool) the ``munmap`` shoots down TLBs on the other CPUs. For a server that spawns
one greenlet per request that was ~10 % of the broker's CPU per send.

A job that raises is reported by gevent like a spawned greenlet's failure; its worker then
ends and later jobs start a new one. At most ``KEEP`` idle workers wait per hub; more
finish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
import gevent.monkey
from gevent.hub import Waiter

__all__ = ["submit"]

KEEP = 2048
"""Idle workers kept per hub (each holds its greenlet and frame stack: a broker kept ~5 MiB
more after 1,024 sends in flight than with 256). A client with hundreds of sends in flight
keeps as many requests in service at once; with 256 kept, every request past them started a
new greenlet and the broker spent ~30 % more CPU per send (docs/benchmarks.md, "Session
18")."""

# Per OS thread (one hub each). Not ``threading.local``: monkey-patched, that is gevent's
# greenlet-local, and every submitting greenlet would get an idle list of its own (reuse only
# from the greenlet that parked the workers; fresh greenlets piling up elsewhere).
_local = gevent.monkey.get_original("_thread", "_local")()


def submit(fn: Callable[..., object], *args: Any) -> None:
    """Run ``fn(*args)`` in a reused greenlet, starting on the hub's next turn."""
    hub = gevent.get_hub()
    idle: list[Waiter[Any]] | None = getattr(_local, "idle", None)
    if idle is None or _local.hub is not hub:  # first use, or this thread's hub was replaced
        idle = _local.idle = []
        _local.hub = hub
    if idle:
        waiter = idle.pop()
        hub.loop.run_callback(waiter.switch, (fn, args))
    else:
        gevent.spawn(_work, idle, fn, args)


def _work(idle: list[Waiter[Any]], fn: Callable[..., object], args: tuple[Any, ...]) -> None:
    waiter: Waiter[Any] = Waiter()
    while True:
        fn(*args)
        fn = args = None  # drop references while idle
        if len(idle) >= KEEP:
            return
        idle.append(waiter)
        fn, args = waiter.get()
        waiter.clear()
