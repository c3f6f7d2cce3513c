"""Task pools: where the client runs user code (listeners) off the hub, at most ``size`` at once.

``task_pool(hub, size, name)`` picks one by the hub's mode:

* ``ThreadTaskPool`` (plain programs): real threads, so a listener may block on anything.
* ``GreenletTaskPool`` (monkey-patched programs): greenlets of the caller's hub, reused through
  ``runtime.workers``. ``concurrent.futures``' pool over patched ``threading`` pays for
  Python-level locks and a condition variable at every hand-off (~30 µs a task here: a sixth of
  the push consumer's CPU per message at 2,000 msg/s).

Both: ``submit(fn, *args)`` never blocks (tasks beyond ``size`` wait their turn in order), an
exception in a task is logged and ends only that task, ``drain(timeout)`` waits until every task
submitted so far has finished (a task that drains its own pool, a listener that shuts its
consumer down, waits only for the other tasks running), and ``shutdown()`` drops the tasks not
started yet.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.event
import gevent.local
from loguru import logger

from runtime import workers

__all__ = ["GreenletTaskPool", "TaskPool", "ThreadTaskPool", "task_pool"]


class TaskPool(Protocol):
    def submit(self, fn: Callable[..., object], *args: Any) -> None: ...

    def drain(self, timeout: float) -> bool: ...

    def shutdown(self) -> None: ...


def task_pool(patched: bool, size: int, name: str) -> TaskPool:
    """A pool of ``size`` for a hub in ``patched`` mode or not (see the module docstring)."""
    return GreenletTaskPool(size) if patched else ThreadTaskPool(size, name)


def _run_logged(fn: Callable[..., object], args: tuple[Any, ...]) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("client: a pooled task failed")


_running = gevent.local.local()
"""``task``: what the current thread (or greenlet) runs for a pool, so that a task that drains
its own pool (a listener that shuts its consumer down) is not waited for by itself."""


def in_task() -> bool:
    """Whether the caller runs as a pool task (a listener's call)."""
    return getattr(_running, "task", None) is not None


class ThreadTaskPool:
    """Real threads (``concurrent.futures.ThreadPoolExecutor``) plus the futures in flight."""

    def __init__(self, size: int, name: str) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, size), thread_name_prefix=name
        )
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        holder: list[concurrent.futures.Future[None]] = []
        future = self.executor.submit(self._run, holder, fn, args)
        holder.append(future)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    @staticmethod
    def _run(
        holder: list[concurrent.futures.Future[None]], fn: Callable[..., object], args: Any
    ) -> None:
        _running.task = holder
        try:
            _run_logged(fn, args)
        finally:
            _running.task = None

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def drain(self, timeout: float) -> bool:
        with self._lock:
            pending = set(self._pending)
        own = getattr(_running, "task", None)
        if own is not None:  # a task of this pool drains it: only the others running
            mine = own[0] if own else None  # (its submitter appends it right after submit)
            pending = {f for f in pending if f is not mine and f.running()}
        if not pending:
            return True
        _done, not_done = concurrent.futures.wait(pending, timeout=timeout)
        return not not_done

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class GreenletTaskPool:
    """At most ``size`` tasks at once on greenlets of the current hub; the rest queue in order.

    Everything runs on one hub (a patched program's), so plain counters need no lock."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._queue: collections.deque[tuple[Callable[..., object], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._active = 0
        self._idle = gevent.event.Event()
        self._idle.set()
        self._closed = False
        self._changed = gevent.event.Event()
        """Set whenever a task ends (what a task draining its own pool waits on)."""

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("cannot schedule new tasks after shutdown")
        self._idle.clear()
        if self._active < self.size:
            self._active += 1
            workers.submit(self._run, fn, args)
        else:
            self._queue.append((fn, args))

    def _run(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        _running.task = self
        try:
            while True:
                _run_logged(fn, args)
                self._changed.set()
                if self._closed or not self._queue:
                    break
                fn, args = self._queue.popleft()
        finally:
            _running.task = None
            self._active -= 1
            if self._active == 0 and not self._queue:
                self._idle.set()

    def drain(self, timeout: float) -> bool:
        if getattr(_running, "task", None) is not self:
            return self._idle.wait(timeout)
        # a task of this pool drains it: wait for the others running, not for itself (nor for
        # the queue behind it, which its consumer's shutdown drops)
        deadline = time.monotonic() + timeout
        while self._active > 1:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            self._changed.wait(remaining)
        return True

    def shutdown(self) -> None:
        self._closed = True
        self._queue.clear()
        if self._active == 0:
            self._idle.set()
